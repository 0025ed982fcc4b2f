/* SPDX-License-Identifier: MIT */
/*
 * Completion queues: finished operations posted to a queue whose signal
 * (an eventfd on Linux, an event on Windows) is set while anything is
 * posted.
 */
#include "async_engine.h"

#include <stdlib.h>

void whsem__a_queue_post(struct queue_obj *q, uint64_t op, uint64_t tag)
{
    whsem__mutex_lock(&q->mu);
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
            whsem__p_qsig_set(&q->sig);
        }
    }
    whsem__mutex_unlock(&q->mu);
}


/* ---- completion queues -------------------------------------------------------------- */

struct queue_obj *whsem__a_lock_queue(whsem_queue queue)
{
    struct hentry *e = whsem__h_lookup(queue, HK_QUEUE);
    if (!e) return NULL;
    struct queue_obj *q = atomic_load_explicit(&e->ptr, memory_order_acquire);
    whsem__mutex_lock(&q->mu);
    if (q->h != queue) {
        whsem__mutex_unlock(&q->mu);
        return NULL;
    }
    return q;
}

WHSEM_API whsem_status WHSEM_CALL whsem_queue_new(whsem_queue *out_queue)
{
    if (!out_queue) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_queue is NULL");
    *out_queue = 0;
    whsem__p_init();
    whsem__mutex_lock(&whsem__a_eng.pool_mu);
    struct queue_obj *q = whsem__a_eng.q_pool;
    if (q) whsem__a_eng.q_pool = q->link;
    whsem__mutex_unlock(&whsem__a_eng.pool_mu);
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for a queue");
        whsem__mutex_init(&q->mu);
    }
    struct whsem_qsignal sig;
    whsem_status st = whsem__p_qsig_open(&sig);
    if (st != WHSEM_OK) {
        whsem__a_queue_put(q);
        return st;
    }
    uint64_t h = whsem__h_reserve(HK_QUEUE, &st);
    if (!h) {
        whsem__p_qsig_close(&sig);
        whsem__a_queue_put(q);
        return st;
    }
    whsem__mutex_lock(&q->mu);
    q->h = h;
    q->sig = sig;
    atomic_store(&q->freed, false);
    q->refs = 1;
    q->head = q->n = 0;
    whsem__mutex_unlock(&q->mu);
    whsem__h_publish(h, q, 0);
    *out_queue = h;
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_queue_fd(whsem_queue queue, int32_t *out_fd)
{
    if (!out_fd) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_fd is NULL");
    *out_fd = -1;
    struct queue_obj *q = whsem__a_lock_queue(queue);
    if (!q) return whsem__invalid_handle(queue, "queue");
    whsem_status st = whsem__p_qsig_fd(&q->sig, out_fd);
    whsem__mutex_unlock(&q->mu);
    return st;
}

/* What an event loop waits on: on Linux the descriptor of whsem_queue_fd
 * (-1 on failure, which names nothing, where 0 would be standard input);
 * on Windows the queue's manual-reset event (NULL on failure), which has
 * no descriptor. Level-triggered on both: set while completions are
 * posted. */
WHSEM_API whsem_status WHSEM_CALL whsem_queue_handle(whsem_queue queue, uint64_t *out_handle)
{
    if (!out_handle) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_handle is NULL");
    *out_handle = WHSEM_P_QSIG_NO_HANDLE;
    struct queue_obj *q = whsem__a_lock_queue(queue);
    if (!q) return whsem__invalid_handle(queue, "queue");
    *out_handle = whsem__p_qsig_handle(&q->sig);
    whsem__mutex_unlock(&q->mu);
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_queue_pop(whsem_queue queue, whsem_op *out_op,
                                                  uint64_t *out_tag)
{
    if (out_op) *out_op = 0;
    if (out_tag) *out_tag = 0;
    if (!out_op || !out_tag) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_op or out_tag is NULL");
    struct queue_obj *q = whsem__a_lock_queue(queue);
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
    if (q->n == 0) whsem__p_qsig_clear(&q->sig);
    whsem__mutex_unlock(&q->mu);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_queue_free(whsem_queue queue)
{
    struct queue_obj *q = whsem__a_lock_queue(queue);
    struct hentry *e = q ? whsem__h_entry(queue) : NULL;
    if (!q || !whsem__h_kill_cas(e, queue)) {
        if (q) whsem__mutex_unlock(&q->mu);
        return whsem__invalid_handle(queue, "queue");
    }
    q->h = 0;
    q->freed = true;
    q->n = 0;
    whsem__a_queue_unref_unlock(q);
    whsem__a_poke_all_endings(); /* its pending operations end */
    whsem__h_recycle(queue);
    return WHSEM_OK;
}

