/*
 * Process-local state of the library: what one process knows about the
 * segments it uses, its handle table, and the segment lock.
 *
 * Lock order (outer first): maps_mu -> a cancel stripe -> segment lock.
 * The segment lock is never held across a blocking wait or a callback.
 */
#ifndef WHSEM_INTERNAL_H
#define WHSEM_INTERNAL_H

#include "api.h"
#include "common.h"
#include "layout.h"
#include "names.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

/* ---- Process identity (fork.c) ------------------------------------------ */

/* Bumped in every child after fork(): tickets and slot attachments carry
 * the generation they were made in, so a child can tell inherited ones. */
extern WHSEM_HIDDEN _Atomic uint64_t whsem__pgen;

struct whsem_self {
    pid_t pid;
    uint64_t start_ticks;
    uint64_t pidns;
};
extern WHSEM_HIDDEN struct whsem_self whsem__self_id;

/* Whether this process is registered for membarrier(GLOBAL_EXPEDITED),
 * which lets segment unlocks be plain stores (seglock.c). */
extern WHSEM_HIDDEN bool whsem__global_membarrier_ok;

WHSEM_HIDDEN void whsem__init(void);
WHSEM_HIDDEN bool whsem__proc_start_ticks(pid_t pid, uint64_t *out);
/* Reads a /proc/.../stat file into buf; returns its fields from the third
 * (the state letter) on, or NULL. */
WHSEM_HIDDEN const char *whsem__proc_stat_fields(const char *path, char *buf, size_t size);

/* ---- One process's view of one segment ------------------------------ */

struct wmap {
    struct seg_header *hdr;
    struct seg_slot *slots;
    _Atomic int fd;           /* the description the segment was mapped
                                 through; it holds no lock. For fstat and
                                 asking about others' liveness bytes, after
                                 checking its identity: the application may
                                 have closed it (closefrom) and reused the
                                 number (see whsem__query_fd)             */
    void *anchor;             /* one page mapped through the description that
                                 holds our slot's liveness lock (see
                                 recovery.c); NULL until attached          */
    uint32_t slot;            /* our slot, valid when attached_pgen == pgen */
    uint32_t owner_id;        /* slot + 1: our value in hdr->lock           */
    uint64_t attached_pgen;
    int32_t max_count;        /* copy of the immutable header field         */
    dev_t dev;
    ino_t ino;
    size_t name_len;
    char name[WHSEM_MAX_NAME_BYTES + 1];
    char path[sizeof(WHSEM_SHM_DIR) + 256];

    /* Under the segment lock when attached (maps_mu otherwise): */
    int handles;              /* open whsem_sem handles on this mapping     */
    int async_ops;            /* pending asynchronous operations            */

    /* Under the engine lock (async.c): */
    struct op *aq_head, *aq_tail; /* pending operations, oldest first        */
    struct wmap *active_next; /* in the engine's list of mappings with ops  */
    _Atomic bool active;      /* in that list (written under the engine lock
                                 and, when leaving it, the segment lock):
                                 nobody else may retire the mapping         */
    bool has_expired;         /* one of them reached its deadline           */
    int32_t async_check_ms;   /* shortest abandonment check of those ops    */

    /* Waits that ended while the segment lock could not be had (its holder
     * stopped): their `want` is still counted in our slot, which also keeps
     * the mapping alive. The dispatcher pays it back (whsem__settle_locked)
     * as soon as it gets the lock; only it does, so that it can decide,
     * under that lock, whether the mapping it holds is unused now. */
    _Atomic uint32_t owed_want;
    _Atomic uint32_t owed_async_ops; /* of those, asynchronous operations  */
    _Atomic bool broken;      /* the file was truncated under us (busguard) */

    _Atomic bool dying;       /* unused for good: being torn down. Written
                                 under the lock; map_get peeks under maps_mu
                                 and open re-checks under the lock        */

    struct wmap *next;        /* maps list, under maps_mu                   */
    struct wmap *retired_next;
};

static inline bool whsem__attached(const struct wmap *m)
{
    return m->attached_pgen == atomic_load_explicit(&whsem__pgen, memory_order_relaxed);
}

/* ---- Handle table (handles.c) --------------------------------------- */

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
    uint64_t reserved;
};

#define WHSEM_HKIND_BITS 4
#define WHSEM_HINDEX_BITS 24
#define WHSEM_HMAX_ENTRIES (1u << WHSEM_HINDEX_BITS)

WHSEM_HIDDEN struct hentry *whsem__h_entry(uint64_t h);

