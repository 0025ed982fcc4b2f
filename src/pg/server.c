/* SPDX-License-Identifier: MIT */
/*
 * A PostgreSQL server as one process sees it: its connections, the names
 * in use, their waiting acquisitions, and the worker thread that serves
 * them all (pg/DESIGN.md).
 *
 * Callers (the backend's entries) only record what they want, under the
 * server's mutex, and wake the worker; the worker alone talks to the
 * server and decides every outcome under that mutex. So an acquisition
 * is granted, or ends by its deadline, a cancellation or a close, exactly
 * once, and a ticket the server gave us always has exactly one place: an
 * acquisition, a ticket handle, or a statement that gives it back.
 */
#include "counters.h"
#include "registry.h"
#include "server.h"

#include "async_engine.h"
#include "async_policy.h"
#include "fork_hooks.h"
#include "platform.h"
#include "process.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* The try of a free ticket, in one statement: ticket indices from 0 up,
 * each tried without waiting, stopping at the first one taken. $3 lists
 * the indices this session holds already: advisory locks are re-entrant
 * within a session, and taking one of ours again would be a second ticket
 * on one index. CASE, because only it fixes the order of evaluation. */
static const char sql_try[] =
    "WITH RECURSIVE s(i, got) AS (SELECT -1, false UNION ALL"
    " SELECT i + 1, CASE WHEN i + 1 = ANY($3::int[]) THEN false"
    " ELSE pg_try_advisory_lock($1::int, i + 1) END"
    " FROM s WHERE NOT got AND i + 1 < $2::int)"
    " SELECT i, CASE WHEN $4::text <> '' THEN set_config('application_name', $4, false) END"
    " FROM s WHERE got";
/* A waiting connection's statement: the same try, and if nothing is free,
 * a wait in the server's queue of index $3 (COALESCE evaluates the wait
 * only when the try found nothing). It holds no ticket, so $3 can never
 * be one of its own. Once it has the index it stamps "held since" in its
 * application_name ($4 <unix ms> $5), by the server's clock: in the same
 * statement, so that the holder's release never queues behind another. */
static const char sql_wait[] =
    "WITH RECURSIVE s(i, got) AS (SELECT -1, false UNION ALL"
    " SELECT i + 1, pg_try_advisory_lock($1::int, i + 1)"
    " FROM s WHERE NOT got AND i + 1 < $2::int)"
    " SELECT g.i, set_config('application_name', $4::text"
    " || (extract(epoch FROM clock_timestamp()) * 1000)::int8 || $5::text, false)"
    " FROM (SELECT COALESCE((SELECT i FROM s WHERE got),"
    " (SELECT $3::int FROM pg_advisory_lock($1::int, $3::int)))) g(i)";
static const char sql_unlock[] = "SELECT pg_advisory_unlock($1::int, $2::int)";
static const char sql_unlock_all[] = "SELECT pg_advisory_unlock_all()";
static const char sql_ping[] = "SELECT 1";
static const char sql_client_check[] =
    "SELECT set_config('client_connection_check_interval', $1, false)";
static const char sql_lock_timeout[] = "SELECT set_config('lock_timeout', $1, false)";
static const char sql_snapshot[] =
    "SELECT l.objid::int8, l.granted, l.pid, coalesce(a.application_name, ''),"
    " coalesce((extract(epoch FROM l.waitstart) * 1000)::int8, 0)"
    " FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.classid = $1::int::oid"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/* What a child of fork() is told when it uses its parent's handles. */
static const char msg_forked[] =
    "this semaphore's connections belong to the process that called fork(); open the name again";

static pthread_mutex_t servers_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pgsrv *servers;

/* Ticket objects are recycled, never freed: a stale handle's entry may
 * still point at one, and the front reads its backend from it. */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pgticket *pool;

/* What the worker does after letting go of the mutex. */
struct after {
    struct pgacq *acqs;         /* asynchronous acquisitions that ended */
    struct note *notes;         /* watches to tell                       */
};
struct note {
    struct note *next;
    whsem_ticket ticket;
    whsem_status status;
    whsem_cancel cancel;
    whsem_ticket_callback cb;
    void *data;
};

/* ---- small things ---- */

/* The watch of t, told st: its note, filled, for the worker to deliver. */
static struct note *take_note(struct pgticket *t, whsem_status st)
{
    struct note *w = t->watch_note;
    *w = (struct note){NULL, t->handle, st, t->watch_cancel, t->watch_cb, t->watch_data};
    t->watch_note = NULL;
    t->watched = false;
    return w;
}

static void poke(struct pgsrv *s)
{
    if (s->evfd < 0) return; /* inherited through fork(): no worker */
    uint64_t one = 1;
    ssize_t r = write(s->evfd, &one, sizeof one);
    (void)r; /* EAGAIN: it is readable already */
}

static void int_text(int64_t v, char buf[24]) { snprintf(buf, 24, "%lld", (long long)v); }

static struct pgticket *ticket_get(struct pgsrv *s)
{
    pthread_mutex_lock(&pool_mu);
    struct pgticket *t = pool;
    if (t) pool = t->cnext;
    pthread_mutex_unlock(&pool_mu);
    if (!t) t = malloc(sizeof *t);
    if (t) memset(t, 0, sizeof *t);
    if (t) t->base.be = s->be;
    return t;
}

static void ticket_put(struct pgticket *t)
{
    free(t->watch_note); /* a watch never told: none in use, but no leak */
    t->watch_note = NULL;
    pthread_mutex_lock(&pool_mu);
    t->cnext = pool;
    pool = t;
    pthread_mutex_unlock(&pool_mu);
}

static void link_ticket(struct pgconn *c, struct pgticket *t)
{
    t->c = c;
    t->since_ns = whsem__pgk_coarse_ns();
    t->cprev = NULL;
    t->cnext = c->tickets;
    if (c->tickets) c->tickets->cprev = t;
    c->tickets = t;
    c->ntickets++;
}

/* The ticket goes back: released, or lost with its session (which the
 * server ended, giving the ticket back). */
static void unlink_ticket(struct pgticket *t)
{
    struct pgconn *c = t->c;
    if (!c) return;
    whsem__pgk_released(t->n, whsem__pgk_coarse_ns() - t->since_ns);
    if (t->cprev) t->cprev->cnext = t->cnext;
    else c->tickets = t->cnext;
    if (t->cnext) t->cnext->cprev = t->cprev;
    t->cnext = t->cprev = NULL;
    c->ntickets--;
    t->c = NULL;
}

static void done_ignore(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    (void)s, (void)c, (void)j, (void)r;
}

static void push(struct pgsrv *s, struct pgconn *c, struct pgjob *j)
{
    whsem__pgc_push(s, c, j);
    whsem__pgc_kick(s, c);
    /* Not all of it could be written: the worker must wait for the
     * socket to take the rest (its poll set may not ask for that yet). */
    if (c->poll_events & POLLOUT) poke(s);
}

static void done_unlocked(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    (void)j, (void)r;
    c->unlocking--;
    atomic_fetch_add_explicit(&s->unlocked, 1, memory_order_release);
    whsem__p_word_wake_all(&s->unlocked);
}

/* Gives an index back to the server through the session that holds it. */
static void unlock_index(struct pgsrv *s, struct pgconn *c, int32_t id, int32_t index)
{
    if (c->state == PGC_DEAD) return; /* the session's end gave it back */
    char a[24], b[24];
    int_text(id, a);
    int_text(index, b);
    const char *v[] = {a, b, NULL};
    /* Given back on another session than the main one, where tries run:
     * a try of ours may overtake it (see any_blocked). */
    bool aside = c != s->main;
    struct pgjob *j = whsem__pgj_new(sql_unlock, aside ? done_unlocked : done_ignore, NULL, 0, v);
    if (j) j->reuse = true;
    if (j && aside) c->unlocking++;
    if (j) push(s, c, j);
    else whsem__pgc_kill(s, c, WHSEM_E_NO_MEMORY, "out of memory for a statement");
}

/* ---- ending acquisitions ---- */

static void wait_unlink(struct pgacq *a)
{
    struct pgname *n = a->n;
    if (a->state != PGA_WAITING) return;
    if (a->prev) a->prev->next = a->next;
    else n->wait_head = a->next;
    if (a->next) a->next->prev = a->prev;
    else n->wait_tail = a->prev;
    a->prev = a->next = NULL;
    n->nwaiting--;
    if (a->settling) n->nsettling--;
    whsem__pgk_waiting(n, n->nwaiting - n->nsettling);
}

static void tries_unlink(struct pgacq *a)
{
    if (!a->in_tries) return;
    if (a->tprev) a->tprev->tnext = a->tnext;
    else a->n->try_head = a->tnext;
    if (a->tnext) a->tnext->tprev = a->tprev;
    a->in_tries = false;
}

