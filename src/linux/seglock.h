/* SPDX-License-Identifier: MIT */
/*
 * The segment lock (seglock.c): a futex word in the segment naming its
 * owner's slot, taken over from a dead owner, waited for only until the
 * caller's deadline.
 */
#ifndef WHSEM_SEGLOCK_H
#define WHSEM_SEGLOCK_H

#include "mapping.h"

/* How long calls without a timeout of their own wait for a segment lock
 * whose owner is alive but does not let go (stopped, or a forged word):
 * try-acquire, open, query. Timed calls use their own deadline. */
#define WHSEM_TRY_LOCK_NS 5000000u      /* acquire with timeout 0     */
#define WHSEM_OPEN_LOCK_NS 1000000000u  /* open, query, unlink: E_BUSY */

/* deadline_ns: CLOCK_MONOTONIC, 0 = wait as long as it takes (release and
 * close, which must not fail to give a ticket back). Returns WHSEM_OK,
 * WHSEM_TIMEOUT (message names the owner and its state) or
 * WHSEM_E_CORRUPT (after a takeover's recount). */
WHSEM_HIDDEN whsem_status whsem__lock_slow(struct wmap *m, uint64_t deadline_ns);
WHSEM_HIDDEN whsem_status whsem__lock_slow_within(struct wmap *m, uint64_t budget_ns);
/* For calls without a timeout of their own: the timeout of a lock that was
 * not let go becomes WHSEM_E_BUSY, keeping its message. */
WHSEM_HIDDEN whsem_status whsem__busy_from_timeout(void);

static inline bool whsem__try_lock(struct wmap *m)
{
    uint32_t zero = 0;
    return atomic_compare_exchange_strong_explicit(&m->hdr->lock, &zero, m->owner_id,
                                                   memory_order_acquire, memory_order_relaxed);
}

/* Takes the segment lock. A lock found owned by a dead process is taken
 * over and the state recounted, which may reveal WHSEM_E_CORRUPT (then the
 * lock is not held). Waits as long as a live owner keeps it. */
static inline whsem_status whsem__lock(struct wmap *m)
{
    if (WHSEM_LIKELY(whsem__try_lock(m))) return WHSEM_OK;
    return whsem__lock_slow(m, 0);
}

/* The same, giving up with WHSEM_TIMEOUT at deadline_ns (never 0). */
static inline whsem_status whsem__lock_until(struct wmap *m, uint64_t deadline_ns)
{
    if (WHSEM_LIKELY(whsem__try_lock(m))) return WHSEM_OK;
    return whsem__lock_slow(m, deadline_ns);
}

/* The same, giving up after budget_ns (read the clock only if it must wait). */
static inline whsem_status whsem__lock_within(struct wmap *m, uint64_t budget_ns)
{
    if (WHSEM_LIKELY(whsem__try_lock(m))) return WHSEM_OK;
    return whsem__lock_slow_within(m, budget_ns);
}

/* Wakes a sleeper on the lock after an unlock that saw `sleepers`: one wake
 * in flight. A woken thread that has not run yet (on a busy machine it may
 * wait a while for a CPU) will look at the lock, and it clears lock_woken
 * when it does (seglock.c), so later unlocks leave the others be; a 1.0
 * sleeper never clears it, so with one of those asleep every unlock wakes,
 * as 1.0 unlockers do. */
static inline void whsem__unlock_wake(struct seg_header *h, uint32_t sleepers)
{
    if ((int32_t)(sleepers - atomic_load_explicit(&h->lock_sleepers_new, memory_order_relaxed)) > 0 ||
        atomic_exchange_explicit(&h->lock_woken, 1, memory_order_seq_cst) == 0)
        whsem__futex_wake(&h->lock, 1);
}

static inline void whsem__unlock(struct wmap *m)
{
    struct seg_header *h = m->hdr;
    if (WHSEM_LIKELY(atomic_load_explicit(&h->lock_mode, memory_order_relaxed) == 0)) {
        /* A plain store, no fence before the load below: whoever goes to
         * sleep on the lock counts itself and then issues membarrier(),
         * which either orders our load after its count or our store before
         * its next look at the lock (see seglock.c). */
        atomic_store_explicit(&h->lock, 0, memory_order_release);
        atomic_signal_fence(memory_order_seq_cst);
    } else {
        atomic_exchange_explicit(&h->lock, 0, memory_order_seq_cst);
    }
    uint32_t sleepers = atomic_load_explicit(&h->lock_sleepers, memory_order_relaxed);
    if (WHSEM_UNLIKELY(sleepers != 0)) whsem__unlock_wake(h, sleepers);
}

#endif
