/* SPDX-License-Identifier: MIT */
/*
 * Callback threads of the asynchronous engine: callbacks never run on the
 * dispatcher or inside a library call, and one stuck callback does not
 * hold up the others (another thread starts when all are stuck).
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

/* ---- callback threads -------------------------------------------------------- */

static void *callback_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&whsem__a_eng.cb_mu);
    for (;;) {
        while (!whsem__a_eng.cb_head) {
            whsem__a_eng.cb_idle++;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 2;
            int r = pthread_cond_timedwait(&whsem__a_eng.cb_cv, &whsem__a_eng.cb_mu, &ts);
            whsem__a_eng.cb_idle--;
            /* Extra threads started for blocking callbacks go away when idle. */
            if (r == ETIMEDOUT && !whsem__a_eng.cb_head && whsem__a_eng.cb_threads > 1) {
                whsem__a_eng.cb_threads--;
                pthread_mutex_unlock(&whsem__a_eng.cb_mu);
                return NULL;
            }
        }
        struct op *o = whsem__a_eng.cb_head;
        whsem__a_eng.cb_head = o->link;
        if (!whsem__a_eng.cb_head) whsem__a_eng.cb_tail = NULL;

        int me = -1;
        for (int i = 0; i < MAX_CALLBACK_THREADS && me < 0; i++)
            if (!whsem__a_eng.cb_in[i].tid) me = i;
        if (me >= 0) {
            whsem__a_eng.cb_in[me].tid = (pid_t)syscall(SYS_gettid);
            whsem__a_eng.cb_in[me].since_ns = whsem__mono_ns();
        }
        pthread_mutex_unlock(&whsem__a_eng.cb_mu);

        pthread_mutex_lock(&o->mu);
        whsem_callback cb = o->cb;
        void *ud = o->user_data;
        uint64_t h = o->cb_handle;
        whsem_status st = atomic_load(&o->status);
        pthread_mutex_unlock(&o->mu);
        cb(h, st, ud);
        pthread_mutex_lock(&whsem__a_eng.cb_mu);
        if (me >= 0) whsem__a_eng.cb_in[me].tid = 0;
        pthread_mutex_unlock(&whsem__a_eng.cb_mu);
        pthread_mutex_lock(&o->mu);
        whsem__a_op_unref_unlock(o);

        pthread_mutex_lock(&whsem__a_eng.cb_mu);
    }
}

static void start_callback_thread_locked(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, callback_thread, NULL) == 0) whsem__a_eng.cb_threads++;
    pthread_attr_destroy(&attr);
}

void whsem__a_queue_callback(struct op *o)
{
    pthread_mutex_lock(&whsem__a_eng.cb_mu);
    o->link = NULL;
    if (whsem__a_eng.cb_tail) whsem__a_eng.cb_tail->link = o;
    else whsem__a_eng.cb_head = o;
    whsem__a_eng.cb_tail = o;
    if (whsem__a_eng.cb_threads == 0) start_callback_thread_locked();
    pthread_cond_signal(&whsem__a_eng.cb_cv);
    pthread_mutex_unlock(&whsem__a_eng.cb_mu);
}

/* Whether a thread of ours is asleep (S) or in uninterruptible wait (D),
 * as opposed to running or waiting for a CPU. */
static bool thread_blocked(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    const char *state = whsem__proc_stat_fields(path, buf, sizeof buf);
    return state && (*state == 'S' || *state == 'D');
}

/*
 * Called by the dispatcher. Callbacks are queued and every callback thread
 * has sat inside one callback, blocked, for a while: callbacks block, and
 * another thread keeps the rest flowing. A thread that is only waiting for
 * a CPU on a busy machine is not blocked, so it adds none.
 */
void whsem__a_check_callback_stall(void)
{
    pthread_mutex_lock(&whsem__a_eng.cb_mu);
    uint64_t now = whsem__mono_ns();
    bool stalled = whsem__a_eng.cb_head && whsem__a_eng.cb_idle == 0 && whsem__a_eng.cb_threads < MAX_CALLBACK_THREADS;
    int inside = 0;
    for (int i = 0; stalled && i < MAX_CALLBACK_THREADS; i++) {
        if (!whsem__a_eng.cb_in[i].tid) continue;
        inside++;
        stalled = now > whsem__a_eng.cb_in[i].since_ns + STALL_NS && thread_blocked(whsem__a_eng.cb_in[i].tid);
    }
    if (stalled && inside == whsem__a_eng.cb_threads) start_callback_thread_locked();
    pthread_mutex_unlock(&whsem__a_eng.cb_mu);
}

bool whsem__a_callbacks_waiting(void)
{
    pthread_mutex_lock(&whsem__a_eng.cb_mu);
    bool r = whsem__a_eng.cb_head != NULL;
    pthread_mutex_unlock(&whsem__a_eng.cb_mu);
    return r;
}