static void wait_append(struct pgacq *a)
{
    tries_unlink(a);
    struct pgname *n = a->n;
    a->state = PGA_WAITING;
    a->next = NULL;
    a->prev = n->wait_tail;
    if (n->wait_tail) n->wait_tail->next = a;
    else n->wait_head = a;
    n->wait_tail = a;
    n->nwaiting++;
    /* A try that only waits for our own waits to settle is still a try. */
    if (a->settling) n->nsettling++;
    else a->waited = true;
    whsem__pgk_waiting(n, n->nwaiting - n->nsettling);
}

/* A connection waiting in the server's queue for an index. */
static bool blocked(const struct pgconn *c)
{
    return c->state == PGC_READY && c->sent && c->head && c->head->blocking;
}

/* Whether a session of ours other than the main one may yet hold an
 * index of n for a while: a wait in the server's queue, or a release on
 * its way (a ticket a wait got, or a grant nobody took; also for an
 * earlier object of the same name). A try that finds nothing then waits
 * for them and tries once more: its own process never makes it fail. */
static bool any_blocked(const struct pgsrv *s, const struct pgname *n)
{
    for (const struct pgconn *c = s->conns; c; c = c->next)
        if (c->wid == n->id && (blocked(c) || (c->unlocking && c->state != PGC_DEAD))) return true;
    return false;
}

static void acq_unref(struct pgacq *a)
{
    if (--a->refs == 0) free(a);
}

/* Tells a blocking acquisition's caller that something happened: asleep
 * on its word, or reading its waits' connections (wait_here). */
static void nudge(struct pgacq *a)
{
    atomic_fetch_add_explicit(&a->word, 1, memory_order_release);
    whsem__p_word_wake_all(&a->word);
    int fd = atomic_load_explicit(&a->wake_fd, memory_order_acquire);
    if (fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(fd, &one, sizeof one);
        (void)w; /* a full counter wakes it as well */
    }
}

/* The one place an acquisition's outcome is decided. */
static void finish(struct pgsrv *s, struct pgacq *a, whsem_status st, struct pgticket *t,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void finish(struct pgsrv *s, struct pgacq *a, whsem_status st, struct pgticket *t,
                   const char *fmt, ...)
{
    (void)s;
    wait_unlink(a);
    whsem__pgk_ended(a->n, st, a->try_only, a->waited, a->waited ? whsem__mono_ns() - a->start_ns : 0);
    tries_unlink(a);
    a->state = PGA_DONE;
    a->status = st;
    a->ticket = t;
    a->msg[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->msg, sizeof a->msg, fmt, ap);
        va_end(ap);
    }
    if (!a->op) nudge(a);
}

/* Whether a can still be handed a ticket: not canceled meanwhile. */
static bool can_take(const struct pgacq *a)
{
    if (a->op) return !atomic_load_explicit(&a->op->cancel_req, memory_order_acquire);
    return !a->canceled;
}

/* The next waiting acquisition of n that can take a ticket, else one
 * whose try is in flight (its try, if it finds one, gives it back), or
 * NULL. */
static struct pgacq *next_waiter(struct pgname *n)
{
    for (struct pgacq *a = n->wait_head; a; a = a->next)
        if (can_take(a)) return a;
    struct pgacq *oldest = NULL; /* the list is newest first */
    for (struct pgacq *a = n->try_head; a; a = a->tnext)
        if (can_take(a)) oldest = a;
    return oldest;
}

/* application_name with "held since" now (the server keeps 63 bytes). */
static void since_app(struct pgsrv *s, char app[128])
{
    snprintf(app, 128, "whsem %ld %lld %s", (long)getpid(), (long long)whsem__unix_ms(), s->host);
}


/*
 * The server gave connection c index `index` of n: it goes to acquisition
 * a if that is still pending, else to the oldest waiter, else back.
 * Returns whether someone took it.
 */
static bool deliver(struct pgsrv *s, struct pgname *n, struct pgconn *c, int32_t index,
                    struct pgacq *a)
{
    if (!a || a->state == PGA_DONE) a = next_waiter(n);
    if (!a) {
        unlock_index(s, c, n->id, index);
        return false;
    }
    struct pgticket *t = ticket_get(s);
    if (!t) {
        unlock_index(s, c, n->id, index);
        finish(s, a, WHSEM_E_NO_MEMORY, NULL, "out of memory for a ticket");
        return false;
    }
    t->n = n;
    t->index = index;
    n->refs++;
    /* Tries and waits stamped "held since" themselves. */
    link_ticket(c, t);
    finish(s, a, WHSEM_OK, t, NULL);
    return true;
}

/* ---- statements' ends ---- */

static void done_try(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    struct pgacq *a = j->ctx;
    struct pgname *n = a->n;
    n->jobs--;
    tries_unlink(a);
    if (r && s->pq->resultStatus(r) == PQ_TUPLES_OK && s->pq->ntuples(r) == 1) {
        deliver(s, n, c, atoi(s->pq->getvalue(r, 0, 0)), a);
    } else if (a->state != PGA_DONE) {
        if (r && s->pq->resultStatus(r) != PQ_TUPLES_OK) {
            char msg[PG_MSG];
            whsem_status st = whsem__pg_result_error(s, r, msg, sizeof msg);
            finish(s, a, st, NULL, "%s", msg);
        } else if (a->try_only && r && !a->settled && n->nwaiting == n->nsettling &&
                   (a->aside_busy || any_blocked(s, n))) {
            /* Our own waits, being withdrawn, may be handed the index we
             * looked for: the try ends once they have ended. */
            a->settling = true;
            wait_append(a);
        } else if (a->try_only) {
            if (r) finish(s, a, WHSEM_TIMEOUT, NULL, NULL);
            else finish(s, a, c->fail.status, NULL, "%s", c->fail.msg);
        } else {
            /* Nothing free (or no connection now): wait for one. */
            wait_append(a);
        }
    }
    acq_unref(a);
}

/* arg: the name's id << 32 | the index it waited on; ctx: unused (the
 * name may be gone by the time a wait ends: c->wname says). */
static void done_wait(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    if (!r) return; /* the session, and what it held, is gone */
    if (s->pq->resultStatus(r) != PQ_TUPLES_OK || s->pq->ntuples(r) != 1) {
        /* Canceled (withdrawn) or failed: the lock may have been granted
         * just before the error, and a session-level lock outlives the
         * statement that took it. The connection carries no ticket, so
         * giving back everything it holds is exact (its markers too:
         * serve_waits takes its marker again before its next wait). */
        c->nmarks = 0;
        struct pgjob *u = whsem__pgj_new(sql_unlock_all, done_unlocked, NULL, 0, NULL);
        if (u) {
            c->unlocking++;
            push(s, c, u);
        } else {
            whsem__pgc_kill(s, c, WHSEM_E_NO_MEMORY, "out of memory for a statement");
        }
        return;
    }
    int32_t id = (int32_t)(j->arg >> 32);
    int32_t index = atoi(s->pq->getvalue(r, 0, 0));
    struct pgname *n = c->wname;
    if (!n || n->id != id) {
        unlock_index(s, c, id, index);
        return;
    }
    if (deliver(s, n, c, index, NULL)) {
        /* It carries a ticket now, and must stay free to give it back. */
        n->waiters[c->wslot] = NULL;
        c->wname = NULL;
        c->role = PGR_HOLD;
    }
}

static void done_ping(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    (void)s, (void)c, (void)j, (void)r;
}

/* ---- the worker's round ---- */

static struct pgconn *main_conn(struct pgsrv *s, uint64_t now)
{
    if (s->main && s->main->state != PGC_DEAD) return s->main;
    if (now < s->retry_at_ns) return NULL;
    struct pgconn *c = whsem__pgc_new(s, PGR_MAIN);
    if (!c) return NULL;
    s->main = c;
    /* A new session holds no marker: take each name's again, checking
     * that its max count did not change meanwhile. */
    for (struct pgname *n = s->names; n; n = n->next)
        if (n->state == PGN_READY) whsem__pgr_mark(s, c, n);
    return c;
}

/* A try's parameters, once every statement before it on the connection
 * has ended: only then is the list of indices the session holds exact
 * (an earlier try in flight may be taking one). */
static void prepare_try(struct pgsrv *s, struct pgconn *c, struct pgjob *j)
{
    struct pgacq *a = j->ctx;
    struct pgname *n = a->n;
    /* Whether, while it runs, another session of ours may hold an index
     * it would find free a moment later. */
    a->aside_busy = any_blocked(s, n);
    char id[24], max[24];
    int_text(n->id, id);
    int_text(n->max_count, max);
    /* Every index we hold, however many: one left out could be taken
     * again (advisory locks are re-entrant) as a second ticket. */
    size_t size = 3 + 12 * (size_t)c->ntickets, o = 0;
    char *held = malloc(size);
    if (!held) {
        j->nparams = 0; /* fails on the server: the try ends in an error */
        return;
    }
    held[o++] = '{';
    for (struct pgticket *t = c->tickets; t; t = t->cnext)
        if (t->n == n)
            o += (size_t)snprintf(held + o, size - o, "%s%d", o > 1 ? "," : "", (int)t->index);
    held[o++] = '}';
    held[o] = 0;
    /* "Held since" is stamped when the session starts holding, but at
     * most once a second: a process that takes and gives back tickets all
     * the time would otherwise make every try update its activity entry. */
    char app[128] = "";
    uint64_t now = whsem__mono_ns();
    if (c->ntickets == 0 && now - c->since_stamp_ns > 1000000000u) {
        since_app(s, app);
        c->since_stamp_ns = now;
    }
    const char *v[] = {id, max, held, app, NULL};
    if (!whsem__pgj_set(j, v)) j->nparams = 0;
    free(held);
}

