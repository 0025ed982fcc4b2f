/* SPDX-License-Identifier: MIT */
/*
 * Names in the database (pg/DESIGN.md, "Objects in the database"): the
 * row of whsem.semaphore that gives a finalized name its advisory-lock
 * key and records its max count, created on first use, and the marker
 * lock every session that has the name open holds in shared mode, so
 * that the max count can change only when nobody uses the name.
 *
 * Each step is a statement on the main connection whose done handler
 * sends the next; the opener sleeps on the name's word until the name is
 * PGN_READY or PGN_BROKEN.
 */
#include "registry.h"

#include "platform.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One implicit transaction: an error rolls it all back and leaves the
 * session idle. Every role may use the tables, as every role may take
 * advisory locks. */
static const char sql_create[] =
    "SELECT pg_advisory_xact_lock(" PG_CREATE_LOCK_KEY ");"
    "CREATE SCHEMA IF NOT EXISTS whsem;"
    "CREATE TABLE IF NOT EXISTS whsem.semaphore ("
    " id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " name text NOT NULL UNIQUE,"
    " max_count integer NOT NULL CHECK (max_count > 0),"
    " created timestamptz NOT NULL DEFAULT now());"
    "GRANT USAGE ON SCHEMA whsem TO PUBLIC;"
    "GRANT SELECT, INSERT, UPDATE ON whsem.semaphore TO PUBLIC;" PG_SQL_COUNTERS_DDL;
static const char sql_find[] = "SELECT id, max_count FROM whsem.semaphore WHERE name = $1";
static const char sql_insert[] =
    "INSERT INTO whsem.semaphore (name, max_count) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
/* Exclusive marker: nobody else has the name open. */
static const char sql_try_alone[] = "SELECT pg_try_advisory_lock($1, -1)";
static const char sql_unalone[] = "SELECT pg_advisory_unlock($1, -1)";
/* Alone: the max count becomes ours; keep the marker shared. */
static const char sql_take_over[] =
    "WITH u AS (UPDATE whsem.semaphore SET max_count = $2 WHERE id = $1 AND $2 > 0"
    " AND max_count <> $2 RETURNING 1)"
    " SELECT pg_advisory_lock_shared($1, -1), pg_advisory_unlock($1, -1), (SELECT count(*) FROM u)";
/* Not alone: the shared marker first (it waits out a max-count change),
 * then, in a statement of its own (a fresh snapshot), the max count. */
static const char sql_mark[] = "SELECT pg_advisory_lock_shared($1, -1)";
static const char sql_max[] = "SELECT max_count FROM whsem.semaphore WHERE id = $1";
static const char sql_unmark[] = "SELECT pg_advisory_unlock_shared($1, -1)";

/* arg of a find: whether the table was created already (once is enough). */
static void step_find(struct pgsrv *s, struct pgconn *c, struct pgname *n, int64_t created);

static void wake_opener(struct pgname *n)
{
    atomic_fetch_add_explicit(&n->word, 1, memory_order_release);
    whsem__p_word_wake_all(&n->word);
}

