/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous acquisition on Windows: operations, the dispatcher,
 * callback threads and completion queues.
 *
 * An operation waits exactly like a blocking acquire (it counts in its
 * slot's `want`) but nobody sleeps for it: one dispatcher thread per
 * process sleeps in WaitForMultipleObjects on its own event (new
 * operation, cancel, close, free) and on the slot wake semaphore of every
 * mapping with pending operations. Woken, it settles each such mapping
 * under its segment mutex: grants and free tickets go to live operations
 * oldest first, then the operations that ended (canceled, closed, timed
 * out) leave, then grants nobody here can use go back. Granting and ending
 * are decided in that one place under that one mutex, so a ticket is
 * either delivered or returned, never lost.
 *
 * Threads: the dispatcher (it exits after 2 s idle) and callback threads:
 * one, and another only while every callback thread has been inside one
 * callback for a while without using the CPU (blocked), up to a cap.
 *
 * Operation and queue objects are recycled through pools, never freed, so
 * a stale handle can always be looked at; each records its live handle,
 * checked under its own lock.
 */
#include "accounting.h"
#include "async_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct whsem_wengine whsem__aw_eng = {.mu = SRWLOCK_INIT, .cb_mu = SRWLOCK_INIT, .cb_cv = CONDITION_VARIABLE_INIT,
         .pool_mu = SRWLOCK_INIT};
static INIT_ONCE ctl_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK ctl_init(PINIT_ONCE once, void *param, void **ctx)
{
    (void)once, (void)param, (void)ctx;
    whsem__aw_eng.ctl = CreateEventW(NULL, FALSE, FALSE, NULL);
    return whsem__aw_eng.ctl != NULL;
}

void whsem__aw_poke(void)
{
    atomic_fetch_add(&whsem__aw_eng.ctl_seq, 1);
    if (InitOnceExecuteOnce(&ctl_once, ctl_init, NULL, NULL)) SetEvent(whsem__aw_eng.ctl);
}

/* Something may have ended pending operations early: the dispatcher looks
 * at every pending operation once. */
void whsem__aw_poke_endings(void)
{
    atomic_fetch_add(&whsem__aw_eng.endings, 1);
    whsem__aw_poke();
}

void whsem__async_poke(void) { whsem__aw_poke_endings(); }

/* ---- pools ------------------------------------------------------------------------ */

struct op *whsem__aw_op_get(void)
{
    AcquireSRWLockExclusive(&whsem__aw_eng.pool_mu);
    struct op *o = whsem__aw_eng.op_pool;
    if (o) whsem__aw_eng.op_pool = o->link;
    ReleaseSRWLockExclusive(&whsem__aw_eng.pool_mu);
    if (!o) o = calloc(1, sizeof *o); /* a zeroed SRWLOCK and CONDITION_VARIABLE are ready */
    return o;
}

void whsem__aw_op_put(struct op *o)
{
    AcquireSRWLockExclusive(&whsem__aw_eng.pool_mu);
    o->link = whsem__aw_eng.op_pool;
    whsem__aw_eng.op_pool = o;
    ReleaseSRWLockExclusive(&whsem__aw_eng.pool_mu);
}

void whsem__aw_queue_put(struct queue_obj *q)
{
    AcquireSRWLockExclusive(&whsem__aw_eng.pool_mu);
    q->link = whsem__aw_eng.q_pool;
    whsem__aw_eng.q_pool = q;
    ReleaseSRWLockExclusive(&whsem__aw_eng.pool_mu);
}

/* Drops a queue reference (its lock held, and released here). */
void whsem__aw_queue_unref_unlock(struct queue_obj *q)
{
    bool last = --q->refs == 0;
    if (last) {
        CloseHandle(q->event);
        q->event = NULL;
        free(q->ring);
        q->ring = NULL;
        q->head = q->n = q->cap = 0;
    }
    ReleaseSRWLockExclusive(&q->mu);
    if (last) whsem__aw_queue_put(q);
}

void whsem__aw_queue_unref(struct queue_obj *q)
{
    AcquireSRWLockExclusive(&q->mu);
    whsem__aw_queue_unref_unlock(q);
}

/* Drops an operation reference (its lock held, and released here). */
void whsem__aw_op_unref_unlock(struct op *o)
{
    bool last = --o->refs == 0;
    struct queue_obj *q = last ? o->q : NULL;
    if (last) o->q = NULL;
    ReleaseSRWLockExclusive(&o->mu);
    if (q) whsem__aw_queue_unref(q);
    if (last) whsem__aw_op_put(o);
}

