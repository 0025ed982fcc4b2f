/*
 * Asynchronous acquisition on Windows: operations, the dispatcher,
 * callback threads and completion queues.
 *
 * An operation waits exactly like a blocking acquire (it counts in its
 * slot's `want`) but nobody sleeps for it: one dispatcher thread per
 * process sleeps in WaitForMultipleObjects on its own event (new
 * operation, cancel, close, free) and on the slot wake semaphore of every
 * mapping with pending operations. Woken, it settles each such mapping
 * under its segment mutex: grants and free tickets go to live operations
 * oldest first, then the operations that ended (canceled, closed, timed
 * out) leave, then grants nobody here can use go back. Granting and ending
 * are decided in that one place under that one mutex, so a ticket is
 * either delivered or returned, never lost.
 *
 * Threads: the dispatcher (it exits after 2 s idle) and callback threads:
 * one, and another only while every callback thread has been inside one
 * callback for a while without using the CPU (blocked), up to a cap.
 *
 * Operation and queue objects are recycled through pools, never freed, so
 * a stale handle can always be looked at; each records its live handle,
 * checked under its own lock.
 */
#include "win32.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WAIT_MAPS (MAXIMUM_WAIT_OBJECTS - 1) /* the dispatcher's event is the first */
#define POLL_NS 10000000u       /* mappings beyond MAX_WAIT_MAPS are polled */
#define STALL_NS 100000000u     /* callbacks blocked this long: add a thread */
#define MAX_CALLBACK_THREADS 16
#define IDLE_EXIT_NS 2000000000u
#define CALLBACK_IDLE_MS 2000
/* As long as a thread's message (errors.c), so that none is cut short. */
#define DETAIL_BYTES 512

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
    uint64_t deadline;        /* monotonic ns, 0 = none                         */
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

static struct {
    SRWLOCK mu;               /* the engine lock                                 */
    HANDLE ctl;               /* auto-reset: local events for the dispatcher     */
    _Atomic uint32_t ctl_seq; /* bumped with every poke                          */
    _Atomic uint32_t endings; /* bumped by anything that may end operations early */
    uint32_t swept_endings;
    uint64_t next_deadline;   /* earliest deadline of a pending operation, 0 none */
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
} eng = {.mu = SRWLOCK_INIT, .cb_mu = SRWLOCK_INIT, .cb_cv = CONDITION_VARIABLE_INIT,
         .pool_mu = SRWLOCK_INIT};

static INIT_ONCE ctl_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK ctl_init(PINIT_ONCE once, void *param, void **ctx)
{
    (void)once, (void)param, (void)ctx;
    eng.ctl = CreateEventW(NULL, FALSE, FALSE, NULL);
    return eng.ctl != NULL;
}

static void poke(void)
{
    atomic_fetch_add(&eng.ctl_seq, 1);
    if (InitOnceExecuteOnce(&ctl_once, ctl_init, NULL, NULL)) SetEvent(eng.ctl);
}

/* Something may have ended pending operations early: the dispatcher looks
 * at every pending operation once. */
static void poke_endings(void)
{
    atomic_fetch_add(&eng.endings, 1);
    poke();
}

void whsem__async_poke(void) { poke_endings(); }

/* ---- pools ------------------------------------------------------------------------ */

static struct op *op_get(void)
{
    AcquireSRWLockExclusive(&eng.pool_mu);
    struct op *o = eng.op_pool;
    if (o) eng.op_pool = o->link;
    ReleaseSRWLockExclusive(&eng.pool_mu);
    if (!o) o = calloc(1, sizeof *o); /* a zeroed SRWLOCK and CONDITION_VARIABLE are ready */
    return o;
}

static void op_put(struct op *o)
{
    AcquireSRWLockExclusive(&eng.pool_mu);
    o->link = eng.op_pool;
    eng.op_pool = o;
    ReleaseSRWLockExclusive(&eng.pool_mu);
}

