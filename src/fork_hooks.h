/* SPDX-License-Identifier: MIT */
/*
 * fork() hooks of the library's modules, registered by each module (from a
 * constructor) instead of one hub that knows them all. `order` is the
 * module's place in the lock order: prepare runs in ascending order (each
 * takes its locks, so that the child inherits none held by a thread that
 * does not exist there), parent and child in descending order (each
 * releases, and the child also resets, its module's state). Where
 * processes do not fork (Windows), registering does nothing.
 */
#ifndef WHSEM_FORK_HOOKS_H
#define WHSEM_FORK_HOOKS_H

#include "common.h"

struct whsem_fork_hooks {
    int order;
    void (*prepare)(void);
    void (*parent)(void);
    void (*child)(void);
};
enum {
    WHSEM_FORK_ORDER_MAPS = 10,    /* maps_mu: the outermost lock       */
    WHSEM_FORK_ORDER_ASYNC = 20,   /* the engine, callback and pool locks */
    WHSEM_FORK_ORDER_WATCHES = 22, /* process watches (under the engine lock) */
    WHSEM_FORK_ORDER_PWATCH = 25,  /* Linux's epoll set of pidfds         */
    WHSEM_FORK_ORDER_CANCEL = 30,  /* the cancellation stripes          */
    WHSEM_FORK_ORDER_THREADS = 40, /* the thread records                */
};
WHSEM_HIDDEN void whsem__on_fork(const struct whsem_fork_hooks *hooks);

#endif
