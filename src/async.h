/* SPDX-License-Identifier: MIT */
/*
 * What the rest of the library asks of the asynchronous engine (async_*.c,
 * dispatcher.c).
 */
#ifndef WHSEM_ASYNC_H
#define WHSEM_ASYNC_H

#include "common.h"

struct wmap;

/* Tells the dispatcher that pending operations may have ended early (a
 * semaphore handle was closed). */
WHSEM_HIDDEN void whsem__async_poke(void);
/* Makes the dispatcher pay m's debts (owed_want) once the lock is free. */
WHSEM_HIDDEN void whsem__async_collect_debt(struct wmap *m);

#endif
