/* SPDX-License-Identifier: MIT */
/*
 * Who runs callbacks. Never a library call of the application's: an
 * operation that ends inside one (whsem_acquire_async with a free ticket,
 * a thread in whsem_op_wait that settled it) queues its callback for the
 * callback threads.
 *
 * The dispatcher runs the callbacks of the operations it ends itself, so
 * that a release reaches a callback with one wake-up (the dispatcher's),
 * as it reaches a thread blocked in whsem_acquire. That is safe only while
 * the callbacks are quick: one that blocks would hold up every other
 * operation and name. So the dispatcher does so only while an idle
 * callback thread stands by. That thread looks every STALL_NS, and finds a
 * dispatcher that has been inside one callback for STALL_NS (blocked or
 * computing: either way nothing is dispatched) stuck: another dispatcher
 * starts (dispatcher.c), and the stuck one becomes a callback thread when
 * its callback returns. Without a thread standing by, the dispatcher
 * queues its callbacks too.
 *
 * Queued callbacks run on callback threads; another is started only if
 * every callback thread has been blocked inside a callback for STALL_NS
 * (the dispatcher looks), up to MAX_CALLBACK_THREADS in all.
 */
#include "async_engine.h"

#define ENG whsem__a_eng

static void push_locked(struct op *o)
{
    o->link = NULL;
    if (ENG.cb_tail) ENG.cb_tail->link = o;
    else ENG.cb_head = o;
    ENG.cb_tail = o;
}

static struct op *pop_locked(void)
{
    struct op *o = ENG.cb_head;
    ENG.cb_head = o->link;
    if (!ENG.cb_head) ENG.cb_tail = NULL;
    return o;
}

/* Calls o's callback; the engine's reference to o goes with it. */
static void run_callback(struct op *o)
{
    whsem__mutex_lock(&o->mu);
    whsem_callback cb = o->cb;
    void *ud = o->user_data;
    uint64_t h = o->cb_handle;
    whsem_status st = atomic_load(&o->status);
    whsem__mutex_unlock(&o->mu);
    cb(h, st, ud);
    whsem__mutex_lock(&o->mu);
    whsem__a_op_unref_unlock(o);
}

static WHSEM_THREAD_FN(callback_thread);

static void start_callback_thread_locked(void)
{
    if (ENG.cb_threads + ENG.leaders_stuck < MAX_CALLBACK_THREADS &&
        whsem__p_thread_start(callback_thread, "callback") == WHSEM_OK)
        ENG.cb_threads++;
}

/* The dispatcher has sat in one callback for STALL_NS (cb_mu held). */
static bool leader_stuck_locked(uint64_t now)
{
    return ENG.leader_inside && now - ENG.leader_since >= STALL_NS &&
           ENG.cb_threads + ENG.leaders_stuck < MAX_CALLBACK_THREADS;
}

/* Runs queued callbacks, standing by for the dispatcher while idle, until
 * this thread has been idle long enough to go (cb_mu held on entry, and
 * let go on return). */
static void callback_loop(void)
{
    whsem_thread_id self = whsem__p_thread_self_open();
    uint64_t idle_since = whsem__p_mono_ns();
    for (;;) {
        while (!ENG.cb_head) {
            bool watch = atomic_load(&ENG.leader_up);
            ENG.cb_idle++;
            ENG.cb_watching += watch;
            whsem__cond_wait_ms(&ENG.cb_cv, &ENG.cb_mu, watch ? STALL_NS / 1000000u : CALLBACK_IDLE_MS);
            ENG.cb_idle--;
            ENG.cb_watching -= watch;
            uint64_t now = whsem__p_mono_ns();
            if (leader_stuck_locked(now)) {
                uint32_t gen = ENG.leader_inside_gen;
                ENG.leader_inside = false; /* one replacement per stuck callback */
                ENG.leaders_stuck++;
                whsem__mutex_unlock(&ENG.cb_mu);
                bool replaced = atomic_load(&ENG.replace_leader)(gen);
                whsem__mutex_lock(&ENG.cb_mu);
                if (!replaced) ENG.leaders_stuck--;
                continue;
            }
            /* Extra threads started for blocking callbacks go away when idle. */
            if (!ENG.cb_head && ENG.cb_threads > 1 && now - idle_since >= CALLBACK_IDLE_MS * 1000000ull) {
                ENG.cb_threads--;
                whsem__mutex_unlock(&ENG.cb_mu);
                whsem__p_thread_self_close(self);
                return;
            }
        }
        struct op *o = pop_locked();
        int me = -1;
        for (int i = 0; i < MAX_CALLBACK_THREADS && me < 0; i++)
            if (!ENG.cb_in[i].inside) me = i;
        if (me >= 0) {
            ENG.cb_in[me].inside = true;
            ENG.cb_in[me].id = self;
            ENG.cb_in[me].since_ns = whsem__p_mono_ns();
            ENG.cb_in[me].mark = whsem__p_thread_mark(self);
        }
        whsem__mutex_unlock(&ENG.cb_mu);
        run_callback(o);
        whsem__mutex_lock(&ENG.cb_mu);
        if (me >= 0) ENG.cb_in[me].inside = false;
        idle_since = whsem__p_mono_ns();
    }
}

