/* SPDX-License-Identifier: MIT */
/*
 * Completion queues on Windows: an event that is set while anything is
 * posted.
 */
#include "async_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void whsem__aw_queue_post(struct queue_obj *q, uint64_t op, uint64_t tag)
{
    AcquireSRWLockExclusive(&q->mu);
    if (!atomic_load(&q->freed)) {
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
        if (q->n < q->cap) { /* else out of memory: whsem_op_poll still works */
            q->ring[(q->head + q->n++) % q->cap] = (struct qent){op, tag};
            if (q->n == 1) SetEvent(q->event);
        }
    }
    ReleaseSRWLockExclusive(&q->mu);
}


/* ---- completion queues -------------------------------------------------------------------- */

static struct queue_obj *lock_queue(whsem_queue queue)
{
    struct hentry *e = whsem__h_lookup(queue, HK_QUEUE);
    if (!e) return NULL;
    struct queue_obj *q = e->ptr;
    AcquireSRWLockExclusive(&q->mu);
    if (q->h != queue) {
        ReleaseSRWLockExclusive(&q->mu);
        return NULL;
    }
    return q;
}

WHSEM_API whsem_status WHSEM_CALL whsem_queue_new(whsem_queue *out_queue)
{
    if (!out_queue) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_queue is NULL");
    *out_queue = 0;
    AcquireSRWLockExclusive(&whsem__aw_eng.pool_mu);
    struct queue_obj *q = whsem__aw_eng.q_pool;
    if (q) whsem__aw_eng.q_pool = q->link;
    ReleaseSRWLockExclusive(&whsem__aw_eng.pool_mu);
    if (!q && !(q = calloc(1, sizeof *q)))
        return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for a queue");
    HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!ev) {
        whsem__aw_queue_put(q);
        return whsem__fail_win32(GetLastError(), "cannot create an event for", L"a queue");
    }
    AcquireSRWLockExclusive(&q->mu);
    q->event = ev;
    atomic_store(&q->freed, false);
    q->refs = 1;
    q->head = q->n = 0;
    ReleaseSRWLockExclusive(&q->mu);
    whsem_status st;
    uint64_t h = whsem__h_alloc(HK_QUEUE, q, 0, &st);
    if (!h) {
        CloseHandle(ev);
        whsem__aw_queue_put(q);
        return st;
    }
    AcquireSRWLockExclusive(&q->mu);
    q->h = h;
    ReleaseSRWLockExclusive(&q->mu);
    *out_queue = h;
    return WHSEM_OK;
}

/*
 * Windows has no file descriptor to offer: an event loop waits on the
 * queue's event HANDLE instead (whsem_queue_handle).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_queue_fd(whsem_queue queue, int32_t *out_fd)
{
    if (!out_fd) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_fd is NULL");
    *out_fd = -1; /* no descriptor, as on Linux */
    struct queue_obj *q = lock_queue(queue);
    if (!q) return whsem__invalid_handle(queue, "queue");
    ReleaseSRWLockExclusive(&q->mu);
    return whsem__fail(WHSEM_E_UNSUPPORTED,
                       "whsem_queue_fd: Windows has no file descriptor for a completion queue; "
                       "wait on the event HANDLE of whsem_queue_handle instead");
}

/*
 * The queue's manual-reset event, as a HANDLE value: signaled while at
 * least one completion is posted, reset once all are popped (level-
 * triggered, like the Linux descriptor). Owned by the queue.
 */
WHSEM_API whsem_status WHSEM_CALL whsem_queue_handle(whsem_queue queue, uint64_t *out_handle)
{
    if (!out_handle) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_handle is NULL");
    *out_handle = 0; /* NULL: no object (-1 would be the current process) */
    struct queue_obj *q = lock_queue(queue);
    if (!q) return whsem__invalid_handle(queue, "queue");
    *out_handle = (uint64_t)(uintptr_t)q->event;
    ReleaseSRWLockExclusive(&q->mu);
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_acquire_queued(whsem_sem sem, int64_t timeout_ms,
                                                       whsem_cancel cancel, whsem_queue queue,
                                                       uint64_t tag, whsem_op *out_op)
{
    if (out_op) *out_op = 0;
    struct queue_obj *q = lock_queue(queue);
    if (!q) return whsem__invalid_handle(queue, "queue");
    q->refs++; /* held across whsem__aw_start(), which takes its own reference */
    ReleaseSRWLockExclusive(&q->mu);
    whsem_status st = whsem__aw_start(sem, timeout_ms, cancel, NULL, NULL, q, tag, out_op);
    whsem__aw_queue_unref(q);
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
    if (q->n == 0) ResetEvent(q->event);
    ReleaseSRWLockExclusive(&q->mu);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_queue_free(whsem_queue queue)
{
    struct queue_obj *q = lock_queue(queue);
    if (!q || !whsem__h_kill(queue)) {
        if (q) ReleaseSRWLockExclusive(&q->mu);
        return whsem__invalid_handle(queue, "queue");
    }
    q->h = 0;
    atomic_store(&q->freed, true);
    q->n = 0;
    bool others = q->refs > 1;
    whsem__aw_queue_unref_unlock(q);
    if (others) whsem__aw_poke_endings(); /* its pending operations end */
    return WHSEM_OK;
}