static void queue_put(struct queue_obj *q)
{
    AcquireSRWLockExclusive(&eng.pool_mu);
    q->link = eng.q_pool;
    eng.q_pool = q;
    ReleaseSRWLockExclusive(&eng.pool_mu);
}

/* Drops a queue reference (its lock held, and released here). */
static void queue_unref_unlock(struct queue_obj *q)
{
    bool last = --q->refs == 0;
    if (last) {
        CloseHandle(q->event);
        q->event = NULL;
        free(q->ring);
        q->ring = NULL;
        q->head = q->n = q->cap = 0;
    }
    ReleaseSRWLockExclusive(&q->mu);
    if (last) queue_put(q);
}

static void queue_unref(struct queue_obj *q)
{
    AcquireSRWLockExclusive(&q->mu);
    queue_unref_unlock(q);
}

/* Drops an operation reference (its lock held, and released here). */
static void op_unref_unlock(struct op *o)
{
    bool last = --o->refs == 0;
    struct queue_obj *q = last ? o->q : NULL;
    if (last) o->q = NULL;
    ReleaseSRWLockExclusive(&o->mu);
    if (q) queue_unref(q);
    if (last) op_put(o);
}

/* ---- callback threads ------------------------------------------------------------------ */

static uint64_t thread_cpu(HANDLE t)
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
    AcquireSRWLockExclusive(&eng.cb_mu);
    for (;;) {
        while (!eng.cb_head) {
            eng.cb_idle++;
            BOOL woke = SleepConditionVariableSRW(&eng.cb_cv, &eng.cb_mu, CALLBACK_IDLE_MS, 0);
            eng.cb_idle--;
            /* Extra threads started for blocking callbacks go away when idle. */
            if (!woke && !eng.cb_head && eng.cb_threads > 1) {
                eng.cb_threads--;
                ReleaseSRWLockExclusive(&eng.cb_mu);
                if (self) CloseHandle(self);
                return 0;
            }
        }
        struct op *o = eng.cb_head;
        eng.cb_head = o->link;
        if (!eng.cb_head) eng.cb_tail = NULL;
        int me = -1;
        for (int i = 0; i < MAX_CALLBACK_THREADS && me < 0; i++)
            if (!eng.cb_in[i].thread) me = i;
        if (me >= 0 && self) {
            eng.cb_in[me].thread = self;
            eng.cb_in[me].since_ns = whsem__w_mono_ns();
            eng.cb_in[me].cpu = thread_cpu(self);
        }
        ReleaseSRWLockExclusive(&eng.cb_mu);

        AcquireSRWLockExclusive(&o->mu);
        whsem_callback cb = o->cb;
        void *ud = o->user_data;
        uint64_t h = o->cb_handle;
        whsem_status st = atomic_load(&o->status);
        ReleaseSRWLockExclusive(&o->mu);
        cb(h, st, ud);
        AcquireSRWLockExclusive(&eng.cb_mu);
        if (me >= 0) eng.cb_in[me].thread = NULL;
        ReleaseSRWLockExclusive(&eng.cb_mu);
        AcquireSRWLockExclusive(&o->mu);
        op_unref_unlock(o);
        AcquireSRWLockExclusive(&eng.cb_mu);
    }
}

static void start_callback_thread_locked(void)
{
    whsem__w_pin_module();
    HANDLE t = CreateThread(NULL, 0, callback_thread, NULL, 0, NULL);
    if (t) {
        eng.cb_threads++;
        CloseHandle(t);
    }
}

static void queue_callback(struct op *o)
{
    AcquireSRWLockExclusive(&eng.cb_mu);
    o->link = NULL;
    if (eng.cb_tail) eng.cb_tail->link = o;
    else eng.cb_head = o;
    eng.cb_tail = o;
    if (eng.cb_threads == 0) start_callback_thread_locked();
    WakeConditionVariable(&eng.cb_cv);
    ReleaseSRWLockExclusive(&eng.cb_mu);
}

