/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous engines' deadlines (deadlines.c): a binary min-heap of
 * the pending operations that have one, so that the dispatcher sleeps
 * until the earliest and ends exactly the operations that reached theirs,
 * whatever the number of operations. Each operation embeds a node; the
 * engine's lock guards the heap.
 */
#ifndef WHSEM_DEADLINES_H
#define WHSEM_DEADLINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct whsem_deadline {
    uint64_t at;  /* monotonic ns, 0 = none */
    uint32_t pos; /* 1-based place in the heap, 0 = not in it */
};

struct whsem_deadlines {
    struct whsem_deadline **items;
    size_t n, cap;
};

/* False if there is no memory for it (the caller cannot time it then). */
bool whsem__deadline_push(struct whsem_deadlines *h, struct whsem_deadline *d);
/* Takes d out if it is in. */
void whsem__deadline_remove(struct whsem_deadlines *h, struct whsem_deadline *d);

/* The earliest deadline, or NULL. */
static inline struct whsem_deadline *whsem__deadline_first(const struct whsem_deadlines *h)
{
    return h->n ? h->items[0] : NULL;
}

/* Forgets every node (after fork(): the operations are the parent's). */
static inline void whsem__deadline_clear(struct whsem_deadlines *h) { h->n = 0; }

#endif
