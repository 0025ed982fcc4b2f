/* SPDX-License-Identifier: MIT */
/*
 * Watching the processes that keep ours waiting (watches.c): which
 * processes of a mapping to watch, the watches themselves, and which
 * mappings saw one of theirs end. The dispatcher drives it (dispatcher.c);
 * the platform watches (platform.h: a pidfd, a process handle).
 */
#ifndef WHSEM_WATCHES_H
#define WHSEM_WATCHES_H

#include "async_policy.h"
#include "platform.h"

/* The processes of a mapping worth watching, as seen under its lock. */
struct whsem_watch_list {
    uint32_t n;
    struct {
        uint32_t slot;
        struct whsem_pident id;
    } p[WATCH_MAX];
};

/* Under m's segment lock: its other processes, holders first (their
 * tickets are what waits), then the rest (they may hold later). */
WHSEM_HIDDEN void whsem__watch_collect_locked(struct wmap *m, struct whsem_watch_list *l);
/* Engine lock held: m's watches become l's processes (as many as the
 * table has room for). A process found ended already sets
 * m->watch.death; returns whether one was. */
WHSEM_HIDDEN bool whsem__watch_update(struct wmap *m, const struct whsem_watch_list *l);
/* Engine lock held: m's watches go. */
WHSEM_HIDDEN void whsem__watch_forget(struct wmap *m);
/* Engine lock held: sets watch.death on each mapping a watched process of
 * which ended since the last call. */
WHSEM_HIDDEN void whsem__watch_take_ends(void);

#endif