/*
 * Called by the dispatcher while callbacks are queued. If every callback
 * thread has sat inside one callback for a while without using any CPU
 * time, callbacks block, and another thread keeps the rest flowing.
 * (Windows cannot tell a blocked thread from one waiting for a CPU; CPU
 * time that does not move is the sign of the former.)
 */
static bool check_callbacks(void)
{
    AcquireSRWLockExclusive(&eng.cb_mu);
    bool queued = eng.cb_head != NULL;
    bool stalled = queued && eng.cb_idle == 0 && eng.cb_threads < MAX_CALLBACK_THREADS;
    int inside = 0;
    uint64_t now = whsem__w_mono_ns();
    for (int i = 0; stalled && i < MAX_CALLBACK_THREADS; i++) {
        if (!eng.cb_in[i].thread) continue;
        inside++;
        stalled = now > eng.cb_in[i].since_ns + STALL_NS &&
                  thread_cpu(eng.cb_in[i].thread) == eng.cb_in[i].cpu;
    }
    if (stalled && inside == eng.cb_threads) start_callback_thread_locked();
    ReleaseSRWLockExclusive(&eng.cb_mu);
    return queued;
}

/* ---- completion ------------------------------------------------------------------------ */

static void queue_post(struct queue_obj *q, uint64_t op, uint64_t tag)
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

/* Records why a pending operation ends; see struct op's detail. Without
 * memory for it the status still tells. */
static void set_detail(struct op *o, const char *msg)
{
    if (!o->detail && !(o->detail = malloc(DETAIL_BYTES))) return;
    snprintf(o->detail, DETAIL_BYTES, "%s", msg);
}

static const char *detail_of(const struct op *o) { return o->detail ? o->detail : ""; }

/*
 * Makes an operation final (no engine or segment lock held) and hands it
 * to its callback, its queue, or nobody. An OK operation carries `ticket`,
 * already a live handle; if its owner freed it meanwhile the ticket goes
 * straight back. The engine's reference keeps the object until done.
 */
static void complete(struct op *o, whsem_status status, uint64_t ticket)
{
    AcquireSRWLockExclusive(&o->mu);
    bool release_now = o->freed && ticket;
    o->ticket = release_now ? 0 : ticket;
    /* Order matters, as on Linux: final for whsem_op_poll first (whoever
     * pops it from a queue reads it), then posted, then `done` for
     * whsem_op_wait (which returns only once the posting happened). */
    atomic_store(&o->status, status);
    bool callback = o->cb != NULL;
    struct queue_obj *q = callback || o->freed ? NULL : o->q;
    uint64_t h = o->h, tag = o->tag;
    ReleaseSRWLockExclusive(&o->mu);
    if (q) queue_post(q, h, tag);
    AcquireSRWLockExclusive(&o->mu);
    o->done = true;
    WakeAllConditionVariable(&o->cv);
    ReleaseSRWLockExclusive(&o->mu);
    if (release_now) whsem_release(ticket);
    if (callback) {
        queue_callback(o); /* the engine's reference goes with it */
        return;
    }
    AcquireSRWLockExclusive(&o->mu);
    op_unref_unlock(o);
}

/* Turns an operation's final status into its delivery: a ticket handle for
 * an OK one (given back if none can be made), then completion. The
 * mapping use the pending operation held is dropped last. */
static void deliver_one(struct op *o, whsem_status st)
{
    struct wmap *m = o->m;
    uint64_t ticket = 0;
    if (st == WHSEM_OK) {
        ticket = whsem__h_alloc(HK_TICKET, m, 0, &st);
        if (ticket) {
            whsem__use(m); /* the ticket's own use */
        } else {
            set_detail(o, whsem_last_error());
            whsem__give_back_unpublished(m);
        }
    }
    whsem__cancel_unregister(&o->cw);
    complete(o, st, ticket);
    whsem__unuse(m);
}

/* ---- the dispatcher ------------------------------------------------------------------------ */

