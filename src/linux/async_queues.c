/* SPDX-License-Identifier: MIT */
/*
 * Completion queues: finished operations posted to a queue whose eventfd
 * (or event on Windows) is readable while anything is posted.
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

void whsem__a_queue_post(struct queue_obj *q, uint64_t op, uint64_t tag)
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
    pthread_mutex_lock(&whsem__a_eng.pool_mu);
    struct queue_obj *q = whsem__a_eng.q_pool;
    if (q) whsem__a_eng.q_pool = q->link;
    pthread_mutex_unlock(&whsem__a_eng.pool_mu);
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for a queue");
        pthread_mutex_init(&q->mu, NULL);
    }
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
        whsem__a_queue_put(q);
        return whsem__fail_errno(errno, "cannot create", "an eventfd");
    }
    whsem_status st;
    uint64_t h = whsem__h_reserve(HK_QUEUE, &st);
    if (!h) {
        close(efd);
        whsem__a_queue_put(q);
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
    q->refs++; /* held across whsem__a_start(), which takes its own reference */
    pthread_mutex_unlock(&q->mu);
    whsem_status st = whsem__a_start(sem, timeout_ms, cancel, NULL, NULL, q, tag, out_op);
    whsem__a_queue_unref(q);
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
    whsem__a_queue_unref_locked(q, &recycle);
    pthread_mutex_unlock(&q->mu);
    if (recycle) whsem__a_queue_put(q);
    else whsem__a_poke_endings(); /* its pending operations end */
    whsem__h_recycle(queue);
    return WHSEM_OK;
}