/* The live entry of handle h if it has the given kind, else NULL. */
static inline struct hentry *whsem__h_lookup(uint64_t h, enum hkind kind)
{
    if (WHSEM_UNLIKELY((h & 0xf) != (uint64_t)kind)) return NULL;
    struct hentry *e = whsem__h_entry(h);
    if (WHSEM_UNLIKELY(!e || atomic_load_explicit(&e->tag, memory_order_acquire) != h)) return NULL;
    return e;
}

/* Allocates an entry; returns its handle (ptr/aux set before it is live)
 * or 0 with the thread's message set and *st the status. */
WHSEM_HIDDEN uint64_t whsem__h_alloc(enum hkind kind, void *ptr, uint64_t aux, whsem_status *st);
/* Reserves an entry for a handle published later with whsem__h_publish. */
WHSEM_HIDDEN uint64_t whsem__h_reserve(enum hkind kind, whsem_status *st);
WHSEM_HIDDEN void whsem__h_publish(uint64_t h, void *ptr, uint64_t aux);
/* Returns a reserved, never-published handle's entry. */
WHSEM_HIDDEN void whsem__h_unreserve(uint64_t h);
/* Ends a live handle: its tag moves to the next generation (plain store:
 * the caller excludes every other writer of this entry). */
WHSEM_HIDDEN void whsem__h_kill(struct hentry *e, uint64_t h);
/* Ends a live handle unless another thread ends it first. */
WHSEM_HIDDEN bool whsem__h_kill_cas(struct hentry *e, uint64_t h);
/* Puts a dead entry back on the free list. */
WHSEM_HIDDEN void whsem__h_recycle(uint64_t h);

/* ---- Threads and hazard pointers (handles.c) -------------------------- */

/*
 * A mapping may be unmapped while another thread is about to use it
 * through a handle it just read. Each thread publishes the mapping it uses
 * in its hazard slot; a mapping is unmapped only once no hazard names it.
 * The reader side costs a plain store: the reclaimer pays with a
 * process-wide membarrier() instead (asymmetric fence), or, where the
 * kernel lacks it, readers fall back to a full fence.
 */
WHSEM_HIDDEN struct wmap *whsem__protect(struct hentry *e, uint64_t h, void **saved);
WHSEM_HIDDEN void whsem__unprotect(void *saved);
WHSEM_HIDDEN void whsem__retire(struct wmap *m);
WHSEM_HIDDEN void whsem__reclaim(void);
WHSEM_HIDDEN void whsem__threads_lock_all(void);
WHSEM_HIDDEN void whsem__threads_unlock_all(void);
WHSEM_HIDDEN void whsem__threads_after_fork_child(void);

/* ---- Maps registry and segment files (segment.c) -------------------- */

extern WHSEM_HIDDEN pthread_mutex_t whsem__maps_mu;
extern WHSEM_HIDDEN struct wmap *whsem__maps;

WHSEM_HIDDEN whsem_status whsem__map_get(const char *final_name, size_t len, int32_t max_count,
                                         const struct open_opts *o, bool create,
                                         struct wmap **out);
/* Gives this process a slot of m. With require_linked, WHSEM_E_NOT_FOUND
 * if the segment was unlinked meanwhile (open then looks again). */
WHSEM_HIDDEN whsem_status whsem__attach(struct wmap *m, bool require_linked);
WHSEM_HIDDEN bool whsem__replace_if_stale(struct wmap *m);
WHSEM_HIDDEN void whsem__destroy(struct wmap *m);
WHSEM_HIDDEN void whsem__maps_after_fork_child(void);

/* ---- Mapping lifetime and small helpers (semaphore.c) ------------------ */

WHSEM_HIDDEN whsem_status whsem__ensure_attached(struct wmap *m);
WHSEM_HIDDEN void whsem__maps_remove(struct wmap *m);
WHSEM_HIDDEN bool whsem__mark_dying_locked(struct wmap *m);
WHSEM_HIDDEN void whsem__finish_dying(struct wmap *m);

/* ---- Segment lock and recovery (seglock.c, recovery.c) --------------- */

/* How long calls without a timeout of their own wait for a segment lock
 * whose owner is alive but does not let go (stopped, or a forged word):
 * try-acquire, open, query. Timed calls use their own deadline. */
#define WHSEM_TRY_LOCK_NS 5000000u      /* acquire with timeout 0     */
#define WHSEM_OPEN_LOCK_NS 1000000000u  /* open, query, unlink: E_BUSY */

/* deadline_ns: CLOCK_MONOTONIC, 0 = wait as long as it takes (release and
 * close, which must not fail to give a ticket back). Returns WHSEM_OK,
 * WHSEM_TIMEOUT (message names the owner and its state) or
 * WHSEM_E_CORRUPT (after a takeover's recount). */
