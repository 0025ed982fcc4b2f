/* SPDX-License-Identifier: MIT */
/*
 * Linux's side of the seam (../platform.h): the segment of layout.h,
 * futex wake words, and the liveness of recovery.c.
 */
#ifndef WHSEM_LINUX_PLATFORM_H
#define WHSEM_LINUX_PLATFORM_H

#include "cancel.h"
#include "mapping.h"

typedef struct seg_slot whsem_slot;
typedef struct seg_header whsem_header;

#define WHSEM_P_NSLOTS WHSEM_NSLOTS
#define WHSEM_P_SLOT_FREE SLOT_FREE
#define WHSEM_P_SLOT_ACTIVE SLOT_ACTIVE
#define WHSEM_P_SLOT_MAX SLOT_ACTIVE
#define WHSEM_P_WHERE_FMT "%s"
#define WHSEM_P_WHERE(m) ((m)->path)

static inline uint32_t whsem__p_slot_state(const whsem_slot *s)
{
    return atomic_load_explicit(&((whsem_slot *)s)->state, memory_order_relaxed);
}

static inline uint64_t whsem__p_mono_ns(void) { return whsem__mono_ns(); }
static inline int64_t whsem__p_coarse_unix_ms(void) { return whsem__coarse_unix_ms(); }

/* Its waiters sleep on wake_seq: a bump makes a sleeper that has not yet
 * slept see the change, the futex wake (later, unlocked) the others. */
static inline void whsem__p_mark_woken(whsem_slot *s)
{
    atomic_fetch_add_explicit(&s->wake_seq, 1, memory_order_release);
}

static inline void whsem__p_wake_locked(struct wmap *m, uint32_t i)
{
    whsem__futex_wake(&m->slots[i].wake_seq, 1);
}

/* Whether slot i's owner may still use what the slot holds. With
 * process_only, whether the owner process itself runs: what decides a
 * takeover of the segment lock, which a descriptor handed to another
 * process must not keep (SLOT_F_INHERITED). Doubt answers "alive". */
WHSEM_HIDDEN bool whsem__slot_alive(struct wmap *m, uint32_t i, bool process_only);
WHSEM_HIDDEN bool whsem__slot_alive(struct wmap *m, uint32_t i, bool process_only);
/* Frees a dead process's slot whose counts are zero: its share of the
 * lock sleepers, its identity, then its state (by CAS: an attaching
 * process may have taken the slot over meanwhile). */
WHSEM_HIDDEN void whsem__p_release_dead_locked(struct wmap *m, uint32_t i, uint32_t state);
/* A truncated file (busguard), or lock-word bits no library writes. */
WHSEM_HIDDEN whsem_status whsem__p_segment_ok_locked(struct wmap *m);


typedef pthread_mutex_t whsem_mutex;
#define WHSEM_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
static inline void whsem__mutex_lock(whsem_mutex *mu) { pthread_mutex_lock(mu); }
static inline void whsem__mutex_unlock(whsem_mutex *mu) { pthread_mutex_unlock(mu); }
static inline bool whsem__mutex_trylock(whsem_mutex *mu) { return pthread_mutex_trylock(mu) == 0; }

static inline void whsem__p_init(void) { whsem__init(); }

#endif
