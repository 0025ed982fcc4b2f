/* SPDX-License-Identifier: MIT */
/*
 * Callback threads of the asynchronous engine: callbacks never run on the
 * dispatcher or inside a library call, and one stuck callback does not
 * hold up the others (another thread starts when all are stuck).
 */
#include "async_engine.h"

/* ---- callback threads -------------------------------------------------------- */

static WHSEM_THREAD_FN(callback_thread)
{
    (void)arg;
    whsem_thread_id self = whsem__p_thread_self_open();
    whsem__mutex_lock(&whsem__a_eng.cb_mu);
    for (;;) {
        while (!whsem__a_eng.cb_head) {
            whsem__a_eng.cb_idle++;
            bool woke = whsem__cond_wait_ms(&whsem__a_eng.cb_cv, &whsem__a_eng.cb_mu, CALLBACK_IDLE_MS);
            whsem__a_eng.cb_idle--;
            /* Extra threads started for blocking callbacks go away when idle. */
            if (!woke && !whsem__a_eng.cb_head && whsem__a_eng.cb_threads > 1) {
                whsem__a_eng.cb_threads--;
                whsem__mutex_unlock(&whsem__a_eng.cb_mu);
                whsem__p_thread_self_close(self);
                WHSEM_THREAD_END;
            }
        }
        struct op *o = whsem__a_eng.cb_head;
        whsem__a_eng.cb_head = o->link;
        if (!whsem__a_eng.cb_head) whsem__a_eng.cb_tail = NULL;

        int me = -1;
        for (int i = 0; i < MAX_CALLBACK_THREADS && me < 0; i++)
            if (!whsem__a_eng.cb_in[i].inside) me = i;
        if (me >= 0) {
            whsem__a_eng.cb_in[me].inside = true;
            whsem__a_eng.cb_in[me].id = self;
            whsem__a_eng.cb_in[me].since_ns = whsem__p_mono_ns();
            whsem__a_eng.cb_in[me].mark = whsem__p_thread_mark(self);
        }
        whsem__mutex_unlock(&whsem__a_eng.cb_mu);

        whsem__mutex_lock(&o->mu);
        whsem_callback cb = o->cb;
        void *ud = o->user_data;
        uint64_t h = o->cb_handle;
        whsem_status st = atomic_load(&o->status);
        whsem__mutex_unlock(&o->mu);
        cb(h, st, ud);
        whsem__mutex_lock(&whsem__a_eng.cb_mu);
        if (me >= 0) whsem__a_eng.cb_in[me].inside = false;
        whsem__mutex_unlock(&whsem__a_eng.cb_mu);
        whsem__mutex_lock(&o->mu);
        whsem__a_op_unref_unlock(o);

        whsem__mutex_lock(&whsem__a_eng.cb_mu);
    }
}

static void start_callback_thread_locked(void)
{
    if (whsem__p_thread_start(callback_thread, "callback") == WHSEM_OK) whsem__a_eng.cb_threads++;
}

void whsem__a_queue_callback(struct op *o)
{
    whsem__mutex_lock(&whsem__a_eng.cb_mu);
    o->link = NULL;
    if (whsem__a_eng.cb_tail) whsem__a_eng.cb_tail->link = o;
    else whsem__a_eng.cb_head = o;
    whsem__a_eng.cb_tail = o;
    if (whsem__a_eng.cb_threads == 0) start_callback_thread_locked();
    whsem__cond_signal(&whsem__a_eng.cb_cv);
    whsem__mutex_unlock(&whsem__a_eng.cb_mu);
}

/*
 * Called by the dispatcher. Callbacks are queued and every callback thread
 * has sat inside one callback, blocked, for a while: callbacks block, and
 * another thread keeps the rest flowing. A thread that is only waiting for
 * a CPU on a busy machine is not blocked (the platform's probe tells), so
 * it adds none. Returns whether callbacks are queued.
 */
bool whsem__a_check_callbacks(void)
{
    whsem__mutex_lock(&whsem__a_eng.cb_mu);
    bool queued = whsem__a_eng.cb_head != NULL;
    bool stalled = queued && whsem__a_eng.cb_idle == 0 &&
                   whsem__a_eng.cb_threads < MAX_CALLBACK_THREADS;
    int inside = 0;
    uint64_t now = whsem__p_mono_ns();
    for (int i = 0; stalled && i < MAX_CALLBACK_THREADS; i++) {
        if (!whsem__a_eng.cb_in[i].inside) continue;
        inside++;
        stalled = now > whsem__a_eng.cb_in[i].since_ns + STALL_NS &&
                  whsem__p_thread_blocked(whsem__a_eng.cb_in[i].id, whsem__a_eng.cb_in[i].mark);
    }
    if (stalled && inside == whsem__a_eng.cb_threads) start_callback_thread_locked();
    whsem__mutex_unlock(&whsem__a_eng.cb_mu);
    return queued;
}
