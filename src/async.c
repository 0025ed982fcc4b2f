/*
 * Asynchronous acquisition: operations, the dispatcher, callback threads
 * and completion queues.
 *
 * An operation waits exactly like a blocking acquire does, except that
 * nobody sleeps on its behalf: it counts in its process's slot `want`, and
 * one dispatcher thread per process sleeps (futex_waitv) on the wake words
 * of every semaphore that has operations pending, plus a private word that
 * local events poke (new operation, cancel, close, free). When it wakes it
 * takes, under the segment lock, the grants its process received and gives
 * them to pending operations oldest first, then ends the operations that
 * were canceled, closed or timed out, and gives back any grant nobody can
 * use. Granting and cancelling are decided in that one place, under that
 * one lock, so a ticket is either delivered or returned: never lost.
 *
 * Threads: the dispatcher, and callback threads (one; another is started
 * when callbacks have made no progress for a while, up to a cap). The
 * count depends on neither the number of operations nor of semaphores.
 *
 * Operation and queue objects are type-stable: they are recycled through
 * pools and never returned to malloc, so a stale handle can always be
 * looked at; each object records its live handle, and every use checks it
 * under the object's mutex.
 *
 * Lock order: maps_mu -> engine lock -> segment lock -> op/queue mutex.
 */
#include "handles.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX_32
#define FUTEX_32 2
#endif

struct futex_waitv_arg {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

#define MAX_WAITV 128          /* the kernel's limit */
#define POLL_FALLBACK_NS 10000000u /* without futex_waitv, or past its limit */
#define STALL_NS 50000000u     /* callbacks stuck this long: add a thread  */
#define MAX_CALLBACK_THREADS 16
#define IDLE_EXIT_NS 2000000000u
/* The dispatcher serves every semaphore of the process: it waits this long
 * at most for one segment lock, and tries again this much later, so that a
 * stopped process on one name delays nobody on another. */
#define DISPATCH_LOCK_NS 1000000u
#define DISPATCH_RETRY_NS 5000000u
/* As long as a thread's message (errors.c), so that none is cut short. */
#define DETAIL_BYTES 512

struct queue_obj;

struct op {
    pthread_mutex_t mu;      /* guards everything below but the engine's part */
    uint64_t h;              /* the live handle, 0 once freed                  */
    _Atomic int32_t status;  /* WHSEM_PENDING or final                         */
    _Atomic uint32_t done;   /* futex for whsem_op_wait: 1 once final          */
    uint64_t ticket;         /* the acquired ticket until taken                */
    bool taken;
    bool freed;              /* the user freed it; the engine may still hold it */
    int refs;                /* the user's handle + the engine's                */
    whsem_callback cb;
    void *user_data;
    uint64_t cb_handle;      /* what the callback is told, even once freed      */
    struct queue_obj *q;     /* where to post, or NULL (holds a queue ref)      */
    uint64_t tag;
    uint64_t pgen;

    /* The engine's part, under the engine lock while pending: */
    struct wmap *m;
    whsem_sem sem;
    struct hentry *sem_e;
    uint64_t deadline;       /* CLOCK_MONOTONIC ns, 0 = none                   */
    _Atomic bool cancel_req;
    bool expired;            /* its deadline passed (set by the dispatcher)    */
    bool counted;            /* its want is counted in the slot (it may not be
                                yet if the segment lock was not to be had)   */
    whsem_cancel cancel;
    struct cwait cw;
    struct op *prev, *next;  /* in the mapping's pending list                  */
    uint32_t heap_pos;       /* 1-based position in the deadline heap, 0 = none */
    int32_t final;           /* status decided by the dispatcher               */
    struct op *link;         /* pool, completion batch or callback queue       */

    /* Why it ended, when the status alone does not say (NULL or ""
     * otherwise). The thread that ends it (the dispatcher, or the caller of
     * whsem_acquire_async) has the message, but the owner asks later and
     * from another thread: whsem_op_poll, whsem_op_wait and
     * whsem_op_take_ticket hand it on. Written only while the operation is
     * pending, by whoever ends it, before the final status is published;
     * read under mu once final. Allocated on first need and kept with the
     * object: few operations end with a message, and a buffer in every
     * one would more than double the memory of a pending operation. */
    char *detail;
};

struct queue_obj {
    pthread_mutex_t mu;
    uint64_t h;              /* the live handle, 0 once freed */
    int efd;
    bool readable;           /* efd holds a count (mirrors "entries present") */
    bool freed;
    int refs;                /* the user's handle + pending operations */
    struct qent {
        uint64_t op, tag;
    } *ring;
    size_t head, n, cap;
    struct queue_obj *link;
};

static struct {
    pthread_mutex_t mu;          /* the engine lock */
    _Atomic uint32_t ctl;        /* private futex: local events for the dispatcher */
    _Atomic uint32_t endings;    /* bumped by anything that may end operations
                                    early: the dispatcher then looks at them all */
    uint32_t swept_endings;      /* the value its last full look saw */
    struct wmap *active;         /* mappings with pending operations */
    struct op **heap;            /* pending operations with deadlines */
    size_t heap_n, heap_cap;
    bool dispatcher_running;
    bool no_waitv;               /* the kernel lacks futex_waitv */

    pthread_mutex_t cb_mu;
    pthread_cond_t cb_cv;
    struct op *cb_head, *cb_tail;
    int cb_threads, cb_idle;
    struct {
        pid_t tid;               /* a callback thread inside a callback, or 0 */
        uint64_t since_ns;
    } cb_in[MAX_CALLBACK_THREADS];

    pthread_mutex_t pool_mu;
    struct op *op_pool;
    struct queue_obj *q_pool;
} eng = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cb_mu = PTHREAD_MUTEX_INITIALIZER,
    .cb_cv = PTHREAD_COND_INITIALIZER,
    .pool_mu = PTHREAD_MUTEX_INITIALIZER,
};