/* ---- the dispatcher ------------------------------------------------------------------------ */

/* Whether a pending operation is over without a ticket: *why is its final
 * status and *detail the message that explains it, or NULL when the status
 * says it all (or someone recorded the reason already). */
static bool op_ended(struct op *o, uint64_t now, whsem_status *why, const char **detail)
{
    *why = WHSEM_CANCELED;
    *detail = NULL;
    if (atomic_load(&o->cancel_req)) return true;
    if (o->cancel && whsem__cancel_triggered(&o->cw)) return true;
    if (atomic_load(&o->sem_e->tag) != o->sem) {
        *detail = "the semaphore handle was closed while waiting"; /* as whsem_acquire says */
        return true;
    }
    if (o->q && atomic_load(&o->q->freed)) {
        *detail = "the completion queue was freed while waiting";
        return true;
    }
    *why = WHSEM_TIMEOUT;
    return o->dl.at && now >= o->dl.at;
}

static void unlink_pending(struct wmap *m, struct op *o)
{
    if (o->prev) o->prev->next = o->next;
    else m->aq_head = o->next;
    if (o->next) o->next->prev = o->prev;
    else m->aq_tail = o->prev;
    o->prev = o->next = NULL;
    whsem__deadline_remove(&whsem__aw_eng.deadlines, &o->dl);
}

static void finish(struct op **batch, struct op *o, whsem_status st, const char *detail)
{
    o->final = st;
    if (detail) whsem__aw_set_detail(o, detail);
    o->link = *batch;
    *batch = o;
}

/*
 * Settles one mapping's pending operations under its segment mutex
 * (engine lock held). sweep: look at every operation for an ending (else
 * only at those of a mapping whose operation reached its deadline). Returns when the next abandonment scan
 * is due (0: never).
 */
static void wake_now(void *ctx, struct wmap *m, int32_t slot)
{
    (void)ctx;
    LONG grants = (LONG)m->slots[slot].grants;
    whsem__wake_slot(m, (uint32_t)slot, (uint32_t)slot == m->slot && grants > 1 ? grants : 1);
}

static uint64_t settle(struct wmap *m, uint64_t now, bool sweep, struct op **batch)
{
    whsem_status err = whsem__lock(m);
    if (err != WHSEM_OK) {
        /* The segment is beyond use: everything ends with that error,
         * and with the message this thread was just given. */
        while (m->aq_head) {
            struct op *o = m->aq_head;
            unlink_pending(m, o);
            finish(batch, o, err, whsem_last_error());
        }
        return 0;
    }
    struct wseg_header *h = m->hdr;
    struct wseg_slot *s = &m->slots[m->slot];
    bool scanned = false;
    whsem_status why;
    const char *detail;
again:
    /* Grants and free tickets first, to live operations oldest first. */
    for (struct op *o = m->aq_head, *next; o && (s->grants > 0 || h->free > 0); o = next) {
        next = o->next;
        if (op_ended(o, now, &why, &detail)) continue;
        if (!whsem__take_grant(s)) {
            h->free--;
            whsem__take(s);
            h->acquisitions++;
        }
        whsem__want_less(h, s, true, now);
        unlink_pending(m, o);
        finish(batch, o, WHSEM_OK, NULL);
    }
    /* Then the ones that are over without a ticket. */
    for (struct op *o = (sweep || m->has_expired) ? m->aq_head : NULL, *next; o; o = next) {
        next = o->next;
        if (op_ended(o, now, &why, &detail)) {
            whsem__want_less(h, s, false, now);
            unlink_pending(m, o);
            finish(batch, o, why, detail);
        }
    }
    m->has_expired = false;
    /* We are not waiting on our slot now: wake-ups of it go to waits that
     * are, one per grant left over. */
    whsem__settle_leftovers_locked(m, wake_now, NULL);
    if (m->aq_head && !scanned && whsem__scan_due(m, m->async_check_ms, now)) {
        scanned = true;
        if (whsem__scan_locked(m, false) == WHSEM_OK) goto again;
    }
    uint64_t next_scan = 0;
    if (m->async_check_ms >= 0) {
        uint64_t period = (uint64_t)m->async_check_ms * 1000000u;
        next_scan = h->last_scan_ns + period;
        if (next_scan <= now) next_scan = now + period;
    }
    whsem__unlock(m);
    return next_scan;
}