WHSEM_HIDDEN whsem_status whsem__lock_slow(struct wmap *m, uint64_t deadline_ns);
WHSEM_HIDDEN whsem_status whsem__lock_slow_within(struct wmap *m, uint64_t budget_ns);
/* Under the lock, by the dispatcher: pays m's owed_want back. */
WHSEM_HIDDEN void whsem__settle_locked(struct wmap *m);
/* For calls without a timeout of their own: the timeout of a lock that was
 * not let go becomes WHSEM_E_BUSY, keeping its message. */
WHSEM_HIDDEN whsem_status whsem__busy_from_timeout(void);

static inline bool whsem__try_lock(struct wmap *m)
{
    uint32_t zero = 0;
    return atomic_compare_exchange_strong_explicit(&m->hdr->lock, &zero, m->owner_id,
                                                   memory_order_acquire, memory_order_relaxed);
}

/* Takes the segment lock. A lock found owned by a dead process is taken
 * over and the state recounted, which may reveal WHSEM_E_CORRUPT (then the
 * lock is not held). Waits as long as a live owner keeps it. */
static inline whsem_status whsem__lock(struct wmap *m)
{
    if (WHSEM_LIKELY(whsem__try_lock(m))) return WHSEM_OK;
    return whsem__lock_slow(m, 0);
}

/* The same, giving up with WHSEM_TIMEOUT at deadline_ns (never 0). */
static inline whsem_status whsem__lock_until(struct wmap *m, uint64_t deadline_ns)
{
    if (WHSEM_LIKELY(whsem__try_lock(m))) return WHSEM_OK;
    return whsem__lock_slow(m, deadline_ns);
}

/* The same, giving up after budget_ns (read the clock only if it must wait). */
static inline whsem_status whsem__lock_within(struct wmap *m, uint64_t budget_ns)
{
    if (WHSEM_LIKELY(whsem__try_lock(m))) return WHSEM_OK;
    return whsem__lock_slow_within(m, budget_ns);
}

static inline void whsem__unlock(struct wmap *m)
{
    struct seg_header *h = m->hdr;
    if (WHSEM_LIKELY(atomic_load_explicit(&h->lock_mode, memory_order_relaxed) == 0)) {
        /* A plain store, no fence before the load below: whoever goes to
         * sleep on the lock counts itself and then issues membarrier(),
         * which either orders our load after its count or our store before
         * its next look at the lock (see seglock.c). */
        atomic_store_explicit(&h->lock, 0, memory_order_release);
        atomic_signal_fence(memory_order_seq_cst);
    } else {
        atomic_exchange_explicit(&h->lock, 0, memory_order_seq_cst);
    }
    if (WHSEM_UNLIKELY(atomic_load_explicit(&h->lock_sleepers, memory_order_relaxed) != 0))
        whsem__futex_wake(&h->lock, 1);
}

/* Whether slot i's owner may still use what the slot holds. With
 * process_only, whether the owner process itself runs: what decides a
 * takeover of the segment lock, which a descriptor handed to another
 * process must not keep (SLOT_F_INHERITED). Doubt answers "alive". */
WHSEM_HIDDEN bool whsem__slot_alive(struct wmap *m, uint32_t i, bool process_only);
/* The read-only descriptor m->fd, reopened if the application closed it
 * (its number may now name another file); -1 if the file cannot be found. */
WHSEM_HIDDEN int whsem__query_fd(struct wmap *m);
/* A time read from shared memory, bounded by our own clock: a process in
 * another time namespace (or a hostile writer) may have written any value,
 * and a value from "the future" must not make anyone wait for it. */
static inline uint64_t whsem__shared_time(uint64_t t, uint64_t now)
{
    return t > now ? now : t;
}
/* Under the lock: drops a dead slot's share of hdr->lock_sleepers. */
WHSEM_HIDDEN void whsem__forget_lock_sleeping(struct seg_header *h, struct seg_slot *s);

/* WHSEM_E_CORRUPT if m's file was truncated under us: its mapping is then
 * private zeroes (busguard.c), which must never be taken for the state. */
WHSEM_HIDDEN whsem_status whsem__broken_status(struct wmap *m);
static inline bool whsem__is_broken(struct wmap *m)
{
    return WHSEM_UNLIKELY(atomic_load_explicit(&m->broken, memory_order_relaxed));
}

/* Counts a ticket taken from the pool in slot s. Reading even the coarse
 * clock would cost a quarter of the fast path, so a process that starts
 * holding is stamped 0 ("not yet seen") and the next scan under the lock
 * writes the time (see whsem__scan_locked). */