/* Whether a pending operation is over without a ticket: *why is its final
 * status and *detail the message that explains it, or NULL when the status
 * says it all (or someone recorded the reason already). */
static bool op_ended(struct op *o, uint64_t now, whsem_status *why, const char **detail)
{
    *why = WHSEM_CANCELED;
    *detail = NULL;
    if (atomic_load(&o->cancel_req)) return true;
    if (o->cancel && whsem__cancel_triggered(&o->cw)) return true;
    if (atomic_load(&o->sem_e->tag) != o->sem) {
        *detail = "the semaphore handle was closed while waiting"; /* as whsem_acquire says */
        return true;
    }
    if (o->q && atomic_load(&o->q->freed)) {
        *detail = "the completion queue was freed while waiting";
        return true;
    }
    *why = WHSEM_TIMEOUT;
    return o->deadline && now >= o->deadline;
}

static void unlink_pending(struct wmap *m, struct op *o)
{
    if (o->prev) o->prev->next = o->next;
    else m->aq_head = o->next;
    if (o->next) o->next->prev = o->prev;
    else m->aq_tail = o->prev;
    o->prev = o->next = NULL;
}

static void finish(struct op **batch, struct op *o, whsem_status st, const char *detail)
{
    o->final = st;
    if (detail) set_detail(o, detail);
    o->link = *batch;
    *batch = o;
}

/*
 * Settles one mapping's pending operations under its segment mutex
 * (engine lock held). sweep: look at every operation for an ending, and
 * recompute the earliest deadline. Returns when the next abandonment scan
 * is due (0: never).
 */
static uint64_t settle(struct wmap *m, uint64_t now, bool sweep, struct op **batch)
{
    whsem_status err = whsem__lock(m);
    if (err != WHSEM_OK) {
        /* The segment is beyond use: everything ends with that error,
         * and with the message this thread was just given. */
        while (m->aq_head) {
            struct op *o = m->aq_head;
            unlink_pending(m, o);
            finish(batch, o, err, whsem_last_error());
        }
        return 0;
    }
    struct wseg_header *h = m->hdr;
    struct wseg_slot *s = &m->slots[m->slot];
    bool scanned = false;
    whsem_status why;
    const char *detail;
again:
    /* Grants and free tickets first, to live operations oldest first. */
    for (struct op *o = m->aq_head, *next; o && (s->grants > 0 || h->free > 0); o = next) {
        next = o->next;
        if (op_ended(o, now, &why, &detail)) continue;
        if (!whsem__take_grant(s)) {
            h->free--;
            whsem__take(s);
            h->acquisitions++;
        }
        whsem__want_less(h, s, true, now);
        unlink_pending(m, o);
        finish(batch, o, WHSEM_OK, NULL);
    }
    /* Then the ones that are over without a ticket. */
    for (struct op *o = sweep ? m->aq_head : NULL, *next; o; o = next) {
        next = o->next;
        if (op_ended(o, now, &why, &detail)) {
            whsem__want_less(h, s, false, now);
            unlink_pending(m, o);
            finish(batch, o, why, detail);
        } else if (o->deadline && (!eng.next_deadline || o->deadline < eng.next_deadline)) {
            eng.next_deadline = o->deadline;
        }
    }
    /* Grants nobody here can use any more go to the next process. */
    while (s->grants > s->want) {
        s->grants--;
        int32_t w = whsem__give_back_locked(m);
        if (w >= 0) whsem__wake_slot(m, (uint32_t)w, 1);
    }
    /* Grants left over are for this process's blocking waits, and so is a
     * free ticket no live operation took (a wake-up to compete for it may
     * have woken us instead of them). We are not waiting on our slot now,
     * so these wake-ups go to waits that are. */
    if (s->grants > 0) whsem__wake_slot(m, m->slot, (LONG)s->grants);
    else if (h->free > 0 && s->want > 0) whsem__wake_slot(m, m->slot, 1);
    if (m->aq_head && !scanned && whsem__scan_due(m, m->async_check_ms, now)) {
        scanned = true;
        if (whsem__scan_locked(m, false) == WHSEM_OK) goto again;
    }
    uint64_t next_scan = 0;
    if (m->async_check_ms >= 0) {
        uint64_t period = (uint64_t)m->async_check_ms * 1000000u;
        next_scan = h->last_scan_ns + period;
        if (next_scan <= now) next_scan = now + period;
    }
    whsem__unlock(m);
    return next_scan;
}

