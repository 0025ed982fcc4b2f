/* SPDX-License-Identifier: MIT */
/*
 * A segment's counters (seg_counters.h), kept by the paths that do what
 * they count, once for every platform (counters.c); the shared-memory
 * backend's `counters` entry reads them (shm_backend.c).
 *
 * What they cost: everything but the hold time is counted on paths that
 * wait, fail or recover, which read clocks and take locks already. The
 * hold time is the uncontended pair's: even the coarse monotonic clock
 * (whsem__p_coarse_ns) costs the pair a quarter to a third for its two
 * reads (DESIGN.md, "The counters, and what they cost"). So not every
 * hold is timed: a systematic sample of the uncontended ones is, each
 * timed hold standing for the 2^shift holds (itself and those skipped
 * after it) until the next (struct hold_sampling, per process and name,
 * under the segment lock). The sample halves only while holds come
 * faster than the clock ticks (two timed ones in the same tick), down to
 * one in 64; as soon as two are a tick apart, every hold is timed again. A sum over
 * many holds is unbiased (of a coarse clock and of the sampling), and
 * holds that waited, or were acquired asynchronously, are all timed.
 *
 * A ticket's stamp (hentry.since, private to the process): 0 if its hold
 * is not timed, else the coarse clock at its acquisition rounded down to
 * a multiple of WHSEM_HOLD_TAG + 1, plus shift + 1.
 */
#ifndef WHSEM_COUNTERS_H
#define WHSEM_COUNTERS_H

#include "answers.h"
#include "platform.h"

#define WHSEM_HOLD_TAG 63u
#define WHSEM_HOLD_SHIFT_MAX 6u

/* The stamp of a ticket whose hold is timed, standing for 2^shift holds. */
static inline uint64_t whsem__hold_stamp(uint32_t shift)
{
    return (whsem__p_coarse_ns() & ~(uint64_t)WHSEM_HOLD_TAG) | (shift + 1);
}

WHSEM_HIDDEN uint64_t whsem__hold_sample_locked(struct hold_sampling *hs);

/* The stamp of a ticket taken on the uncontended path (lock held): most
 * are not timed while holds come fast. */
static inline uint64_t whsem__hold_begins_locked(struct hold_sampling *hs)
{
    if (WHSEM_LIKELY(hs->skip != 0)) {
        hs->skip--;
        return 0;
    }
    return whsem__hold_sample_locked(hs);
}

/* The stamp of a ticket taken any other way: it is timed. */
static inline uint64_t whsem__hold_begins(void) { return whsem__hold_stamp(0); }

WHSEM_HIDDEN void whsem__count_timed_hold(whsem_header *h, uint64_t stamp);

/* A ticket with this stamp goes back (lock held). */
static inline void whsem__count_hold(whsem_header *h, uint64_t stamp)
{
    if (stamp != 0) whsem__count_timed_hold(h, stamp);
}

/* An acquisition ended with st: timeouts and cancellations are counted
 * (atomically: the lock may not be held, or to be had). timed: it had a
 * timeout other than 0. A try that finds nothing is not a timeout: the
 * bindings try before they wait, and would count every wait twice. */
WHSEM_HIDDEN void whsem__count_end(whsem_header *h, whsem_status st, bool timed);
/* An acquisition that waited from began to ended (monotonic ns), however
 * it ended: waits, wait_ns and the histogram (atomically). */
WHSEM_HIDDEN void whsem__count_wait(whsem_header *h, uint64_t began, uint64_t ended);
/* The number of acquisitions waiting becomes n (lock held): the header's
 * `waiting`, and this second's entry of the waiters history. */
WHSEM_HIDDEN void whsem__waiting_set(whsem_header *h, uint32_t n);
/* Tickets reclaimed from a dead process's slot s (lock held, its counts
 * not yet zeroed), now_ms the scan's coarse wall clock: their hold time. */
WHSEM_HIDDEN void whsem__count_reclaimed(whsem_header *h, const whsem_slot *s, int64_t now_ms);
/* An acquisition of the semaphore handle sem (entry e) whose cancellation
 * source was triggered before it began: WHSEM_CANCELED, counted as
 * canceled if sem is shared memory's, whose acquire is the platform's
 * whsem_acquire, passed in (other backends see nothing of it). */
WHSEM_HIDDEN whsem_status whsem__canceled_before(struct hentry *e, uint64_t sem,
                                                 whsem_status(WHSEM_CALL *shm_acquire)(
                                                     whsem_sem, int64_t, whsem_cancel, whsem_ticket *));
/* A snapshot of the counters of m (lock held). */
WHSEM_HIDDEN void whsem__counters_locked(struct wmap *m, struct sem_counters *c);

#endif
