/* SPDX-License-Identifier: MIT */
/*
 * Each name's counters (counters.c, pg/DESIGN.md "Counters"): counted in
 * this process under the server's mutex, flushed by the worker into
 * whsem.counters at most once per flush period, and read back by
 * whsem_query, whsem_wait_histogram and whsem_waiters_history with what
 * this process has not flushed yet added.
 */
#ifndef WHSEM_PG_COUNTERS_H
#define WHSEM_PG_COUNTERS_H

#include "answers.h"
#include "pg.h"

#include <time.h>

/* A coarse monotonic clock (jiffies): hold times are summed over many
 * holds, and it is read for every ticket handed out. */
static inline uint64_t whsem__pgk_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An acquisition of n ended with st; wait_ns counts if it waited. A try
 * (timeout 0) that found nothing is not a timeout (../counters.h). */
static inline void whsem__pgk_ended(struct pgname *n, whsem_status st, bool try_only, bool waited,
                                    uint64_t wait_ns)
{
    struct pgcounts *p = &n->keep.pending;
    if (st == WHSEM_OK) p->v[PGK_ACQUISITIONS]++;
    else if (st == WHSEM_TIMEOUT && !try_only) p->v[PGK_TIMEOUTS]++;
    else if (st == WHSEM_CANCELED) p->v[PGK_CANCELLATIONS]++;
    if (waited) {
        p->v[PGK_WAITS]++;
        p->v[PGK_WAIT_NS] += wait_ns;
        p->buckets[whsem__wait_bucket(wait_ns)]++;
    }
}

/* A ticket of n went back (released, or lost with its session). */
static inline void whsem__pgk_released(struct pgname *n, uint64_t hold_ns)
{
    n->keep.pending.v[PGK_RELEASES]++;
    n->keep.pending.v[PGK_HOLD_NS] += hold_ns;
}

/* A new name object; now: the monotonic clock. */
WHSEM_HIDDEN void whsem__pgk_init(struct pgsrv *s, struct pgname *n, uint64_t now);
/* n's number of waiting acquisitions is now level. */
WHSEM_HIDDEN void whsem__pgk_waiting(struct pgname *n, uint32_t level);
/* The worker's round: flushes n on main (NULL: none ready) if it is due,
 * else lowers *next to when it will be. */
WHSEM_HIDDEN void whsem__pgk_tick(struct pgsrv *s, struct pgconn *main, struct pgname *n,
                                  uint64_t now, uint64_t *next);
/* Flushes everything n counted now, the current second included: its
 * last handle closed, or the process exits. */
WHSEM_HIDDEN void whsem__pgk_final(struct pgsrv *s, struct pgconn *main, struct pgname *n);

/* The reader: a statement of one parameter (the name's id) and its take
 * (server.h's pgs_take; ctx a struct pgk_read), which adds what this
 * process has not flushed yet. */
struct pgk_read {
    struct pgname *n;
    struct sem_counters *c;
};
extern WHSEM_HIDDEN const char whsem__pgk_sql_read[];
/* Creates whsem.counters (an existing database of 1.1.0 has only
 * whsem.semaphore): one statement. */
extern WHSEM_HIDDEN const char whsem__pgk_sql_create[];
WHSEM_HIDDEN whsem_status whsem__pgk_take(struct pgsrv *s, PGresult *r, void *ctx, char *msg,
                                          size_t size);

#endif
