/* SPDX-License-Identifier: MIT */
/*
 * The Windows asynchronous engine's own parts, shared by its files:
 *   async_engine.c     state, pools, dispatcher
 *   async_ops.c        operations and their completion
 *   async_queues.c     completion queues
 *   async_callbacks.c  callback threads
 */
#ifndef WHSEM_WIN32_ASYNC_ENGINE_H
#define WHSEM_WIN32_ASYNC_ENGINE_H

#include "win32.h"
#include "../async_policy.h"
#include "../deadlines.h"

#define MAX_WAIT_MAPS (MAXIMUM_WAIT_OBJECTS - 1) /* the dispatcher's event is the first */
#define CALLBACK_IDLE_MS 2000

struct queue_obj;

struct op {
    SRWLOCK mu;               /* guards everything below but the engine's part */
    CONDITION_VARIABLE cv;    /* whsem_op_wait sleeps here                      */
    uint64_t h;               /* the live handle, 0 once freed                  */
    _Atomic int32_t status;   /* WHSEM_PENDING or final                         */
    bool done;                /* final and posted: what whsem_op_wait waits for */
    uint64_t ticket;          /* the acquired ticket until taken                */
    bool taken;
    bool freed;               /* the user freed it; the engine may still hold it */
    int refs;                 /* the user's handle + the engine's               */
    whsem_callback cb;
    void *user_data;
    uint64_t cb_handle;       /* what the callback is told, even once freed     */
    struct queue_obj *q;      /* where to post, or NULL (holds a queue ref)     */
    uint64_t tag;

    /* The engine's part, under the engine lock while pending: */
    struct wmap *m;           /* holds one use of it while pending              */
    whsem_sem sem;
    struct hentry *sem_e;
    struct whsem_deadline dl; /* monotonic ns (0 = none), heap place            */
    _Atomic bool cancel_req;
    whsem_cancel cancel;
    struct cwait cw;
    struct op *prev, *next;   /* in the mapping's pending list                  */
    int32_t final;            /* the status the dispatcher decided              */
    struct op *link;          /* pool, finished batch or callback queue         */

    /* Why it ended, when the status alone does not say (NULL or ""
     * otherwise), as on Linux: the thread that ends it has the message,
     * the owner asks later from another one (whsem_op_poll, whsem_op_wait,
     * whsem_op_take_ticket hand it on). Written only while the operation
     * is pending, by whoever ends it, before the final status is
     * published; read under mu once final. Allocated on first need and
     * kept with the object, as on Linux. */
    char *detail;
};

struct queue_obj {
    SRWLOCK mu;
    uint64_t h;               /* the live handle, 0 once freed                  */
    HANDLE event;             /* manual-reset: signaled while entries are posted */
    _Atomic bool freed;
    int refs;                 /* the user's handle + pending operations         */
    struct qent {
        uint64_t op, tag;
    } *ring;
    size_t head, n, cap;
    struct queue_obj *link;
};


struct whsem_wengine {
    SRWLOCK mu;               /* the engine lock                                 */
    HANDLE ctl;               /* auto-reset: local events for the dispatcher     */
    _Atomic uint32_t ctl_seq; /* bumped with every poke                          */
    _Atomic uint32_t endings; /* bumped by anything that may end operations early */
    uint32_t swept_endings;
    struct whsem_deadlines deadlines; /* pending operations with deadlines     */
    struct wmap *active;      /* mappings with pending operations                */
    bool dispatcher_running;

    SRWLOCK cb_mu;
    CONDITION_VARIABLE cb_cv;
    struct op *cb_head, *cb_tail;
    int cb_threads, cb_idle;
    struct {
        HANDLE thread;        /* a callback thread inside a callback, or NULL   */
        uint64_t since_ns;
        uint64_t cpu;         /* its CPU time when the callback started         */
    } cb_in[MAX_CALLBACK_THREADS];

    SRWLOCK pool_mu;
    struct op *op_pool;
    struct queue_obj *q_pool;
};
extern WHSEM_HIDDEN struct whsem_wengine whsem__aw_eng;

WHSEM_HIDDEN void whsem__aw_poke(void);
WHSEM_HIDDEN void whsem__aw_poke_endings(void);
WHSEM_HIDDEN struct op *whsem__aw_op_get(void);
WHSEM_HIDDEN void whsem__aw_op_put(struct op *o);
WHSEM_HIDDEN void whsem__aw_queue_put(struct queue_obj *q);
WHSEM_HIDDEN void whsem__aw_queue_unref_unlock(struct queue_obj *q);
WHSEM_HIDDEN void whsem__aw_queue_unref(struct queue_obj *q);
WHSEM_HIDDEN void whsem__aw_op_unref_unlock(struct op *o);
WHSEM_HIDDEN void whsem__aw_queue_callback(struct op *o);
WHSEM_HIDDEN bool whsem__aw_check_callbacks(void);
WHSEM_HIDDEN void whsem__aw_queue_post(struct queue_obj *q, uint64_t op, uint64_t tag);
WHSEM_HIDDEN void whsem__aw_set_detail(struct op *o, const char *msg);
WHSEM_HIDDEN const char *whsem__aw_detail_of(const struct op *o);
WHSEM_HIDDEN void whsem__aw_complete(struct op *o, whsem_status status, uint64_t ticket);
WHSEM_HIDDEN void whsem__aw_deliver_one(struct op *o, whsem_status st);
WHSEM_HIDDEN whsem_status whsem__aw_ensure_dispatcher_locked(void);
WHSEM_HIDDEN whsem_status whsem__aw_enqueue(struct op *o, int32_t check_ms);
WHSEM_HIDDEN whsem_status whsem__aw_start(whsem_sem sem, int64_t timeout_ms, whsem_cancel cancel, whsem_callback cb, void *user_data, struct queue_obj *q, uint64_t tag, whsem_op *out_op);
WHSEM_HIDDEN struct op *whsem__aw_lock_op(whsem_op op);
WHSEM_HIDDEN whsem_status whsem__aw_report_locked(struct op *o, whsem_status st);
WHSEM_HIDDEN uint64_t whsem__aw_thread_cpu(HANDLE t);
WHSEM_HIDDEN void whsem__aw_start_callback_thread_locked(void);

static inline struct op *whsem__aw_op_of(struct whsem_deadline *d)
{
    return (struct op *)((char *)d - offsetof(struct op, dl));
}

#endif
