/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous engine's own parts, written once for every platform and
 * shared by its files and by nobody else (the rest of the library sees
 * async.h):
 *   async_engine.c     the engine's state, pools, pokes, fork hooks
 *   async_ops.c        operations: start, poll, wait, take, cancel, free,
 *                      and their completion
 *   async_queues.c     completion queues
 *   async_callbacks.c  who runs callbacks: the dispatcher, callback threads
 *   dispatcher.c       the dispatcher: how pending operations of the
 *                      shared-memory backend wait, get tickets and end
 * What differs per OS (threads, the condition variable, private wait
 * words, the queue's signal, the dispatcher's multi-wait, the blocked-
 * thread probe) is a primitive of the platform seam (platform.h).
 */
#ifndef WHSEM_ASYNC_ENGINE_H
#define WHSEM_ASYNC_ENGINE_H

#include "async.h"
#include "backend.h"
#include "async_policy.h"
#include "cancel.h"
#include "deadlines.h"
#include "platform.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct queue_obj;

struct op {
    whsem_mutex mu;          /* guards everything below but the engine's part */
    uint64_t h;              /* the live handle, 0 once freed                  */
    _Atomic int32_t status;  /* WHSEM_PENDING or final                         */
    _Atomic uint32_t done;   /* wait word for whsem_op_wait: 1 once final and
                                posted                                         */
    _Atomic uint32_t done_waiters; /* threads that may sleep on `done` (of any
                                use of the object): it is woken only if some */
    uint64_t ticket;         /* the acquired ticket until taken                */
    bool taken;
    bool freed;              /* the user freed it; the engine may still hold it */
    int refs;                /* the user's handle + the engine's                */
    whsem_callback cb;
    void *user_data;
    uint64_t cb_handle;      /* what the callback is told, even once freed      */
    struct queue_obj *q;     /* where to post, or NULL (holds a queue ref)      */
    uint64_t tag;
    uint64_t pgen;           /* the process generation that started it          */

    struct whsem_semobj *obj; /* its semaphore, held by its backend till it ends */
    const struct whsem_backend *be;

    /* The shared-memory backend's part, under the engine lock while
     * pending (dispatcher.c): */
    struct wmap *m;
    whsem_sem sem;
    struct hentry *sem_e;
    struct whsem_deadline dl; /* monotonic ns (0 = none), heap place           */
    _Atomic bool cancel_req;
    bool expired;            /* its deadline passed (set by the dispatcher)    */
    bool counted;            /* its want is counted in the slot (it may not be
                                yet if the segment lock was not to be had)   */
    bool queued;             /* in its mapping's pending list               */
    uint64_t wait_began;     /* monotonic ns when it began to wait for a
                                ticket (0: it did not), for the counters  */
    whsem_cancel cancel;
    struct cwait cw;
    struct op *prev, *next;  /* in the mapping's pending list                  */
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
    whsem_mutex mu;
    uint64_t h;              /* the live handle, 0 once freed */
    struct whsem_qsignal sig; /* set while entries are posted (level) */
    _Atomic bool freed;
    int refs;                /* the user's handle + pending operations */
    struct qent {
        uint64_t op, tag;
    } *ring;
    size_t head, n, cap;
    struct queue_obj *link;
};

struct whsem_engine {
    whsem_mutex mu;              /* the engine lock */
    struct whsem_ctl ctl;        /* local events for the dispatcher */
    _Atomic uint32_t endings;    /* bumped by anything that may end operations
                                    early: the dispatcher then looks at them all */
    uint32_t swept_endings;      /* the value its last full look saw */
    struct wmap *active;         /* mappings with pending operations */
    struct whsem_deadlines deadlines; /* pending operations with deadlines */
    bool dispatcher_running;

    whsem_mutex cb_mu;
    whsem_cond cb_cv;
    struct op *cb_head, *cb_tail;
    int cb_threads, cb_idle;
    /* The dispatcher runs callbacks itself while an idle callback thread
     * looks at it every STALL_NS (cb_watching) and starts another
     * dispatcher when it is stuck in one (async_callbacks.c). Under cb_mu
     * but leader_up, leader_gen and replace_leader: */
    int cb_watching;
    bool leader_inside;          /* the dispatcher is inside a callback */
    uint64_t leader_since;       /* since then                          */
    uint32_t leader_inside_gen;  /* of that dispatcher                   */
    int leaders_stuck;           /* replaced, their callbacks not over  */
    _Atomic bool leader_up;      /* a dispatcher runs                   */
    _Atomic uint32_t leader_gen; /* the running dispatcher's; bumped when
                                    a stuck one is replaced            */
    _Atomic(bool (*)(uint32_t gen)) replace_leader; /* dispatcher.c's  */
    struct {
        whsem_thread_id id;      /* a callback thread inside a callback */
        bool inside;
        uint64_t since_ns;
        uint64_t mark;           /* the probe's mark when it went in */
    } cb_in[MAX_CALLBACK_THREADS];

    whsem_mutex pool_mu;
    struct op *op_pool;
    struct queue_obj *q_pool;
};
extern WHSEM_HIDDEN struct whsem_engine whsem__a_eng;

