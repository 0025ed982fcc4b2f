/* SPDX-License-Identifier: MIT */
/* A binary min-heap by deadline (see deadlines.h). */
#include "deadlines.h"
#include "common.h"

#include <stdlib.h>

static void put(struct whsem_deadlines *h, size_t i, struct whsem_deadline *d)
{
    h->items[i] = d;
    d->pos = (uint32_t)i + 1;
}

static void fix(struct whsem_deadlines *h, size_t i)
{
    struct whsem_deadline *d = h->items[i];
    while (i > 0 && h->items[(i - 1) / 2]->at > d->at) {
        put(h, i, h->items[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        uint64_t least = d->at;
        if (l < h->n && h->items[l]->at < least) m = l, least = h->items[l]->at;
        if (r < h->n && h->items[r]->at < least) m = r;
        if (m == i) break;
        put(h, i, h->items[m]);
        i = m;
    }
    put(h, i, d);
}

bool whsem__deadline_push(struct whsem_deadlines *h, struct whsem_deadline *d)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 256;
        struct whsem_deadline **p = realloc(h->items, cap * sizeof *p);
        if (!p) return false;
        h->items = p;
        h->cap = cap;
    }
    put(h, h->n++, d);
    fix(h, h->n - 1);
    return true;
}

void whsem__deadline_remove(struct whsem_deadlines *h, struct whsem_deadline *d)
{
    if (!d->pos) return;
    size_t i = d->pos - 1;
    d->pos = 0;
    if (i == --h->n) return;
    put(h, i, h->items[h->n]);
    fix(h, i);
}