static void start_acq(struct pgsrv *s, struct pgacq *a, uint64_t now)
{
    struct pgname *n = a->n;
    if (n->state == PGN_BROKEN) {
        finish(s, a, n->fail.status, NULL, "%s", n->fail.msg);
        return;
    }
    /* No barging over this process's waiters: a timed acquisition joins
     * the queue behind them. */
    if (!a->try_only && n->wait_head) {
        wait_append(a);
        return;
    }
    struct pgconn *c = main_conn(s, now);
    if (!c) {
        if (a->try_only) finish(s, a, WHSEM_E_UNAVAILABLE, NULL, "%s", s->main ? s->main->fail.msg : "no connection");
        else wait_append(a);
        return;
    }
    struct pgjob *j = whsem__pgj_new(sql_try, done_try, a, 0, NULL);
    if (j) j->prepare = prepare_try, j->reuse = true;
    if (!j) {
        finish(s, a, WHSEM_E_NO_MEMORY, NULL, "out of memory for a statement");
        return;
    }
    a->state = PGA_TRYING;
    if (!a->try_only) {
        a->tprev = NULL;
        a->tnext = n->try_head;
        if (n->try_head) n->try_head->tprev = a;
        n->try_head = a;
        a->in_tries = true;
    }
    a->refs++;
    n->jobs++; /* the try may end after the acquisition, and n's last use */
    push(s, c, j);
}

/* A connection for slot `slot` of n's waiters: a spare, or a new one. */
static struct pgconn *waiter_conn(struct pgsrv *s, struct pgname *n, int slot, uint64_t now)
{
    struct pgconn *c = NULL;
    for (struct pgconn *x = s->conns; x; x = x->next)
        if (x->role == PGR_SPARE && x->state != PGC_DEAD && !x->head) {
            c = x;
            break;
        }
    if (!c) {
        if (now < s->retry_at_ns) return NULL;
        c = whsem__pgc_new(s, PGR_WAIT);
        if (!c) return NULL;
        /* A server process waiting for a lock does not read its socket:
         * without this, the waits of a process that died stay queued
         * until they are granted. */
        const char *v[] = {PG_CLIENT_CHECK_MS, NULL};
        struct pgjob *j = whsem__pgj_new(sql_client_check, done_ignore, NULL, 0, v);
        if (j) push(s, c, j);
    }
    c->role = PGR_WAIT;
    c->wname = n;
    c->wid = n->id;
    c->wslot = slot;
    c->wnext = slot;
    n->waiters[slot] = c;
    return c;
}

/* PQcancel connects to the server and waits: it runs on a thread of its
 * own, so that a slow server delays no decision of the worker. */
struct pgcancel_req {
    struct pgcancel_req *next;
    PGcancel *k;
};

static void *canceler(void *arg)
{
    struct pgsrv *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->cancels) pthread_cond_wait(&s->cancel_cv, &s->mu);
        struct pgcancel_req *r = s->cancels;
        s->cancels = r->next;
        pthread_mutex_unlock(&s->mu);
        char err[256];
        (void)s->pq->cancel(r->k, err, sizeof err);
        s->pq->freeCancel(r->k);
        free(r);
        pthread_mutex_lock(&s->mu);
    }
    return NULL;
}

/* Withdraws a wait nobody needs any more from the server's queue, so that
 * the index goes straight to whoever needs it (and to a try of ours). */
static void withdraw(struct pgsrv *s, struct pgconn *c, uint64_t now, uint64_t *next)
{
    /* Not while its statement is being prepared: the cancel would end
     * the preparation, and the wait would be sent all the same. */
    if (!blocked(c) || c->preparing) return;
    if (c->cancel_sent) {
        /* A server process discards a cancel that arrives before it has
         * read the statement (it was idle then): a wait still there a
         * while later is canceled again. */
        uint64_t again = c->cancel_sent_ns + PG_RECANCEL_NS;
        if (now < again) {
            if (again < *next) *next = again;
            return;
        }
    }
    struct pgcancel_req *r = malloc(sizeof *r);
    PGcancel *k = r ? s->pq->getCancel(c->pg) : NULL;
    if (!k) {
        free(r);
        return;
    }
    if (!s->canceler_running) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        s->canceler_running = pthread_create(&t, &attr, canceler, s) == 0;
        pthread_attr_destroy(&attr);
        if (!s->canceler_running) {
            s->pq->freeCancel(k);
            free(r);
            return;
        }
    }
    r->k = k;
    r->next = s->cancels;
    s->cancels = r;
    c->cancel_sent = true;
    c->cancel_sent_ns = now;
    if (now + PG_RECANCEL_NS < *next) *next = now + PG_RECANCEL_NS;
    pthread_cond_signal(&s->cancel_cv);
}

static void serve_waits(struct pgsrv *s, struct pgname *n, uint64_t now, uint64_t *next)
{
    if (n->nwaiting == n->nsettling) {
        /* Nobody waits. A process that waits again soon (one that takes
         * turns with others) keeps its place in the server's queues for
         * a moment: withdrawing costs a connection to the server each
         * time (PQcancel). A try that waits for our waits to settle
         * withdraws them at once. */
        if (!n->idle_since_ns) n->idle_since_ns = now;
        uint64_t due = n->idle_since_ns + PG_WITHDRAW_NS;
        if (n->nsettling || now >= due) {
            for (int k = 0; k < PG_WAITERS_MAX; k++)
                if (n->waiters[k]) withdraw(s, n->waiters[k], now, next);
        } else if (any_blocked(s, n) && due < *next) {
            *next = due;
        }
        if (n->nsettling && !any_blocked(s, n))
            for (struct pgacq *a = n->wait_head, *nx; a; a = nx) {
                /* Settled: one more try decides. */
                nx = a->next;
                wait_unlink(a);
                a->settling = false;
                a->settled = true;
                a->state = PGA_NEW;
                start_acq(s, a, now);
            }
        return;
    }
    n->idle_since_ns = 0;
    /* Real waiters come first: a try settling behind them would not get
     * the ticket anyway. */
    for (struct pgacq *a = n->wait_head, *nx; n->nsettling && a; a = nx) {
        nx = a->next;
        if (a->settling) finish(s, a, WHSEM_TIMEOUT, NULL, NULL);
    }
    if (n->state != PGN_READY) return;
    int slots = n->max_count < PG_WAITERS_MAX ? n->max_count : PG_WAITERS_MAX;
    bool turns = n->max_count > PG_WAITERS_MAX;
    bool sent = false;
    for (int k = 0; k < slots; k++) {
        struct pgconn *c = n->waiters[k];
        if (!c || c->state == PGC_DEAD) c = waiter_conn(s, n, k, now);
        if (!c || c->head) continue;
        if (!whsem__pgc_marked(c, n->id)) {
            whsem__pgr_mark(s, c, n);
            continue;
        }
        if (turns && !c->lock_timeout_set) {
            /* More indices than waiting connections: each waits on one
             * index for a check period, then tries them all again. */
            char ms[24];
            int_text(n->check_ms > 0 ? n->check_ms : 100, ms);
            const char *v[] = {ms, NULL};
            struct pgjob *j = whsem__pgj_new(sql_lock_timeout, done_ignore, NULL, 0, v);
            if (j) push(s, c, j);
            c->lock_timeout_set = true;
            continue;
        }
        int32_t index = c->wnext;
        if (turns) c->wnext = (int32_t)((c->wnext + PG_WAITERS_MAX) % n->max_count);
        char id[24], max[24], idx[24], app[48], host[72];
        int_text(n->id, id);
        int_text(n->max_count, max);
        int_text(index, idx);
        snprintf(app, sizeof app, "whsem %ld ", (long)getpid());
        snprintf(host, sizeof host, " %s", s->host);
        const char *v[] = {id, max, idx, app, host, NULL};
        struct pgjob *j = whsem__pgj_new(sql_wait, done_wait, NULL,
                                         ((int64_t)n->id << 32) | (uint32_t)index, v);
        if (!j) continue;
        j->blocking = true;
        j->reuse = true;
        push(s, c, j);
        sent = true;
    }
    /* A blocking acquisition next in line reads its waits itself
     * (wait_here), these too. */
    struct pgacq *h = sent ? next_waiter(n) : NULL;
    if (h && !h->op && h->state == PGA_WAITING) nudge(h);
}

/* Whether an acquisition's time is up, its source triggered, its operation
 * canceled; ends it if so. */
