/* SPDX-License-Identifier: MIT */
/*
 * The process-wide handle table, per-thread records and hazard pointers,
 * on both platforms (the primitives are platform.h's mutex and
 * handles_os.h's thread slot and fences).
 *
 * Handles are integers so that a foreign caller's mistake (zero, stale,
 * double release, wrong kind) is a status, not a crash. Entries live in
 * chunks that are never freed; a handle is valid while its entry's tag
 * equals it. Each thread keeps a small cache of free entries so that the
 * acquire/release fast path allocates and frees without atomics.
 */
#include "handles.h"
#include "fork_hooks.h"
#include "platform.h"

#include <stdlib.h>

#define CHUNK_BITS WHSEM_CHUNK_BITS
#define CHUNK_SIZE WHSEM_CHUNK_SIZE
#define TCACHE WHSEM_TCACHE
#define GEN_SHIFT WHSEM_GEN_SHIFT

_Atomic(struct hentry *) whsem__chunks[WHSEM_NCHUNKS];
#define chunks whsem__chunks
static whsem_mutex table_mu = WHSEM_MUTEX_INIT;
static uint32_t *global_free;    /* indices of free entries, under table_mu */
static size_t global_free_n, global_free_cap;
static uint32_t next_fresh;      /* entries [next_fresh, ...) never used    */

static _Atomic(struct whsem_thread *) threads;

static whsem_mutex retire_mu = WHSEM_MUTEX_INIT;
static struct whsem_retiree *retired;
_Atomic int whsem__retired_n;
#define retired_n whsem__retired_n

static void flush_cache_locked(struct whsem_thread *t, uint32_t keep)
{
    while (t->ncache > keep) {
        if (global_free_n == global_free_cap) {
            size_t cap = global_free_cap ? 2 * global_free_cap : 1024;
            uint32_t *p = realloc(global_free, cap * sizeof *p);
            if (!p) break; /* the entries stay in the thread cache */
            global_free = p;
            global_free_cap = cap;
        }
        global_free[global_free_n++] = t->cache[--t->ncache];
    }
}

static void flush_cache(struct whsem_thread *t, uint32_t keep)
{
    whsem__mutex_lock(&table_mu);
    flush_cache_locked(t, keep);
    whsem__mutex_unlock(&table_mu);
}

void whsem__h_thread_exit(struct whsem_thread *t)
{
    /* Never waits: Windows may run this while the process exits, after
     * other threads were stopped wherever they were. Entries left in the
     * cache go to whichever thread reuses the record. */
    if (whsem__mutex_trylock(&table_mu)) {
        flush_cache_locked(t, 0);
        whsem__mutex_unlock(&table_mu);
    }
    atomic_store_explicit(&t->hazard, NULL, memory_order_release);
    atomic_store_explicit(&t->active, 0, memory_order_release);
}

struct whsem_thread *whsem__self_slow(void)
{
    whsem__p_threads_init(whsem__h_thread_exit);
    struct whsem_thread *t;
    /* Reuse the record of a thread that has exited. */
    for (t = atomic_load(&threads); t; t = t->next) {
        int zero = 0;
        if (atomic_compare_exchange_strong(&t->active, &zero, 1)) break;
    }
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t) return NULL;
        atomic_store(&t->active, 1);
        struct whsem_thread *head = atomic_load(&threads);
        do t->next = head;
        while (!atomic_compare_exchange_weak(&threads, &head, t));
    }
    if (!whsem__p_thread_set(t)) {
        /* Nothing would give the record back when the thread exits. */
        atomic_store(&t->active, 0);
        return NULL;
    }
    return t;
}

#define self whsem__self

/* Moves up to TCACHE/2 free entries into the thread's cache, creating a
 * chunk when none is free. */
whsem_status whsem__h_refill(struct whsem_thread *t)
{
    whsem_status st = WHSEM_OK;
    whsem__mutex_lock(&table_mu);
    while (t->ncache < TCACHE / 2 && global_free_n > 0)
        t->cache[t->ncache++] = global_free[--global_free_n];
    if (t->ncache == 0) {
        if (next_fresh >= WHSEM_HMAX_ENTRIES) {
            st = whsem__fail(WHSEM_E_LIMIT, "this process has %u live handles, the most there can be",
                             WHSEM_HMAX_ENTRIES - 1);
        } else {
            uint32_t ci = next_fresh >> CHUNK_BITS;
            struct hentry *c = atomic_load(&chunks[ci]);
            if (!c) {
                c = calloc(CHUNK_SIZE, sizeof *c);
                if (!c) {
                    st = whsem__fail(WHSEM_E_NO_MEMORY, "out of memory growing the handle table");
                    goto out;
                }
                for (uint32_t i = 0; i < CHUNK_SIZE; i++) {
                    uint64_t idx = ((uint64_t)ci << CHUNK_BITS) | i;
                    atomic_init(&c[i].tag, (1ull << GEN_SHIFT) | (idx << WHSEM_HKIND_BITS));
                }
                atomic_store_explicit(&chunks[ci], c, memory_order_release);
            }
            /* Index 0 of chunk 0 is skipped: no handle ever has index 0,
             * which keeps small integers from ever looking valid. */
            if (next_fresh == 0) next_fresh = 1;
            while (t->ncache < TCACHE / 2 && next_fresh < WHSEM_HMAX_ENTRIES &&
                   (next_fresh >> CHUNK_BITS) == ci)
                t->cache[t->ncache++] = next_fresh++;
        }
    }
out:
    whsem__mutex_unlock(&table_mu);
    return st;
}

