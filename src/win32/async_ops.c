/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous operations on Windows: starting one, and poll, wait, take,
 * cancel and free, and how an operation completes.
 */
#include "accounting.h"
#include "async_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- completion ------------------------------------------------------------------------ */

/* Records why a pending operation ends; see struct op's detail. Without
 * memory for it the status still tells. */
void whsem__aw_set_detail(struct op *o, const char *msg)
{
    if (!o->detail && !(o->detail = malloc(DETAIL_BYTES))) return;
    snprintf(o->detail, DETAIL_BYTES, "%s", msg);
}

const char *whsem__aw_detail_of(const struct op *o) { return o->detail ? o->detail : ""; }

/*
 * Makes an operation final (no engine or segment lock held) and hands it
 * to its callback, its queue, or nobody. An OK operation carries `ticket`,
 * already a live handle; if its owner freed it meanwhile the ticket goes
 * straight back. The engine's reference keeps the object until done.
 */
void whsem__aw_complete(struct op *o, whsem_status status, uint64_t ticket)
{
    AcquireSRWLockExclusive(&o->mu);
    bool release_now = o->freed && ticket;
    o->ticket = release_now ? 0 : ticket;
    /* Order matters, as on Linux: final for whsem_op_poll first (whoever
     * pops it from a queue reads it), then posted, then `done` for
     * whsem_op_wait (which returns only once the posting happened). */
    atomic_store(&o->status, status);
    bool callback = o->cb != NULL;
    struct queue_obj *q = callback || o->freed ? NULL : o->q;
    uint64_t h = o->h, tag = o->tag;
    ReleaseSRWLockExclusive(&o->mu);
    if (q) whsem__aw_queue_post(q, h, tag);
    AcquireSRWLockExclusive(&o->mu);
    o->done = true;
    WakeAllConditionVariable(&o->cv);
    ReleaseSRWLockExclusive(&o->mu);
    if (release_now) whsem_release(ticket);
    if (callback) {
        whsem__aw_queue_callback(o); /* the engine's reference goes with it */
        return;
    }
    AcquireSRWLockExclusive(&o->mu);
    whsem__aw_op_unref_unlock(o);
}

/* Turns an operation's final status into its delivery: a ticket handle for
 * an OK one (given back if none can be made), then completion. The
 * mapping use the pending operation held is dropped last. */
void whsem__aw_deliver_one(struct op *o, whsem_status st)
{
    struct wmap *m = o->m;
    uint64_t ticket = 0;
    if (st == WHSEM_OK) {
        ticket = whsem__h_alloc(HK_TICKET, m, 0, &st);
        if (ticket) {
            whsem__use(m); /* the ticket's own use */
        } else {
            whsem__aw_set_detail(o, whsem_last_error());
            whsem__give_back_unpublished(m);
        }
    }
    whsem__cancel_unregister(&o->cw);
    whsem__aw_complete(o, st, ticket);
    whsem__unuse(m);
}

/* ---- the public functions ---------------------------------------------------------------- */

static void notify_op(struct cwait *w)
{
    struct op *o = w->ctx;
    atomic_store(&o->cancel_req, true);
    whsem__aw_poke_endings();
}

/* Makes a pending operation known to the dispatcher; on failure it is
 * taken back (its want undone) and ends with the error. */
whsem_status whsem__aw_enqueue(struct op *o, int32_t check_ms)
{
    struct wmap *m = o->m;
    AcquireSRWLockExclusive(&whsem__aw_eng.mu);
    whsem_status st = whsem__aw_ensure_dispatcher_locked();
    if (st == WHSEM_OK) {
        if (!m->active) {
            m->active = true;
            m->async_check_ms = check_ms;
            m->active_next = whsem__aw_eng.active;
            whsem__aw_eng.active = m;
        } else if (check_ms >= 0 && (m->async_check_ms < 0 || check_ms < m->async_check_ms)) {
            m->async_check_ms = check_ms;
        }
        o->prev = m->aq_tail;
        o->next = NULL;
        if (m->aq_tail) m->aq_tail->next = o;
        else m->aq_head = o;
        m->aq_tail = o;
        if (o->dl.at && !whsem__deadline_push(&whsem__aw_eng.deadlines, &o->dl)) {
            o->dl.at = whsem__w_mono_ns(); /* cannot time it: end it */
            m->has_expired = true;
        }
    }
    ReleaseSRWLockExclusive(&whsem__aw_eng.mu);
    if (st == WHSEM_OK) {
        whsem__aw_poke();
        return WHSEM_OK;
    }
    whsem__aw_set_detail(o, whsem_last_error()); /* before the lock below can say something else */
    /* Not counted as waiting any more: a grant it received goes back. */
    if (whsem__lock(m) == WHSEM_OK) {
        struct wseg_slot *s = &m->slots[m->slot];
        whsem__want_less(m->hdr, s, false, whsem__w_mono_ns());
        int32_t w = s->grants > s->want ? (s->grants--, whsem__give_back_locked(m)) : -1;
        whsem__unlock(m);
        if (w >= 0) whsem__wake_slot(m, (uint32_t)w, 1);
    }
    return st;
}

