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
 * hold is timed: a systematic sample of the first-look ones (tickets
 * free at an acquisition's first look) is, one sample per name, kept in
 * the segment under its lock. A timed one stands for the first-look holds
 * since the previous timed one, itself included: the acquisitions count
 * since then, less the other takes (grants and waits, each timed). The
 * next is timed 2^shift acquisitions later; the shift grows only while
 * holds come faster than the clock ticks (two timed ones in the same
 * tick), up to 6; as soon as two are a tick apart it is 0 again, so that
 * slow holds are each timed. A sum over many holds is unbiased (of a
 * coarse clock and of the sampling).
 *
 * Why this shape: the untimed first look only compares the acquisitions
 * count it just wrote with sample_next, and writes nothing. A countdown
 * of the process's own (a store on this path) cost the pair 3 to 20%
 * depending on where the allocator put it: a load of the segment after a
 * store whose address agrees with it modulo 4 KiB waits for the store.
 *
 * A ticket's stamp (hentry.since, private to the process): 0 if its hold
 * is not timed (and between tickets), else the coarse clock at its
 * acquisition rounded down to a multiple of WHSEM_HOLD_TAG + 1, plus the
 * number of holds it stands for (1 ... WHSEM_HOLD_TAG).
 */
#ifndef WHSEM_COUNTERS_H
#define WHSEM_COUNTERS_H

#include "answers.h"
#include "platform.h"

#define WHSEM_HOLD_TAG 127u
#define WHSEM_HOLD_SHIFT_MAX 6u

/* The stamp of a ticket whose hold is timed, standing for n holds. */
static inline uint64_t whsem__hold_stamp(uint64_t n)
{
    return (whsem__p_coarse_ns() & ~(uint64_t)WHSEM_HOLD_TAG) | n;
}

WHSEM_HIDDEN void whsem__hold_sample_locked(whsem_header *h, uint64_t *since);

/* A ticket was taken at a first look (lock held), and *since is 0: the
 * stamp it gets, if the sample times it. */
static inline void whsem__hold_first_look_locked(whsem_header *h, uint64_t *since)
{
    if (WHSEM_UNLIKELY(h->acquisitions >= h->counters.sample_next)) whsem__hold_sample_locked(h, since);
}

/* A ticket taken any other way (lock held): its hold is timed. */
static inline void whsem__hold_other_take_locked(whsem_header *h) { h->counters.other_takes++; }

/* The stamp of a ticket taken any other way. */
static inline uint64_t whsem__hold_begins(void) { return whsem__hold_stamp(1); }

WHSEM_HIDDEN void whsem__count_timed_hold(whsem_header *h, uint64_t *stamp);

/* A ticket goes back (lock held): its hold is counted if *stamp is not 0,
 * and *stamp becomes 0. A handle entry's stamp is 0 between tickets, so
 * that an untimed acquisition need not write one. */
static inline void whsem__count_hold(whsem_header *h, uint64_t *stamp)
{
    if (WHSEM_UNLIKELY(*stamp != 0)) whsem__count_timed_hold(h, stamp);
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
