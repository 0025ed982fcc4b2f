/* SPDX-License-Identifier: MIT */
/*
 * Each name's counters (pg/DESIGN.md, "Counters"). An acquisition, a
 * release or a change in the number of waiting acquisitions only adds to
 * the name's struct pgkeep, under the server's mutex the caller holds
 * already: nothing is sent per acquisition. The worker flushes what a
 * name counted into its row of whsem.counters at most once per flush
 * period (and when the name's last handle closes, and at exit), in one
 * statement on the main connection; the readers add to that row what
 * this process has not flushed yet.
 */
#include "counters.h"
#include "registry.h"

#include "platform.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

/* whsem_info's order (PGK_*). */
static const char *const columns[PGK_N] = {"acquisitions", "timeouts", "cancellations", "waits",
                                           "wait_ns",      "releases", "hold_ns"};

/* One statement, so that the reader can send it with parameters' rules;
 * the lock serializes it with the first open's creation of everything. */
const char whsem__pgk_sql_create[] = "DO $$BEGIN PERFORM pg_advisory_xact_lock(" PG_CREATE_LOCK_KEY
                                     "); " PG_SQL_COUNTERS_DDL " END$$";

/* The row, and the waiters history aligned on the server's clock: its
 * last element is the server's current second. Always one row: zeros
 * where there is no row of counters yet, or no name any more (removed by
 * force while we use it: whsem_query still answers, as it did before
 * there were counters). */
const char whsem__pgk_sql_read[] =
    "SELECT coalesce((extract(epoch FROM s.created) * 1000)::int8, 0),"
    " coalesce(c.acquisitions, 0), coalesce(c.timeouts, 0), coalesce(c.cancellations, 0),"
    " coalesce(c.waits, 0), coalesce(c.wait_ns, 0), coalesce(c.releases, 0),"
    " coalesce(c.hold_ns, 0), coalesce(c.wait_buckets, '{}'),"
    " ARRAY(SELECT coalesce(c.waiters[t - c.waiters_end + " STR(PG_HISTORY_S) "], 0)"
    " FROM generate_series(x.sec - " STR(PG_HISTORY_S) " + 1, x.sec) t ORDER BY t)"
    " FROM (SELECT floor(extract(epoch FROM clock_timestamp()))::int8) x(sec)"
    " LEFT JOIN whsem.semaphore s ON s.id = $1::int"
    " LEFT JOIN whsem.counters c ON c.id = $1::int";

static void add_counts(struct pgcounts *to, const struct pgcounts *from)
{
    for (int i = 0; i < PGK_N; i++) to->v[i] += from->v[i];
    for (int i = 0; i < WHSEM_WAIT_BUCKETS; i++) to->buckets[i] += from->buckets[i];
}

static bool counts_zero(const struct pgcounts *p)
{
    for (int i = 0; i < PGK_N; i++)
        if (p->v[i]) return false;
    return true; /* no wait counted, so no bucket either */
}

/* This machine's second; never before the ring's newest (a clock set
 * back would otherwise write over seconds not yet sent). */
static int64_t second_of(const struct pgkeep *k)
{
    int64_t t = whsem__coarse_unix_ms() / 1000;
    return t < k->sec_last ? k->sec_last : t;
}

/* The ring up to second t: the seconds since the newest held the level
 * that holds now. */
static void advance(struct pgkeep *k, int64_t t)
{
    if (t <= k->sec_last) return;
    int64_t from = k->sec_last + 1;
    if (from < t - PG_HISTORY_S + 1) from = t - PG_HISTORY_S + 1;
    for (int64_t u = from; u <= t; u++) k->per_sec[u % PG_HISTORY_S] = k->level;
    k->sec_last = t;
}

void whsem__pgk_init(struct pgsrv *s, struct pgname *n, uint64_t now)
{
    struct pgkeep *k = &n->keep;
    memset(k, 0, sizeof *k);
    /* Not before a period has passed: a name opened and used at once
     * would otherwise cost a flush for its first acquisition alone. */
    k->flush_at_ns = now + s->flush_ns;
    k->sec_last = whsem__coarse_unix_ms() / 1000;
    k->sec_sent = k->sec_sending = k->sec_last - 1;
}

