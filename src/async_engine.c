/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous acquisition: the engine's state, its object pools, how
 * local events reach the dispatcher, and what fork() does to it.
 *
 * An operation waits exactly like a blocking acquire does, except that
 * nobody sleeps on its behalf: it counts in its process's slot `want`, and
 * one dispatcher thread per process (dispatcher.c) sleeps on the wake
 * words of every semaphore that has operations pending, plus its own
 * control word that local events poke (new operation, cancel, close,
 * free). Granting and ending are decided there, under the segment lock, so
 * a ticket is either delivered or returned: never lost.
 *
 * Threads: the dispatcher, callback threads (async_callbacks.c) and, on
 * Linux, the watcher of other processes' ends (linux/pwatch.c). The count
 * depends on neither the number of operations nor of semaphores.
 *
 * Operation and queue objects are type-stable: they are recycled through
 * pools and never returned to malloc, so a stale handle can always be
 * looked at; each object records its live handle, and every use checks it
 * under the object's mutex.
 *
 * Lock order: maps_mu -> engine lock -> segment lock -> op/queue mutex.
 */
#include "async_engine.h"
#include "fork_hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct whsem_engine whsem__a_eng = {
    .mu = WHSEM_MUTEX_INIT,
    .cb_mu = WHSEM_MUTEX_INIT,
    .cb_cv = WHSEM_COND_INIT,
    .pool_mu = WHSEM_MUTEX_INIT,
};

/* ---- pools ---------------------------------------------------------------- */

struct op *whsem__a_op_get(void)
{
    whsem__mutex_lock(&whsem__a_eng.pool_mu);
    struct op *o = whsem__a_eng.op_pool;
    if (o) whsem__a_eng.op_pool = o->link;
    whsem__mutex_unlock(&whsem__a_eng.pool_mu);
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o) return NULL;
        whsem__mutex_init(&o->mu);
    }
    return o;
}

void whsem__a_op_put(struct op *o)
{
    whsem__mutex_lock(&whsem__a_eng.pool_mu);
    o->link = whsem__a_eng.op_pool;
    whsem__a_eng.op_pool = o;
    whsem__mutex_unlock(&whsem__a_eng.pool_mu);
}

void whsem__a_queue_put(struct queue_obj *q)
{
    whsem__mutex_lock(&whsem__a_eng.pool_mu);
    q->link = whsem__a_eng.q_pool;
    whsem__a_eng.q_pool = q;
    whsem__mutex_unlock(&whsem__a_eng.pool_mu);
}

void whsem__a_queue_unref_unlock(struct queue_obj *q)
{
    bool last = --q->refs == 0;
    if (last) {
        whsem__p_qsig_close(&q->sig);
        free(q->ring);
        q->ring = NULL;
        q->head = q->n = q->cap = 0;
    }
    whsem__mutex_unlock(&q->mu);
    if (last) whsem__a_queue_put(q);
}

void whsem__a_queue_unref(struct queue_obj *q)
{
    whsem__mutex_lock(&q->mu);
    whsem__a_queue_unref_unlock(q);
}

void whsem__a_op_unref_unlock(struct op *o)
{
    bool last = --o->refs == 0;
    struct queue_obj *q = last ? o->q : NULL;
    if (last) o->q = NULL;
    whsem__mutex_unlock(&o->mu);
    if (q) whsem__a_queue_unref(q);
    if (last) whsem__a_op_put(o);
}

/* ---- an operation's detail message ---------------------------------------- */

/* Records why a pending operation ends; see struct op's detail. Without
 * memory for it the status still tells. */
void whsem__a_set_detail(struct op *o, const char *msg)
{
    if (!o->detail && !(o->detail = malloc(DETAIL_BYTES))) return;
    snprintf(o->detail, DETAIL_BYTES, "%s", msg);
}

const char *whsem__a_detail_of(const struct op *o) { return o->detail ? o->detail : ""; }

/* ---- pokes ------------------------------------------------------------------ */

void whsem__a_poke(void) { whsem__p_ctl_poke(&whsem__a_eng.ctl); }

/* Something may have ended pending operations early (a cancel, a close, a
 * freed queue): the dispatcher looks at every pending operation once. */
