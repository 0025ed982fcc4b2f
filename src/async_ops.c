/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous operations: starting one, and poll, wait, take, cancel and
 * free, and how an operation completes (its callback, its queue, or
 * nobody).
 */
#include "async_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- completion ---------------------------------------------------------------- */

/*
 * Makes an operation final (no engine or segment lock held) and hands it
 * to its callback, its queue, or nobody. An OK operation carries `ticket`,
 * already counted in the slot and published; if its owner freed it
 * meanwhile the ticket goes straight back. The engine's reference keeps
 * the object from being recycled until this is done.
 */
void whsem__a_complete(struct op *o, whsem_status status, uint64_t ticket, struct whsem_cb_batch *later)
{
    whsem__mutex_lock(&o->mu);
    bool release_now = o->freed && ticket;
    o->ticket = release_now ? 0 : ticket;
    /* Order matters: final for whsem_op_poll first (whoever pops it from a
     * queue reads it), then posted, then `done` for whsem_op_wait (which
     * returns only once the posting happened), then the callback. */
    atomic_store_explicit(&o->status, status, memory_order_release);
    bool callback = o->cb != NULL;
    struct queue_obj *q = callback || o->freed ? NULL : o->q;
    uint64_t h = o->h, tag = o->tag;
    whsem__mutex_unlock(&o->mu);
    if (q) whsem__a_queue_post(q, h, tag);
    /* A wake only for a thread that may sleep on `done`: it counts itself
     * before it looks at `done` (whsem_op_wait), we store before we look
     * at the count. */
    atomic_store(&o->done, 1);
    if (atomic_load(&o->done_waiters)) whsem__p_word_wake_all(&o->done);
    if (release_now) o->be->release(ticket); /* o is the engine's till the end */
    if (callback && later) { /* the engine's reference goes with it */
        o->link = NULL;
        if (later->tail) later->tail->link = o;
        else later->head = o;
        later->tail = o;
        return;
    }
    if (callback) {
        whsem__a_queue_callback(o);
        return;
    }
    whsem__mutex_lock(&o->mu);
    whsem__a_op_unref_unlock(o);
}

/* ---- the public functions ------------------------------------------------------------ */

/* Whether a pending operation is over without a ticket, for every
 * backend's server of operations: *why is its final status and *detail
 * the message that explains it, or NULL when the status says it all (or
 * someone recorded the reason already). A backend that keeps deadlines
 * of its own sees WHSEM_TIMEOUT only through them (o->expired is the
 * engine's). */
bool whsem__a_op_ended(struct op *o, whsem_status *why, const char **detail)
{
    *why = WHSEM_CANCELED;
    *detail = NULL;
    if (atomic_load_explicit(&o->cancel_req, memory_order_acquire)) return true;
    if (o->cancel && whsem__cancel_triggered(&o->cw)) return true;
    if (atomic_load_explicit(&o->sem_e->tag, memory_order_acquire) != o->sem) {
        *detail = "the semaphore handle was closed while waiting"; /* as whsem_acquire says */
        return true;
    }
    if (o->q && atomic_load(&o->q->freed)) {
        *detail = "the completion queue was freed while waiting";
        return true;
    }
    *why = WHSEM_TIMEOUT;
    return o->expired;
}

/* Whoever serves operations of be looks at their cancel_req. */
static void poke_endings(const struct whsem_backend *be)
{
    if (be->async_poke) be->async_poke();
    else whsem__a_poke_endings();
}

static void notify_op(struct cwait *w)
{
    struct op *o = w->ctx;
    atomic_store_explicit(&o->cancel_req, true, memory_order_release);
    poke_endings(o->be);
}