static void look_at(struct pgsrv *s, struct pgacq *a, uint64_t now, uint64_t *next)
{
    if (a->state == PGA_DONE) return;
    whsem_status why;
    const char *detail;
    /* The engine's rules for an operation: canceled, its source
     * triggered, its handle closed, its completion queue freed. */
    if (a->op && whsem__a_op_ended(a->op, &why, &detail) && why != WHSEM_TIMEOUT) {
        finish(s, a, why, NULL, "%s", detail ? detail : "");
        return;
    }
    struct hentry *e = whsem__h_entry(a->sem);
    if (!e || atomic_load_explicit(&e->tag, memory_order_acquire) != a->sem) {
        finish(s, a, WHSEM_CANCELED, NULL, "the semaphore handle was closed while waiting");
        return;
    }
    if (a->deadline_ns) {
        if (now >= a->deadline_ns) {
            finish(s, a, WHSEM_TIMEOUT, NULL, NULL);
            return;
        }
        if (a->deadline_ns < *next) *next = a->deadline_ns;
    }
}

static void lose_tickets(struct pgconn *c, struct after *after)
{
    while (c->tickets) {
        struct pgticket *t = c->tickets;
        unlink_ticket(t);
        t->lost = true;
        snprintf(t->lost_msg, sizeof t->lost_msg, "the ticket was lost: %.370s", c->fail.msg);
        if (t->watched && t->handle) {
            struct note *w = take_note(t, WHSEM_E_TICKET_LOST);
            w->next = after->notes;
            after->notes = w;
        }
    }
}

/* Connections that died: their tickets are lost (the server gave them
 * back when the session ended), their roles go to new connections. */
static void sweep(struct pgsrv *s, struct after *after, uint64_t now)
{
    size_t spares = 0;
    for (struct pgconn **pc = &s->conns; *pc;) {
        struct pgconn *c = *pc;
        /* A connection that carried tickets and gave them all back, or
         * waited for a name nobody uses any more, serves the next wait. */
        if (c->state != PGC_DEAD && !c->head &&
            ((c->role == PGR_HOLD && c->ntickets == 0) || (c->role == PGR_WAIT && !c->wname)))
            c->role = PGR_SPARE;
        if (c->state != PGC_DEAD && c->role == PGR_SPARE && ++spares > PG_SPARES_MAX)
            whsem__pgc_kill(s, c, WHSEM_OK, "not needed");
        if (c->state != PGC_DEAD) {
            pc = &c->next;
            continue;
        }
        lose_tickets(c, after);
        if (c->role == PGR_WAIT && c->wname && c->wname->waiters[c->wslot] == c)
            c->wname->waiters[c->wslot] = NULL;
        if (c->fail.status != WHSEM_OK && !c->was_ready && !c->backed_off) {
            /* Connecting failed: wait a little before the next attempt,
             * longer each time. A connection that was up and ended is
             * replaced at once. Once per connection: a dead main stays in
             * the list (below), and pushing the next attempt back at
             * every round would put it off for ever. */
            c->backed_off = true;
            s->retry_ns = s->retry_ns ? 2 * s->retry_ns : PG_RETRY_MIN_NS;
            if (s->retry_ns > PG_RETRY_MAX_NS) s->retry_ns = PG_RETRY_MAX_NS;
            s->retry_at_ns = now + s->retry_ns;
        }
        if (s->main == c || c->inline_users) {
            /* Keep the dead main for its message until a new one exists;
             * and any connection a caller is reading (try_here). */
            pc = &c->next;
            continue;
        }
        *pc = c->next;
        free(c->marks);
        free(c);
    }
}

/* Pings connections that carry tickets and have been quiet for a check
 * period; a statement unanswered for two periods ends its connection. */
static void check_conns(struct pgsrv *s, uint64_t now, uint64_t *next)
{
    /* libpq's connect_timeout binds only its blocking connect: a
     * connection begun while a server restarts can wait for an answer
     * that never comes, with every statement of ours queued behind it. */
    for (struct pgconn *c = s->conns; c; c = c->next) {
        if (c->state != PGC_CONNECTING) continue;
        uint64_t due = c->idle_since_ns + PG_CONNECT_DEADLINE_NS;
        if (now >= due)
            whsem__pgc_kill(s, c, WHSEM_E_UNAVAILABLE,
                            "PostgreSQL at %s did not complete a connection within %u s", s->where,
                            (unsigned)(PG_CONNECT_DEADLINE_NS / 1000000000u));
        else if (due < *next)
            *next = due;
    }
    for (struct pgconn *c = s->conns; c; c = c->next)
        if (c->state == PGC_READY) s->retry_ns = 0; /* the server is back */
    if (s->check_ms <= 0) return;
    uint64_t period = (uint64_t)s->check_ms * 1000000u;
    for (struct pgconn *c = s->conns; c; c = c->next) {
        if (c->state != PGC_READY) continue;
        if (c->sent && !c->head->blocking) {
            uint64_t due = c->sent_ns + 2 * period;
            if (now >= due) {
                whsem__pgc_kill(s, c, WHSEM_E_UNAVAILABLE,
                                "PostgreSQL at %s did not answer for %d ms", s->where,
                                2 * s->check_ms);
                continue;
            }
            if (due < *next) *next = due;
        } else if (!c->head && c->ntickets > 0) {
            uint64_t due = c->idle_since_ns + period;
            if (now >= due) {
                struct pgjob *j = whsem__pgj_new(sql_ping, done_ping, NULL, 0, NULL);
                if (j) j->reuse = true;
                if (j) push(s, c, j);
                due = now + 2 * period;
            }
            if (due < *next) *next = due;
        }
    }
}

/* A name nobody uses any more: its markers go, its waiting connections
 * become spares once their waits end. */
static void drop_name(struct pgsrv *s, struct pgname *n)
{
    for (struct pgname **pn = &s->names; *pn; pn = &(*pn)->next)
        if (*pn == n) {
            *pn = n->next;
            break;
        }
    for (struct pgconn *c = s->conns; c; c = c->next) {
        if (c->wname == n) {
            c->wname = NULL;
            if (!c->sent) c->role = PGR_SPARE;
        }
        if (n->id) whsem__pgr_unmark(s, c, n->id);
    }
}

static void retire_free(void *obj) { free(obj); }

/* Drops n, and frees it once no statement of ours and no thread's hazard
 * pointer names it. */
static void retire_name(struct pgsrv *s, struct pgname *n)
{
    /* Its counters go now: nobody counts for this object any more. */
    whsem__pgk_final(s, s->main && s->main->state != PGC_DEAD ? s->main : NULL, n);
    drop_name(s, n);
    n->dropped = true;
    n->next = s->dropped;
    s->dropped = n;
}

static void free_dropped(struct pgsrv *s)
{
    for (struct pgname **pn = &s->dropped; *pn;) {
        struct pgname *n = *pn;
        if (n->jobs > 0) {
            pn = &n->next;
            continue;
        }
        *pn = n->next;
        n->retiree.obj = n;
        n->retiree.destroy = retire_free;
        whsem__retire(&n->retiree);
    }
}

static void round_locked(struct pgsrv *s, struct pgacq *start, struct after *after,
                         uint64_t now, uint64_t *next)
{
    while (start) {
        struct pgacq *a = start;
        start = a->start_next;
        a->start_next = NULL;
        if (a->state == PGA_NEW) start_acq(s, a, now);
        acq_unref(a);
    }
    for (struct pgname *n = s->names; n; n = n->next) {
        if (n->state == PGN_REGISTERING && !n->reg_started && !whsem__pgr_unmarking(s)) {
            struct pgconn *c = main_conn(s, now);
            if (c) {
                n->reg_started = true;
                whsem__pgr_register(s, c, n);
            } else {
                n->state = PGN_BROKEN;
                n->fail.status = s->main ? s->main->fail.status : WHSEM_E_UNAVAILABLE;
                snprintf(n->fail.msg, sizeof n->fail.msg, "%s", s->main ? s->main->fail.msg : "no connection");
                atomic_fetch_add(&n->word, 1);
                whsem__p_word_wake_all(&n->word);
            }
        }
        for (struct pgacq *a = n->wait_head, *nx; a; a = nx) {
            nx = a->next;
            if (n->state == PGN_BROKEN) finish(s, a, n->fail.status, NULL, "%s", n->fail.msg);
        }
    }
    for (struct pgacq **pa = &s->async; *pa;) {
        struct pgacq *a = *pa;
        look_at(s, a, now, next);
        if (a->state != PGA_DONE) {
            pa = &a->async_next;
            continue;
        }
        *pa = a->async_next;
        a->async_next = after->acqs;
        after->acqs = a;
    }
    sweep(s, after, now);
    for (struct pgname *n = s->names; n; n = n->next) serve_waits(s, n, now, next);
    struct pgconn *m = s->main && s->main->state == PGC_READY ? s->main : NULL;
    for (struct pgname *n = s->names; n; n = n->next) whsem__pgk_tick(s, m, n, now, next);
    for (struct pgconn *c = s->conns; c; c = c->next)
        if (!c->wname && blocked(c)) withdraw(s, c, now, next);
    check_conns(s, now, next);
    for (struct pgname *n = s->names, *nx; n; n = nx) {
        nx = n->next;
        if (n->refs == 0 && n->state != PGN_REGISTERING) retire_name(s, n);
    }
    free_dropped(s);
    if (s->retry_at_ns > now && s->retry_at_ns < *next) *next = s->retry_at_ns;
}