void whsem__a_poke_endings(void)
{
    atomic_fetch_add_explicit(&whsem__a_eng.endings, 1, memory_order_release);
    whsem__a_poke();
}

/* Backends' pokes (whsem__a_add_poke): set once each, never removed. */
enum { MAX_POKES = 4 };
static void (*_Atomic pokes[MAX_POKES])(void);

void whsem__a_add_poke(void (*poke)(void))
{
    for (int i = 0; i < MAX_POKES; i++) {
        void (*expected)(void) = NULL;
        if (atomic_load(&pokes[i]) == poke ||
            atomic_compare_exchange_strong(&pokes[i], &expected, poke))
            return;
    }
    abort(); /* more backends than planned: a build error, really */
}

void whsem__a_poke_all_endings(void)
{
    whsem__a_poke_endings();
    for (int i = 0; i < MAX_POKES; i++) {
        void (*poke)(void) = atomic_load(&pokes[i]);
        if (poke) poke();
    }
}

void whsem__async_poke(void) { whsem__a_poke_endings(); }

/* ---- fork ------------------------------------------------------------------------- */

static void async_lock_all(void)
{
    whsem__mutex_lock(&whsem__a_eng.mu);
    whsem__mutex_lock(&whsem__a_eng.cb_mu);
    whsem__mutex_lock(&whsem__a_eng.pool_mu);
}

static void async_unlock_all(void)
{
    whsem__mutex_unlock(&whsem__a_eng.pool_mu);
    whsem__mutex_unlock(&whsem__a_eng.cb_mu);
    whsem__mutex_unlock(&whsem__a_eng.mu);
}

/*
 * The child has no dispatcher and no callback threads, and the operations
 * it inherited belong to its parent (whose slot counts their wants): they
 * end, in the child only, with WHSEM_E_WRONG_PROCESS and no callback.
 */
void whsem__a_end_in_child(struct op *o)
{
    o->cw.obj = NULL; /* the sources forgot their waits already */
    whsem__a_set_detail(o, "the operation was started by the parent process before fork(); "
                           "only the parent can use it");
    atomic_store(&o->status, WHSEM_E_WRONG_PROCESS);
    atomic_store(&o->done, 1);
    o->refs--; /* the engine lets go */
}

static void async_child(void)
{
    for (struct wmap *m = whsem__a_eng.active; m; m = m->active_next) {
        for (struct op *o = m->aq_head, *next; o; o = next) {
            next = o->next;
            o->prev = o->next = NULL;
            o->queued = false;
            o->dl.pos = 0;
            whsem__a_end_in_child(o);
        }
        m->aq_head = m->aq_tail = NULL;
        m->active = false;
        m->async_ops = 0; /* they counted in the parent's slot, not ours */
        /* Its watches were the parent's (watches.c lets go of them), and
         * so were the waits that asked for them. */
        atomic_store(&m->watch.on, false);
        atomic_store(&m->watch.waits, 0);
        m->watch.look_at = 0;
        m->watch.death = false;
        m->helpers = 0;
    }
    whsem__a_eng.active = NULL;
    whsem__deadline_clear(&whsem__a_eng.deadlines);
    for (struct op *o = whsem__a_eng.cb_head; o; o = o->link) o->refs--;
    whsem__a_eng.cb_head = whsem__a_eng.cb_tail = NULL;
    whsem__a_eng.cb_threads = whsem__a_eng.cb_idle = whsem__a_eng.cb_watching = 0;
    whsem__a_eng.leader_inside = false;
    whsem__a_eng.leaders_stuck = 0;
    atomic_store(&whsem__a_eng.leader_up, false);
    memset(whsem__a_eng.cb_in, 0, sizeof whsem__a_eng.cb_in);
    whsem__a_eng.dispatcher_running = false;
    whsem__p_ctl_forget(&whsem__a_eng.ctl);
    async_unlock_all();
}

static const struct whsem_fork_hooks fork_hooks = {WHSEM_FORK_ORDER_ASYNC, async_lock_all,
                                                   async_unlock_all, async_child};

__attribute__((constructor)) static void register_fork_hooks(void) { whsem__on_fork(&fork_hooks); }
