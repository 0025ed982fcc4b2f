/* SPDX-License-Identifier: MIT */
/*
 * The counters of a name as they lie in its segment's header (since 1.1),
 * the same block on every platform: linux/layout.h and win32/win32.h put
 * it in the header's space that layout 1 left unused, which segments 1.0
 * created have zeroed and which 1.0 libraries never write. So a 1.0
 * process's doings are not counted here, and nothing else changes for it:
 * no layout version bump. The code that keeps the counters is
 * counters.c; what they mean is whsem_info's contract (abi/whsem.h).
 *
 * Who writes what:
 *   - hold_ns, waiters_sec, waiters[], the sample_* fields and
 *     other_takes: under the segment lock (the release, the takes and the
 *     waits that change `waiting` hold it anyway);
 *   - timeouts, cancellations, waits, wait_ns, wait_buckets[]: atomically,
 *     by anyone, with or without the lock: an acquisition may end while
 *     the lock is not to be had (its owner stopped), and these are all
 *     off the uncontended path.
 * Not here: acquisitions, recoveries (layout 1 had them in the header
 * already) and releases, which is acquisitions less the tickets out now
 * (max_count - free): every way a ticket goes back, reclaims from dead
 * processes included, is counted without a write.
 */
#ifndef WHSEM_SEG_COUNTERS_H
#define WHSEM_SEG_COUNTERS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

/* WHSEM_WAIT_BUCKETS of the ABI (counters.c checks that they agree). */
#define WHSEM_SEG_WAIT_BUCKETS 32u
/* Seconds of waiters history kept: the ring's entries. */
#define WHSEM_SEG_HISTORY 256u

/* The most acquisitions seen waiting during one second of the wall clock
 * (Unix seconds: every process and time namespace shares that clock). */
struct seg_waiters_sec {
    uint32_t sec;  /* the second it is about; 0: never written     */
    uint32_t most; /* the most seen waiting during it               */
};

struct seg_counters {
    /* ---- the release's, under the lock (one cache line) ---- */
    alignas(64) uint64_t hold_ns;   /* time released tickets were held, by a
                                       coarse clock: exact over many holds;
                                       for a ticket reclaimed from a dead
                                       process, the time since its process
                                       was first seen holding (accounting.c) */
    uint32_t waiters_sec;           /* the latest second written in waiters[] */
    uint32_t reserved0;
    /* ---- atomically, by anyone ---- */
    _Atomic uint64_t timeouts;      /* acquisitions ended WHSEM_TIMEOUT      */
    _Atomic uint64_t cancellations; /* acquisitions ended WHSEM_CANCELED     */
    _Atomic uint64_t waits;         /* acquisitions that waited             */
    _Atomic uint64_t wait_ns;       /* how long they waited (monotonic)     */
    /* ---- under the lock, written by every take that is not a first
       look: beside the counters such takes write anyway ---- */
    uint64_t other_takes;           /* tickets taken other than at a first
                                       look (grants, waits): each is timed  */
    uint64_t reserved1;
    _Atomic uint64_t wait_buckets[WHSEM_SEG_WAIT_BUCKETS]; /* of the waits  */
    /* ---- under the lock: a ring indexed by second % WHSEM_SEG_HISTORY;
       every second from waiters_sec - WHSEM_SEG_HISTORY + 1 to waiters_sec
       has its entry (the first change after a quiet spell fills the
       seconds in between with the value that held through them), and the
       seconds since waiters_sec have the header's `waiting` ---- */
    struct seg_waiters_sec waiters[WHSEM_SEG_HISTORY];
    /* ---- which first-look holds are timed (counters.h), under the lock:
       one sample of the name's, whichever 1.1 process takes them ---- */
    alignas(64) uint64_t sample_next; /* a first look that makes
                                       acquisitions reach this is timed:
                                       read by every first look, so in a
                                       line only a timed one writes       */
    uint64_t sample_acq;            /* acquisitions after the last timed one */
    uint64_t sample_other;          /* other_takes then                     */
    uint64_t sample_tick;           /* the coarse clock at the last timed
                                       one                                */
    uint32_t sample_shift;          /* the next is timed 2^shift later      */
    uint32_t reserved2[7];
};

_Static_assert(sizeof(struct seg_counters) == 64 + 8 * WHSEM_SEG_WAIT_BUCKETS + 8 * WHSEM_SEG_HISTORY + 64,
               "counters layout");

#endif