/* Outside the mutex: asynchronous operations complete, watches are told. */
static void run_after(struct pgsrv *s, struct after *after)
{
    while (after->acqs) {
        struct pgacq *a = after->acqs;
        after->acqs = a->async_next;
        struct op *o = a->op;
        whsem_status st = a->status;
        uint64_t h = 0;
        if (st == WHSEM_OK) {
            h = whsem__h_alloc(HK_TICKET, a->ticket, whsem__p_pgen(), &st);
            if (h) whsem__pgs_named(a->ticket, h);
            else whsem__pgs_discard(a->ticket);
            if (!h) snprintf(a->msg, sizeof a->msg, "%s", whsem_last_error());
        }
        if (a->msg[0]) whsem__a_set_detail(o, a->msg);
        struct pgname *n = a->n;
        /* Before it completes: a completed operation may be recycled and
         * registered again. */
        whsem__cancel_unregister(&o->cw);
        whsem__a_complete(o, st, h, NULL);
        whsem__pgs_unref(n); /* the operation's hold */
        pthread_mutex_lock(&s->mu);
        acq_unref(a);
        pthread_mutex_unlock(&s->mu);
    }
    while (after->notes) {
        struct note *w = after->notes;
        after->notes = w->next;
        if (w->cancel && w->status != WHSEM_OK) whsem_cancel_trigger(w->cancel);
        if (w->cb) w->cb(w->ticket, w->status, w->data);
        free(w);
    }
}

static void *worker(void *arg)
{
    struct pgsrv *s = arg;
    enum { MAXFDS = 512 };
    /* Kept in s, not only on this thread's stack: a leak checker that
     * cannot stop this thread at exit must still see them reachable. */
    struct pollfd *fds = s->pollfds = malloc(MAXFDS * sizeof *fds);
    struct pgconn **owners = s->owners = malloc(MAXFDS * sizeof *owners);
    if (!fds || !owners) abort(); /* at start, before anything depends on it */
    pthread_mutex_lock(&s->mu);
    for (;;) {
        struct after after = {NULL, NULL};
        uint64_t now = whsem__mono_ns();
        uint64_t next = now + 1000000000u;
        struct pgacq *start = s->starts;
        s->starts = s->starts_tail = NULL;
        round_locked(s, start, &after, now, &next);
        if (s->notes) {
            struct note *tail = s->notes;
            while (tail->next) tail = tail->next;
            tail->next = after.notes;
            after.notes = s->notes;
            s->notes = NULL;
        }
        nfds_t nf = 0;
        fds[nf++] = (struct pollfd){.fd = s->evfd, .events = POLLIN};
        bool unpolled = false;
        for (struct pgconn *c = s->conns; c && nf < MAXFDS; c = c->next) {
            if (c->state == PGC_DEAD || !c->pg) continue;
            if (c->inline_users) {
                unpolled = true;
                continue;
            }
            owners[nf] = c;
            fds[nf++] = (struct pollfd){.fd = s->pq->socket(c->pg), .events = (short)c->poll_events};
        }
        bool work = after.acqs || after.notes;
        pthread_mutex_unlock(&s->mu);
        run_after(s, &after);
        uint64_t t = whsem__mono_ns();
        /* Our operations' callbacks run on the engine's callback threads:
         * while any are queued, look that none of them blocks them all
         * (another thread is started then), as the engine's dispatcher
         * does for its own. */
        if (whsem__a_check_callbacks() && next > t + STALL_NS) next = t + STALL_NS;
        /* A connection a caller reads itself (try_here) is the worker's
         * again once the caller is done, without a word (a word per try
         * would cost every try a wake-up of this thread): the worker looks
         * again soon, so that the end of its session (a ticket a try took,
         * lost) is seen within PG_UNPOLLED_NS. */
        if (unpolled && next > t + PG_UNPOLLED_NS) next = t + PG_UNPOLLED_NS;
        int timeout = work || next <= t ? 0 : (int)((next - t + 999999u) / 1000000u);
        int r = poll(fds, nf, timeout);
        pthread_mutex_lock(&s->mu);
        if (r <= 0) continue;
        if (fds[0].revents) {
            uint64_t v;
            ssize_t rd = read(s->evfd, &v, sizeof v);
            (void)rd;
        }
        for (nfds_t i = 1; i < nf; i++) {
            if (!fds[i].revents) continue;
            struct pgconn *c = owners[i];
            /* Only this thread frees connections, and it did not since
             * the poll set was built. A caller that began reading it
             * meanwhile (try_here) sleeps in poll() on it: its answer is
             * left to that caller, who would otherwise sleep on. */
            if (c->state == PGC_DEAD || !c->pg || c->inline_users) continue;
            whsem__pgc_service(s, c, fds[i].revents);
        }
    }
    return NULL;
}

/* ---- servers ---- */

static void host_name(char *buf, size_t size)
{
    if (gethostname(buf, size) != 0) snprintf(buf, size, "?");
    buf[size - 1] = 0;
    /* One word in application_name, which is ASCII only. */
    for (char *p = buf; *p; p++)
        if (*p <= ' ' || *p > '~') *p = '?';
}

/* Parses the connection string for what messages may show (host, port,
 * database, user) and the password they must never show. */
static whsem_status parse_conninfo(struct pgsrv *s)
{
    char *err = NULL;
    PQconninfoOption *opts = s->pq->conninfoParse(s->conninfo, &err);
    if (!opts) {
        /* libpq's message may quote a piece of the string, and that
         * piece may be a password: only its first words are kept. */
        char clean[PG_MSG] = "";
        if (err) {
            size_t k = 0;
            for (const char *p = err; *p && *p != '"' && k + 1 < sizeof clean; p++)
                clean[k++] = *p == '\n' ? ' ' : *p;
            clean[k] = 0;
            s->pq->freemem(err);
        }
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                           "options.backend is not a valid libpq connection string or URI (%s...)",
                           clean);
    }
    const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val) continue;
        if (strcmp(o->keyword, "password") == 0) s->password = strdup(o->val);
        else if (strcmp(o->keyword, "host") == 0) host = o->val;
        else if (strcmp(o->keyword, "port") == 0) port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0) db = o->val;
        else if (strcmp(o->keyword, "user") == 0) user = o->val;
    }
    if (!host) host = getenv("PGHOST");
    if (!port) port = getenv("PGPORT");
    if (!db) db = getenv("PGDATABASE");
    if (!user) user = getenv("PGUSER");
    snprintf(s->where, sizeof s->where, "%s%s%s/%s%s%s", host ? host : "(default host)",
             port ? ":" : "", port ? port : "", db ? db : (user ? user : "(default database)"),
             user ? " as " : "", user ? user : "");
    s->pq->conninfoFree(opts);
    return WHSEM_OK;
}

static void fork_child(void)
{
    /* The parent's sessions are the parent's: the child must neither use
     * them nor keep them alive (a held ticket would outlive the parent).
     * Their sockets are closed without a word to the server; the objects
     * are left as they are, unusable. */
    pthread_mutex_unlock(&pool_mu);
    for (struct pgsrv *s = servers; s; s = s->next) {
        /* Its pending operations are the parent's: they end here as the
         * engine ends its own (no worker would ever end them). */
        for (struct pgacq *a = s->async; a; a = a->async_next)
            if (a->state != PGA_DONE && a->op) whsem__a_end_in_child(a->op);
        s->async = NULL;
        pthread_cond_init(&s->cancel_cv, NULL);
        s->forked = true;
        for (struct pgconn *c = s->conns; c; c = c->next)
            if (c->pg && s->pq->socket(c->pg) >= 0) close(s->pq->socket(c->pg));
        close(s->evfd);
        s->evfd = -1;
        /* fork_prepare's thread is this one: unlocking (rather than
         * initializing again) keeps the lock order ThreadSanitizer sees. */
        pthread_mutex_unlock(&s->mu);
    }
    servers = NULL;
    pthread_mutex_unlock(&servers_mu);
}

/* Every server's mutex too, so that the child inherits none held by a
 * worker that does not exist there. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&servers_mu);
    for (struct pgsrv *s = servers; s; s = s->next) pthread_mutex_lock(&s->mu);
    pthread_mutex_lock(&pool_mu); /* taken under a server's */
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&pool_mu);
    for (struct pgsrv *s = servers; s; s = s->next) pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&servers_mu);
}

__attribute__((constructor)) static void register_fork_hooks(void)
{
    /* After the cancellation stripes (a trigger pokes the servers under
     * one), before the thread records (a server's worker retires names
     * under its mutex). */
    static const struct whsem_fork_hooks hooks = {WHSEM_FORK_ORDER_CANCEL + 5, fork_prepare,
                                                  fork_parent, fork_child};
    whsem__on_fork(&hooks);
}