/* Futexes in this process's own memory (operation and engine words). */
static void private_wake(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static void private_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t abs_deadline_ns)
{
    struct timespec ts, *tp = NULL;
    if (abs_deadline_ns) {
        ts.tv_sec = (time_t)(abs_deadline_ns / 1000000000u);
        ts.tv_nsec = (long)(abs_deadline_ns % 1000000000u);
        tp = &ts;
    }
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET_PRIVATE, expected, tp, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* ---- pools ---------------------------------------------------------------- */

static struct op *op_get(void)
{
    pthread_mutex_lock(&eng.pool_mu);
    struct op *o = eng.op_pool;
    if (o) eng.op_pool = o->link;
    pthread_mutex_unlock(&eng.pool_mu);
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o) return NULL;
        pthread_mutex_init(&o->mu, NULL);
    }
    return o;
}

static void op_put(struct op *o)
{
    pthread_mutex_lock(&eng.pool_mu);
    o->link = eng.op_pool;
    eng.op_pool = o;
    pthread_mutex_unlock(&eng.pool_mu);
}

static void queue_unref_locked(struct queue_obj *q, bool *recycle)
{
    *recycle = --q->refs == 0;
    if (*recycle) {
        close(q->efd);
        free(q->ring);
        q->ring = NULL;
        q->head = q->n = q->cap = 0;
    }
}

static void queue_put(struct queue_obj *q)
{
    pthread_mutex_lock(&eng.pool_mu);
    q->link = eng.q_pool;
    eng.q_pool = q;
    pthread_mutex_unlock(&eng.pool_mu);
}

static void queue_unref(struct queue_obj *q)
{
    bool recycle;
    pthread_mutex_lock(&q->mu);
    queue_unref_locked(q, &recycle);
    pthread_mutex_unlock(&q->mu);
    if (recycle) queue_put(q);
}

/* Drops one reference to an operation (its mutex held); recycles it at 0. */
static void op_unref_unlock(struct op *o)
{
    bool last = --o->refs == 0;
    struct queue_obj *q = last ? o->q : NULL;
    if (last) o->q = NULL;
    pthread_mutex_unlock(&o->mu);
    if (q) queue_unref(q);
    if (last) op_put(o);
}

/* ---- the deadline heap (engine lock held) ----------------------------------- */

static void heap_swap(size_t a, size_t b)
{
    struct op *t = eng.heap[a];
    eng.heap[a] = eng.heap[b];
    eng.heap[b] = t;
    eng.heap[a]->heap_pos = (uint32_t)a + 1;
    eng.heap[b]->heap_pos = (uint32_t)b + 1;
}

static void heap_fix(size_t i)
{
    while (i > 0 && eng.heap[(i - 1) / 2]->deadline > eng.heap[i]->deadline) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < eng.heap_n && eng.heap[l]->deadline < eng.heap[m]->deadline) m = l;
        if (r < eng.heap_n && eng.heap[r]->deadline < eng.heap[m]->deadline) m = r;
        if (m == i) return;
        heap_swap(i, m);
        i = m;
    }
}

static bool heap_push(struct op *o)
{
    if (eng.heap_n == eng.heap_cap) {
        size_t cap = eng.heap_cap ? 2 * eng.heap_cap : 256;
        struct op **p = realloc(eng.heap, cap * sizeof *p);
        if (!p) return false;
        eng.heap = p;
        eng.heap_cap = cap;
    }
    eng.heap[eng.heap_n] = o;
    o->heap_pos = (uint32_t)++eng.heap_n;
    heap_fix(eng.heap_n - 1);
    return true;
}

static void heap_remove(struct op *o)
{
    if (!o->heap_pos) return;
    size_t i = o->heap_pos - 1;
    o->heap_pos = 0;
    if (i != --eng.heap_n) {
        eng.heap[i] = eng.heap[eng.heap_n];
        eng.heap[i]->heap_pos = (uint32_t)i + 1;
        heap_fix(i);
    }
}

/* ---- callback threads -------------------------------------------------------- */

static void *callback_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&eng.cb_mu);
    for (;;) {
        while (!eng.cb_head) {
            eng.cb_idle++;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 2;
            int r = pthread_cond_timedwait(&eng.cb_cv, &eng.cb_mu, &ts);
            eng.cb_idle--;
            /* Extra threads started for blocking callbacks go away when idle. */
            if (r == ETIMEDOUT && !eng.cb_head && eng.cb_threads > 1) {
                eng.cb_threads--;
                pthread_mutex_unlock(&eng.cb_mu);
                return NULL;
            }
        }
        struct op *o = eng.cb_head;
        eng.cb_head = o->link;
        if (!eng.cb_head) eng.cb_tail = NULL;

        int me = -1;
        for (int i = 0; i < MAX_CALLBACK_THREADS && me < 0; i++)
            if (!eng.cb_in[i].tid) me = i;
        if (me >= 0) {
            eng.cb_in[me].tid = (pid_t)syscall(SYS_gettid);
            eng.cb_in[me].since_ns = whsem__mono_ns();
        }
        pthread_mutex_unlock(&eng.cb_mu);

        pthread_mutex_lock(&o->mu);
        whsem_callback cb = o->cb;
        void *ud = o->user_data;
        uint64_t h = o->cb_handle;
        whsem_status st = atomic_load(&o->status);
        pthread_mutex_unlock(&o->mu);
        cb(h, st, ud);
        pthread_mutex_lock(&eng.cb_mu);
        if (me >= 0) eng.cb_in[me].tid = 0;
        pthread_mutex_unlock(&eng.cb_mu);
        pthread_mutex_lock(&o->mu);
        op_unref_unlock(o);

        pthread_mutex_lock(&eng.cb_mu);
    }
}

static void start_callback_thread_locked(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, callback_thread, NULL) == 0) eng.cb_threads++;
    pthread_attr_destroy(&attr);
}

static void queue_callback(struct op *o)
{
    pthread_mutex_lock(&eng.cb_mu);
    o->link = NULL;
    if (eng.cb_tail) eng.cb_tail->link = o;
    else eng.cb_head = o;
    eng.cb_tail = o;
    if (eng.cb_threads == 0) start_callback_thread_locked();
    pthread_cond_signal(&eng.cb_cv);
    pthread_mutex_unlock(&eng.cb_mu);
}

/* Whether a thread of ours is asleep (S) or in uninterruptible wait (D),
 * as opposed to running or waiting for a CPU. */
