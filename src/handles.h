/* SPDX-License-Identifier: MIT */
/*
 * The handle table and the hazard pointers that protect mappings reached
 * through handles (handles.c), on both platforms. The hot half is inline:
 * every acquire/release goes through these, and a call across files (or a
 * second TLS lookup) costs as much as the rest of Linux's fast path.
 * handles.c has the slow halves and the design notes; what differs per
 * platform (where a thread's record lives, how it learns of a thread's
 * exit, the fences) is in linux/handles_os.h and win32/handles_os.h.
 */
#ifndef WHSEM_HANDLES_H
#define WHSEM_HANDLES_H

#include "common.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct wmap;

enum hkind { HK_FREE = 0, HK_SEM = 1, HK_TICKET = 2, HK_OP = 3, HK_CANCEL = 4, HK_QUEUE = 5 };

/*
 * A handle is gen:36 | index:24 | kind:4. An entry's tag equals the handle
 * while the entry is live; freeing stores the next generation with kind 0.
 * Entries are never freed, so reading a stale handle's entry is always
 * safe; only the tag comparison decides whether it is still valid.
 */
struct hentry {
    _Atomic uint64_t tag;
    _Atomic(void *) ptr;      /* sem/ticket: struct wmap; cancel/op: object */
    _Atomic uint64_t aux;     /* sem: abandonment check ms; ticket: pgen;
                                 cancel: 1 once triggered                   */
    uint64_t since;           /* ticket: its hold's stamp (counters.h), 0
                                 if untimed and between tickets; written
                                 before the handle is handed out          */
};

#define WHSEM_HKIND_BITS 4
#define WHSEM_HINDEX_BITS 24
#define WHSEM_HMAX_ENTRIES (1u << WHSEM_HINDEX_BITS)

/* Allocates an entry; returns its handle (ptr/aux set before it is live)
 * or 0 with the thread's message set and *st the status. */
WHSEM_HIDDEN uint64_t whsem__h_alloc(enum hkind kind, void *ptr, uint64_t aux, whsem_status *st);
/* Reserves an entry for a handle published later with whsem__h_publish. */
WHSEM_HIDDEN uint64_t whsem__h_reserve(enum hkind kind, whsem_status *st);
WHSEM_HIDDEN void whsem__h_publish(uint64_t h, void *ptr, uint64_t aux);
/* Returns a reserved, never-published handle's entry. */
WHSEM_HIDDEN void whsem__h_unreserve(uint64_t h);
/* Ends a live handle unless another thread ends it first. The entry
 * stays the caller's until whsem__h_recycle: what it read from the entry
 * (ptr, aux) is still h's. */
WHSEM_HIDDEN bool whsem__h_kill_cas(struct hentry *e, uint64_t h);
/* Puts a dead entry back on the free list. */
WHSEM_HIDDEN void whsem__h_recycle(uint64_t h);
/* Both at once, for a caller that has read all it needs of the entry:
 * false if h was not live (or another thread ended it first). */
WHSEM_HIDDEN bool whsem__h_kill(uint64_t h);

/*
 * A mapping may be unmapped while another thread is about to use it
 * through a handle it just read. Each thread publishes the mapping it uses
 * in its hazard slot; a mapping is unmapped only once no hazard names it.
 * On Linux the reader side costs a plain store: the reclaimer pays with a
 * process-wide membarrier() instead (asymmetric fence), or, where the
 * kernel lacks it, readers fall back to a full fence (handles_os.h).
 */
WHSEM_HIDDEN struct wmap *whsem__protect(struct hentry *e, uint64_t h, void **saved);
WHSEM_HIDDEN void whsem__unprotect(void *saved);
/* An object that threads may still be using through their hazard
 * pointers: once retired, it is destroyed when no hazard names it. The
 * table knows nothing of mappings but this. */
struct whsem_retiree {
    struct whsem_retiree *next;
    void *obj;                  /* what the hazard pointers name */
    void (*destroy)(void *obj);
};
WHSEM_HIDDEN void whsem__retire(struct whsem_retiree *r);
WHSEM_HIDDEN void whsem__reclaim(void);

#define WHSEM_CHUNK_BITS 12
#define WHSEM_CHUNK_SIZE (1u << WHSEM_CHUNK_BITS)
#define WHSEM_NCHUNKS (WHSEM_HMAX_ENTRIES / WHSEM_CHUNK_SIZE)
#define WHSEM_TCACHE 64
#define WHSEM_GEN_SHIFT (WHSEM_HKIND_BITS + WHSEM_HINDEX_BITS)

struct whsem_thread {
    _Atomic(void *) hazard;      /* the mapping this thread is using, or NULL */
    _Atomic int active;          /* record in use by a live thread            */
    struct whsem_thread *next;   /* immutable once linked                     */
    uint32_t ncache;             /* free entry indices cached by this thread  */
    uint32_t cache[WHSEM_TCACHE];
};

/* The platform's primitives: where this thread's record is, the fences
 * (whsem__p_thread, whsem__p_hazard_fence, ...; see ../platform.h). */
#ifdef _WIN32
#include "win32/handles_os.h"
#else
#include "linux/handles_os.h"
#endif

