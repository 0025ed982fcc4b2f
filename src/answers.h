/* SPDX-License-Identifier: MIT */
/*
 * The answers every module gives the same way (answers.c): bad timeouts
 * and handles, "ask, then fill" copies, whsem_list's and whsem_query's
 * lists. Shared by the Linux library and whsem.dll.
 */
#ifndef WHSEM_ANSWERS_H
#define WHSEM_ANSWERS_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether timeout_ms is 0, WHSEM_INFINITE or 1 ... INT32_MAX: inline, for
 * the fast path; whsem__bad_timeout gives the status and message if not. */
static inline bool whsem__timeout_ok(int64_t timeout_ms)
{
    return timeout_ms >= WHSEM_INFINITE && timeout_ms <= INT32_MAX;
}
WHSEM_HIDDEN whsem_status whsem__bad_timeout(int64_t timeout_ms);

/* The status and message for a handle that is 0, stale or of another kind. */
WHSEM_HIDDEN whsem_status whsem__invalid_handle(uint64_t h, const char *what);
/* Copies a string into a caller's buffer, "ask, then fill" style. */
WHSEM_HIDDEN whsem_status whsem__copy_out(const char *s, size_t len, char *buf, size_t size,
                                          size_t *out_len);

/* whsem_list's answer, built in the caller's buffer "ask, then fill"
 * style: NUL-terminated names, then one more NUL. What does not fit is
 * still counted. */
struct name_list {
    char *buf;
    size_t size, need, used;
    bool fits;
};
WHSEM_HIDDEN void whsem__list_init(struct name_list *l, char *buf, size_t size);
WHSEM_HIDDEN void whsem__list_add(struct name_list *l, const char *name);
/* Sets *out_len to the size the whole list needs; WHSEM_E_INVALID_ARGUMENT
 * if it did not fit. */
WHSEM_HIDDEN whsem_status whsem__list_finish(struct name_list *l, size_t *out_len);

/* One process that has a name open, as a backend reports it. */
struct report_proc {
    int64_t pid, holding_since_unix_ms, waiting_since_unix_ms;
    int32_t tickets;
    uint32_t waiting;
    bool self;
    const char *host; /* static storage; "" on this machine */
};
/* The answer of whsem_query (holders only) or whsem_query_processes
 * (every process), gathered while a backend walks what it knows (the
 * shared-memory backend: a segment's slots, under its lock). */
struct query_report {
    whsem_info *info;
    whsem_holder *holders;  /* whsem_query's                          */
    unsigned char *procs;   /* whsem_query_processes's, stride apart  */
    size_t stride;
    size_t capacity, n;
    uint32_t processes, holding;
};
WHSEM_HIDDEN void whsem__report_init(struct query_report *r, whsem_info *info,
                                     whsem_holder *holders, size_t capacity);
/* stride: the first element's struct_size, checked by the caller. */
WHSEM_HIDDEN void whsem__report_init_processes(struct query_report *r, whsem_info *info,
                                               whsem_process *procs, size_t stride,
                                               size_t capacity);
WHSEM_HIDDEN void whsem__report_process(struct query_report *r, const struct report_proc *p);
/* Fills info (if any) from the backend's counts; r->n is what the
 * caller's *out_count gets (whsem_query: the holders). */
WHSEM_HIDDEN void whsem__report_finish(struct query_report *r, int32_t max_count,
                                       int32_t free_count, uint32_t waiting, uint64_t recoveries);

/* The seconds whsem_waiters_history can give at most. */
#define WHSEM_HISTORY_MAX 3600u

/* A name's counters as a backend reports them (whsem_info's 1.1 tail,
 * whsem_wait_histogram, whsem_waiters_history): one snapshot, however the
 * backend keeps them. */
struct sem_counters {
    uint64_t acquisitions, timeouts, cancellations, waits, wait_ns, releases, hold_ns;
    int64_t created_unix_ms;
    uint64_t wait_buckets[WHSEM_WAIT_BUCKETS];
    uint32_t seconds;                      /* valid entries of waiters[] */
    uint32_t waiters[WHSEM_HISTORY_MAX];   /* per second, oldest first, the
                                              last the current second    */
};

/* The histogram bucket of a wait of ns nanoseconds (see
 * WHSEM_WAIT_BUCKETS): every backend counts waits the same way. */
static inline unsigned whsem__wait_bucket(uint64_t ns)
{
    if (ns < (1u << 10)) return 0;
    unsigned log2 = 63u - (unsigned)__builtin_clzll(ns); /* >= 10 */
    return log2 - 9 < WHSEM_WAIT_BUCKETS - 1 ? log2 - 9 : WHSEM_WAIT_BUCKETS - 1;
}

#endif
