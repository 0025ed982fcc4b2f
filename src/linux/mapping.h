/* SPDX-License-Identifier: MIT */
/*
 * One process's view of one segment (struct wmap), the registry of this
 * process's mappings, and their lifetime: found or made by open, attached
 * to a slot, retired when unused (segment.c).
 */
#ifndef WHSEM_MAPPING_H
#define WHSEM_MAPPING_H

#include "api.h"
#include "async.h"
#include "backend.h"
#include "common.h"
#include "layout.h"
#include "names.h"
#include "handles.h"
#include "process.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

struct wmap {
    struct whsem_semobj base; /* first: what handles point at (backend.h) */
    struct seg_header *hdr;
    struct seg_slot *slots;
    void *anchor;             /* one page mapped through the description that
                                 holds our slot's liveness lock (see
                                 recovery.c); NULL until attached. No
                                 descriptor stays open per name: 10,000
                                 names would exceed the usual soft limit of
                                 1024 descriptors, which are the
                                 application's to spend. Whoever needs one
                                 opens the path (whsem__reopen)          */
    uint32_t slot;            /* our slot, valid when attached_pgen == pgen */
    uint32_t owner_id;        /* slot + 1: our value in hdr->lock           */
    uint64_t attached_pgen;
    int32_t max_count;        /* copy of the immutable header field         */
    dev_t dev;
    ino_t ino;
    size_t name_len;
    char *name;               /* both in the same allocation as the     */
    char *path;               /* mapping, as long as they are: 10,000 names
                                 would spend 10 MB on arrays of the longest */

    /* Under the segment lock when attached (maps_mu otherwise): */
    int handles;              /* open whsem_sem handles on this mapping     */
    int async_ops;            /* pending asynchronous operations            */

    /* Under the engine lock (dispatcher.c): */
    struct op *aq_head, *aq_tail; /* pending operations, oldest first        */
    struct wmap *active_next; /* in the engine's list of mappings with ops  */
    struct wmap *released_next; /* the dispatcher's, once the engine let go */
    _Atomic bool active;      /* in that list (written under the engine lock
                                 and, when leaving it, the segment lock):
                                 nobody else may retire the mapping         */
    bool has_expired;         /* one of them reached its deadline           */
    int32_t async_check_ms;   /* shortest abandonment check of those ops    */
    struct whsem_watching watch; /* watching its other processes (async.h) */
    int helpers;              /* threads in whsem_op_wait that take its wakes */

    /* Waits that ended while the segment lock could not be had (its holder
     * stopped): their `want` is still counted in our slot, which also keeps
     * the mapping alive. The dispatcher pays it back (dispatcher.c)
     * as soon as it gets the lock; only it does, so that it can decide,
     * under that lock, whether the mapping it holds is unused now. */
    _Atomic uint32_t owed_want;
    _Atomic uint32_t owed_async_ops; /* of those, asynchronous operations  */
    _Atomic uint32_t owed_sleep; /* of those, blocking waits counted asleep */
    _Atomic bool broken;      /* the file was truncated under us (busguard) */

    _Atomic bool dying;       /* unused for good: being torn down. Written
                                 under the lock; map_get peeks under maps_mu
                                 and open re-checks under the lock        */

    struct wmap *next;        /* this process's mappings with the same
                                 name_hash bucket, under maps_mu         */
    uint32_t name_hash;
    struct whsem_retiree retiree; /* for the hazard-pointer reclaimer      */
};

static inline bool whsem__attached(const struct wmap *m)
{
    return m->attached_pgen == atomic_load_explicit(&whsem__pgen, memory_order_relaxed);
}

extern WHSEM_HIDDEN pthread_mutex_t whsem__maps_mu;

/* Finds or makes this process's mapping of a finalized name (its
 * objects of backend be); max_count 0 and !create: an existing one only. */
WHSEM_HIDDEN whsem_status whsem__map_get(const char *final_name, size_t len, int32_t max_count,
                                         const struct open_opts *o, bool create,
                                         const struct whsem_backend *be, struct wmap **out);
/* Gives this process a slot of m. With require_linked, WHSEM_E_NOT_FOUND
 * if the segment was unlinked meanwhile (open then looks again). */
WHSEM_HIDDEN whsem_status whsem__attach(struct wmap *m, bool require_linked);
WHSEM_HIDDEN bool whsem__replace_if_stale(struct wmap *m);
/* The free-slot hint (layout.h): where a search starts, and how many
 * frees have lowered it. */
static inline uint32_t whsem__hint_index(uint64_t w) { return (uint32_t)w; }
static inline uint32_t whsem__hint_seq(uint64_t w) { return (uint32_t)(w >> 32); }
/* Slot i of h has just been made FREE: lowers the free-slot hint to it.
 * After the slot's FREE store: an attacher that read the hint before this
 * either finds the slot FREE or fails to raise the hint past it. (Inline:
 * recovery frees slots too, and sits below segment.c.) */
static inline void whsem__slot_freed(struct seg_header *h, uint32_t i)
{
    uint64_t w = atomic_load(&h->free_hint), lowered;
    do {
        uint32_t at = whsem__hint_index(w) < i ? whsem__hint_index(w) : i;
        lowered = (uint64_t)(whsem__hint_seq(w) + 1u) << 32 | at;
    } while (!atomic_compare_exchange_weak(&h->free_hint, &w, lowered));
}
WHSEM_HIDDEN void whsem__destroy(struct wmap *m);

WHSEM_HIDDEN whsem_status whsem__ensure_attached(struct wmap *m);
WHSEM_HIDDEN void whsem__maps_remove(struct wmap *m);
WHSEM_HIDDEN bool whsem__mark_dying_locked(struct wmap *m);
WHSEM_HIDDEN void whsem__finish_dying(struct wmap *m);

/* Retires a mapping nobody uses: it is unmapped (whsem__destroy) once no
 * thread's hazard pointer names it (handles.h). */
WHSEM_HIDDEN void whsem__retire_map(struct wmap *m);

#endif