void whsem__h_flush(struct whsem_thread *t) { flush_cache(t, TCACHE / 2); }

/* Out-of-line forms of the inline hot path, for everything but it. */

uint64_t whsem__h_reserve(enum hkind kind, whsem_status *st)
{
    struct whsem_thread *t = self();
    if (WHSEM_UNLIKELY(!t)) {
        *st = whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for the thread record");
        return 0;
    }
    struct hentry *e;
    return whsem__h_reserve_t(t, kind, st, &e);
}

void whsem__h_publish(uint64_t h, void *ptr, uint64_t aux)
{
    whsem__h_publish_e(whsem__h_entry(h), h, ptr, aux);
}

uint64_t whsem__h_alloc(enum hkind kind, void *ptr, uint64_t aux, whsem_status *st)
{
    uint64_t h = whsem__h_reserve(kind, st);
    if (h) whsem__h_publish(h, ptr, aux);
    return h;
}

bool whsem__h_kill_cas(struct hentry *e, uint64_t h)
{
    uint64_t expected = h;
    return atomic_compare_exchange_strong_explicit(&e->tag, &expected, whsem__h_next_gen_tag(h),
                                                   memory_order_acq_rel, memory_order_relaxed);
}

void whsem__h_recycle(uint64_t h)
{
    struct whsem_thread *t = self();
    if (WHSEM_LIKELY(t != NULL)) whsem__h_recycle_t(t, h); /* else leak one entry */
}

void whsem__h_unreserve(uint64_t h) { whsem__h_recycle(h); }

bool whsem__h_kill(uint64_t h)
{
    struct hentry *e = whsem__h_entry(h);
    if (!e || (h & 0xf) == HK_FREE || !whsem__h_kill_cas(e, h)) return false;
    whsem__h_recycle(h);
    return true;
}

struct wmap *whsem__protect(struct hentry *e, uint64_t h, void **saved)
{
    struct whsem_thread *t = self();
    if (WHSEM_UNLIKELY(!t)) {
        whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for the thread record");
        return NULL;
    }
    return whsem__protect_t(t, e, h, saved);
}

void whsem__unprotect(void *saved) { whsem__unprotect_t(whsem__p_thread(), saved); }

void whsem__retire(struct whsem_retiree *r)
{
    whsem__mutex_lock(&retire_mu);
    r->next = retired;
    retired = r;
    atomic_fetch_add(&retired_n, 1);
    whsem__mutex_unlock(&retire_mu);
    whsem__reclaim();
}

void whsem__reclaim(void)
{
    if (!whsem__mutex_trylock(&retire_mu)) return; /* someone else is at it */
    struct whsem_retiree *done = NULL;
    if (retired) {
        whsem__p_heavy_fence();
        struct whsem_retiree **pp = &retired;
        while (*pp) {
            struct whsem_retiree *r = *pp;
            bool busy = false;
            for (struct whsem_thread *t = atomic_load(&threads); t && !busy; t = t->next)
                busy = atomic_load_explicit(&t->hazard, memory_order_acquire) == r->obj;
            if (busy) {
                pp = &r->next;
            } else {
                *pp = r->next;
                r->next = done;
                done = r;
                atomic_fetch_sub(&retired_n, 1);
            }
        }
    }
    whsem__mutex_unlock(&retire_mu);
    while (done) {
        struct whsem_retiree *r = done;
        done = r->next;
        r->destroy(r->obj);
    }
}

static void threads_lock_all(void)
{
    whsem__mutex_lock(&table_mu);
    whsem__mutex_lock(&retire_mu);
}

static void threads_unlock_all(void)
{
    whsem__mutex_unlock(&retire_mu);
    whsem__mutex_unlock(&table_mu);
}

/* In the child after fork() only the forking thread exists: the other
 * records are released (their cached entries returned), and the kernel's
 * membarrier registration, which belongs to the old mm, is renewed. */
static void threads_after_fork_child(void)
{
    for (struct whsem_thread *t = atomic_load(&threads); t; t = t->next) {
        if (t == whsem__p_thread()) continue;
        if (atomic_load(&t->active)) {
            flush_cache_locked(t, 0); /* table_mu is held across fork */
            atomic_store(&t->hazard, NULL);
            atomic_store(&t->active, 0);
        }
    }
    whsem__p_threads_after_fork();
    threads_unlock_all();
}

static const struct whsem_fork_hooks fork_hooks = {
    WHSEM_FORK_ORDER_THREADS, threads_lock_all, threads_unlock_all, threads_after_fork_child};

__attribute__((constructor)) static void register_fork_hooks(void) { whsem__on_fork(&fork_hooks); }