static void broken(struct pgname *n, whsem_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void broken(struct pgname *n, whsem_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    whsem__pg_set_fail(&n->fail, st, fmt, ap);
    va_end(ap);
    n->state = PGN_BROKEN;
    wake_opener(n);
}

/* Every statement of ours names its name: counted, so that a name dropped
 * meanwhile (nobody uses it any more) stays allocated until the last one
 * ends. That statement's marker, if it took one, goes back at once: the
 * drop gave back only the markers it knew of. True: the name is dropped,
 * and nothing more is to be done for it. */
static bool dropped(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r, bool marks)
{
    struct pgname *n = j->ctx;
    n->jobs--;
    if (!n->dropped) return false;
    int st = r ? s->pq->resultStatus(r) : -1;
    if (marks && (st == PQ_COMMAND_OK || st == PQ_TUPLES_OK)) {
        whsem__pgc_mark(c, n->id, true);
        whsem__pgr_unmark(s, c, n->id);
    }
    return true;
}

/* A statement that ended without a usable result breaks the name. */
static bool failed(struct pgsrv *s, struct pgconn *c, struct pgname *n, PGresult *r)
{
    if (!r) {
        /* A name in use outlives a connection: the worker replaces it. */
        if (n->state == PGN_REGISTERING) broken(n, c->fail.status, "%s", c->fail.msg);
        return true;
    }
    int st = s->pq->resultStatus(r);
    if (st == PQ_COMMAND_OK || st == PQ_TUPLES_OK) return false;
    const char *state = whsem__pg_sqlstate(s, r);
    if ((strncmp(state, "57", 2) == 0 && strcmp(state, "57014") != 0) || strncmp(state, "08", 2) == 0) {
        /* The session is being ended (a restart, a crash of another server
         * process, pg_terminate_backend): the connection goes next. A name
         * in use outlives it as it outlives a connection that died; only a
         * registration in progress fails. */
        if (n->state == PGN_REGISTERING) {
            char msg[PG_MSG];
            (void)whsem__pg_result_error(s, r, msg, sizeof msg);
            broken(n, WHSEM_E_UNAVAILABLE, "%s", msg);
        }
        return true;
    }
    char msg[PG_MSG];
    whsem_status status = whsem__pg_result_error(s, r, msg, sizeof msg);
    if (status == WHSEM_E_ACCESS_DENIED)
        broken(n, status,
               "%s; the PostgreSQL backend keeps its names in the table whsem.semaphore, which "
               "it creates on first use: let a role that may create schemas open a semaphore "
               "once, or see \"Objects in the database\" in src/pg/DESIGN.md",
               msg);
    else broken(n, status, "%s", msg);
    return true;
}

static void push_arg(struct pgsrv *s, struct pgconn *c, const char *sql, pgjob_done done,
                     struct pgname *n, int64_t arg, const char *const *values)
{
    struct pgjob *j = whsem__pgj_new(sql, done, n, arg, values);
    if (!j) {
        broken(n, WHSEM_E_NO_MEMORY, "out of memory for a statement");
        return;
    }
    j->simple = sql == sql_create;
    n->jobs++;
    whsem__pgc_push(s, c, j);
    whsem__pgc_kick(s, c);
}

static void push(struct pgsrv *s, struct pgconn *c, const char *sql, pgjob_done done,
                 struct pgname *n, const char *const *values)
{
    push_arg(s, c, sql, done, n, 0, values);
}

static void int_text(int32_t v, char buf[16]) { snprintf(buf, 16, "%d", (int)v); }

static void done_verified(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    struct pgname *n = j->ctx;
    if (dropped(s, c, j, r, false)) return;
    if (failed(s, c, n, r)) return;
    int32_t stored = s->pq->ntuples(r) ? atoi(s->pq->getvalue(r, 0, 0)) : 0;
    if (!stored) {
        broken(n, WHSEM_E_NOT_FOUND, "the row of '%s' in whsem.semaphore was deleted", n->name);
        return;
    }
    if (n->state == PGN_REGISTERING && n->max_count == 0) n->max_count = stored;
    if (stored != n->max_count && n->state == PGN_REGISTERING && n->retries < 3 &&
        whsem__pgr_unmarking(s)) {
        /* Markers of our own, of an earlier use of the name, are on their
         * way back: start again once they are (the worker's round). */
        whsem__pgr_unmark(s, c, n->id);
        n->retries++;
        n->reg_started = false;
        return;
    }
    if (stored != n->max_count) {
        whsem__pgr_unmark(s, c, n->id);
        broken(n, WHSEM_E_MAX_COUNT_MISMATCH, "'%s' is open with max count %d, not %d", n->name,
               (int)stored, (int)n->max_count);
        return;
    }
    whsem__pgc_mark(c, n->id, true);
    if (n->state == PGN_REGISTERING) {
        n->state = PGN_READY;
        wake_opener(n);
    }
}

static void done_marked(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    struct pgname *n = j->ctx;
    if (dropped(s, c, j, r, true)) return;
    if (failed(s, c, n, r)) return;
    whsem__pgc_mark(c, n->id, true);
    char id[16];
    int_text(n->id, id);
    const char *v[] = {id, NULL};
    push(s, c, sql_max, done_verified, n, v);
}

static void done_take_over(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    struct pgname *n = j->ctx;
    if (dropped(s, c, j, r, true)) return;
    if (failed(s, c, n, r)) return;
    whsem__pgc_mark(c, n->id, true);
    if (n->max_count == 0) n->max_count = (int32_t)j->arg;
    n->state = PGN_READY;
    wake_opener(n);
}

static void done_alone_undone(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    (void)s, (void)c, (void)j, (void)r;
}

static void done_try_alone(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    struct pgname *n = j->ctx;
    if (dropped(s, c, j, r, false)) {
        /* An opener that gave up (60 s) left the name: the exclusive
         * marker must not outlive it, or every later opener waits. */
        if (r && s->pq->resultStatus(r) == PQ_TUPLES_OK && strcmp(s->pq->getvalue(r, 0, 0), "t") == 0) {
            char id[16];
            int_text(n->id, id);
            const char *v[] = {id, NULL};
            struct pgjob *u = whsem__pgj_new(sql_unalone, done_alone_undone, NULL, 0, v);
            if (u) whsem__pgc_push(s, c, u), whsem__pgc_kick(s, c);
        }
        return;
    }
    if (failed(s, c, n, r)) return;
    char id[16], max[16];
    int_text(n->id, id);
    int_text(n->max_count, max);
    const char *v[] = {id, max, NULL};
    if (strcmp(s->pq->getvalue(r, 0, 0), "t") == 0) {
        push_arg(s, c, sql_take_over, done_take_over, n, j->arg, v);
    } else {
        const char *only_id[] = {id, NULL};
        push(s, c, sql_mark, done_marked, n, only_id);
    }
}

static void done_insert(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    struct pgname *n = j->ctx;
    if (dropped(s, c, j, r, false)) return;
    if (failed(s, c, n, r)) return;
    step_find(s, c, n, j->arg);
}

static void done_create(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    struct pgname *n = j->ctx;
    if (dropped(s, c, j, r, false)) return;
    if (failed(s, c, n, r)) return;
    step_find(s, c, n, 1);
}

static void done_find(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    struct pgname *n = j->ctx;
    if (dropped(s, c, j, r, false)) return;
    const char *state = whsem__pg_sqlstate(s, r);
    /* 42P01: no table; 3F000: no schema. Created once, then looked again. */
    if (r && (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0) && j->arg == 0) {
        push(s, c, sql_create, done_create, n, NULL);
        return;
    }
    if (failed(s, c, n, r)) return;
    if (s->pq->ntuples(r) == 0) {
        if (n->max_count == 0) {
            broken(n, WHSEM_E_NOT_FOUND, "no semaphore named '%s' in PostgreSQL at %s", n->name,
                   s->where);
            return;
        }
        char max[16];
        int_text(n->max_count, max);
        const char *v[] = {n->name, max, NULL};
        push_arg(s, c, sql_insert, done_insert, n, j->arg, v);
        return;
    }
    n->id = atoi(s->pq->getvalue(r, 0, 0));
    int32_t stored = atoi(s->pq->getvalue(r, 0, 1));
    char id[16];
    int_text(n->id, id);
    const char *v[] = {id, NULL};
    push_arg(s, c, sql_try_alone, done_try_alone, n, stored, v);
}

static void step_find(struct pgsrv *s, struct pgconn *c, struct pgname *n, int64_t created)
{
    const char *v[] = {n->name, NULL};
    push_arg(s, c, sql_find, done_find, n, created, v);
}

void whsem__pgr_register(struct pgsrv *s, struct pgconn *main, struct pgname *n)
{
    step_find(s, main, n, 0);
}

void whsem__pgr_mark(struct pgsrv *s, struct pgconn *c, struct pgname *n)
{
    char id[16];
    int_text(n->id, id);
    const char *v[] = {id, NULL};
    push(s, c, sql_mark, done_marked, n, v);
}

static void done_unmarked(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r)
{
    (void)s, (void)j, (void)r;
    c->unmarking--;
}

bool whsem__pgr_unmarking(const struct pgsrv *s)
{
    for (const struct pgconn *c = s->conns; c; c = c->next)
        if (c->unmarking && c->state != PGC_DEAD) return true;
    return false;
}

void whsem__pgr_unmark(struct pgsrv *s, struct pgconn *c, int32_t id)
{
    if (c->state == PGC_DEAD || !whsem__pgc_marked(c, id)) return;
    whsem__pgc_mark(c, id, false);
    char idt[16];
    int_text(id, idt);
    const char *v[] = {idt, NULL};
    struct pgjob *j = whsem__pgj_new(sql_unmark, done_unmarked, NULL, 0, v);
    if (!j) return; /* the marker stays until the session ends: harmless */
    c->unmarking++;
    whsem__pgc_push(s, c, j);
    whsem__pgc_kick(s, c);
}