/* Best effort: what the names counted since their last flush goes to the
 * database before the process ends (pg/DESIGN.md, "Counters"), waiting
 * for the server a moment at most. */
__attribute__((destructor)) static void flush_at_exit(void)
{
    /* Servers are never freed, and a server's next never changes: the
     * list's lock is not held while waiting (a worker may want it). */
    pthread_mutex_lock(&servers_mu);
    struct pgsrv *first = servers;
    pthread_mutex_unlock(&servers_mu);
    uint64_t deadline = whsem__mono_ns() + PG_EXIT_FLUSH_NS;
    for (struct pgsrv *s = first; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        struct pgconn *m = s->main && s->main->state == PGC_READY ? s->main : NULL;
        for (struct pgname *n = s->names; n; n = n->next) whsem__pgk_final(s, m, n);
        poke(s);
        /* Exiting on the worker (in a watch's callback): nobody would read
         * the answers. */
        bool self = pthread_equal(pthread_self(), s->worker);
        while (s->flushes && !self && whsem__mono_ns() < deadline) {
            uint32_t seen = atomic_load_explicit(&s->flushed, memory_order_acquire);
            pthread_mutex_unlock(&s->mu);
            whsem__p_word_wait(&s->flushed, seen, deadline);
            pthread_mutex_lock(&s->mu);
        }
        pthread_mutex_unlock(&s->mu);
    }
}

whsem_status whsem__pgs_get(const struct open_opts *o, const struct whsem_backend *be,
                            struct pgsrv **out)
{
    whsem__init(); /* our fork() hooks, among others, from here on */
    const struct whsem_libpq *pq;
    whsem_status st = whsem__pq_load(&pq);
    if (st != WHSEM_OK) return st;
    pthread_mutex_lock(&servers_mu);
    struct pgsrv *s;
    for (s = servers; s; s = s->next)
        if (strcmp(s->conninfo, o->backend) == 0) break;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || !(s->conninfo = strdup(o->backend))) {
            free(s);
            pthread_mutex_unlock(&servers_mu);
            return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for a server");
        }
        s->pq = pq;
        s->be = be;
        s->check_ms = o->conn_check_ms;
        const char *flush_ms = getenv("WHSEM_PG_FLUSH_MS");
        long ms = flush_ms ? atol(flush_ms) : 0;
        s->flush_ns = (uint64_t)(ms > 0 ? ms : PG_FLUSH_MS) * 1000000u;
        host_name(s->host, sizeof s->host);
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cancel_cv, NULL);
        st = parse_conninfo(s);
        s->evfd = st == WHSEM_OK ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
        if (st == WHSEM_OK && s->evfd < 0)
            st = whsem__fail(WHSEM_E_OS, "eventfd: %s", strerror(errno));
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int e = st == WHSEM_OK ? pthread_create(&t, &attr, worker, s) : 0;
        if (st == WHSEM_OK && !e) s->worker = t;
        pthread_attr_destroy(&attr);
        if (e) st = whsem__fail(WHSEM_E_LIMIT, "cannot start the PostgreSQL worker thread: %s", strerror(e));
        if (st != WHSEM_OK) {
            if (s->evfd >= 0) close(s->evfd);
            free(s->password);
            free(s->conninfo);
            free(s);
            pthread_mutex_unlock(&servers_mu);
            return st;
        }
        s->next = servers;
        servers = s;
        /* A freed completion queue may hold operations of ours. */
        whsem__a_add_poke(whsem__pgs_poke_all);
    } else if (o->conn_check_ms > 0 && (s->check_ms <= 0 || o->conn_check_ms < s->check_ms)) {
        /* The strictest wish of any open holds for the shared connections. */
        pthread_mutex_lock(&s->mu);
        s->check_ms = o->conn_check_ms;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&servers_mu);
    *out = s;
    return WHSEM_OK;
}

void whsem__pgs_poke_all(void)
{
    pthread_mutex_lock(&servers_mu);
    for (struct pgsrv *s = servers; s; s = s->next) poke(s);
    pthread_mutex_unlock(&servers_mu);
}

/* ---- names ---- */

whsem_status whsem__pgs_open(struct pgsrv *s, const char *final, size_t len, int32_t max_count,
                             int32_t check_ms, struct pgname **out)
{
    pthread_mutex_lock(&s->mu);
    if (s->forked) {
        pthread_mutex_unlock(&s->mu);
        return whsem__fail(WHSEM_E_WRONG_PROCESS, "%s", msg_forked);
    }
    struct pgname *n;
    for (n = s->names; n; n = n->next)
        if (n->len == len && memcmp(n->name, final, len) == 0 && n->state != PGN_BROKEN) break;
    if (n && n->refs == 0 && n->state == PGN_READY) {
        /* Unused, not yet dropped by the worker: dropped now, so that
         * this open decides the max count anew, as if nobody had it open. */
        retire_name(s, n);
        n = NULL;
    }
    if (n && n->state == PGN_READY) {
        if (max_count && max_count != n->max_count) {
            int32_t theirs = n->max_count;
            pthread_mutex_unlock(&s->mu);
            return whsem__fail(WHSEM_E_MAX_COUNT_MISMATCH, "'%s' is open with max count %d, not %d",
                               final, (int)theirs, (int)max_count);
        }
        n->refs++;
        pthread_mutex_unlock(&s->mu);
        *out = n;
        return WHSEM_OK;
    }
    if (!n) {
        n = calloc(1, sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&s->mu);
            return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for a semaphore");
        }
        n->base.be = s->be;
        n->srv = s;
        memcpy(n->name, final, len);
        n->len = len;
        n->max_count = max_count;
        n->check_ms = check_ms;
        n->state = PGN_REGISTERING;
        whsem__pgk_init(s, n, whsem__mono_ns());
        n->next = s->names;
        s->names = n;
    }
    /* Registering: ours, or another thread's that we wait for too. */
    n->refs++;
    poke(s);
    uint64_t deadline = whsem__mono_ns() + 60000000000ull;
    while (n->state == PGN_REGISTERING) {
        uint32_t seen = atomic_load(&n->word);
        pthread_mutex_unlock(&s->mu);
        whsem__p_word_wait(&n->word, seen, deadline);
        pthread_mutex_lock(&s->mu);
        if (n->state == PGN_REGISTERING && whsem__mono_ns() >= deadline) {
            n->state = PGN_BROKEN;
            n->fail.status = WHSEM_E_UNAVAILABLE;
            snprintf(n->fail.msg, sizeof n->fail.msg, "PostgreSQL at %s did not answer within 60 s", s->where);
        }
    }
    whsem_status st = WHSEM_OK;
    if (n->state == PGN_BROKEN) {
        st = whsem__fail(n->fail.status, "%s", n->fail.msg);
        n->refs--;
        poke(s);
    } else if (max_count && max_count != n->max_count) {
        st = whsem__fail(WHSEM_E_MAX_COUNT_MISMATCH, "'%s' is open with max count %d, not %d", final,
                         (int)n->max_count, (int)max_count);
        n->refs--;
        poke(s);
    }
    pthread_mutex_unlock(&s->mu);
    if (st == WHSEM_OK) *out = n;
    return st;
}

whsem_status whsem__pgs_ref(struct pgname *n)
{
    struct pgsrv *s = n->srv;
    pthread_mutex_lock(&s->mu);
    whsem_status st = WHSEM_OK;
    if (n->state == PGN_BROKEN) st = whsem__fail(n->fail.status, "%s", n->fail.msg);
    else n->refs++;
    pthread_mutex_unlock(&s->mu);
    return st;
}

void whsem__pgs_unref(struct pgname *n)
{
    struct pgsrv *s = n->srv;
    pthread_mutex_lock(&s->mu);
    if (--n->refs == 0) poke(s);
    pthread_mutex_unlock(&s->mu);
}

void whsem__pgs_close_waits(struct pgname *n, whsem_sem sem)
{
    struct pgsrv *s = n->srv;
    pthread_mutex_lock(&s->mu);
    for (struct pgacq *a = n->wait_head, *nx; a; a = nx) {
        nx = a->next;
        if (a->sem == sem)
            finish(s, a, WHSEM_CANCELED, NULL, "the semaphore handle was closed while waiting");
    }
    for (struct pgacq *a = s->starts; a; a = a->start_next)
        if (a->n == n && a->sem == sem && a->state != PGA_DONE)
            finish(s, a, WHSEM_CANCELED, NULL, "the semaphore handle was closed while waiting");
    poke(s);
    pthread_mutex_unlock(&s->mu);
}

/* ---- acquisitions ---- */

void whsem__pgs_ended_early(struct pgname *n, whsem_status st)
{
    pthread_mutex_lock(&n->srv->mu);
    whsem__pgk_ended(n, st, false, false, 0);
    pthread_mutex_unlock(&n->srv->mu);
}

