/* SPDX-License-Identifier: MIT */
/*
 * Cancellation sources (cancel.c, both platforms): the waits registered
 * with a source are notified when it is triggered.
 */
#ifndef WHSEM_CANCEL_H
#define WHSEM_CANCEL_H

#include "common.h"

#include <stdbool.h>

/* A wait registered with a cancellation source: notify() runs (under the
 * source's stripe lock) when it is triggered. */
struct cwait {
    struct cwait *prev, *next;
    struct cancel_obj *obj;
    unsigned stripe;
    void (*notify)(struct cwait *w);
    void *ctx;
};

/* WHSEM_OK (registered), WHSEM_CANCELED (already triggered) or an error. */
WHSEM_HIDDEN whsem_status whsem__cancel_register(whsem_cancel c, struct cwait *w);
WHSEM_HIDDEN void whsem__cancel_unregister(struct cwait *w);
WHSEM_HIDDEN bool whsem__cancel_triggered(struct cwait *w);

#endif
