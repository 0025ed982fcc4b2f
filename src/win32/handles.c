/*
 * The process-wide handle table.
 *
 * Handles are integers so that a foreign caller's mistake (zero, stale,
 * double release, wrong kind) is a status, not a crash. Entries live in
 * chunks that are never freed, so looking at a stale handle's entry is
 * always safe; the tag comparison alone decides whether it is live.
 *
 * A semaphore or ticket handle owns one use of its mapping. Looking such a
 * handle up takes another use under the table lock (shared), and ending a
 * handle happens under the same lock (exclusive): so a thread that found
 * the handle live holds its own use of the mapping before the handle can
 * be ended and its use dropped, and the mapping cannot vanish under it.
 * This replaces the Linux library's hazard pointers: simpler, and the
 * interlocked increment costs nothing next to the segment mutex.
 */
#include "win32.h"

#include <stdlib.h>

#define KIND_BITS WHSEM_HKIND_BITS
#define INDEX_BITS 24
#define GEN_SHIFT (KIND_BITS + INDEX_BITS)
#define MAX_ENTRIES (1u << INDEX_BITS)
#define CHUNK_BITS 12
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define NCHUNKS (MAX_ENTRIES / CHUNK_SIZE)

static struct hentry *_Atomic chunks[NCHUNKS];
static SRWLOCK table_mu = SRWLOCK_INIT;
static uint32_t *free_idx; /* free entry indices, under table_mu */
static size_t free_n, free_cap;
static uint32_t next_fresh = 1; /* index 0 is never used: handle 0 stays invalid */

static uint32_t index_of(uint64_t h) { return (uint32_t)(h >> KIND_BITS) & (MAX_ENTRIES - 1); }

struct hentry *whsem__h_entry(uint64_t h)
{
    uint32_t idx = index_of(h);
    struct hentry *c = atomic_load_explicit(&chunks[idx >> CHUNK_BITS], memory_order_acquire);
    return c ? &c[idx & (CHUNK_SIZE - 1)] : NULL;
}

struct hentry *whsem__h_lookup(uint64_t h, enum hkind kind)
{
    if ((h & 0xf) != (uint64_t)kind || kind == HK_FREE) return NULL;
    struct hentry *e = whsem__h_entry(h);
    if (!e || atomic_load_explicit(&e->tag, memory_order_acquire) != h) return NULL;
    return e;
}

static uint64_t next_gen_tag(uint64_t h)
{
    uint64_t gen = (h >> GEN_SHIFT) + 1;
    return (gen << GEN_SHIFT) | (h & ((uint64_t)(MAX_ENTRIES - 1) << KIND_BITS));
}

uint64_t whsem__h_alloc(enum hkind kind, void *ptr, uint64_t aux, whsem_status *st)
{
    AcquireSRWLockExclusive(&table_mu);
    uint32_t idx;
    if (free_n > 0) {
        idx = free_idx[--free_n];
    } else if (next_fresh >= MAX_ENTRIES) {
        ReleaseSRWLockExclusive(&table_mu);
        *st = whsem__fail(WHSEM_E_LIMIT, "this process has %u live handles, the most there can be",
                          MAX_ENTRIES - 1);
        return 0;
    } else {
        /* Room on the free list for every entry ever made, so that freeing
         * never needs memory. */
        if (free_cap < next_fresh + 1) {
            size_t cap = free_cap ? 2 * free_cap : 1024;
            uint32_t *p = realloc(free_idx, cap * sizeof *p);
            if (!p) goto no_memory;
            free_idx = p;
            free_cap = cap;
        }
        idx = next_fresh;
        if (!atomic_load(&chunks[idx >> CHUNK_BITS])) {
            struct hentry *c = calloc(CHUNK_SIZE, sizeof *c);
            if (!c) goto no_memory;
            for (uint32_t i = 0; i < CHUNK_SIZE; i++)
                atomic_store(&c[i].tag, (uint64_t)((idx & ~(CHUNK_SIZE - 1)) + i) << KIND_BITS);
            atomic_store_explicit(&chunks[idx >> CHUNK_BITS], c, memory_order_release);
        }
        next_fresh++;
    }
    struct hentry *e = whsem__h_entry((uint64_t)idx << KIND_BITS);
    uint64_t h = atomic_load(&e->tag) | (uint64_t)kind;
    e->ptr = ptr;
    atomic_store(&e->aux, aux);
    atomic_store_explicit(&e->tag, h, memory_order_release);
    ReleaseSRWLockExclusive(&table_mu);
    return h;
no_memory:
    ReleaseSRWLockExclusive(&table_mu);
    *st = whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for a handle");
    return 0;
}

/* table_mu held exclusively. */
static bool kill_locked(struct hentry *e, uint64_t h)
{
    if (atomic_load(&e->tag) != h) return false;
    atomic_store_explicit(&e->tag, next_gen_tag(h), memory_order_release);
    free_idx[free_n++] = index_of(h);
    return true;
}

bool whsem__h_kill(uint64_t h)
{
    struct hentry *e = whsem__h_entry(h);
    if (!e || (h & 0xf) == HK_FREE) return false;
    AcquireSRWLockExclusive(&table_mu);
    bool ok = kill_locked(e, h);
    ReleaseSRWLockExclusive(&table_mu);
    return ok;
}

struct wmap *whsem__h_use(uint64_t h, enum hkind kind)
{
    struct hentry *e = whsem__h_lookup(h, kind);
    if (!e) return NULL;
    struct wmap *m = NULL;
    AcquireSRWLockShared(&table_mu);
    if (atomic_load(&e->tag) == h) {
        m = e->ptr;
        whsem__use(m);
    }
    ReleaseSRWLockShared(&table_mu);
    return m;
}

struct wmap *whsem__h_kill_take(uint64_t h, enum hkind kind)
{
    struct hentry *e = whsem__h_lookup(h, kind);
    if (!e) return NULL;
    AcquireSRWLockExclusive(&table_mu);
    struct wmap *m = e->ptr;
    bool ok = kill_locked(e, h);
    ReleaseSRWLockExclusive(&table_mu);
    return ok ? m : NULL;
}