static struct pgacq *new_acq(struct pgname *n, whsem_sem sem, int64_t timeout_ms)
{
    struct pgacq *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->n = n;
    a->sem = sem;
    a->state = PGA_NEW;
    a->refs = 1;
    atomic_init(&a->wake_fd, -1);
    a->try_only = timeout_ms == 0;
    a->start_ns = whsem__mono_ns();
    a->deadline_ns = timeout_ms > 0 ? a->start_ns + (uint64_t)timeout_ms * 1000000u : 0;
    return a;
}

/* Hands a new acquisition to the worker (mutex held). */
static void submit(struct pgsrv *s, struct pgacq *a)
{
    a->refs++;
    a->start_next = NULL;
    if (s->starts_tail) s->starts_tail->start_next = a;
    else s->starts = a;
    s->starts_tail = a;
    poke(s);
}

static void notify_sync(struct cwait *w)
{
    struct pgacq *a = w->ctx;
    a->canceled = true;
    nudge(a);
}

/* Ends a blocking acquisition whose source was triggered, whose handle
 * was closed or whose time is up. */
static bool ended(struct pgsrv *s, struct pgacq *a, struct hentry *se)
{
    if (a->canceled) {
        finish(s, a, WHSEM_CANCELED, NULL, NULL);
    } else if (atomic_load_explicit(&se->tag, memory_order_acquire) != a->sem) {
        finish(s, a, WHSEM_CANCELED, NULL, "the semaphore handle was closed while waiting");
    } else if (a->deadline_ns && whsem__mono_ns() >= a->deadline_ns) {
        finish(s, a, WHSEM_TIMEOUT, NULL, NULL);
    } else {
        return false;
    }
    return true;
}

/* How long a caller reading a connection itself sleeps in poll() at a
 * time: slices, so that a cancellation or a close is seen promptly, and
 * never past its deadline. */
static int slice_ms(const struct pgacq *a)
{
    int ms = 10;
    if (a->deadline_ns) {
        uint64_t now = whsem__mono_ns();
        uint64_t left = a->deadline_ns > now ? (a->deadline_ns - now + 999999u) / 1000000u : 0;
        if (left < (uint64_t)ms) ms = (int)left;
    }
    return ms;
}

/*
 * One slice of a caller's thread reading connections itself (try_here,
 * wait_here), as the worker would, under the mutex, which it drops while
 * it sleeps; the worker leaves the connections to it meanwhile (and sweep
 * keeps them). POLLOUT too while a statement is not all written. fd, if
 * not -1, is an eventfd that wakes it as well. Returns whether it served
 * any of them.
 */
static bool read_here(struct pgsrv *s, const struct pgacq *a, struct pgconn **cs, int nc, int fd)
{
    struct pollfd p[PG_WAITERS_MAX + 1];
    nfds_t np = 0;
    if (fd >= 0) p[np++] = (struct pollfd){.fd = fd, .events = POLLIN};
    nfds_t first = np;
    for (int i = 0; i < nc; i++) {
        cs[i]->inline_users++;
        p[np++] = (struct pollfd){.fd = s->pq->socket(cs[i]->pg), .events = (short)cs[i]->poll_events};
    }
    pthread_mutex_unlock(&s->mu);
    int r = poll(p, np, slice_ms(a));
    pthread_mutex_lock(&s->mu);
    if (r > 0 && fd >= 0 && p[0].revents) {
        uint64_t v;
        ssize_t rd = read(fd, &v, sizeof v);
        (void)rd;
    }
    bool served = false;
    for (int i = 0; i < nc; i++) {
        struct pgconn *c = cs[i];
        if (r > 0 && p[first + i].revents && c->state == PGC_READY) {
            whsem__pgc_service(s, c, p[first + i].revents);
            served = true;
        }
        c->inline_users--;
    }
    return served;
}

/*
 * The try of a blocking acquisition, on the caller's thread: it sends the
 * statement and reads the main connection itself (under the mutex, as
 * the worker would), which saves the two thread switches of handing it
 * to the worker and back. A try that found nothing becomes a wait, which
 * the worker sends and this thread may read (wait_here).
 */
static void try_here(struct pgsrv *s, struct pgacq *a, struct pgconn *m, struct hentry *se)
{
    start_acq(s, a, whsem__mono_ns());
    while (a->state == PGA_TRYING && m->state == PGC_READY && !ended(s, a, se)) read_here(s, a, &m, 1, -1);
    /* What is left (a wait to serve, statements queued behind ours, a
     * connection that died) is the worker's; so is watching the
     * connection from now on (the worker looks again soon: see
     * PG_UNPOLLED_NS). */
    if (a->state != PGA_DONE || m->head || m->state != PGC_READY) poke(s);
}

/*
 * The wait of a blocking acquisition that is next to be served, on the
 * caller's thread: once its name's waits are in the server's queues, it
 * reads their connections itself, as try_here reads the main one, so
 * that a grant wakes this thread, not the worker and then this thread.
 * A ticket changes hands through a chain of wakes (the releasing
 * session's server process, the waiting one's, then ours), and on a
 * busy machine each link costs tens of microseconds of the ticket's
 * time (issue 15's (b), src/pg/DESIGN.md). What reaches the acquisition
 * another way (a grant the worker read, a trigger) writes a->wake_fd,
 * which is polled too. One slice; false if there is nothing to read
 * (the caller sleeps on its word then: the worker nudges it once it has
 * sent the waits).
 */