static void deactivate(struct wmap *m)
{
    for (struct wmap **pp = &whsem__aw_eng.active; *pp; pp = &(*pp)->active_next)
        if (*pp == m) {
            *pp = m->active_next;
            break;
        }
    m->active = false;
    m->active_next = NULL;
}

static DWORD WINAPI dispatcher(void *arg)
{
    (void)arg;
    uint64_t idle_since = 0;
    AcquireSRWLockExclusive(&whsem__aw_eng.mu);
    for (;;) {
        uint64_t now = whsem__w_mono_ns();
        uint32_t seq = atomic_load(&whsem__aw_eng.ctl_seq);
        uint32_t endings = atomic_load(&whsem__aw_eng.endings);
        bool sweep = endings != whsem__aw_eng.swept_endings;
        whsem__aw_eng.swept_endings = endings;
        for (struct whsem_deadline *d;
             (d = whsem__deadline_first(&whsem__aw_eng.deadlines)) && d->at <= now;) {
            whsem__deadline_remove(&whsem__aw_eng.deadlines, d);
            whsem__aw_op_of(d)->m->has_expired = true;
        }
        struct op *batch = NULL;
        HANDLE objs[MAXIMUM_WAIT_OBJECTS];
        DWORD n = 0;
        objs[n++] = whsem__aw_eng.ctl;
        uint64_t until = 0;
        bool polled = false;
        for (struct wmap *m = whsem__aw_eng.active, *next; m; m = next) {
            next = m->active_next;
            uint64_t next_scan = settle(m, now, sweep, &batch);
            if (!m->aq_head) {
                deactivate(m);
                continue;
            }
            /* Its pending operations hold uses of m, and only this thread
             * ends them: the handle stays valid while we wait on it. */
            if (n < MAXIMUM_WAIT_OBJECTS) objs[n++] = whsem__own_wake(m);
            else polled = true;
            if (next_scan && (!until || next_scan < until)) until = next_scan;
        }
        struct whsem_deadline *first = whsem__deadline_first(&whsem__aw_eng.deadlines);
        if (first && (!until || first->at < until)) until = first->at;
        bool idle = whsem__aw_eng.active == NULL;
        ReleaseSRWLockExclusive(&whsem__aw_eng.mu);

        while (batch) {
            struct op *o = batch;
            batch = o->link;
            whsem__aw_deliver_one(o, o->final);
        }
        if (whsem__aw_check_callbacks() && (!until || until > now + STALL_NS)) until = now + STALL_NS;
        if (polled && (!until || until > now + POLL_NS)) until = now + POLL_NS;
        if (idle) {
            if (!idle_since) idle_since = now;
            if (now - idle_since >= IDLE_EXIT_NS) {
                AcquireSRWLockExclusive(&whsem__aw_eng.mu);
                if (!whsem__aw_eng.active && atomic_load(&whsem__aw_eng.ctl_seq) == seq) {
                    whsem__aw_eng.dispatcher_running = false;
                    ReleaseSRWLockExclusive(&whsem__aw_eng.mu);
                    return 0;
                }
                continue; /* something arrived: go round with the lock held */
            }
            if (!until || until > idle_since + IDLE_EXIT_NS) until = idle_since + IDLE_EXIT_NS;
        } else {
            idle_since = 0;
        }
        WaitForMultipleObjects(n, objs, FALSE, whsem__w_wait_ms(until, now));
        AcquireSRWLockExclusive(&whsem__aw_eng.mu);
    }
}

/* Starts the dispatcher if it is not running (engine lock held). */
whsem_status whsem__aw_ensure_dispatcher_locked(void)
{
    if (whsem__aw_eng.dispatcher_running) return WHSEM_OK;
    if (!InitOnceExecuteOnce(&ctl_once, ctl_init, NULL, NULL))
        return whsem__fail_win32(GetLastError(), "cannot create the dispatcher's event", NULL);
    whsem__w_pin_module();
    HANDLE t = CreateThread(NULL, 0, dispatcher, NULL, 0, NULL);
    if (!t) return whsem__fail(WHSEM_E_LIMIT, "cannot start the dispatcher thread (error %lu)",
                               (unsigned long)GetLastError());
    CloseHandle(t);
    whsem__aw_eng.dispatcher_running = true;
    return WHSEM_OK;
}
