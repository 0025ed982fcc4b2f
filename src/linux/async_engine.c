/* SPDX-License-Identifier: MIT */
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
#include "async_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

struct whsem_engine whsem__a_eng = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cb_mu = PTHREAD_MUTEX_INITIALIZER,
    .cb_cv = PTHREAD_COND_INITIALIZER,
    .pool_mu = PTHREAD_MUTEX_INITIALIZER,
};

/* Futexes in this process's own memory (operation and engine words). */
void whsem__a_private_wake(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

void whsem__a_private_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t abs_deadline_ns)
{
    struct timespec ts, *tp = whsem__deadline_ts(abs_deadline_ns, &ts);
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET_PRIVATE, expected, tp, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* ---- pools ---------------------------------------------------------------- */

struct op *whsem__a_op_get(void)
{
    pthread_mutex_lock(&whsem__a_eng.pool_mu);
    struct op *o = whsem__a_eng.op_pool;
    if (o) whsem__a_eng.op_pool = o->link;
    pthread_mutex_unlock(&whsem__a_eng.pool_mu);
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o) return NULL;
        pthread_mutex_init(&o->mu, NULL);
    }
    return o;
}

void whsem__a_op_put(struct op *o)
{
    pthread_mutex_lock(&whsem__a_eng.pool_mu);
    o->link = whsem__a_eng.op_pool;
    whsem__a_eng.op_pool = o;
    pthread_mutex_unlock(&whsem__a_eng.pool_mu);
}

void whsem__a_queue_unref_locked(struct queue_obj *q, bool *recycle)
{
    *recycle = --q->refs == 0;
    if (*recycle) {
        close(q->efd);
        free(q->ring);
        q->ring = NULL;
        q->head = q->n = q->cap = 0;
    }
}

void whsem__a_queue_put(struct queue_obj *q)
{
    pthread_mutex_lock(&whsem__a_eng.pool_mu);
    q->link = whsem__a_eng.q_pool;
    whsem__a_eng.q_pool = q;
    pthread_mutex_unlock(&whsem__a_eng.pool_mu);
}

void whsem__a_queue_unref(struct queue_obj *q)
{
    bool recycle;
    pthread_mutex_lock(&q->mu);
    whsem__a_queue_unref_locked(q, &recycle);
    pthread_mutex_unlock(&q->mu);
    if (recycle) whsem__a_queue_put(q);
}

/* Drops one reference to an operation (its mutex held); recycles it at 0. */
void whsem__a_op_unref_unlock(struct op *o)
{
    bool last = --o->refs == 0;
    struct queue_obj *q = last ? o->q : NULL;
    if (last) o->q = NULL;
    pthread_mutex_unlock(&o->mu);
    if (q) whsem__a_queue_unref(q);
    if (last) whsem__a_op_put(o);
}

/* ---- the dispatcher ---------------------------------------------------------------- */