static void deactivate(struct wmap *m)
{
    for (struct wmap **pp = &eng.active; *pp; pp = &(*pp)->active_next)
        if (*pp == m) {
            *pp = m->active_next;
            break;
        }
    m->active = false;
    m->active_next = NULL;
}

static DWORD WINAPI dispatcher(void *arg)
{
    (void)arg;
    uint64_t idle_since = 0;
    AcquireSRWLockExclusive(&eng.mu);
    for (;;) {
        uint64_t now = whsem__w_mono_ns();
        uint32_t seq = atomic_load(&eng.ctl_seq);
        uint32_t endings = atomic_load(&eng.endings);
        bool sweep = endings != eng.swept_endings || (eng.next_deadline && now >= eng.next_deadline);
        eng.swept_endings = endings;
        if (sweep) eng.next_deadline = 0; /* settle recomputes it */
        struct op *batch = NULL;
        HANDLE objs[MAXIMUM_WAIT_OBJECTS];
        DWORD n = 0;
        objs[n++] = eng.ctl;
        uint64_t until = 0;
        bool polled = false;
        for (struct wmap *m = eng.active, *next; m; m = next) {
            next = m->active_next;
            uint64_t next_scan = settle(m, now, sweep, &batch);
            if (!m->aq_head) {
                deactivate(m);
                continue;
            }
            /* Its pending operations hold uses of m, and only this thread
             * ends them: the handle stays valid while we wait on it. */
            if (n < MAXIMUM_WAIT_OBJECTS) objs[n++] = whsem__own_wake(m);
            else polled = true;
            if (next_scan && (!until || next_scan < until)) until = next_scan;
        }
        if (eng.next_deadline && (!until || eng.next_deadline < until)) until = eng.next_deadline;
        bool idle = eng.active == NULL;
        ReleaseSRWLockExclusive(&eng.mu);

        while (batch) {
            struct op *o = batch;
            batch = o->link;
            deliver_one(o, o->final);
        }
        if (check_callbacks() && (!until || until > now + STALL_NS)) until = now + STALL_NS;
        if (polled && (!until || until > now + POLL_NS)) until = now + POLL_NS;
        if (idle) {
            if (!idle_since) idle_since = now;
            if (now - idle_since >= IDLE_EXIT_NS) {
                AcquireSRWLockExclusive(&eng.mu);
                if (!eng.active && atomic_load(&eng.ctl_seq) == seq) {
                    eng.dispatcher_running = false;
                    ReleaseSRWLockExclusive(&eng.mu);
                    return 0;
                }
                continue; /* something arrived: go round with the lock held */
            }
            if (!until || until > idle_since + IDLE_EXIT_NS) until = idle_since + IDLE_EXIT_NS;
        } else {
            idle_since = 0;
        }
        WaitForMultipleObjects(n, objs, FALSE, whsem__w_wait_ms(until, now));
        AcquireSRWLockExclusive(&eng.mu);
    }
}

/* Starts the dispatcher if it is not running (engine lock held). */
static whsem_status ensure_dispatcher_locked(void)
{
    if (eng.dispatcher_running) return WHSEM_OK;
    if (!InitOnceExecuteOnce(&ctl_once, ctl_init, NULL, NULL))
        return whsem__fail_win32(GetLastError(), "cannot create the dispatcher's event", NULL);
    whsem__w_pin_module();
    HANDLE t = CreateThread(NULL, 0, dispatcher, NULL, 0, NULL);
    if (!t) return whsem__fail(WHSEM_E_LIMIT, "cannot start the dispatcher thread (error %lu)",
                               (unsigned long)GetLastError());
    CloseHandle(t);
    eng.dispatcher_running = true;
    return WHSEM_OK;
}