static bool thread_blocked(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    const char *state = whsem__proc_stat_fields(path, buf, sizeof buf);
    return state && (*state == 'S' || *state == 'D');
}

/*
 * Called by the dispatcher. Callbacks are queued and every callback thread
 * has sat inside one callback, blocked, for a while: callbacks block, and
 * another thread keeps the rest flowing. A thread that is only waiting for
 * a CPU on a busy machine is not blocked, so it adds none.
 */
static void check_callback_stall(void)
{
    pthread_mutex_lock(&eng.cb_mu);
    uint64_t now = whsem__mono_ns();
    bool stalled = eng.cb_head && eng.cb_idle == 0 && eng.cb_threads < MAX_CALLBACK_THREADS;
    int inside = 0;
    for (int i = 0; stalled && i < MAX_CALLBACK_THREADS; i++) {
        if (!eng.cb_in[i].tid) continue;
        inside++;
        stalled = now > eng.cb_in[i].since_ns + STALL_NS && thread_blocked(eng.cb_in[i].tid);
    }
    if (stalled && inside == eng.cb_threads) start_callback_thread_locked();
    pthread_mutex_unlock(&eng.cb_mu);
}

static bool callbacks_waiting(void)
{
    pthread_mutex_lock(&eng.cb_mu);
    bool r = eng.cb_head != NULL;
    pthread_mutex_unlock(&eng.cb_mu);
    return r;
}

/* ---- completion ---------------------------------------------------------------- */

static void queue_post(struct queue_obj *q, uint64_t op, uint64_t tag)
{
    pthread_mutex_lock(&q->mu);
    if (!q->freed) {
        if (q->n == q->cap) {
            size_t cap = q->cap ? 2 * q->cap : 64;
            struct qent *r = malloc(cap * sizeof *r);
            if (r) {
                for (size_t i = 0; i < q->n; i++) r[i] = q->ring[(q->head + i) % q->cap];
                free(q->ring);
                q->ring = r;
                q->head = 0;
                q->cap = cap;
            }
        }
        if (q->n < q->cap) { /* else out of memory: poll still works */
            q->ring[(q->head + q->n++) % q->cap] = (struct qent){op, tag};
            if (!q->readable) {
                uint64_t one = 1;
                q->readable = write(q->efd, &one, sizeof one) == sizeof one;
            }
        }
    }
    pthread_mutex_unlock(&q->mu);
}

/* Records why a pending operation ends; see struct op's detail. Without
 * memory for it the status still tells. */
static void set_detail(struct op *o, const char *msg)
{
    if (!o->detail && !(o->detail = malloc(DETAIL_BYTES))) return;
    snprintf(o->detail, DETAIL_BYTES, "%s", msg);
}

static const char *detail_of(const struct op *o) { return o->detail ? o->detail : ""; }

/*
 * Makes an operation final (no engine or segment lock held) and hands it
 * to its callback, its queue, or nobody. An OK operation carries `ticket`,
 * already counted in the slot and published; if its owner freed it
 * meanwhile the ticket goes straight back. The engine's reference keeps
 * the object from being recycled until this is done.
 */
static void complete(struct op *o, whsem_status status, uint64_t ticket)
{
    pthread_mutex_lock(&o->mu);
    bool release_now = o->freed && ticket;
    o->ticket = release_now ? 0 : ticket;
    /* Order matters: final for whsem_op_poll first (whoever pops it from a
     * queue reads it), then posted, then `done` for whsem_op_wait (which
     * returns only once the posting happened), then the callback. */
    atomic_store_explicit(&o->status, status, memory_order_release);
    bool callback = o->cb != NULL;
    struct queue_obj *q = callback || o->freed ? NULL : o->q;
    uint64_t h = o->h, tag = o->tag;
    pthread_mutex_unlock(&o->mu);
    if (q) queue_post(q, h, tag);
    atomic_store_explicit(&o->done, 1, memory_order_release);
    private_wake(&o->done);
    if (release_now) whsem_release(ticket);
    if (callback) {
        queue_callback(o); /* the engine's reference goes with it */
        return;
    }
    pthread_mutex_lock(&o->mu);
    op_unref_unlock(o);
}

/* ---- the dispatcher ---------------------------------------------------------------- */

