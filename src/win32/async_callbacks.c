/* SPDX-License-Identifier: MIT */
/*
 * Callback threads on Windows: callbacks never run on the dispatcher or
 * inside a library call, and a blocked callback does not hold up others.
 */
#include "async_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- callback threads ------------------------------------------------------------------ */

uint64_t whsem__aw_thread_cpu(HANDLE t)
{
    FILETIME c, e, k, u;
    if (!t || !GetThreadTimes(t, &c, &e, &k, &u)) return 0;
    return ((uint64_t)k.dwHighDateTime << 32 | k.dwLowDateTime) +
           ((uint64_t)u.dwHighDateTime << 32 | u.dwLowDateTime);
}

static DWORD WINAPI callback_thread(void *arg)
{
    (void)arg;
    HANDLE self = OpenThread(THREAD_QUERY_LIMITED_INFORMATION, FALSE, GetCurrentThreadId());
    AcquireSRWLockExclusive(&whsem__aw_eng.cb_mu);
    for (;;) {
        while (!whsem__aw_eng.cb_head) {
            whsem__aw_eng.cb_idle++;
            BOOL woke = SleepConditionVariableSRW(&whsem__aw_eng.cb_cv, &whsem__aw_eng.cb_mu, CALLBACK_IDLE_MS, 0);
            whsem__aw_eng.cb_idle--;
            /* Extra threads started for blocking callbacks go away when idle. */
            if (!woke && !whsem__aw_eng.cb_head && whsem__aw_eng.cb_threads > 1) {
                whsem__aw_eng.cb_threads--;
                ReleaseSRWLockExclusive(&whsem__aw_eng.cb_mu);
                if (self) CloseHandle(self);
                return 0;
            }
        }
        struct op *o = whsem__aw_eng.cb_head;
        whsem__aw_eng.cb_head = o->link;
        if (!whsem__aw_eng.cb_head) whsem__aw_eng.cb_tail = NULL;
        int me = -1;
        for (int i = 0; i < MAX_CALLBACK_THREADS && me < 0; i++)
            if (!whsem__aw_eng.cb_in[i].thread) me = i;
        if (me >= 0 && self) {
            whsem__aw_eng.cb_in[me].thread = self;
            whsem__aw_eng.cb_in[me].since_ns = whsem__w_mono_ns();
            whsem__aw_eng.cb_in[me].cpu = whsem__aw_thread_cpu(self);
        }
        ReleaseSRWLockExclusive(&whsem__aw_eng.cb_mu);

        AcquireSRWLockExclusive(&o->mu);
        whsem_callback cb = o->cb;
        void *ud = o->user_data;
        uint64_t h = o->cb_handle;
        whsem_status st = atomic_load(&o->status);
        ReleaseSRWLockExclusive(&o->mu);
        cb(h, st, ud);
        AcquireSRWLockExclusive(&whsem__aw_eng.cb_mu);
        if (me >= 0) whsem__aw_eng.cb_in[me].thread = NULL;
        ReleaseSRWLockExclusive(&whsem__aw_eng.cb_mu);
        AcquireSRWLockExclusive(&o->mu);
        whsem__aw_op_unref_unlock(o);
        AcquireSRWLockExclusive(&whsem__aw_eng.cb_mu);
    }
}

void whsem__aw_start_callback_thread_locked(void)
{
    whsem__w_pin_module();
    HANDLE t = CreateThread(NULL, 0, callback_thread, NULL, 0, NULL);
    if (t) {
        whsem__aw_eng.cb_threads++;
        CloseHandle(t);
    }
}

void whsem__aw_queue_callback(struct op *o)
{
    AcquireSRWLockExclusive(&whsem__aw_eng.cb_mu);
    o->link = NULL;
    if (whsem__aw_eng.cb_tail) whsem__aw_eng.cb_tail->link = o;
    else whsem__aw_eng.cb_head = o;
    whsem__aw_eng.cb_tail = o;
    if (whsem__aw_eng.cb_threads == 0) whsem__aw_start_callback_thread_locked();
    WakeConditionVariable(&whsem__aw_eng.cb_cv);
    ReleaseSRWLockExclusive(&whsem__aw_eng.cb_mu);
}

/*
 * Called by the dispatcher while callbacks are queued. If every callback
 * thread has sat inside one callback for a while without using any CPU
 * time, callbacks block, and another thread keeps the rest flowing.
 * (Windows cannot tell a blocked thread from one waiting for a CPU; CPU
 * time that does not move is the sign of the former.)
 */
bool whsem__aw_check_callbacks(void)
{
    AcquireSRWLockExclusive(&whsem__aw_eng.cb_mu);
    bool queued = whsem__aw_eng.cb_head != NULL;
    bool stalled = queued && whsem__aw_eng.cb_idle == 0 && whsem__aw_eng.cb_threads < MAX_CALLBACK_THREADS;
    int inside = 0;
    uint64_t now = whsem__w_mono_ns();
    for (int i = 0; stalled && i < MAX_CALLBACK_THREADS; i++) {
        if (!whsem__aw_eng.cb_in[i].thread) continue;
        inside++;
        stalled = now > whsem__aw_eng.cb_in[i].since_ns + STALL_NS &&
                  whsem__aw_thread_cpu(whsem__aw_eng.cb_in[i].thread) == whsem__aw_eng.cb_in[i].cpu;
    }
    if (stalled && inside == whsem__aw_eng.cb_threads) whsem__aw_start_callback_thread_locked();
    ReleaseSRWLockExclusive(&whsem__aw_eng.cb_mu);
    return queued;
}