whsem_status whsem__a_start(whsem_sem sem, int64_t timeout_ms, whsem_cancel cancel, whsem_callback cb,
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
    struct whsem_semobj *obj = (struct whsem_semobj *)whsem__protect(e, sem, &saved);
    if (!obj) return whsem__invalid_handle(sem, "semaphore");
    const struct whsem_backend *be = obj->be;
    whsem_status st = be->async_hold(obj);
    if (st != WHSEM_OK) {
        whsem__unprotect(saved);
        return st;
    }
    struct op *o = whsem__a_op_get();
    if (!o) st = whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for an operation");
    uint64_t h = 0;
    if (o) {
        h = whsem__h_reserve(HK_OP, &st);
        if (!h) {
            whsem__a_op_put(o);
            o = NULL;
        }
    }
    if (!o) {
        be->async_unhold(obj);
        whsem__unprotect(saved);
        return st;
    }
    whsem__mutex_lock(&o->mu);
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
    o->pgen = whsem__p_pgen();
    o->obj = obj;
    o->be = be;
    o->m = NULL;
    o->sem = sem;
    o->sem_e = e;
    o->dl.at = timeout_ms > 0 ? whsem__p_mono_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    atomic_store(&o->cancel_req, false);
    o->expired = false;
    o->counted = false;
    o->wait_began = 0;
    o->queued = false;
    o->cancel = cancel;
    o->cw = (struct cwait){.notify = notify_op, .ctx = o};
    o->prev = o->next = NULL;
    o->dl.pos = 0;
    if (o->detail) o->detail[0] = 0;
    whsem__mutex_unlock(&o->mu);
    if (q) {
        whsem__mutex_lock(&q->mu);
        q->refs++;
        whsem__mutex_unlock(&q->mu);
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
        if (st < 0) whsem__a_set_detail(o, whsem_last_error());
    }
    if (now_status == WHSEM_PENDING) now_status = be->async_start(o, timeout_ms, check_ms);
    if (now_status != WHSEM_PENDING) be->async_end(o, now_status);
    whsem__unprotect(saved);
    *out_op = h;
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_acquire_async(whsem_sem sem, int64_t timeout_ms,
                                                      whsem_cancel cancel, whsem_callback cb,
                                                      void *user_data, whsem_op *out_op)
{
    return whsem__a_start(sem, timeout_ms, cancel, cb, user_data, NULL, 0, out_op);
}

WHSEM_API whsem_status WHSEM_CALL whsem_acquire_queued(whsem_sem sem, int64_t timeout_ms,
                                                       whsem_cancel cancel, whsem_queue queue,
                                                       uint64_t tag, whsem_op *out_op)
{
    if (out_op) *out_op = 0;
    struct queue_obj *q = whsem__a_lock_queue(queue);
    if (!q) return whsem__invalid_handle(queue, "queue");
    q->refs++; /* held across whsem__a_start(), which takes its own reference */
    whsem__mutex_unlock(&q->mu);
    whsem_status st = whsem__a_start(sem, timeout_ms, cancel, NULL, NULL, q, tag, out_op);
    whsem__a_queue_unref(q);
    return st;
}

/* The operation behind a live handle, with its mutex held, or NULL. */
struct op *whsem__a_lock_op(whsem_op op)
{
    struct hentry *e = whsem__h_lookup(op, HK_OP);
    if (!e) return NULL;
    struct op *o = atomic_load_explicit(&e->ptr, memory_order_acquire);
    whsem__mutex_lock(&o->mu);
    if (o->h != op) {
        whsem__mutex_unlock(&o->mu);
        return NULL;
    }
    return o;
}

/* An operation's final status when it is not WHSEM_OK, with its detail
 * made the calling thread's message: the slow path of poll and wait, which
 * read the status without the operation's mutex. */
static whsem_status report_ended(whsem_op op)
{
    struct op *o = whsem__a_lock_op(op);
    if (!o) return whsem__invalid_handle(op, "operation"); /* freed meanwhile */
    whsem_status st = whsem__fail(atomic_load(&o->status), "%s", whsem__a_detail_of(o));
    whsem__mutex_unlock(&o->mu);
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
    uint64_t deadline = timeout_ms > 0 ? whsem__p_mono_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    bool helped = false;
    for (;;) {
        /* `done`, not the status: it is set once a queued operation has
         * been posted (see whsem__a_complete()). */
        uint32_t done = atomic_load_explicit(&o->done, memory_order_acquire);
        whsem_status st = atomic_load_explicit(&o->status, memory_order_acquire);
        if (atomic_load_explicit(&e->tag, memory_order_acquire) != op)
            return whsem__invalid_handle(op, "operation");
        if (done) return st == WHSEM_OK ? st : report_ended(op);
        if (timeout_ms == 0) return WHSEM_PENDING;
        if (deadline && whsem__p_mono_ns() >= deadline) return WHSEM_PENDING;
        /* Its backend may let this thread end it itself, saving the
         * wake-up of whoever would have (once: it says when it is over). */
        const struct whsem_backend *be = o->be;
        if (!helped && be->async_wait) {
            helped = true;
            if (be->async_wait(o, op, deadline)) continue;
        }
        atomic_fetch_add(&o->done_waiters, 1);
        if (!atomic_load(&o->done)) whsem__p_word_wait(&o->done, 0, deadline);
        atomic_fetch_sub(&o->done_waiters, 1);
    }
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_take_ticket(whsem_op op, whsem_ticket *out_ticket)
{
    if (!out_ticket) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_ticket is NULL");
    *out_ticket = 0;
    struct op *o = whsem__a_lock_op(op);
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
        whsem__fail(st, "%s", whsem__a_detail_of(o));
    }
    whsem__mutex_unlock(&o->mu);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_cancel(whsem_op op)
{
    struct op *o = whsem__a_lock_op(op);
    if (!o) return whsem__invalid_handle(op, "operation");
    bool pending = atomic_load(&o->status) == WHSEM_PENDING;
    if (pending) atomic_store(&o->cancel_req, true);
    const struct whsem_backend *be = o->be;
    whsem__mutex_unlock(&o->mu);
    if (pending) poke_endings(be);
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_free(whsem_op op)
{
    struct op *o = whsem__a_lock_op(op);
    struct hentry *e = o ? whsem__h_entry(op) : NULL;
    if (!o || !whsem__h_kill_cas(e, op)) {
        if (o) whsem__mutex_unlock(&o->mu);
        return whsem__invalid_handle(op, "operation");
    }
    o->h = 0;
    o->freed = true;
    /* Waiters in whsem_op_wait look at the handle again. */
    whsem__p_word_wake_all(&o->done);
    bool pending = atomic_load(&o->status) == WHSEM_PENDING;
    uint64_t ticket = o->ticket;
    o->ticket = 0;
    if (pending) atomic_store(&o->cancel_req, true);
    const struct whsem_backend *be = o->be; /* o may be recycled once let go */
    whsem__a_op_unref_unlock(o);
    if (pending) poke_endings(be);
    if (ticket) be->release(ticket);
    whsem__h_recycle(op);
    return WHSEM_OK;
}