static void poke(void)
{
    atomic_fetch_add_explicit(&eng.ctl, 1, memory_order_release);
    syscall(SYS_futex, &eng.ctl, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Something may have ended pending operations early (a cancel, a close, a
 * freed queue): the dispatcher looks at every pending operation once. */
static void poke_endings(void)
{
    atomic_fetch_add_explicit(&eng.endings, 1, memory_order_release);
    poke();
}

void whsem__async_poke(void) { poke_endings(); }

/* Whether a pending operation is over without a ticket: *why is its final
 * status and *detail the message that explains it, or NULL when the status
 * says it all (or someone recorded the reason already). */
static bool op_ended(struct op *o, whsem_status *why, const char **detail)
{
    *detail = NULL;
    if (atomic_load_explicit(&o->cancel_req, memory_order_acquire)) {
        *why = WHSEM_CANCELED;
        return true;
    }
    if (o->cancel && whsem__cancel_triggered(&o->cw)) {
        *why = WHSEM_CANCELED;
        return true;
    }
    if (atomic_load_explicit(&o->sem_e->tag, memory_order_acquire) != o->sem) {
        *why = WHSEM_CANCELED;
        *detail = "the semaphore handle was closed while waiting"; /* as whsem_acquire says */
        return true;
    }
    if (o->q && o->q->freed) {
        *why = WHSEM_CANCELED;
        *detail = "the completion queue was freed while waiting";
        return true;
    }
    if (o->expired) {
        *why = WHSEM_TIMEOUT;
        return true;
    }
    return false;
}

static void unlink_pending(struct wmap *m, struct op *o)
{
    if (o->prev) o->prev->next = o->next;
    else m->aq_head = o->next;
    if (o->next) o->next->prev = o->prev;
    else m->aq_tail = o->prev;
    o->prev = o->next = NULL;
    heap_remove(o);
}

/* A finished operation on its way out of the engine: its ticket (if any)
 * is counted in the slot but not yet published as a handle. */
struct finished {
    struct op *head, *tail;
};

static void finish(struct finished *f, struct op *o, whsem_status st, const char *detail)
{
    o->final = st;
    if (detail) set_detail(o, detail);
    o->link = NULL;
    if (f->tail) f->tail->link = o;
    else f->head = o;
    f->tail = o;
}

/* Futex words to wake once the engine lock is dropped, and how many of
 * their sleepers. Words, not mappings: a mapping that leaves the engine
 * may be unmapped by then, and a wake on a stale word is harmless. */
struct wakes {
    _Atomic uint32_t *word[8];
    int count[8];
    int n;
};

static void wake_later(struct wakes *wk, struct wmap *m, int32_t slot)
{
    if (wk->n == 8) return;
    wk->word[wk->n] = &m->slots[slot].wake_seq;
    /* One waiter of another process per grant; all of our own, since our
     * dispatcher is one of them and is not asleep now. */
    wk->count[wk->n++] = (uint32_t)slot == m->slot ? INT32_MAX : 1;
}

static void deactivate(struct wmap *m);

/*
 * Settles one mapping's pending operations under its segment lock.
 * Returns the wake word's value to sleep on. Engine lock held.
 *
 * A mapping in the engine is not unmapped by anyone else (see
 * whsem__mark_dying_locked), so the engine lets go of it under the
 * segment lock, where closing decides too: *left says it has, and *dying
 * that it was the last user and must now retire it.
 */
static uint32_t settle(struct wmap *m, uint64_t now, bool sweep, struct finished *f,
                       struct wakes *wk, bool *left, bool *dying, uint64_t *next_scan)
{
    *left = *dying = false;
    struct seg_header *h = m->hdr;
    struct seg_slot *s = &m->slots[m->slot];
    uint32_t seen;
    whsem_status lst = whsem__lock_within(m, DISPATCH_LOCK_NS);
    if (lst == WHSEM_OK && whsem__is_broken(m)) {
        whsem__unlock(m);
        lst = whsem__broken_status(m);
    }
    /* Whatever lst is but OK, this thread's message now says why. */
    if (lst == WHSEM_TIMEOUT) {
        /* Its owner does not let go. Operations that are over end on time
         * all the same; what they counted in the slot is paid back later
         * (whsem__settle_locked), and we come back soon. A timeout names
         * the owner, as a blocking acquisition's would. */
        whsem_status why;
        const char *detail;
        for (struct op *o = (sweep || m->has_expired) ? m->aq_head : NULL, *next; o; o = next) {
            next = o->next;
            if (!op_ended(o, &why, &detail)) continue;
            if (o->counted) {
                atomic_fetch_add(&m->owed_want, 1);
                atomic_fetch_add(&m->owed_async_ops, 1);
            }
            unlink_pending(m, o);
            finish(f, o, why, why == WHSEM_TIMEOUT ? whsem_last_error() : detail);
        }
        *next_scan = now + DISPATCH_RETRY_NS;
        return atomic_load(&s->wake_seq);
    }
    if (lst != WHSEM_OK) {
        /* The segment is corrupt: end everything with that error. */
        whsem_status err = WHSEM_E_CORRUPT;
        for (struct op *o = m->aq_head, *next; o; o = next) {
            next = o->next;
            unlink_pending(m, o);
            finish(f, o, err, whsem_last_error());
        }
        *next_scan = 0;
        deactivate(m);
        *left = true;
        return atomic_load(&s->wake_seq);
    }
    if (atomic_load(&m->owed_want)) whsem__settle_locked(m);
    /* Operations started while the lock was not to be had count now. */
    for (struct op *o = m->aq_head; o; o = o->next)
        if (!o->counted) {
            whsem__want_more(h, s, now);
            m->async_ops++;
            o->counted = true;
        }
    bool scanned = false;
again:;
    /* Grants first, to live operations oldest first. */
    struct op *o = m->aq_head;
    whsem_status why;
    const char *detail;
    while ((s->grants > 0 || h->free > 0) && o) {
        struct op *next = o->next;
        if (!op_ended(o, &why, &detail)) {
            if (!whsem__take_grant(s)) {
                h->free--;
                whsem__take(s);
            }
            whsem__want_less(h, s, true, now);
            m->async_ops--;
            unlink_pending(m, o);
            finish(f, o, WHSEM_OK, NULL);
        }
        o = next;
    }
    /* Then the ones that are over without a ticket: all of them after an
     * early ending, else only those whose deadline the heap gave up. */
    for (o = (sweep || m->has_expired) ? m->aq_head : NULL; o;) {
        struct op *next = o->next;
        if (op_ended(o, &why, &detail)) {
            whsem__want_less(h, s, false, now);
            m->async_ops--;
            unlink_pending(m, o);
            finish(f, o, why, detail);
        }
        o = next;
    }
    /* Grants nobody here can use any more go to the next process. */
    while (s->grants > s->want) {
        s->grants--;
        int32_t w = whsem__give_back_locked(m);
        if (w >= 0) wake_later(wk, m, w);
    }
    /* Grants left over are for this process's blocking waiters, who may
     * have been asleep while an operation was meant to take them. */
    if (s->grants > 0 && wk->n < 8) {
        atomic_fetch_add_explicit(&s->wake_seq, 1, memory_order_release);
        wake_later(wk, m, (int32_t)m->slot);
    }
    m->has_expired = false;
    if (m->aq_head && !scanned && whsem__scan_due(m, m->async_check_ms, now)) {
        scanned = true;
        if (whsem__scan_locked(m, false) == WHSEM_OK) goto again;
    }
    seen = atomic_load_explicit(&s->wake_seq, memory_order_acquire);
    if (!m->aq_head && !atomic_load(&m->owed_want)) {
        deactivate(m);
        *left = true;
        *dying = m->handles == 0 && whsem__mark_dying_locked(m);
    }
    *next_scan = 0;
    if (m->async_check_ms >= 0) {
        uint64_t period = (uint64_t)m->async_check_ms * 1000000u;
        *next_scan = h->last_scan_ns + period;
        if (*next_scan <= now) *next_scan = now + period;
    }
    whsem__unlock(m);
    return seen;
}

static whsem_status ensure_dispatcher_locked(void);

void whsem__async_collect_debt(struct wmap *m)
{
    pthread_mutex_lock(&eng.mu);
    if (!m->active) {
        atomic_store(&m->active, true);
        m->async_check_ms = -1;
        m->active_next = eng.active;
        eng.active = m;
    }
    whsem_status ds = ensure_dispatcher_locked();
    pthread_mutex_unlock(&eng.mu);
    /* Without a dispatcher the next lock of this process pays instead. */
    (void)ds;
    poke();
}

static void deactivate(struct wmap *m)
{
    for (struct wmap **pp = &eng.active; *pp; pp = &(*pp)->active_next)
        if (*pp == m) {
            *pp = m->active_next;
            break;
        }
    atomic_store(&m->active, false);
    m->active_next = NULL;
}

/*
 * Ends an operation that is over (no locks held): an OK one gets a ticket
 * handle for the ticket already counted in its slot, or, if no handle can
 * be made, the ticket goes back and the operation fails with why.
 */
static void finish_op(struct op *o, whsem_status st)
{
    uint64_t ticket = 0;
    if (st == WHSEM_OK && !(ticket = whsem__h_alloc(HK_TICKET, o->m, o->pgen, &st))) {
        set_detail(o, whsem_last_error());
        struct wmap *m = o->m;
        if (whsem__lock(m) == WHSEM_OK) {
            m->slots[m->slot].held--;
            int32_t w = whsem__give_back_locked(m);
            whsem__unlock(m);
            if (w >= 0) whsem__futex_wake(&m->slots[w].wake_seq, 1);
        }
    }
    whsem__cancel_unregister(&o->cw);
    complete(o, st, ticket);
}

/* Publishes tickets and delivers the batch (no locks held). */
static void deliver(struct finished *f)
{
    while (f->head) {
        struct op *o = f->head;
        f->head = o->link;
        finish_op(o, o->final);
    }
}

static void *dispatcher(void *arg)
{
    (void)arg;
    uint64_t idle_since = 0;
    struct futex_waitv_arg w[MAX_WAITV];
    pthread_mutex_lock(&eng.mu);
    for (;;) {
        uint64_t now = whsem__mono_ns();
        uint32_t ctl = atomic_load_explicit(&eng.ctl, memory_order_acquire);
        uint32_t endings = atomic_load_explicit(&eng.endings, memory_order_acquire);
        bool sweep = endings != eng.swept_endings;
        eng.swept_endings = endings;
        while (eng.heap_n && eng.heap[0]->deadline <= now) {
            struct op *o = eng.heap[0];
            heap_remove(o);
            o->expired = true;
            o->m->has_expired = true;
        }
        struct finished f = {0};
        struct wmap *dying = NULL;
        int n = 1;
        struct wakes wk = {.n = 0};
        uint64_t until = 0;
        bool polled = false;
        w[0] = (struct futex_waitv_arg){.val = ctl, .uaddr = (uintptr_t)&eng.ctl,
                                         .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG};
        for (struct wmap *m = eng.active, *next; m; m = next) {
            next = m->active_next;
            bool left, is_dying;
            uint64_t next_scan;
            uint32_t seen = settle(m, now, sweep, &f, &wk, &left, &is_dying, &next_scan);
            if (left) { /* not to be touched again, unless ours to retire */
                if (is_dying) { /* out of the list: its link is free */
                    m->active_next = dying;
                    dying = m;
                }
                continue;
            }
            if (!m->aq_head) { /* only a debt: nothing to wait on, retry */
                if (next_scan && (!until || next_scan < until)) until = next_scan;
                continue;
            }
            if (n < MAX_WAITV && !eng.no_waitv) {
                w[n++] = (struct futex_waitv_arg){
                    .val = seen, .uaddr = (uintptr_t)&m->slots[m->slot].wake_seq, .flags = FUTEX_32};
            } else {
                polled = true;
            }
            if (next_scan && (!until || next_scan < until)) until = next_scan;
        }
        if (eng.heap_n && (!until || eng.heap[0]->deadline < until)) until = eng.heap[0]->deadline;
        bool idle = eng.active == NULL;
        pthread_mutex_unlock(&eng.mu);

        for (int i = 0; i < wk.n; i++) whsem__futex_wake(wk.word[i], wk.count[i]);
        deliver(&f);
        while (dying) {
            struct wmap *m = dying;
            dying = m->active_next;
            whsem__finish_dying(m);
        }

        if (callbacks_waiting()) {
            check_callback_stall();
            if (!until || until > now + STALL_NS) until = now + STALL_NS;
        }
        if (polled && (!until || until > now + POLL_FALLBACK_NS)) until = now + POLL_FALLBACK_NS;
        if (idle) {
            if (!idle_since) idle_since = now;
            if (now - idle_since >= IDLE_EXIT_NS) {
                pthread_mutex_lock(&eng.mu);
                if (!eng.active && atomic_load(&eng.ctl) == ctl) {
                    eng.dispatcher_running = false;
                    pthread_mutex_unlock(&eng.mu);
                    return NULL;
                }
                continue; /* something arrived: go round with the lock held */
            }
            until = idle_since + IDLE_EXIT_NS;
        } else {
            idle_since = 0;
        }
        struct timespec ts, *tp = NULL;
        if (until) {
            ts.tv_sec = (time_t)(until / 1000000000u);
            ts.tv_nsec = (long)(until % 1000000000u);
            tp = &ts;
        }
        if (!eng.no_waitv) {
            long r = syscall(SYS_futex_waitv, w, n, 0, tp, CLOCK_MONOTONIC);
            if (r < 0 && errno == ENOSYS) eng.no_waitv = true; /* read under the lock next round */
        }
        if (eng.no_waitv) {
            /* Old kernel: our own word only, and poll the semaphores. */
            uint64_t cap = whsem__mono_ns() + POLL_FALLBACK_NS;
            private_wait(&eng.ctl, ctl, until && until < cap ? until : cap);
        }
        pthread_mutex_lock(&eng.mu);
    }
}

/* Starts the dispatcher if it is not running (engine lock held). */
static whsem_status ensure_dispatcher_locked(void)
{
    if (eng.dispatcher_running) return WHSEM_OK;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&t, &attr, dispatcher, NULL);
    pthread_attr_destroy(&attr);
    if (r != 0) return whsem__fail(WHSEM_E_LIMIT, "cannot start the dispatcher thread: %s", strerror(r));
    eng.dispatcher_running = true;
    return WHSEM_OK;
}

/* ---- the public functions ------------------------------------------------------------ */

static void notify_op(struct cwait *w)
{
    struct op *o = w->ctx;
    atomic_store_explicit(&o->cancel_req, true, memory_order_release);
    poke_endings();
}

static whsem_status start(whsem_sem sem, int64_t timeout_ms, whsem_cancel cancel, whsem_callback cb,
                          void *user_data, struct queue_obj *q, uint64_t tag, whsem_op *out_op)
{
    if (!out_op) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_op is NULL");
    *out_op = 0;
    if (!whsem__timeout_ok(timeout_ms)) return whsem__bad_timeout(timeout_ms);
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    if (!e) return whsem__invalid_handle(sem, "semaphore");
    bool canceled = false;
    if (cancel) {
        struct hentry *ce = whsem__h_lookup(cancel, HK_CANCEL);
        if (!ce) return whsem__invalid_handle(cancel, "cancellation source");
        canceled = atomic_load(&ce->aux) != 0;
    }
    void *saved;
    struct wmap *m = whsem__protect(e, sem, &saved);
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    whsem_status st = whsem__attached(m) ? WHSEM_OK : whsem__ensure_attached(m);
    struct op *o = st == WHSEM_OK ? op_get() : NULL;
    if (st == WHSEM_OK && !o) st = whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for an operation");
    uint64_t h = 0;
    if (o) {
        h = whsem__h_reserve(HK_OP, &st);
        if (!h) {
            op_put(o);
            o = NULL;
        }
    }
    if (!o) {
        whsem__unprotect(saved);
        return st;
    }
    pthread_mutex_lock(&o->mu);
    o->h = h;
    atomic_store(&o->status, WHSEM_PENDING);
    atomic_store(&o->done, 0);
    o->ticket = 0;
    o->taken = o->freed = false;
    o->refs = 2; /* the caller's handle, and the engine until delivered */
    o->cb = cb;
    o->user_data = user_data;
    o->cb_handle = h;
    o->q = q;
    o->tag = tag;
    o->pgen = atomic_load(&whsem__pgen);
    o->m = m;
    o->sem = sem;
    o->sem_e = e;
    o->deadline = timeout_ms > 0 ? whsem__mono_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    atomic_store(&o->cancel_req, false);
    o->expired = false;
    o->counted = false;
    o->cancel = cancel;
    o->cw = (struct cwait){.notify = notify_op, .ctx = o};
    o->prev = o->next = NULL;
    o->heap_pos = 0;
    if (o->detail) o->detail[0] = 0;
    pthread_mutex_unlock(&o->mu);
    if (q) {
        pthread_mutex_lock(&q->mu);
        q->refs++;
        pthread_mutex_unlock(&q->mu);
    }
    whsem__h_publish(h, o, 0);

    /* Settle at once what can be settled at once; the callback still runs
     * on a library thread, never in here. */
    whsem_status now_status = WHSEM_PENDING;
    int32_t check_ms = (int32_t)atomic_load(&e->aux);
    if (canceled) {
        now_status = WHSEM_CANCELED;
    } else if (cancel && (st = whsem__cancel_register(cancel, &o->cw)) != WHSEM_OK) {
        now_status = st; /* WHSEM_CANCELED, or the source died meanwhile */
        if (st < 0) set_detail(o, whsem_last_error());
    }
    st = WHSEM_OK;
    if (now_status == WHSEM_PENDING) {
        /* Never blocked on another process here: if the lock is not to be
         * had at once, the dispatcher counts the operation later. */
        st = whsem__lock_within(m, timeout_ms == 0 ? WHSEM_TRY_LOCK_NS : DISPATCH_LOCK_NS);
        if (st == WHSEM_TIMEOUT && timeout_ms != 0) {
            st = WHSEM_OK;
        } else if (st == WHSEM_OK) {
            o->counted = true;
            struct seg_header *hd = m->hdr;
            struct seg_slot *s = &m->slots[m->slot];
            if (hd->free > 0) {
                hd->free--;
                whsem__take(s);
                hd->acquisitions++;
                now_status = WHSEM_OK;
            } else if (timeout_ms == 0) {
                now_status = WHSEM_TIMEOUT;
                if (whsem__take_grant(s)) now_status = WHSEM_OK;
                else if (whsem__scan_due(m, check_ms, whsem__mono_ns()) &&
                    whsem__scan_locked(m, false) == WHSEM_OK && hd->free > 0) {
                    hd->free--;
                    whsem__take(s);
                    hd->acquisitions++;
                    now_status = WHSEM_OK;
                }
            } else {
                whsem__want_more(hd, s, whsem__mono_ns());
                m->async_ops++;
            }
            if (now_status != WHSEM_PENDING) o->counted = false;
            whsem__unlock(m);
        } else {
            now_status = st; /* an error, or a try whose lock was not let go */
            set_detail(o, whsem_last_error());
        }
        if (now_status == WHSEM_PENDING) {
            pthread_mutex_lock(&eng.mu);
            if (!m->active) {
                atomic_store(&m->active, true);
                m->async_check_ms = check_ms;
                m->active_next = eng.active;
                eng.active = m;
            } else if (check_ms >= 0 && (m->async_check_ms < 0 || check_ms < m->async_check_ms)) {
                m->async_check_ms = check_ms;
            }
            o->prev = m->aq_tail;
            if (m->aq_tail) m->aq_tail->next = o;
            else m->aq_head = o;
            m->aq_tail = o;
            if (o->deadline && !heap_push(o)) o->deadline = whsem__mono_ns(); /* cannot time it: end it */
            whsem_status ds = ensure_dispatcher_locked();
            /* Under the engine lock: a dispatcher started later may end it. */
            if (ds != WHSEM_OK) set_detail(o, whsem_last_error());
            pthread_mutex_unlock(&eng.mu);
            /* Without a dispatcher the wait would never end: cancel it, the
             * caller sees the error through the operation. */
            if (ds != WHSEM_OK) atomic_store(&o->cancel_req, true);
            if (ds != WHSEM_OK) poke_endings();
            else poke();
            st = WHSEM_OK;
        }
    }
    if (now_status != WHSEM_PENDING) {
        finish_op(o, now_status);
        st = WHSEM_OK;
    }
    whsem__unprotect(saved);
    *out_op = h;
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_acquire_async(whsem_sem sem, int64_t timeout_ms,
                                                      whsem_cancel cancel, whsem_callback cb,
                                                      void *user_data, whsem_op *out_op)
{
    return start(sem, timeout_ms, cancel, cb, user_data, NULL, 0, out_op);
}

/* The operation behind a live handle, with its mutex held, or NULL. */
static struct op *lock_op(whsem_op op)
{
    struct hentry *e = whsem__h_lookup(op, HK_OP);
    if (!e) return NULL;
    struct op *o = atomic_load_explicit(&e->ptr, memory_order_acquire);
    pthread_mutex_lock(&o->mu);
    if (o->h != op) {
        pthread_mutex_unlock(&o->mu);
        return NULL;
    }
    return o;
}

/* An operation's final status when it is not WHSEM_OK, with its detail
 * made the calling thread's message: the slow path of poll and wait, which
 * read the status without the operation's mutex. */
static whsem_status report_ended(whsem_op op)
{
    struct op *o = lock_op(op);
    if (!o) return whsem__invalid_handle(op, "operation"); /* freed meanwhile */
    whsem_status st = whsem__fail(atomic_load(&o->status), "%s", detail_of(o));
    pthread_mutex_unlock(&o->mu);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_poll(whsem_op op)
{
    struct hentry *e = whsem__h_lookup(op, HK_OP);
    if (!e) return whsem__invalid_handle(op, "operation");
    struct op *o = atomic_load_explicit(&e->ptr, memory_order_acquire);
    whsem_status st = atomic_load_explicit(&o->status, memory_order_acquire);
    if (atomic_load_explicit(&e->tag, memory_order_acquire) != op)
        return whsem__invalid_handle(op, "operation");
    if (st != WHSEM_OK && st != WHSEM_PENDING) return report_ended(op);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_wait(whsem_op op, int64_t timeout_ms)
{
    if (!whsem__timeout_ok(timeout_ms)) return whsem__bad_timeout(timeout_ms);
    struct hentry *e = whsem__h_lookup(op, HK_OP);
    if (!e) return whsem__invalid_handle(op, "operation");
    struct op *o = atomic_load_explicit(&e->ptr, memory_order_acquire);
    uint64_t deadline = timeout_ms > 0 ? whsem__mono_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    for (;;) {
        /* `done`, not the status: it is set once a queued operation has
         * been posted (see complete()). */
        uint32_t done = atomic_load_explicit(&o->done, memory_order_acquire);
        whsem_status st = atomic_load_explicit(&o->status, memory_order_acquire);
        if (atomic_load_explicit(&e->tag, memory_order_acquire) != op)
            return whsem__invalid_handle(op, "operation");
        if (done) return st == WHSEM_OK ? st : report_ended(op);
        if (timeout_ms == 0) return WHSEM_PENDING;
        if (deadline && whsem__mono_ns() >= deadline) return WHSEM_PENDING;
        private_wait(&o->done, 0, deadline);
    }
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_take_ticket(whsem_op op, whsem_ticket *out_ticket)
{
    if (!out_ticket) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_ticket is NULL");
    *out_ticket = 0;
    struct op *o = lock_op(op);
    if (!o) return whsem__invalid_handle(op, "operation");
    whsem_status st = atomic_load(&o->status);
    if (st == WHSEM_OK) {
        if (o->taken) {
            st = whsem__fail(WHSEM_E_INVALID_ARGUMENT, "the ticket of operation 0x%llx was already taken",
                             (unsigned long long)op);
        } else {
            o->taken = true;
            *out_ticket = o->ticket;
            o->ticket = 0;
        }
    } else if (st != WHSEM_PENDING) {
        whsem__fail(st, "%s", detail_of(o));
    }
    pthread_mutex_unlock(&o->mu);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_cancel(whsem_op op)
{
    struct op *o = lock_op(op);
    if (!o) return whsem__invalid_handle(op, "operation");
    bool pending = atomic_load(&o->status) == WHSEM_PENDING;
    if (pending) atomic_store(&o->cancel_req, true);
    pthread_mutex_unlock(&o->mu);
    if (pending) poke_endings();
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_free(whsem_op op)
{
    struct op *o = lock_op(op);
    struct hentry *e = o ? whsem__h_entry(op) : NULL;
    if (!o || !whsem__h_kill_cas(e, op)) {
        if (o) pthread_mutex_unlock(&o->mu);
        return whsem__invalid_handle(op, "operation");
    }
    o->h = 0;
    o->freed = true;
    /* Waiters in whsem_op_wait look at the handle again. */
    private_wake(&o->done);
    bool pending = atomic_load(&o->status) == WHSEM_PENDING;
    uint64_t ticket = o->ticket;
    o->ticket = 0;
    if (pending) atomic_store(&o->cancel_req, true);
    op_unref_unlock(o);
    if (pending) poke_endings();
    if (ticket) whsem_release(ticket);
    whsem__h_recycle(op);
    return WHSEM_OK;
}

/* ---- completion queues -------------------------------------------------------------- */

static struct queue_obj *lock_queue(whsem_queue queue)
{
    struct hentry *e = whsem__h_lookup(queue, HK_QUEUE);
    if (!e) return NULL;
    struct queue_obj *q = atomic_load_explicit(&e->ptr, memory_order_acquire);
    pthread_mutex_lock(&q->mu);
    if (q->h != queue) {
        pthread_mutex_unlock(&q->mu);
        return NULL;
    }
    return q;
}

WHSEM_API whsem_status WHSEM_CALL whsem_queue_new(whsem_queue *out_queue)
{
    if (!out_queue) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_queue is NULL");
    *out_queue = 0;
    whsem__init();
    pthread_mutex_lock(&eng.pool_mu);
    struct queue_obj *q = eng.q_pool;
    if (q) eng.q_pool = q->link;
    pthread_mutex_unlock(&eng.pool_mu);
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for a queue");
        pthread_mutex_init(&q->mu, NULL);
    }
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
        queue_put(q);
        return whsem__fail_errno(errno, "cannot create", "an eventfd");
    }
    whsem_status st;
    uint64_t h = whsem__h_reserve(HK_QUEUE, &st);
    if (!h) {
        close(efd);
        queue_put(q);
        return st;
    }
    pthread_mutex_lock(&q->mu);
    q->h = h;
    q->efd = efd;
    q->readable = q->freed = false;
    q->refs = 1;
    q->head = q->n = 0;
    pthread_mutex_unlock(&q->mu);
    whsem__h_publish(h, q, 0);
    *out_queue = h;
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_queue_fd(whsem_queue queue, int32_t *out_fd)
{
    if (!out_fd) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_fd is NULL");
    *out_fd = -1;
    struct queue_obj *q = lock_queue(queue);
    if (!q) return whsem__invalid_handle(queue, "queue");
    *out_fd = q->efd;
    pthread_mutex_unlock(&q->mu);
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_queue_handle(whsem_queue queue, uint64_t *out_handle)
{
    if (!out_handle) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_handle is NULL");
    int32_t fd = -1;
    whsem_status st = whsem_queue_fd(queue, &fd);
    /* On failure too: the descriptor -1, which names nothing (0 would be
     * standard input). */
    *out_handle = (uint64_t)(int64_t)fd;
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_acquire_queued(whsem_sem sem, int64_t timeout_ms,
                                                       whsem_cancel cancel, whsem_queue queue,
                                                       uint64_t tag, whsem_op *out_op)
{
    if (out_op) *out_op = 0;
    struct queue_obj *q = lock_queue(queue);
    if (!q) return whsem__invalid_handle(queue, "queue");
    q->refs++; /* held across start(), which takes its own reference */
    pthread_mutex_unlock(&q->mu);
    whsem_status st = start(sem, timeout_ms, cancel, NULL, NULL, q, tag, out_op);
    queue_unref(q);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_queue_pop(whsem_queue queue, whsem_op *out_op,
                                                  uint64_t *out_tag)
{
    if (out_op) *out_op = 0;
    if (out_tag) *out_tag = 0;
    if (!out_op || !out_tag) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_op or out_tag is NULL");
    struct queue_obj *q = lock_queue(queue);
    if (!q) return whsem__invalid_handle(queue, "queue");
    whsem_status st = WHSEM_PENDING;
    while (q->n > 0) {
        struct qent ent = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
        /* Operations freed after they were posted are skipped. */
        if (whsem__h_lookup(ent.op, HK_OP)) {
            *out_op = ent.op;
            *out_tag = ent.tag;
            st = WHSEM_OK;
            break;
        }
    }
    if (q->n == 0 && q->readable) {
        uint64_t v;
        q->readable = read(q->efd, &v, sizeof v) != sizeof v; /* reset: not readable */
    }
    pthread_mutex_unlock(&q->mu);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_queue_free(whsem_queue queue)
{
    struct queue_obj *q = lock_queue(queue);
    struct hentry *e = q ? whsem__h_entry(queue) : NULL;
    if (!q || !whsem__h_kill_cas(e, queue)) {
        if (q) pthread_mutex_unlock(&q->mu);
        return whsem__invalid_handle(queue, "queue");
    }
    q->h = 0;
    q->freed = true;
    q->n = 0;
    bool recycle;
    queue_unref_locked(q, &recycle);
    pthread_mutex_unlock(&q->mu);
    if (recycle) queue_put(q);
    else poke_endings(); /* its pending operations end */
    whsem__h_recycle(queue);
    return WHSEM_OK;
}

/* ---- fork ------------------------------------------------------------------------- */

void whsem__async_lock_all(void)
{
    pthread_mutex_lock(&eng.mu);
    pthread_mutex_lock(&eng.cb_mu);
    pthread_mutex_lock(&eng.pool_mu);
}

void whsem__async_unlock_all(void)
{
    pthread_mutex_unlock(&eng.pool_mu);
    pthread_mutex_unlock(&eng.cb_mu);
    pthread_mutex_unlock(&eng.mu);
}

/*
 * The child has no dispatcher and no callback threads, and the operations
 * it inherited belong to its parent (whose slot counts their wants): they
 * end, in the child only, with WHSEM_E_WRONG_PROCESS and no callback.
 */
void whsem__async_after_fork_child(void)
{
    for (struct wmap *m = eng.active; m; m = m->active_next) {
        for (struct op *o = m->aq_head, *next; o; o = next) {
            next = o->next;
            o->prev = o->next = NULL;
            o->heap_pos = 0;
            o->cw.obj = NULL; /* the sources forgot their waits already */
            set_detail(o, "the operation was started by the parent process before fork(); "
                          "only the parent can use it");
            atomic_store(&o->status, WHSEM_E_WRONG_PROCESS);
            atomic_store(&o->done, 1);
            o->refs--; /* the engine lets go */
        }
        m->aq_head = m->aq_tail = NULL;
        m->active = false;
        m->async_ops = 0; /* they counted in the parent's slot, not ours */
    }
    eng.active = NULL;
    eng.heap_n = 0;
    for (struct op *o = eng.cb_head; o; o = o->link) o->refs--;
    eng.cb_head = eng.cb_tail = NULL;
    eng.cb_threads = eng.cb_idle = 0;
    memset(eng.cb_in, 0, sizeof eng.cb_in);
    eng.dispatcher_running = false;
    atomic_store(&eng.ctl, 0);
}

static void async_child(void)
{
    whsem__async_after_fork_child();
    whsem__async_unlock_all();
}

static const struct whsem_fork_hooks fork_hooks = {
    WHSEM_FORK_ORDER_ASYNC, whsem__async_lock_all, whsem__async_unlock_all, async_child};

__attribute__((constructor)) static void register_fork_hooks(void) { whsem__on_fork(&fork_hooks); }