whsem_status whsem__aw_start(whsem_sem sem, int64_t timeout_ms, whsem_cancel cancel, whsem_callback cb,
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
    struct wmap *m = whsem__h_use(sem, HK_SEM);
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    struct op *o = whsem__aw_op_get();
    if (!o) {
        whsem__unuse(m);
        return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for an operation");
    }
    AcquireSRWLockExclusive(&o->mu);
    atomic_store(&o->status, WHSEM_PENDING);
    o->done = false;
    o->ticket = 0;
    o->taken = o->freed = false;
    o->refs = 2; /* the caller's handle, and the engine until delivered */
    o->cb = cb;
    o->user_data = user_data;
    o->q = q;
    o->tag = tag;
    o->m = m;
    o->sem = sem;
    o->sem_e = e;
    o->dl.at = timeout_ms > 0 ? whsem__w_mono_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    o->dl.pos = 0;
    atomic_store(&o->cancel_req, false);
    o->cancel = cancel;
    o->cw = (struct cwait){.notify = notify_op, .ctx = o};
    o->prev = o->next = NULL;
    if (o->detail) o->detail[0] = 0;
    ReleaseSRWLockExclusive(&o->mu);
    whsem_status st;
    uint64_t h = whsem__h_alloc(HK_OP, o, 0, &st);
    if (!h) {
        whsem__aw_op_put(o);
        whsem__unuse(m);
        return st;
    }
    AcquireSRWLockExclusive(&o->mu);
    o->h = o->cb_handle = h;
    ReleaseSRWLockExclusive(&o->mu);
    if (q) {
        AcquireSRWLockExclusive(&q->mu);
        q->refs++;
        ReleaseSRWLockExclusive(&q->mu);
    }

    /* Settle at once what can be settled at once; the callback still runs
     * on a library thread, never in here. The call's use of m becomes the
     * pending operation's (or goes to whsem__aw_deliver_one, which drops it). */
    whsem_status now_status = WHSEM_PENDING;
    int32_t check_ms = (int32_t)atomic_load(&e->aux);
    if (canceled) {
        now_status = WHSEM_CANCELED;
    } else if (cancel && (st = whsem__cancel_register(cancel, &o->cw)) != WHSEM_OK) {
        now_status = st; /* WHSEM_CANCELED, or the source died meanwhile */
        if (st < 0) whsem__aw_set_detail(o, whsem_last_error());
    }
    if (now_status == WHSEM_PENDING) {
        st = whsem__lock(m);
        if (st != WHSEM_OK) {
            now_status = st;
            whsem__aw_set_detail(o, whsem_last_error());
        } else {
            struct wseg_header *hd = m->hdr;
            struct wseg_slot *s = &m->slots[m->slot];
            if (hd->free > 0) {
                hd->free--;
                whsem__take(s);
                hd->acquisitions++;
                now_status = WHSEM_OK;
            } else if (timeout_ms == 0) {
                now_status = WHSEM_TIMEOUT;
                if (whsem__take_grant(s)) {
                    now_status = WHSEM_OK;
                } else if (whsem__scan_due(m, check_ms, whsem__w_mono_ns()) &&
                           whsem__scan_locked(m, false) == WHSEM_OK && hd->free > 0) {
                    hd->free--;
                    whsem__take(s);
                    hd->acquisitions++;
                    now_status = WHSEM_OK;
                }
            } else {
                whsem__want_more(hd, s, whsem__w_mono_ns());
            }
            whsem__unlock(m);
        }
        /* enqueue records why it failed */
        if (now_status == WHSEM_PENDING && (st = whsem__aw_enqueue(o, check_ms)) != WHSEM_OK) now_status = st;
    }
    if (now_status != WHSEM_PENDING) whsem__aw_deliver_one(o, now_status);
    *out_op = h;
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_acquire_async(whsem_sem sem, int64_t timeout_ms,
                                                      whsem_cancel cancel, whsem_callback cb,
                                                      void *user_data, whsem_op *out_op)
{
    return whsem__aw_start(sem, timeout_ms, cancel, cb, user_data, NULL, 0, out_op);
}

/* The operation behind a live handle, with its lock held, or NULL. */
struct op *whsem__aw_lock_op(whsem_op op)
{
    struct hentry *e = whsem__h_lookup(op, HK_OP);
    if (!e) return NULL;
    struct op *o = e->ptr;
    AcquireSRWLockExclusive(&o->mu);
    if (o->h != op) {
        ReleaseSRWLockExclusive(&o->mu);
        return NULL;
    }
    return o;
}

/* The final status st of an operation (its lock held), with its detail
 * made the calling thread's message unless it succeeded. */
whsem_status whsem__aw_report_locked(struct op *o, whsem_status st)
{
    if (st == WHSEM_OK || st == WHSEM_PENDING) return st;
    return whsem__fail(st, "%s", whsem__aw_detail_of(o));
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_poll(whsem_op op)
{
    struct hentry *e = whsem__h_lookup(op, HK_OP);
    if (!e) return whsem__invalid_handle(op, "operation");
    struct op *o = e->ptr;
    whsem_status st = atomic_load(&o->status);
    if (atomic_load(&e->tag) != op) return whsem__invalid_handle(op, "operation");
    if (st == WHSEM_OK || st == WHSEM_PENDING) return st;
    /* Ended otherwise: the slow path, under the lock the detail needs. */
    if (!(o = whsem__aw_lock_op(op))) return whsem__invalid_handle(op, "operation");
    st = whsem__aw_report_locked(o, atomic_load(&o->status));
    ReleaseSRWLockExclusive(&o->mu);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_wait(whsem_op op, int64_t timeout_ms)
{
    if (!whsem__timeout_ok(timeout_ms)) return whsem__bad_timeout(timeout_ms);
    struct op *o = whsem__aw_lock_op(op);
    if (!o) return whsem__invalid_handle(op, "operation");
    uint64_t deadline = timeout_ms > 0 ? whsem__w_mono_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    whsem_status st;
    for (;;) {
        if (o->h != op) {
            ReleaseSRWLockExclusive(&o->mu);
            return whsem__invalid_handle(op, "operation"); /* freed while we waited */
        }
        /* `done`, not the status: set once a queued operation is posted. */
        st = o->done ? atomic_load(&o->status) : WHSEM_PENDING;
        if (o->done || timeout_ms == 0) break;
        uint64_t now = whsem__w_mono_ns();
        if (deadline && now >= deadline) break;
        SleepConditionVariableSRW(&o->cv, &o->mu, whsem__w_wait_ms(deadline, now), 0);
    }
    st = whsem__aw_report_locked(o, st);
    ReleaseSRWLockExclusive(&o->mu);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_take_ticket(whsem_op op, whsem_ticket *out_ticket)
{
    if (!out_ticket) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_ticket is NULL");
    *out_ticket = 0;
    struct op *o = whsem__aw_lock_op(op);
    if (!o) return whsem__invalid_handle(op, "operation");
    whsem_status st = atomic_load(&o->status);
    if (st == WHSEM_OK) {
        if (o->taken) {
            st = whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                             "the ticket of operation 0x%llx was already taken",
                             (unsigned long long)op);
        } else {
            o->taken = true;
            *out_ticket = o->ticket;
            o->ticket = 0;
        }
    } else {
        st = whsem__aw_report_locked(o, st);
    }
    ReleaseSRWLockExclusive(&o->mu);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_cancel(whsem_op op)
{
    struct op *o = whsem__aw_lock_op(op);
    if (!o) return whsem__invalid_handle(op, "operation");
    bool pending = atomic_load(&o->status) == WHSEM_PENDING;
    if (pending) atomic_store(&o->cancel_req, true);
    ReleaseSRWLockExclusive(&o->mu);
    if (pending) whsem__aw_poke_endings();
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_free(whsem_op op)
{
    struct op *o = whsem__aw_lock_op(op);
    if (!o || !whsem__h_kill(op)) {
        if (o) ReleaseSRWLockExclusive(&o->mu);
        return whsem__invalid_handle(op, "operation");
    }
    o->h = 0;
    o->freed = true;
    WakeAllConditionVariable(&o->cv); /* waiters in whsem_op_wait look again */
    bool pending = atomic_load(&o->status) == WHSEM_PENDING;
    uint64_t ticket = o->ticket;
    o->ticket = 0;
    if (pending) atomic_store(&o->cancel_req, true);
    whsem__aw_op_unref_unlock(o);
    if (pending) whsem__aw_poke_endings();
    if (ticket) whsem_release(ticket);
    return WHSEM_OK;
}