static WHSEM_THREAD_FN(callback_thread)
{
    (void)arg;
    whsem__mutex_lock(&ENG.cb_mu);
    callback_loop();
    WHSEM_THREAD_END;
}

void whsem__a_queue_callback(struct op *o)
{
    whsem__mutex_lock(&ENG.cb_mu);
    push_locked(o);
    if (ENG.cb_threads == 0) start_callback_thread_locked();
    whsem__cond_signal(&ENG.cb_cv);
    whsem__mutex_unlock(&ENG.cb_mu);
}

bool whsem__a_lead_callbacks(struct op *batch, uint32_t gen)
{
    if (!batch) return atomic_load(&ENG.leader_gen) == gen;
    whsem__mutex_lock(&ENG.cb_mu);
    /* Queued, so that a callback thread can run the rest if one blocks;
     * but no more than the batch is run here, or callbacks that start
     * operations which end at once could keep the dispatcher from
     * dispatching for good. */
    int n = 0;
    for (struct op *o = batch, *next; o; o = next, n++) {
        next = o->link;
        push_locked(o);
    }
    for (; n > 0 && ENG.cb_head && ENG.cb_watching > 0 && atomic_load(&ENG.leader_gen) == gen; n--) {
        struct op *o = pop_locked();
        ENG.leader_inside = true;
        ENG.leader_since = whsem__p_mono_ns();
        ENG.leader_inside_gen = gen;
        whsem__mutex_unlock(&ENG.cb_mu);
        run_callback(o);
        whsem__mutex_lock(&ENG.cb_mu);
        if (ENG.leader_inside_gen == gen) ENG.leader_inside = false; /* not our successor's */
    }
    if (ENG.cb_head) {
        if (ENG.cb_threads == 0) start_callback_thread_locked();
        whsem__cond_signal(&ENG.cb_cv);
    }
    whsem__mutex_unlock(&ENG.cb_mu);
    return atomic_load(&ENG.leader_gen) == gen;
}

void whsem__a_leader_up(bool up)
{
    whsem__mutex_lock(&ENG.cb_mu);
    atomic_store(&ENG.leader_up, up);
    /* Idle callback threads wait for longer while no dispatcher runs: they
     * look again now. */
    if (up && ENG.cb_idle > ENG.cb_watching) whsem__cond_signal(&ENG.cb_cv);
    whsem__mutex_unlock(&ENG.cb_mu);
}

void whsem__a_become_callback_thread(void)
{
    whsem__mutex_lock(&ENG.cb_mu);
    ENG.leaders_stuck--;
    ENG.cb_threads++;
    callback_loop();
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
    whsem__mutex_lock(&ENG.cb_mu);
    bool queued = ENG.cb_head != NULL;
    bool stalled = queued && ENG.cb_idle == 0 && ENG.cb_threads < MAX_CALLBACK_THREADS;
    int inside = 0;
    uint64_t now = whsem__p_mono_ns();
    for (int i = 0; stalled && i < MAX_CALLBACK_THREADS; i++) {
        if (!ENG.cb_in[i].inside) continue;
        inside++;
        stalled = now > ENG.cb_in[i].since_ns + STALL_NS &&
                  whsem__p_thread_blocked(ENG.cb_in[i].id, ENG.cb_in[i].mark);
    }
    if (stalled && inside == ENG.cb_threads) start_callback_thread_locked();
    whsem__mutex_unlock(&ENG.cb_mu);
    return queued;
}
