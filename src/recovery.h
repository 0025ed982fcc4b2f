/* SPDX-License-Identifier: MIT */
/*
 * Liveness of slots, crash recovery, and the ticket accounting every
 * path shares under the segment lock (recovery.c).
 */
#ifndef WHSEM_RECOVERY_H
#define WHSEM_RECOVERY_H

#include "mapping.h"
#include "seglock.h"

/* Under the lock, by the dispatcher: pays m's owed_want back. */
WHSEM_HIDDEN void whsem__settle_locked(struct wmap *m);

/* Whether slot i's owner may still use what the slot holds. With
 * process_only, whether the owner process itself runs: what decides a
 * takeover of the segment lock, which a descriptor handed to another
 * process must not keep (SLOT_F_INHERITED). Doubt answers "alive". */
WHSEM_HIDDEN bool whsem__slot_alive(struct wmap *m, uint32_t i, bool process_only);
/* The read-only descriptor m->fd, reopened if the application closed it
 * (its number may now name another file); -1 if the file cannot be found. */
WHSEM_HIDDEN int whsem__query_fd(struct wmap *m);
/* A time read from shared memory, bounded by our own clock: a process in
 * another time namespace (or a hostile writer) may have written any value,
 * and a value from "the future" must not make anyone wait for it. */
static inline uint64_t whsem__shared_time(uint64_t t, uint64_t now)
{
    return t > now ? now : t;
}
/* Under the lock: drops a dead slot's share of hdr->lock_sleepers. */
WHSEM_HIDDEN void whsem__forget_lock_sleeping(struct seg_header *h, struct seg_slot *s);

/* WHSEM_E_CORRUPT if m's file was truncated under us: its mapping is then
 * private zeroes (busguard.c), which must never be taken for the state. */
WHSEM_HIDDEN whsem_status whsem__broken_status(struct wmap *m);
static inline bool whsem__is_broken(struct wmap *m)
{
    return WHSEM_UNLIKELY(atomic_load_explicit(&m->broken, memory_order_relaxed));
}

/* Counts a ticket taken from the pool in slot s. Reading even the coarse
 * clock would cost a quarter of the fast path, so a process that starts
 * holding is stamped 0 ("not yet seen") and the next scan under the lock
 * writes the time (see whsem__scan_locked). */
static inline void whsem__take(struct seg_slot *s)
{
    if (WHSEM_UNLIKELY(s->held == 0 && s->grants == 0)) s->since_unix_ms = 0;
    s->held++;
}

/* Under the lock: one more acquisition of slot s waits. */
static inline void whsem__want_more(struct seg_header *h, struct seg_slot *s, uint64_t now)
{
    if (s->want++ == 0) s->wait_since_ns = now;
    h->waiting++;
}

/* Under the lock: one acquisition of slot s stops waiting. A process that
 * got a ticket has been served: its remaining waits age from now. */
static inline void whsem__want_less(struct seg_header *h, struct seg_slot *s, bool got, uint64_t now)
{
    h->waiting--;
    if (--s->want == 0) s->wait_since_ns = 0;
    else if (got) s->wait_since_ns = now;
}

/* Under the lock: takes a ticket already granted to slot s. */
static inline bool whsem__take_grant(struct seg_slot *s)
{
    if (s->grants == 0) return false;
    s->grants--;
    s->held++;
    return true;
}

static inline bool whsem__scan_due(struct wmap *m, int32_t check_ms, uint64_t now)
{
    /* A last scan "later than now" was stamped by a clock ahead of ours
     * (another time namespace): it says nothing, so scan. */
    uint64_t last = m->hdr->last_scan_ns;
    return check_ms >= 0 && (last > now || now - last >= (uint64_t)check_ms * 1000000u);
}

/* When the next abandonment scan falls due, on our clock. */
static inline uint64_t whsem__next_scan(struct wmap *m, int32_t check_ms, uint64_t now)
{
    return whsem__shared_time(m->hdr->last_scan_ns, now) + (uint64_t)check_ms * 1000000u;
}

/* Under the lock: looks for dead processes (all attached slots when full,
 * else those holding or wanting tickets), reclaims their tickets and hands
 * free tickets to waiting processes. */
WHSEM_HIDDEN whsem_status whsem__scan_locked(struct wmap *m, bool full);
/* Under the lock: whether the counts are consistent (WHSEM_E_CORRUPT if
 * not); a garbled segment must never admit more than max_count. */
WHSEM_HIDDEN whsem_status whsem__check_locked(struct wmap *m);
/* Under the lock: recomputes free and waiting from the slots. */
WHSEM_HIDDEN whsem_status whsem__recount_locked(struct wmap *m);
/* Under the lock: hands free tickets to processes with unmet demand. */
WHSEM_HIDDEN void whsem__distribute_locked(struct wmap *m);
/* Under the lock: a released ticket with processes waiting. It goes back
 * to the pool and one waiting process is woken to compete for it, unless
 * that process has waited longer than WHSEM_FAIR_NS: then the ticket is
 * granted to it outright. Returns the slot to wake, or -1. */
WHSEM_HIDDEN int32_t whsem__give_back_locked(struct wmap *m);

static inline void whsem__wake_slot(struct seg_slot *s, int count)
{
    atomic_fetch_add_explicit(&s->wake_seq, 1, memory_order_release);
    whsem__futex_wake(&s->wake_seq, count);
}

#endif