void whsem__a_poke(void)
{
    atomic_fetch_add_explicit(&whsem__a_eng.ctl, 1, memory_order_release);
    syscall(SYS_futex, &whsem__a_eng.ctl, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Something may have ended pending operations early (a cancel, a close, a
 * freed queue): the dispatcher looks at every pending operation once. */
void whsem__a_poke_endings(void)
{
    atomic_fetch_add_explicit(&whsem__a_eng.endings, 1, memory_order_release);
    whsem__a_poke();
}

void whsem__async_poke(void) { whsem__a_poke_endings(); }

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
    whsem__deadline_remove(&whsem__a_eng.deadlines, &o->dl);
}

/* A finished operation on its way out of the engine: its ticket (if any)
 * is counted in the slot but not yet published as a handle. */
struct finished {
    struct op *head, *tail;
};

static void finish(struct finished *f, struct op *o, whsem_status st, const char *detail)
{
    o->final = st;
    if (detail) whsem__a_set_detail(o, detail);
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

static void wake_later_cb(void *wk, struct wmap *m, int32_t slot) { wake_later(wk, m, slot); }

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
    whsem__settle_leftovers_locked(m, wake_later_cb, wk);
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

whsem_status whsem__a_ensure_dispatcher_locked(void);

void whsem__async_collect_debt(struct wmap *m)
{
    pthread_mutex_lock(&whsem__a_eng.mu);
    if (!m->active) {
        atomic_store(&m->active, true);
        m->async_check_ms = -1;
        m->active_next = whsem__a_eng.active;
        whsem__a_eng.active = m;
    }
    whsem_status ds = whsem__a_ensure_dispatcher_locked();
    pthread_mutex_unlock(&whsem__a_eng.mu);
    /* Without a dispatcher the next lock of this process pays instead. */
    (void)ds;
    whsem__a_poke();
}

static void deactivate(struct wmap *m)
{
    for (struct wmap **pp = &whsem__a_eng.active; *pp; pp = &(*pp)->active_next)
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
void whsem__a_finish_op(struct op *o, whsem_status st)
{
    uint64_t ticket = 0;
    if (st == WHSEM_OK && !(ticket = whsem__h_alloc(HK_TICKET, o->m, o->pgen, &st))) {
        whsem__a_set_detail(o, whsem_last_error());
        struct wmap *m = o->m;
        if (whsem__lock(m) == WHSEM_OK) {
            m->slots[m->slot].held--;
            int32_t w = whsem__give_back_locked(m);
            whsem__unlock(m);
            if (w >= 0) whsem__futex_wake(&m->slots[w].wake_seq, 1);
        }
    }
    whsem__cancel_unregister(&o->cw);
    whsem__a_complete(o, st, ticket);
}

/* Publishes tickets and delivers the batch (no locks held). */
static void deliver(struct finished *f)
{
    while (f->head) {
        struct op *o = f->head;
        f->head = o->link;
        whsem__a_finish_op(o, o->final);
    }
}

static void *dispatcher(void *arg)
{
    (void)arg;
    uint64_t idle_since = 0;
    struct futex_waitv_arg w[MAX_WAITV];
    pthread_mutex_lock(&whsem__a_eng.mu);
    for (;;) {
        uint64_t now = whsem__mono_ns();
        uint32_t ctl = atomic_load_explicit(&whsem__a_eng.ctl, memory_order_acquire);
        uint32_t endings = atomic_load_explicit(&whsem__a_eng.endings, memory_order_acquire);
        bool sweep = endings != whsem__a_eng.swept_endings;
        whsem__a_eng.swept_endings = endings;
        for (struct whsem_deadline *d;
             (d = whsem__deadline_first(&whsem__a_eng.deadlines)) && d->at <= now;) {
            struct op *o = whsem__a_op_of(d);
            whsem__deadline_remove(&whsem__a_eng.deadlines, d);
            o->expired = true;
            o->m->has_expired = true;
        }
        struct finished f = {0};
        struct wmap *dying = NULL;
        int n = 1;
        struct wakes wk = {.n = 0};
        uint64_t until = 0;
        bool polled = false;
        w[0] = (struct futex_waitv_arg){.val = ctl, .uaddr = (uintptr_t)&whsem__a_eng.ctl,
                                         .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG};
        for (struct wmap *m = whsem__a_eng.active, *next; m; m = next) {
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
            if (n < MAX_WAITV && !whsem__a_eng.no_waitv) {
                w[n++] = (struct futex_waitv_arg){
                    .val = seen, .uaddr = (uintptr_t)&m->slots[m->slot].wake_seq, .flags = FUTEX_32};
            } else {
                polled = true;
            }
            if (next_scan && (!until || next_scan < until)) until = next_scan;
        }
        struct whsem_deadline *first = whsem__deadline_first(&whsem__a_eng.deadlines);
        if (first && (!until || first->at < until)) until = first->at;
        bool idle = whsem__a_eng.active == NULL;
        pthread_mutex_unlock(&whsem__a_eng.mu);

        for (int i = 0; i < wk.n; i++) whsem__futex_wake(wk.word[i], wk.count[i]);
        deliver(&f);
        while (dying) {
            struct wmap *m = dying;
            dying = m->active_next;
            whsem__finish_dying(m);
        }

        if (whsem__a_callbacks_waiting()) {
            whsem__a_check_callback_stall();
            if (!until || until > now + STALL_NS) until = now + STALL_NS;
        }
        if (polled && (!until || until > now + POLL_NS)) until = now + POLL_NS;
        if (idle) {
            if (!idle_since) idle_since = now;
            if (now - idle_since >= IDLE_EXIT_NS) {
                pthread_mutex_lock(&whsem__a_eng.mu);
                if (!whsem__a_eng.active && atomic_load(&whsem__a_eng.ctl) == ctl) {
                    whsem__a_eng.dispatcher_running = false;
                    pthread_mutex_unlock(&whsem__a_eng.mu);
                    return NULL;
                }
                continue; /* something arrived: go round with the lock held */
            }
            until = idle_since + IDLE_EXIT_NS;
        } else {
            idle_since = 0;
        }
        struct timespec ts, *tp = whsem__deadline_ts(until, &ts);
        if (!whsem__a_eng.no_waitv) {
            long r = syscall(SYS_futex_waitv, w, n, 0, tp, CLOCK_MONOTONIC);
            if (r < 0 && errno == ENOSYS) whsem__a_eng.no_waitv = true; /* read under the lock next round */
        }
        if (whsem__a_eng.no_waitv) {
            /* Old kernel: our own word only, and poll the semaphores. */
            uint64_t cap = whsem__mono_ns() + POLL_NS;
            whsem__a_private_wait(&whsem__a_eng.ctl, ctl, until && until < cap ? until : cap);
        }
        pthread_mutex_lock(&whsem__a_eng.mu);
    }
}

/* Starts the dispatcher if it is not running (engine lock held). */
whsem_status whsem__a_ensure_dispatcher_locked(void)
{
    if (whsem__a_eng.dispatcher_running) return WHSEM_OK;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&t, &attr, dispatcher, NULL);
    pthread_attr_destroy(&attr);
    if (r != 0) return whsem__fail(WHSEM_E_LIMIT, "cannot start the dispatcher thread: %s", strerror(r));
    whsem__a_eng.dispatcher_running = true;
    return WHSEM_OK;
}

/* ---- fork ------------------------------------------------------------------------- */

void whsem__async_lock_all(void)
{
    pthread_mutex_lock(&whsem__a_eng.mu);
    pthread_mutex_lock(&whsem__a_eng.cb_mu);
    pthread_mutex_lock(&whsem__a_eng.pool_mu);
}

void whsem__async_unlock_all(void)
{
    pthread_mutex_unlock(&whsem__a_eng.pool_mu);
    pthread_mutex_unlock(&whsem__a_eng.cb_mu);
    pthread_mutex_unlock(&whsem__a_eng.mu);
}

/*
 * The child has no dispatcher and no callback threads, and the operations
 * it inherited belong to its parent (whose slot counts their wants): they
 * end, in the child only, with WHSEM_E_WRONG_PROCESS and no callback.
 */
void whsem__async_after_fork_child(void)
{
    for (struct wmap *m = whsem__a_eng.active; m; m = m->active_next) {
        for (struct op *o = m->aq_head, *next; o; o = next) {
            next = o->next;
            o->prev = o->next = NULL;
            o->dl.pos = 0;
            o->cw.obj = NULL; /* the sources forgot their waits already */
            whsem__a_set_detail(o, "the operation was started by the parent process before fork(); "
                          "only the parent can use it");
            atomic_store(&o->status, WHSEM_E_WRONG_PROCESS);
            atomic_store(&o->done, 1);
            o->refs--; /* the engine lets go */
        }
        m->aq_head = m->aq_tail = NULL;
        m->active = false;
        m->async_ops = 0; /* they counted in the parent's slot, not ours */
    }
    whsem__a_eng.active = NULL;
    whsem__deadline_clear(&whsem__a_eng.deadlines);
    for (struct op *o = whsem__a_eng.cb_head; o; o = o->link) o->refs--;
    whsem__a_eng.cb_head = whsem__a_eng.cb_tail = NULL;
    whsem__a_eng.cb_threads = whsem__a_eng.cb_idle = 0;
    memset(whsem__a_eng.cb_in, 0, sizeof whsem__a_eng.cb_in);
    whsem__a_eng.dispatcher_running = false;
    atomic_store(&whsem__a_eng.ctl, 0);
}

static void async_child(void)
{
    whsem__async_after_fork_child();
    whsem__async_unlock_all();
}

static const struct whsem_fork_hooks fork_hooks = {
    WHSEM_FORK_ORDER_ASYNC, whsem__async_lock_all, whsem__async_unlock_all, async_child};

__attribute__((constructor)) static void register_fork_hooks(void) { whsem__on_fork(&fork_hooks); }