/* ---- async_engine.c: the engine's state, pools, pokes, details ---- */
WHSEM_HIDDEN struct op *whsem__a_op_get(void);
WHSEM_HIDDEN void whsem__a_op_put(struct op *o);
WHSEM_HIDDEN void whsem__a_queue_put(struct queue_obj *q);
/* Drops a reference (the object's mutex held, and released here); the
 * last one recycles the object. */
WHSEM_HIDDEN void whsem__a_queue_unref_unlock(struct queue_obj *q);
WHSEM_HIDDEN void whsem__a_queue_unref(struct queue_obj *q);
WHSEM_HIDDEN void whsem__a_op_unref_unlock(struct op *o);
/* Wakes the dispatcher for a local event; _endings when operations may
 * have ended early (it then looks at all of them). */
WHSEM_HIDDEN void whsem__a_poke(void);
WHSEM_HIDDEN void whsem__a_poke_endings(void);
/* Every backend's server of operations looks at their endings (a queue
 * was freed: its operations may be of any backend). A backend that
 * serves its own operations registers its poke once (backend.h's
 * async_poke), at run time: the engine, below every backend, names none. */
WHSEM_HIDDEN void whsem__a_poke_all_endings(void);
WHSEM_HIDDEN void whsem__a_add_poke(void (*poke)(void));
WHSEM_HIDDEN bool whsem__a_op_ended(struct op *o, whsem_status *why, const char **detail);
/* Ends a pending operation inherited through fork(), in the child (one
 * thread, no locks taken): WHSEM_E_WRONG_PROCESS, no callback; the
 * engine's reference goes. */
WHSEM_HIDDEN void whsem__a_end_in_child(struct op *o);
WHSEM_HIDDEN void whsem__a_set_detail(struct op *o, const char *msg);
WHSEM_HIDDEN const char *whsem__a_detail_of(const struct op *o);

/* ---- dispatcher.c: operations of the shared-memory backend (its entries
 * in the backend seam, backend.h) ---- */
WHSEM_HIDDEN whsem_status whsem__a_shm_hold(struct whsem_semobj *obj);
WHSEM_HIDDEN void whsem__a_shm_unhold(struct whsem_semobj *obj);
/* Counts a new operation in its slot, or ends it at once (a free ticket, a
 * try, an error), and hands a pending one to the dispatcher. */
WHSEM_HIDDEN whsem_status whsem__a_shm_start(struct op *o, int64_t timeout_ms, int32_t check_ms);
/* Ends an operation that is over (no locks held): an OK one gets its
 * ticket handle, then it completes and lets go of its semaphore. */
WHSEM_HIDDEN void whsem__a_shm_end(struct op *o, whsem_status st);
/* whsem_op_wait's thread settles the operation's mapping itself when our
 * slot is woken, instead of waiting for the dispatcher to (where the
 * platform can wait on both at once). */
WHSEM_HIDDEN bool whsem__a_shm_wait(struct op *o, uint64_t h, uint64_t deadline);

/* ---- async_callbacks.c: who runs callbacks ---- */
WHSEM_HIDDEN void whsem__a_queue_callback(struct op *o);
/* The dispatcher's batch of callbacks (linked through link, no lock
 * held): run on the calling dispatcher while a callback thread stands by
 * to replace it if one blocks, queued otherwise. gen is the dispatcher's;
 * false if it was replaced meanwhile. */
WHSEM_HIDDEN bool whsem__a_lead_callbacks(struct op *batch, uint32_t gen);
/* A dispatcher starts (true) or ends (false): idle callback threads stand
 * by while one runs. */
WHSEM_HIDDEN void whsem__a_leader_up(bool up);
/* A replaced dispatcher's thread runs callbacks from now on; returns when
 * it has been idle long enough to end. */
WHSEM_HIDDEN void whsem__a_become_callback_thread(void);
/* Starts another callback thread if every one is blocked inside a
 * callback; whether callbacks are queued (the dispatcher then looks again
 * soon). */
WHSEM_HIDDEN bool whsem__a_check_callbacks(void);

/* ---- async_queues.c: completion queues ---- */
WHSEM_HIDDEN void whsem__a_queue_post(struct queue_obj *q, uint64_t op, uint64_t tag);
/* The queue behind a live handle, with its mutex held, or NULL. */
WHSEM_HIDDEN struct queue_obj *whsem__a_lock_queue(whsem_queue queue);

/* ---- async_ops.c: operations and their completion ---- */
/* Ops whose callbacks their ender runs itself (the dispatcher), in order. */
struct whsem_cb_batch {
    struct op *head, *tail;
};
/* Makes o final and hands it to its callback (queued, or added to later
 * when not NULL), its queue, or nobody. */
WHSEM_HIDDEN void whsem__a_complete(struct op *o, whsem_status status, uint64_t ticket,
                                    struct whsem_cb_batch *later);
WHSEM_HIDDEN whsem_status whsem__a_start(whsem_sem sem, int64_t timeout_ms, whsem_cancel cancel,
                                         whsem_callback cb, void *user_data, struct queue_obj *q,
                                         uint64_t tag, whsem_op *out_op);
WHSEM_HIDDEN struct op *whsem__a_lock_op(whsem_op op);

static inline struct op *whsem__a_op_of(struct whsem_deadline *d)
{
    return (struct op *)((char *)d - offsetof(struct op, dl));
}

#endif