/* ---- the public functions ---------------------------------------------------------------- */

static void notify_op(struct cwait *w)
{
    struct op *o = w->ctx;
    atomic_store(&o->cancel_req, true);
    poke_endings();
}

/* Makes a pending operation known to the dispatcher; on failure it is
 * taken back (its want undone) and ends with the error. */
static whsem_status enqueue(struct op *o, int32_t check_ms)
{
    struct wmap *m = o->m;
    AcquireSRWLockExclusive(&eng.mu);
    whsem_status st = ensure_dispatcher_locked();
    if (st == WHSEM_OK) {
        if (!m->active) {
            m->active = true;
            m->async_check_ms = check_ms;
            m->active_next = eng.active;
            eng.active = m;
        } else if (check_ms >= 0 && (m->async_check_ms < 0 || check_ms < m->async_check_ms)) {
            m->async_check_ms = check_ms;
        }
        o->prev = m->aq_tail;
        o->next = NULL;
        if (m->aq_tail) m->aq_tail->next = o;
        else m->aq_head = o;
        m->aq_tail = o;
        if (o->deadline && (!eng.next_deadline || o->deadline < eng.next_deadline))
            eng.next_deadline = o->deadline;
    }
    ReleaseSRWLockExclusive(&eng.mu);
    if (st == WHSEM_OK) {
        poke();
        return WHSEM_OK;
    }
    set_detail(o, whsem_last_error()); /* before the lock below can say something else */
    /* Not counted as waiting any more: a grant it received goes back. */
    if (whsem__lock(m) == WHSEM_OK) {
        struct wseg_slot *s = &m->slots[m->slot];
        whsem__want_less(m->hdr, s, false, whsem__w_mono_ns());
        int32_t w = s->grants > s->want ? (s->grants--, whsem__give_back_locked(m)) : -1;
        whsem__unlock(m);
        if (w >= 0) whsem__wake_slot(m, (uint32_t)w, 1);
    }
    return st;
}