static inline void whsem__take(struct seg_slot *s)
{
    if (WHSEM_UNLIKELY(s->held == 0 && s->grants == 0)) s->since_unix_ms = 0;
    s->held++;
}

/* Under the lock: one more acquisition of slot s waits. */
static inline void whsem__want_more(struct seg_header *h, struct seg_slot *s, uint64_t now)
{
    if (s->want++ == 0) s->wait_since_ns = now;
    h->waiting++;
}

/* Under the lock: one acquisition of slot s stops waiting. A process that
 * got a ticket has been served: its remaining waits age from now. */
static inline void whsem__want_less(struct seg_header *h, struct seg_slot *s, bool got, uint64_t now)
{
    h->waiting--;
    if (--s->want == 0) s->wait_since_ns = 0;
    else if (got) s->wait_since_ns = now;
}

/* Under the lock: takes a ticket already granted to slot s. */
static inline bool whsem__take_grant(struct seg_slot *s)
{
    if (s->grants == 0) return false;
    s->grants--;
    s->held++;
    return true;
}

static inline bool whsem__scan_due(struct wmap *m, int32_t check_ms, uint64_t now)
{
    /* A last scan "later than now" was stamped by a clock ahead of ours
     * (another time namespace): it says nothing, so scan. */
    uint64_t last = m->hdr->last_scan_ns;
    return check_ms >= 0 && (last > now || now - last >= (uint64_t)check_ms * 1000000u);
}

/* When the next abandonment scan falls due, on our clock. */
static inline uint64_t whsem__next_scan(struct wmap *m, int32_t check_ms, uint64_t now)
{
    return whsem__shared_time(m->hdr->last_scan_ns, now) + (uint64_t)check_ms * 1000000u;
}

/* Under the lock: looks for dead processes (all attached slots when full,
 * else those holding or wanting tickets), reclaims their tickets and hands
 * free tickets to waiting processes. */
WHSEM_HIDDEN whsem_status whsem__scan_locked(struct wmap *m, bool full);
/* Under the lock: whether the counts are consistent (WHSEM_E_CORRUPT if
 * not); a garbled segment must never admit more than max_count. */
WHSEM_HIDDEN whsem_status whsem__check_locked(struct wmap *m);
/* Under the lock: recomputes free and waiting from the slots. */
WHSEM_HIDDEN whsem_status whsem__recount_locked(struct wmap *m);
/* Under the lock: hands free tickets to processes with unmet demand. */
WHSEM_HIDDEN void whsem__distribute_locked(struct wmap *m);
/* Under the lock: a released ticket with processes waiting. It goes back
 * to the pool and one waiting process is woken to compete for it, unless
 * that process has waited longer than WHSEM_FAIR_NS: then the ticket is
 * granted to it outright. Returns the slot to wake, or -1. */
WHSEM_HIDDEN int32_t whsem__give_back_locked(struct wmap *m);

static inline void whsem__wake_slot(struct seg_slot *s, int count)
{
    atomic_fetch_add_explicit(&s->wake_seq, 1, memory_order_release);
    whsem__futex_wake(&s->wake_seq, count);
}

/* ---- Asynchronous engine (async.c) -------------------------------------- */

/* Tells the dispatcher that pending operations may have ended early (a
 * semaphore handle was closed). */
WHSEM_HIDDEN void whsem__async_poke(void);
/* Makes the dispatcher pay m's debts (owed_want) once the lock is free. */
WHSEM_HIDDEN void whsem__async_collect_debt(struct wmap *m);
WHSEM_HIDDEN void whsem__async_lock_all(void);
WHSEM_HIDDEN void whsem__async_unlock_all(void);
WHSEM_HIDDEN void whsem__async_after_fork_child(void);

/* ---- Cancellation (cancel.c) ------------------------------------------ */

/* A wait registered with a cancellation source: notify() runs (under the
 * source's stripe lock) when it is triggered. */
struct cwait {
    struct cwait *prev, *next;
    struct cancel_obj *obj;
    unsigned stripe;
    void (*notify)(struct cwait *w);
    void *ctx;
};

WHSEM_HIDDEN whsem_status whsem__cancel_register(whsem_cancel c, struct cwait *w);
WHSEM_HIDDEN void whsem__cancel_unregister(struct cwait *w);
WHSEM_HIDDEN bool whsem__cancel_triggered(struct cwait *w);
WHSEM_HIDDEN void whsem__cancel_after_fork_child(void);
WHSEM_HIDDEN void whsem__cancel_lock_all(void);
WHSEM_HIDDEN void whsem__cancel_unlock_all(void);

#endif