void whsem__pgk_waiting(struct pgname *n, uint32_t level)
{
    struct pgkeep *k = &n->keep;
    if (level == k->level) return;
    int64_t t = second_of(k);
    advance(k, t);
    k->level = level;
    uint32_t *most = &k->per_sec[t % PG_HISTORY_S];
    if (level > *most) *most = level;
}

/* Whether n has anything the database does not. */
static bool has_news(const struct pgkeep *k)
{
    if (k->level || !counts_zero(&k->pending)) return true;
    int64_t from = k->sec_sent + 1;
    if (from < k->sec_last - PG_HISTORY_S + 1) from = k->sec_last - PG_HISTORY_S + 1;
    for (int64_t t = from; t <= k->sec_last; t++)
        if (k->per_sec[t % PG_HISTORY_S]) return true;
    return false;
}

/* Appends to a statement being built (false: it did not fit). */
static bool cat(char *buf, size_t size, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool cat(char *buf, size_t size, size_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = *o < size ? vsnprintf(buf + *o, size - *o, fmt, ap) : -1;
    va_end(ap);
    if (w < 0 || (size_t)w >= size - *o) return false;
    *o += (size_t)w;
    return true;
}

/*
 * The flush: numbers only, so the statement is written out whole and
 * sent as a simple query, three statements in one implicit transaction.
 * The row is made empty if it does not exist (a name of 1.1.0, or of
 * before the table) and then added to. The history's seconds
 * [from, to] of this machine's clock go to the seconds that end at the
 * server's last complete one (current one if final): every process's
 * counts land in the server's seconds, whatever its own clock says.
 * lock_timeout, because the main connection carries tickets: a row or
 * table lock held elsewhere (an administrator's transaction) must fail
 * the flush, not hold up tries until the connection is given up for
 * silent.
 */
static char *flush_sql(const struct pgsrv *s, const struct pgname *n, const struct pgcounts *p,
                       int64_t from, int64_t to, bool final)
{
    const struct pgkeep *k = &n->keep;
    size_t size = 8192, o = 0;
    char *b = malloc(size);
    if (!b) return NULL;
    int lock_ms = s->check_ms > 0 ? s->check_ms / 2 : 500;
    if (lock_ms < 1) lock_ms = 1;
    if (lock_ms > 500) lock_ms = 500;
    bool ok = cat(b, size, &o,
                  "SET LOCAL lock_timeout = %d;"
                  "INSERT INTO whsem.counters (id) VALUES (%d) ON CONFLICT DO NOTHING;"
                  "UPDATE whsem.counters c SET ",
                  lock_ms, (int)n->id);
    for (int i = 0; i < PGK_N; i++)
        ok = ok && cat(b, size, &o, "%s%s = coalesce(c.%s, 0) + %llu", i ? ", " : "", columns[i],
                       columns[i], (unsigned long long)p->v[i]);
    if (p->v[PGK_WAITS]) {
        ok = ok && cat(b, size, &o, ", wait_buckets = ARRAY(SELECT coalesce(c.wait_buckets[i], 0) + "
                                    "(ARRAY[");
        for (int i = 0; i < WHSEM_WAIT_BUCKETS; i++)
            ok = ok && cat(b, size, &o, "%s%llu", i ? "," : "", (unsigned long long)p->buckets[i]);
        ok = ok && cat(b, size, &o, "]::int8[])[i] FROM generate_series(1, %d) i ORDER BY i)",
                       WHSEM_WAIT_BUCKETS);
    }
    if (from <= to) {
        ok = ok && cat(b, size, &o, ", waiters = ARRAY(SELECT coalesce(c.waiters[t - c.waiters_end + %d], 0) + coalesce((ARRAY[",
                       PG_HISTORY_S);
        for (int64_t t = from; t <= to; t++)
            ok = ok && cat(b, size, &o, "%s%u", t > from ? "," : "", (unsigned)k->per_sec[t % PG_HISTORY_S]);
        ok = ok && cat(b, size, &o,
                       "]::int4[])[t - x.s + %d], 0) FROM generate_series(greatest(c.waiters_end, "
                       "x.s) - %d, greatest(c.waiters_end, x.s)) t ORDER BY t), waiters_end = "
                       "greatest(c.waiters_end, x.s)",
                       (int)(to - from + 1), PG_HISTORY_S - 1);
    }
    ok = ok && cat(b, size, &o,
                   " FROM (SELECT floor(extract(epoch FROM clock_timestamp()))::int8 - %d) x(s)"
                   " WHERE c.id = %d",
                   final ? 0 : 1, (int)n->id);
    if (!ok) {
        free(b);
        return NULL;
    }
    return b;
}

static void flush(struct pgsrv *s, struct pgconn *c, struct pgname *n, bool final);

static void ended_flush(struct pgsrv *s, struct pgname *n)
{
    n->jobs--;
    s->flushes--;
    atomic_fetch_add_explicit(&s->flushed, 1, memory_order_release);
    whsem__p_word_wake_all(&s->flushed);
}

/* What failed goes back to pending, to go with the next flush. */
static void keep_for_later(struct pgkeep *k)
{
    add_counts(&k->pending, &k->inflight);
    memset(&k->inflight, 0, sizeof k->inflight);
}

static void done_create(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    struct pgname *n = j->ctx;
    struct pgkeep *k = &n->keep;
    ended_flush(s, n);
    k->flushing = false;
    int st = r ? s->pq->resultStatus(r) : -1;
    if (st == PQ_COMMAND_OK || st == PQ_TUPLES_OK) {
        flush(s, c, n, j->arg != 0);
        return;
    }
    /* A role that may not create it: its counts stay here (its readers
     * see them) and are tried again after a pause, in case an
     * administrator creates the table meanwhile. */
    if (r) s->flush_paused_until_ns = whsem__mono_ns() + PG_FLUSH_PAUSE_NS;
}

static void done_flush(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    struct pgname *n = j->ctx;
    struct pgkeep *k = &n->keep;
    bool final = j->arg != 0;
    ended_flush(s, n);
    k->flushing = false;
    int st = r ? s->pq->resultStatus(r) : -1;
    const char *state = whsem__pg_sqlstate(s, r);
    if (st == PQ_COMMAND_OK || st == PQ_TUPLES_OK) {
        memset(&k->inflight, 0, sizeof k->inflight);
        k->sec_sent = k->sec_sending;
    } else if (!r && j->sent) {
        /* The connection ended with the flush sent: it may have been
         * applied, and counting it twice would be worse than missing it
         * (DESIGN.md: at most once). */
        memset(&k->inflight, 0, sizeof k->inflight);
        k->sec_sent = k->sec_sending;
    } else if (strcmp(state, "23503") == 0) {
        /* The name's row is gone (whsem rm --force): its counters with it. */
        k->gone = true;
        memset(&k->inflight, 0, sizeof k->inflight);
        memset(&k->pending, 0, sizeof k->pending);
    } else {
        keep_for_later(k);
        if (r && strcmp(state, "42P01") == 0) {
            /* A database of 1.1.0 has whsem.semaphore alone. */
            struct pgjob *m = whsem__pgj_new(whsem__pgk_sql_create, done_create, n, final, NULL);
            if (m) {
                k->flushing = true;
                n->jobs++;
                s->flushes++;
                whsem__pgc_push(s, c, m);
                whsem__pgc_kick(s, c);
                return;
            }
        }
        /* A lock held elsewhere passes; anything else would fail again. */
        if (r && strcmp(state, "55P03") != 0)
            s->flush_paused_until_ns = whsem__mono_ns() + PG_FLUSH_PAUSE_NS;
    }
    if (k->final_wanted) {
        k->final_wanted = false;
        if (r) flush(s, c, n, true);
    }
}

/* Sends what n counted; final: the current second too (nothing of this
 * name object comes after it). */
static void flush(struct pgsrv *s, struct pgconn *c, struct pgname *n, bool final)
{
    struct pgkeep *k = &n->keep;
    if (k->gone || !n->id || c->state == PGC_DEAD) return;
    if (k->flushing) {
        if (final) k->final_wanted = true;
        return;
    }
    int64_t now_s = second_of(k);
    advance(k, now_s);
    int64_t to = final ? now_s : now_s - 1;
    int64_t from = k->sec_sent + 1;
    if (from < to - PG_HISTORY_S + 1) from = to - PG_HISTORY_S + 1;
    while (from <= to && !k->per_sec[from % PG_HISTORY_S]) from++;
    if (counts_zero(&k->pending) && from > to) {
        if (to > k->sec_sent) k->sec_sent = k->sec_sending = to; /* all zeros */
        return;
    }
    char *sql = flush_sql(s, n, &k->pending, from, to, final);
    struct pgjob *j = sql ? whsem__pgj_new(NULL, done_flush, n, final, NULL) : NULL;
    if (!j) {
        free(sql); /* out of memory: the counts wait for the next flush */
        return;
    }
    j->text = sql;
    j->sql = sql;
    j->simple = true;
    k->inflight = k->pending;
    memset(&k->pending, 0, sizeof k->pending);
    k->sec_sending = to > k->sec_sent ? to : k->sec_sent;
    k->flushing = true;
    n->jobs++;
    s->flushes++;
    whsem__pgc_push(s, c, j);
    whsem__pgc_kick(s, c);
}

void whsem__pgk_tick(struct pgsrv *s, struct pgconn *main, struct pgname *n, uint64_t now,
                     uint64_t *next)
{
    struct pgkeep *k = &n->keep;
    if (k->flushing || k->gone || n->state != PGN_READY) return;
    uint64_t due = k->flush_at_ns > s->flush_paused_until_ns ? k->flush_at_ns
                                                              : s->flush_paused_until_ns;
    if (now < due) {
        if (due < *next) *next = due;
        return;
    }
    /* No connection: the worker's next round looks again. */
    if (!main || !has_news(k)) return;
    k->flush_at_ns = now + s->flush_ns;
    flush(s, main, n, false);
}

void whsem__pgk_final(struct pgsrv *s, struct pgconn *main, struct pgname *n)
{
    if (main && has_news(&n->keep)) flush(s, main, n, true);
}

/* A bigint[] or integer[] as text ("{1,2,3}"), added to out[0 .. max). */
static void add_array(const char *text, uint64_t *out64, uint32_t *out32, size_t max)
{
    const char *p = text;
    if (*p == '{') p++;
    for (size_t i = 0; i < max && *p && *p != '}'; i++) {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p) break;
        if (out64) out64[i] += v;
        else out32[i] += (uint32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
}

whsem_status whsem__pgk_take(struct pgsrv *s, PGresult *r, void *ctx, char *msg, size_t size)
{
    struct pgk_read *q = ctx;
    struct sem_counters *c = q->c;
    struct pgkeep *k = &q->n->keep;
    if (s->pq->ntuples(r) != 1) {
        snprintf(msg, size, "PostgreSQL at %s gave %d rows for the counters of '%s'", s->where,
                 s->pq->ntuples(r), q->n->name);
        return WHSEM_E_OS;
    }
    /* What this process has not flushed: a flush sent before this
     * statement has ended before it (one connection runs them in order),
     * one sent after it is still on its way. */
    struct pgcounts mine = k->pending;
    add_counts(&mine, &k->inflight);
    uint64_t v[PGK_N];
    for (int i = 0; i < PGK_N; i++)
        v[i] = strtoull(s->pq->getvalue(r, 0, 1 + i), NULL, 10) + mine.v[i];
    c->created_unix_ms = atoll(s->pq->getvalue(r, 0, 0));
    c->acquisitions = v[PGK_ACQUISITIONS];
    c->timeouts = v[PGK_TIMEOUTS];
    c->cancellations = v[PGK_CANCELLATIONS];
    c->waits = v[PGK_WAITS];
    c->wait_ns = v[PGK_WAIT_NS];
    c->releases = v[PGK_RELEASES];
    c->hold_ns = v[PGK_HOLD_NS];
    memcpy(c->wait_buckets, mine.buckets, sizeof c->wait_buckets);
    add_array(s->pq->getvalue(r, 0, 1 + PGK_N), c->wait_buckets, NULL, WHSEM_WAIT_BUCKETS);
    c->seconds = PG_HISTORY_S;
    memset(c->waiters, 0, PG_HISTORY_S * sizeof c->waiters[0]);
    add_array(s->pq->getvalue(r, 0, 2 + PGK_N), NULL, c->waiters, PG_HISTORY_S);
    /* This process's seconds not in the database, its current one last,
     * as the server's current second. */
    int64_t now_s = second_of(k);
    advance(k, now_s);
    for (int d = 0; d < PG_HISTORY_S && now_s - d > k->sec_sent; d++)
        c->waiters[PG_HISTORY_S - 1 - d] += k->per_sec[(now_s - d) % PG_HISTORY_S];
    return WHSEM_OK;
}
