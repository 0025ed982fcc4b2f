/* SPDX-License-Identifier: MIT */
/*
 * Linux's liveness of slots and what recovery needs of the platform
 * (recovery.c); the shared accounting and recovery algorithm itself is
 * accounting.h's.
 */
#ifndef WHSEM_RECOVERY_H
#define WHSEM_RECOVERY_H

#include "accounting.h"
#include "mapping.h"
#include "seglock.h"

/* A new read-only description of m's file, which the caller closes,
 * opened by its path; -1 if the path no longer leads to that file (the
 * name was removed, or replaced). */
WHSEM_HIDDEN int whsem__reopen(struct wmap *m);
/* Whether slot i's owner has certainly gone, by its liveness byte alone
 * (asked through fd, a descriptor of m's file): for reusing slots, where
 * a doubt costs only a slot further on. */
WHSEM_HIDDEN bool whsem__slot_abandoned(struct wmap *m, int fd, uint32_t i);
/* Under the lock: drops a dead slot's share of hdr->lock_sleepers. */
WHSEM_HIDDEN void whsem__forget_lock_sleeping(struct seg_header *h, struct seg_slot *s);

/* WHSEM_E_CORRUPT if m's file was truncated under us: its mapping is then
 * private zeroes (busguard.c), which must never be taken for the state. */
WHSEM_HIDDEN whsem_status whsem__broken_status(struct wmap *m);
static inline bool whsem__is_broken(struct wmap *m)
{
    return WHSEM_UNLIKELY(atomic_load_explicit(&m->broken, memory_order_relaxed));
}

static inline void whsem__wake_slot(struct seg_slot *s, int count)
{
    atomic_fetch_add_explicit(&s->wake_seq, 1, memory_order_release);
    whsem__futex_wake(&s->wake_seq, count);
}

#endif
