/* SPDX-License-Identifier: MIT */
/*
 * What the rest of the library asks of the asynchronous engine (async_*.c,
 * dispatcher.c).
 */
#ifndef WHSEM_ASYNC_H
#define WHSEM_ASYNC_H

#include "common.h"

#include <stdatomic.h>
#include <stdbool.h>

struct wmap;

/* What a mapping (each platform's struct wmap) keeps for watching its
 * other processes for their end: dispatcher.c, watches.c. */
struct whsem_watching {
    _Atomic uint32_t waits;   /* blocking waits of ours asleep on it        */
    _Atomic uint32_t starts;  /* such waits begun, ever                      */
    _Atomic bool on;          /* its processes are watched, and attaches
                                 wake the dispatcher: a new blocking wait
                                 need not ask (whsem__async_watch_begin)   */
    /* Under the engine lock: */
    uint32_t seen_starts;     /* starts at the last look                     */
    uint32_t attaches;        /* the segment's attaches at that look          */
    uint64_t until;           /* watched till then with nothing waiting      */
    uint64_t look_at;         /* the next look at which processes to watch   */
    bool death;               /* a watched process ended: scan               */
};

/* Tells the dispatcher that pending operations may have ended early (a
 * semaphore handle was closed). */
WHSEM_HIDDEN void whsem__async_poke(void);
/* Makes the dispatcher pay m's debts (owed_want) once the lock is free. */
WHSEM_HIDDEN void whsem__async_collect_debt(struct wmap *m);
/* A blocking wait on m (its want counted) goes to sleep for the first
 * time: the dispatcher watches m's other processes while it waits, so
 * that a dead holder is noticed at once. _end when the wait is over
 * (before its want goes). Neither makes a system call while m is watched
 * already. */
WHSEM_HIDDEN void whsem__async_watch_begin(struct wmap *m);
WHSEM_HIDDEN void whsem__async_watch_end(struct wmap *m);
/* Nothing of ours but the caller (closing a handle) and the engine keeps
 * m: if the engine keeps it only to watch a while longer, it lets go now,
 * so that the mapping goes with the process's last use of it (a Windows
 * section nobody maps is "not found" again). Whether the caller must then
 * release the engine's hold (whsem__p_engine_release). */
WHSEM_HIDDEN bool whsem__async_unwatch(struct wmap *m);

#endif