/* Hidden, so that the fast path reaches them PC-relative, not via the GOT. */
extern WHSEM_HIDDEN _Atomic(struct hentry *) whsem__chunks[WHSEM_NCHUNKS];
extern WHSEM_HIDDEN _Atomic int whsem__retired_n;

WHSEM_HIDDEN struct whsem_thread *whsem__self_slow(void);
WHSEM_HIDDEN whsem_status whsem__h_refill(struct whsem_thread *t);
WHSEM_HIDDEN void whsem__h_flush(struct whsem_thread *t);
/* The platform calls this when a thread that has a record exits: its
 * cached entries go back and the record is free for another thread. */
WHSEM_HIDDEN void whsem__h_thread_exit(struct whsem_thread *t);

static inline struct whsem_thread *whsem__self(void)
{
    struct whsem_thread *t = whsem__p_thread();
    return WHSEM_LIKELY(t != NULL) ? t : whsem__self_slow();
}

/* The entry behind h's index, live or not (NULL if never allocated). */
static inline struct hentry *whsem__h_entry(uint64_t h)
{
    uint32_t idx = (uint32_t)(h >> WHSEM_HKIND_BITS) & (WHSEM_HMAX_ENTRIES - 1);
    struct hentry *c =
        atomic_load_explicit(&whsem__chunks[idx >> WHSEM_CHUNK_BITS], memory_order_acquire);
    return WHSEM_LIKELY(c != NULL) ? &c[idx & (WHSEM_CHUNK_SIZE - 1)] : NULL;
}

/* The live entry of handle h if it has the given kind, else NULL. */
static inline struct hentry *whsem__h_lookup(uint64_t h, enum hkind kind)
{
    if (WHSEM_UNLIKELY((h & 0xf) != (uint64_t)kind)) return NULL;
    struct hentry *e = whsem__h_entry(h);
    if (WHSEM_UNLIKELY(!e || atomic_load_explicit(&e->tag, memory_order_acquire) != h)) return NULL;
    return e;
}

static inline uint64_t whsem__h_reserve_t(struct whsem_thread *t, enum hkind kind,
                                          whsem_status *st, struct hentry **out_e)
{
    if (WHSEM_UNLIKELY(t->ncache == 0) && (*st = whsem__h_refill(t)) != WHSEM_OK) return 0;
    uint32_t idx = t->cache[--t->ncache];
    struct hentry *e = whsem__h_entry((uint64_t)idx << WHSEM_HKIND_BITS);
    *out_e = e;
    return atomic_load_explicit(&e->tag, memory_order_relaxed) | (uint64_t)kind;
}

static inline void whsem__h_recycle_t(struct whsem_thread *t, uint64_t h)
{
    if (WHSEM_UNLIKELY(t->ncache == WHSEM_TCACHE)) whsem__h_flush(t);
    t->cache[t->ncache++] = (uint32_t)(h >> WHSEM_HKIND_BITS) & (WHSEM_HMAX_ENTRIES - 1);
}

static inline void whsem__h_publish_e(struct hentry *e, uint64_t h, void *ptr, uint64_t aux)
{
    atomic_store_explicit(&e->ptr, ptr, memory_order_relaxed);
    atomic_store_explicit(&e->aux, aux, memory_order_relaxed);
    atomic_store_explicit(&e->tag, h, memory_order_release);
}

static inline uint64_t whsem__h_next_gen_tag(uint64_t h)
{
    uint64_t gen = (h >> WHSEM_GEN_SHIFT) + 1;
    uint64_t idx_bits = h & (((1ull << WHSEM_HINDEX_BITS) - 1) << WHSEM_HKIND_BITS);
    return (gen << WHSEM_GEN_SHIFT) | idx_bits;
}

/*
 * Publishes e's mapping as this thread's hazard and confirms that handle h
 * still names it. The fence orders the store before the look at the tag
 * against the reclaimer's kill and hazard scan (a Dekker pair): on Linux
 * only a compiler barrier when the reclaimer uses membarrier(), whose
 * system call does the ordering for us (an asymmetric fence).
 */
static inline struct wmap *whsem__protect_t(struct whsem_thread *t, struct hentry *e, uint64_t h,
                                            void **saved)
{
    *saved = atomic_load_explicit(&t->hazard, memory_order_relaxed);
    void *p = atomic_load_explicit(&e->ptr, memory_order_relaxed);
    atomic_store_explicit(&t->hazard, p, memory_order_relaxed);
    whsem__p_hazard_fence();
    if (WHSEM_UNLIKELY(atomic_load_explicit(&e->tag, memory_order_acquire) != h)) {
        atomic_store_explicit(&t->hazard, *saved, memory_order_relaxed);
        return NULL;
    }
    return p;
}

static inline void whsem__unprotect_t(struct whsem_thread *t, void *saved)
{
    atomic_store_explicit(&t->hazard, saved, memory_order_release);
    if (WHSEM_UNLIKELY(atomic_load_explicit(&whsem__retired_n, memory_order_relaxed) != 0) &&
        !saved)
        whsem__reclaim();
}

#endif