static whsem_status start(whsem_sem sem, int64_t timeout_ms, whsem_cancel cancel, whsem_callback cb,
                          void *user_data, struct queue_obj *q, uint64_t tag, whsem_op *out_op)
{
    if (!out_op) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_op is NULL");
    *out_op = 0;
    if (!whsem__timeout_ok(timeout_ms)) return whsem__bad_timeout(timeout_ms);
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    if (!e) return whsem__invalid_handle(sem, "semaphore");
    bool canceled = false;
    if (cancel) {
        struct hentry *ce = whsem__h_lookup(cancel, HK_CANCEL);
        if (!ce) return whsem__invalid_handle(cancel, "cancellation source");
        canceled = atomic_load(&ce->aux) != 0;
    }
    struct wmap *m = whsem__h_use(sem, HK_SEM);
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    struct op *o = op_get();
    if (!o) {
        whsem__unuse(m);
        return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for an operation");
    }
    AcquireSRWLockExclusive(&o->mu);
    atomic_store(&o->status, WHSEM_PENDING);
    o->done = false;
    o->ticket = 0;
    o->taken = o->freed = false;
    o->refs = 2; /* the caller's handle, and the engine until delivered */
    o->cb = cb;
    o->user_data = user_data;
    o->q = q;
    o->tag = tag;
    o->m = m;
    o->sem = sem;
    o->sem_e = e;
    o->deadline = timeout_ms > 0 ? whsem__w_mono_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    atomic_store(&o->cancel_req, false);
    o->cancel = cancel;
    o->cw = (struct cwait){.notify = notify_op, .ctx = o};
    o->prev = o->next = NULL;
    if (o->detail) o->detail[0] = 0;
    ReleaseSRWLockExclusive(&o->mu);
    whsem_status st;
    uint64_t h = whsem__h_alloc(HK_OP, o, 0, &st);
    if (!h) {
        op_put(o);
        whsem__unuse(m);
        return st;
    }
    AcquireSRWLockExclusive(&o->mu);
    o->h = o->cb_handle = h;
    ReleaseSRWLockExclusive(&o->mu);
    if (q) {
        AcquireSRWLockExclusive(&q->mu);
        q->refs++;
        ReleaseSRWLockExclusive(&q->mu);
    }

    /* Settle at once what can be settled at once; the callback still runs
     * on a library thread, never in here. The call's use of m becomes the
     * pending operation's (or goes to deliver_one, which drops it). */
    whsem_status now_status = WHSEM_PENDING;
    int32_t check_ms = (int32_t)atomic_load(&e->aux);
    if (canceled) {
        now_status = WHSEM_CANCELED;
    } else if (cancel && (st = whsem__cancel_register(cancel, &o->cw)) != WHSEM_OK) {
        now_status = st; /* WHSEM_CANCELED, or the source died meanwhile */
        if (st < 0) set_detail(o, whsem_last_error());
    }
    if (now_status == WHSEM_PENDING) {
        st = whsem__lock(m);
        if (st != WHSEM_OK) {
            now_status = st;
            set_detail(o, whsem_last_error());
        } else {
            struct wseg_header *hd = m->hdr;
            struct wseg_slot *s = &m->slots[m->slot];
            if (hd->free > 0) {
                hd->free--;
                whsem__take(s);
                hd->acquisitions++;
                now_status = WHSEM_OK;
            } else if (timeout_ms == 0) {
                now_status = WHSEM_TIMEOUT;
                if (whsem__take_grant(s)) {
                    now_status = WHSEM_OK;
                } else if (whsem__scan_due(m, check_ms, whsem__w_mono_ns()) &&
                           whsem__scan_locked(m, false) == WHSEM_OK && hd->free > 0) {
                    hd->free--;
                    whsem__take(s);
                    hd->acquisitions++;
                    now_status = WHSEM_OK;
                }
            } else {
                whsem__want_more(hd, s, whsem__w_mono_ns());
            }
            whsem__unlock(m);
        }
        /* enqueue records why it failed */
        if (now_status == WHSEM_PENDING && (st = enqueue(o, check_ms)) != WHSEM_OK) now_status = st;
    }
    if (now_status != WHSEM_PENDING) deliver_one(o, now_status);
    *out_op = h;
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_acquire_async(whsem_sem sem, int64_t timeout_ms,
                                                      whsem_cancel cancel, whsem_callback cb,
                                                      void *user_data, whsem_op *out_op)
{
    return start(sem, timeout_ms, cancel, cb, user_data, NULL, 0, out_op);
}

/* The operation behind a live handle, with its lock held, or NULL. */
static struct op *lock_op(whsem_op op)
{
    struct hentry *e = whsem__h_lookup(op, HK_OP);
    if (!e) return NULL;
    struct op *o = e->ptr;
    AcquireSRWLockExclusive(&o->mu);
    if (o->h != op) {
        ReleaseSRWLockExclusive(&o->mu);
        return NULL;
    }
    return o;
}

/* The final status st of an operation (its lock held), with its detail
 * made the calling thread's message unless it succeeded. */
static whsem_status report_locked(struct op *o, whsem_status st)
{
    if (st == WHSEM_OK || st == WHSEM_PENDING) return st;
    return whsem__fail(st, "%s", detail_of(o));
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_poll(whsem_op op)
{
    struct hentry *e = whsem__h_lookup(op, HK_OP);
    if (!e) return whsem__invalid_handle(op, "operation");
    struct op *o = e->ptr;
    whsem_status st = atomic_load(&o->status);
    if (atomic_load(&e->tag) != op) return whsem__invalid_handle(op, "operation");
    if (st == WHSEM_OK || st == WHSEM_PENDING) return st;
    /* Ended otherwise: the slow path, under the lock the detail needs. */
    if (!(o = lock_op(op))) return whsem__invalid_handle(op, "operation");
    st = report_locked(o, atomic_load(&o->status));
    ReleaseSRWLockExclusive(&o->mu);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_wait(whsem_op op, int64_t timeout_ms)
{
    if (!whsem__timeout_ok(timeout_ms)) return whsem__bad_timeout(timeout_ms);
    struct op *o = lock_op(op);
    if (!o) return whsem__invalid_handle(op, "operation");
    uint64_t deadline = timeout_ms > 0 ? whsem__w_mono_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    whsem_status st;
    for (;;) {
        if (o->h != op) {
            ReleaseSRWLockExclusive(&o->mu);
            return whsem__invalid_handle(op, "operation"); /* freed while we waited */
        }
        /* `done`, not the status: set once a queued operation is posted. */
        st = o->done ? atomic_load(&o->status) : WHSEM_PENDING;
        if (o->done || timeout_ms == 0) break;
        uint64_t now = whsem__w_mono_ns();
        if (deadline && now >= deadline) break;
        SleepConditionVariableSRW(&o->cv, &o->mu, whsem__w_wait_ms(deadline, now), 0);
    }
    st = report_locked(o, st);
    ReleaseSRWLockExclusive(&o->mu);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_take_ticket(whsem_op op, whsem_ticket *out_ticket)
{
    if (!out_ticket) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_ticket is NULL");
    *out_ticket = 0;
    struct op *o = lock_op(op);
    if (!o) return whsem__invalid_handle(op, "operation");
    whsem_status st = atomic_load(&o->status);
    if (st == WHSEM_OK) {
        if (o->taken) {
            st = whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                             "the ticket of operation 0x%llx was already taken",
                             (unsigned long long)op);
        } else {
            o->taken = true;
            *out_ticket = o->ticket;
            o->ticket = 0;
        }
    } else {
        st = report_locked(o, st);
    }
    ReleaseSRWLockExclusive(&o->mu);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_cancel(whsem_op op)
{
    struct op *o = lock_op(op);
    if (!o) return whsem__invalid_handle(op, "operation");
    bool pending = atomic_load(&o->status) == WHSEM_PENDING;
    if (pending) atomic_store(&o->cancel_req, true);
    ReleaseSRWLockExclusive(&o->mu);
    if (pending) poke_endings();
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_op_free(whsem_op op)
{
    struct op *o = lock_op(op);
    if (!o || !whsem__h_kill(op)) {
        if (o) ReleaseSRWLockExclusive(&o->mu);
        return whsem__invalid_handle(op, "operation");
    }
    o->h = 0;
    o->freed = true;
    WakeAllConditionVariable(&o->cv); /* waiters in whsem_op_wait look again */
    bool pending = atomic_load(&o->status) == WHSEM_PENDING;
    uint64_t ticket = o->ticket;
    o->ticket = 0;
    if (pending) atomic_store(&o->cancel_req, true);
    op_unref_unlock(o);
    if (pending) poke_endings();
    if (ticket) whsem_release(ticket);
    return WHSEM_OK;
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
    AcquireSRWLockExclusive(&eng.pool_mu);
    struct queue_obj *q = eng.q_pool;
    if (q) eng.q_pool = q->link;
    ReleaseSRWLockExclusive(&eng.pool_mu);
    if (!q && !(q = calloc(1, sizeof *q)))
        return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for a queue");
    HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!ev) {
        queue_put(q);
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
        queue_put(q);
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
    q->refs++; /* held across start(), which takes its own reference */
    ReleaseSRWLockExclusive(&q->mu);
    whsem_status st = start(sem, timeout_ms, cancel, NULL, NULL, q, tag, out_op);
    queue_unref(q);
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
    queue_unref_unlock(q);
    if (others) poke_endings(); /* its pending operations end */
    return WHSEM_OK;
}