static bool wait_here(struct pgsrv *s, struct pgacq *a)
{
    struct pgname *n = a->n;
    if (a->state != PGA_WAITING || next_waiter(n) != a) return false;
    struct pgconn *cs[PG_WAITERS_MAX];
    int nc = 0;
    for (int k = 0; k < PG_WAITERS_MAX; k++) {
        struct pgconn *c = n->waiters[k];
        if (c && blocked(c) && !c->inline_users) cs[nc++] = c;
    }
    if (nc == 0) return false;
    int fd = atomic_load_explicit(&a->wake_fd, memory_order_relaxed);
    if (fd < 0) {
        if ((fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) return false;
        atomic_store_explicit(&a->wake_fd, fd, memory_order_release);
    }
    bool served = read_here(s, a, cs, nc, fd);
    /* What a connection we read has to do next (a wait sent again, a
     * grant nobody wants given back and its answer read), and watching
     * the waits we leave, are the worker's: it did not poll them. */
    if (served || a->state == PGA_DONE) poke(s);
    return true;
}

whsem_status whsem__pgs_acquire(struct pgname *n, whsem_sem sem, int64_t timeout_ms,
                                whsem_cancel cancel, struct pgticket **out)
{
    struct pgsrv *s = n->srv;
    struct hentry *se = whsem__h_entry(sem);
    struct pgacq *a = new_acq(n, sem, timeout_ms);
    if (!a) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for an acquisition");
    struct cwait cw = {.notify = notify_sync, .ctx = a};
    if (cancel) {
        whsem_status st = whsem__cancel_register(cancel, &cw);
        if (st != WHSEM_OK) {
            free(a);
            whsem__pgs_ended_early(n, st);
            return st;
        }
    }
    pthread_mutex_lock(&s->mu);
    struct pgconn *m = s->main;
    if (s->forked) {
        finish(s, a, WHSEM_E_WRONG_PROCESS, NULL, "%s", msg_forked);
    } else if (m && m->state == PGC_READY && n->state == PGN_READY && (a->try_only || !n->wait_head)) {
        try_here(s, a, m, se);
    } else {
        submit(s, a);
    }
    while (a->state != PGA_DONE && !ended(s, a, se)) {
        if (wait_here(s, a)) continue;
        uint32_t seen = atomic_load_explicit(&a->word, memory_order_acquire);
        pthread_mutex_unlock(&s->mu);
        whsem__p_word_wait(&a->word, seen, a->deadline_ns);
        pthread_mutex_lock(&s->mu);
    }
    whsem_status st = a->status;
    struct pgticket *t = a->ticket;
    char msg[PG_MSG];
    snprintf(msg, sizeof msg, "%s", a->msg);
    if (cancel) {
        /* A trigger may be telling a right now: it goes first. */
        pthread_mutex_unlock(&s->mu);
        whsem__cancel_unregister(&cw);
        pthread_mutex_lock(&s->mu);
    }
    /* Ended, and its source let go: nothing writes it any more. */
    int fd = atomic_exchange_explicit(&a->wake_fd, -1, memory_order_relaxed);
    if (fd >= 0) close(fd);
    acq_unref(a);
    pthread_mutex_unlock(&s->mu);
    if (st == WHSEM_OK) {
        *out = t;
        return WHSEM_OK;
    }
    return msg[0] || st < 0 ? whsem__fail(st, "%s", msg) : st;
}

whsem_status whsem__pgs_start(struct pgname *n, struct op *o, int64_t timeout_ms)
{
    struct pgsrv *s = n->srv;
    if (s->forked)
        return whsem__fail(WHSEM_E_WRONG_PROCESS, "%s", msg_forked);
    struct pgacq *a = new_acq(n, o->sem, timeout_ms);
    if (!a) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for an acquisition");
    a->op = o;
    pthread_mutex_lock(&s->mu);
    a->async_next = s->async;
    s->async = a;
    submit(s, a);
    pthread_mutex_unlock(&s->mu);
    return WHSEM_PENDING;
}

/* ---- tickets ---- */

static void note_locked(struct pgsrv *s, struct pgticket *t, whsem_status st)
{
    struct note *w = take_note(t, st);
    w->next = s->notes;
    s->notes = w;
    poke(s);
}

static void give_back_locked(struct pgsrv *s, struct pgticket *t)
{
    struct pgname *n = t->n;
    if (t->c) {
        struct pgconn *c = t->c;
        unlink_ticket(t);
        /* Sent at once if the connection is idle, else after what runs
         * on it; the worker reads the answer (it watches the socket). */
        unlock_index(s, c, n->id, t->index);
    }
    if (t->watched) note_locked(s, t, WHSEM_OK);
    if (--n->refs == 0) poke(s);
}

whsem_status whsem__pgs_release(struct pgticket *t)
{
    struct pgsrv *s = t->n->srv;
    pthread_mutex_lock(&s->mu);
    bool lost = t->lost;
    char msg[PG_MSG];
    snprintf(msg, sizeof msg, "%s", t->lost_msg);
    give_back_locked(s, t);
    pthread_mutex_unlock(&s->mu);
    ticket_put(t);
    if (lost) return whsem__fail(WHSEM_E_TICKET_LOST, "%s", msg);
    return WHSEM_OK;
}

void whsem__pgs_named(struct pgticket *t, whsem_ticket h)
{
    struct pgsrv *s = t->n->srv;
    pthread_mutex_lock(&s->mu);
    t->handle = h; /* read by the worker when the ticket is lost */
    pthread_mutex_unlock(&s->mu);
}

void whsem__pgs_discard(struct pgticket *t)
{
    (void)whsem__pgs_release(t);
}

whsem_status whsem__pgs_check(struct pgticket *t)
{
    struct pgsrv *s = t->n->srv;
    pthread_mutex_lock(&s->mu);
    whsem_status st = t->lost ? whsem__fail(WHSEM_E_TICKET_LOST, "%s", t->lost_msg) : WHSEM_OK;
    pthread_mutex_unlock(&s->mu);
    return st;
}

whsem_status whsem__pgs_watch(struct pgticket *t, whsem_cancel cancel, whsem_ticket_callback cb,
                              void *user_data)
{
    struct pgsrv *s = t->n->srv;
    struct note *w = calloc(1, sizeof *w);
    if (!w) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for a watch");
    pthread_mutex_lock(&s->mu);
    whsem_status st = WHSEM_OK;
    if (t->watched || t->watch_once) {
        st = whsem__fail(WHSEM_E_INVALID_ARGUMENT, "ticket 0x%llx is watched already",
                         (unsigned long long)t->handle);
        free(w);
    } else {
        t->watch_note = w;
        t->watch_once = true;
        t->watched = true;
        t->watch_cancel = cancel;
        t->watch_cb = cb;
        t->watch_data = user_data;
        if (t->lost) note_locked(s, t, WHSEM_E_TICKET_LOST);
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- statements for callers ---- */

/* A caller's statement on the main connection, waited for. */
struct callreq {
    int refs;
    bool done;
    _Atomic uint32_t word;
    whsem_status status;
    char msg[PG_MSG];
    pgs_take take;
    void *ctx;
};

static void done_call(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    struct callreq *q = j->ctx;
    if (!q->done) {
        if (!r) {
            q->status = c->fail.status;
            snprintf(q->msg, sizeof q->msg, "%s", c->fail.msg);
        } else if (s->pq->resultStatus(r) != PQ_TUPLES_OK && s->pq->resultStatus(r) != PQ_COMMAND_OK) {
            q->status = whsem__pg_result_error(s, r, q->msg, sizeof q->msg);
        } else {
            q->status = q->take ? q->take(s, r, q->ctx, q->msg, sizeof q->msg) : WHSEM_OK;
        }
        q->done = true;
        atomic_fetch_add(&q->word, 1);
        whsem__p_word_wake_all(&q->word);
    }
    if (--q->refs == 0) free(q);
}

whsem_status whsem__pgs_call(struct pgsrv *s, const char *sql, const char *const *values,
                             pgs_take take, void *ctx)
{
    struct callreq *q = calloc(1, sizeof *q);
    if (!q) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for a statement");
    q->refs = 1;
    q->take = take;
    q->ctx = ctx;
    pthread_mutex_lock(&s->mu);
    struct pgconn *c = s->forked ? NULL : main_conn(s, whsem__mono_ns());
    struct pgjob *j = c ? whsem__pgj_new(sql, done_call, q, 0, values) : NULL;
    if (j) {
        q->refs++;
        push(s, c, j);
        poke(s);
    } else {
        q->done = true;
        q->status = WHSEM_E_UNAVAILABLE;
        snprintf(q->msg, sizeof q->msg, "%s", s->main ? s->main->fail.msg : "no connection to the server");
    }
    /* Bounded: connecting gives up after its timeout, and an answer that
     * does not come within two check periods ends the connection. */
    uint64_t deadline = whsem__mono_ns() + 60000000000ull;
    while (!q->done && whsem__mono_ns() < deadline) {
        uint32_t seen = atomic_load(&q->word);
        pthread_mutex_unlock(&s->mu);
        whsem__p_word_wait(&q->word, seen, deadline);
        pthread_mutex_lock(&s->mu);
    }
    if (!q->done) {
        q->done = true; /* the statement's end takes nothing now */
        q->status = WHSEM_E_UNAVAILABLE;
        snprintf(q->msg, sizeof q->msg, "PostgreSQL at %s did not answer", s->where);
    }
    whsem_status st = q->status;
    char msg[PG_MSG];
    snprintf(msg, sizeof msg, "%s", q->msg);
    if (--q->refs == 0) free(q);
    pthread_mutex_unlock(&s->mu);
    if (st != WHSEM_OK) return whsem__fail(st, "%s", msg);
    return WHSEM_OK;
}

/* ---- whsem_query ---- */

static whsem_status take_snapshot(struct pgsrv *s, PGresult *r, void *ctx, char *msg, size_t size)
{
    struct pgsnapshot *o = ctx;
    size_t n = (size_t)s->pq->ntuples(r);
    o->rows = calloc(n ? n : 1, sizeof *o->rows);
    if (!o->rows) {
        snprintf(msg, size, "out of memory for the snapshot");
        return WHSEM_E_NO_MEMORY;
    }
    for (size_t i = 0; i < n; i++) {
        struct pgrow *w = &o->rows[i];
        w->key2 = atoll(s->pq->getvalue(r, (int)i, 0));
        w->granted = s->pq->getvalue(r, (int)i, 1)[0] == 't';
        w->backend_pid = atoi(s->pq->getvalue(r, (int)i, 2));
        snprintf(w->app, sizeof w->app, "%s", s->pq->getvalue(r, (int)i, 3));
        w->wait_since_ms = atoll(s->pq->getvalue(r, (int)i, 4));
    }
    o->nrows = n;
    return WHSEM_OK;
}

whsem_status whsem__pgs_snapshot(struct pgname *n, struct pgsnapshot *out)
{
    struct pgsrv *s = n->srv;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    /* A ticket this process released goes back on the session that held
     * it, not on the main one the snapshot runs on: the snapshot waits
     * for those releases, so that it never shows a released ticket of
     * ours still taken (a try does the same, see any_blocked). Bounded
     * like any answer: a connection that does not answer ends. */
    uint64_t deadline = whsem__mono_ns() + 4 * (uint64_t)(s->check_ms > 0 ? s->check_ms : 1000) * 1000000u;
    for (;;) {
        bool busy = false;
        for (struct pgconn *c = s->conns; c && !busy; c = c->next)
            busy = c->wid == n->id && c->unlocking && c->state != PGC_DEAD;
        if (!busy || whsem__mono_ns() >= deadline) break;
        uint32_t seen = atomic_load_explicit(&s->unlocked, memory_order_acquire);
        pthread_mutex_unlock(&s->mu);
        whsem__p_word_wait(&s->unlocked, seen, deadline);
        pthread_mutex_lock(&s->mu);
    }
    out->max_count = n->max_count;
    out->own_waiting = n->nwaiting - n->nsettling;
    whsem_status st = n->state == PGN_BROKEN ? whsem__fail(n->fail.status, "%s", n->fail.msg) : WHSEM_OK;
    pthread_mutex_unlock(&s->mu);
    if (st != WHSEM_OK) return st;
    char id[24];
    int_text(n->id, id);
    const char *v[] = {id, NULL};
    st = whsem__pgs_call(s, sql_snapshot, v, take_snapshot, out);
    if (st != WHSEM_OK) {
        free(out->rows);
        out->rows = NULL;
        out->nrows = 0;
    }
    return st;
}
