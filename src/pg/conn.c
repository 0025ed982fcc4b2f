/* SPDX-License-Identifier: MIT */
/*
 * One connection to the server: connecting without blocking, a queue of
 * statements sent one at a time, their results, and its end. Only the
 * worker thread calls these (with the server's mutex held), so libpq is
 * never used by two threads on one connection.
 */
#include "pg.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void whsem__pg_scrub(const struct pgsrv *s, const char *in, char *out, size_t size)
{
    size_t plen = s->password ? strlen(s->password) : 0, o = 0;
    if (!size) return;
    while (*in && o + 1 < size) {
        if (plen && strncmp(in, s->password, plen) == 0) {
            for (const char *m = "********"; *m && o + 1 < size; m++) out[o++] = *m;
            in += plen;
            continue;
        }
        /* One line: libpq ends its lines with newlines, and indents the
         * ones that follow with tabs; a run of them is one space. */
        char ch = *in++;
        if (ch == '\n' || ch == '\t') {
            if (o && out[o - 1] != ' ') out[o++] = ' ';
            continue;
        }
        out[o++] = ch;
    }
    while (o && out[o - 1] == ' ') o--;
    out[o] = 0;
}

const char *whsem__pg_sqlstate(const struct pgsrv *s, const PGresult *r)
{
    const char *st = r ? s->pq->resultErrorField(r, PQ_DIAG_SQLSTATE) : NULL;
    return st ? st : "";
}

bool whsem__pg_failed_with(const char *state)
{
    char tag[32];
    snprintf(tag, sizeof tag, "(SQLSTATE %s)", state);
    return strstr(whsem_last_error(), tag) != NULL;
}

whsem_status whsem__pg_result_error(struct pgsrv *s, const PGresult *r, char *msg, size_t size)
{
    const char *state = whsem__pg_sqlstate(s, r);
    const char *primary = r ? s->pq->resultErrorField(r, PQ_DIAG_MESSAGE_PRIMARY) : NULL;
    char clean[PG_MSG];
    whsem__pg_scrub(s, primary ? primary : "no message", clean, sizeof clean);
    snprintf(msg, size, "PostgreSQL at %s: %s (SQLSTATE %s)", s->where, clean,
             *state ? state : "none");
    if (strcmp(state, "42501") == 0 || strncmp(state, "28", 2) == 0) return WHSEM_E_ACCESS_DENIED;
    if (strcmp(state, "53300") == 0) return WHSEM_E_LIMIT;
    if (strncmp(state, "57P", 3) == 0 || strncmp(state, "08", 2) == 0 ||
        strcmp(state, "3D000") == 0)
        return WHSEM_E_UNAVAILABLE;
    if (strcmp(state, "53200") == 0 || strcmp(state, "53100") == 0) return WHSEM_E_NO_MEMORY;
    return WHSEM_E_OS;
}

bool whsem__pgj_set(struct pgjob *j, const char *const *values)
{
    size_t n = 0, bytes = 0;
    while (values && values[n]) bytes += strlen(values[n++]) + 1;
    char *text = bytes ? malloc(bytes) : NULL;
    if ((bytes && !text) || n > sizeof j->values / sizeof j->values[0]) {
        free(text);
        return false;
    }
    char *p = text;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(values[i]) + 1;
        memcpy(p, values[i], len);
        j->values[i] = p;
        p += len;
    }
    free(j->text);
    j->text = text;
    j->nparams = (int)n;
    return true;
}

struct pgjob *whsem__pgj_new(const char *sql, pgjob_done done, void *ctx, int64_t arg,
                             const char *const *values)
{
    struct pgjob *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    if (!whsem__pgj_set(j, values)) {
        free(j);
        return NULL;
    }
    j->sql = sql;
    j->done = done;
    j->ctx = ctx;
    j->arg = arg;
    return j;
}

void whsem__pgj_free(struct pgjob *j)
{
    if (!j) return;
    free(j->text);
    free(j);
}

bool whsem__pgc_marked(const struct pgconn *c, int32_t id)
{
    for (size_t i = 0; i < c->nmarks; i++)
        if (c->marks[i] == id) return true;
    return false;
}

void whsem__pgc_mark(struct pgconn *c, int32_t id, bool on)
{
    for (size_t i = 0; i < c->nmarks; i++) {
        if (c->marks[i] != id) continue;
        if (!on) c->marks[i] = c->marks[--c->nmarks];
        return;
    }
    if (!on) return;
    if (c->nmarks == c->capmarks) {
        size_t cap = c->capmarks ? 2 * c->capmarks : 8;
        int32_t *m = realloc(c->marks, cap * sizeof *m);
        if (!m) return; /* not recorded: it is taken again, harmlessly */
        c->marks = m;
        c->capmarks = cap;
    }
    c->marks[c->nmarks++] = id;
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg, (void)message;
}

struct pgconn *whsem__pgc_new(struct pgsrv *s, enum pgconn_role role)
{
    struct pgconn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->role = role;
    c->state = PGC_CONNECTING;
    c->poll_events = POLLOUT;
    c->idle_since_ns = whsem__mono_ns();
    char app[128]; /* the server keeps 63 bytes */
    /* Who holds what, as other processes' whsem_query reads it from
     * pg_stat_activity: "whsem <pid> <held since, ms> <host>". */
    snprintf(app, sizeof app, "whsem %ld - %s", (long)getpid(), s->host);
    /* Earlier entries are defaults the connection string may override
     * (PGCONNECT_TIMEOUT too); application_name, after it, is ours. */
    const char *kw[8], *val[8];
    int k = 0;
    if (!getenv("PGCONNECT_TIMEOUT")) kw[k] = "connect_timeout", val[k++] = PG_CONNECT_TIMEOUT_S;
    kw[k] = "keepalives_idle", val[k++] = "5";
    kw[k] = "keepalives_interval", val[k++] = "2";
    kw[k] = "keepalives_count", val[k++] = "3";
    kw[k] = "dbname", val[k++] = s->conninfo;
    kw[k] = "application_name", val[k++] = app;
    kw[k] = NULL, val[k] = NULL;
    c->pg = s->pq->connectStartParams(kw, val, 1);
    /* libpq prints the server's notices on stderr by default: a library
     * must not write to its host's stderr (and none of them matters). */
    if (c->pg) s->pq->setNoticeProcessor(c->pg, ignore_notice, NULL);
    c->next = s->conns;
    s->conns = c;
    if (!c->pg) {
        whsem__pgc_kill(s, c, WHSEM_E_NO_MEMORY, "out of memory for a connection");
    } else if (s->pq->status(c->pg) == PQ_CONNECTION_BAD) {
        char clean[PG_MSG];
        whsem__pg_scrub(s, s->pq->errorMessage(c->pg), clean, sizeof clean);
        whsem__pgc_kill(s, c, WHSEM_E_UNAVAILABLE, "cannot connect to PostgreSQL: %s", clean);
    }
    return c;
}

void whsem__pgc_push(struct pgsrv *s, struct pgconn *c, struct pgjob *j)
{
    if (c->state == PGC_DEAD) {
        /* As if it had been queued when the connection died. */
        j->done(s, c, j, NULL);
        whsem__pgj_free(j);
        return;
    }
    j->next = NULL;
    if (c->tail) c->tail->next = j;
    else c->head = j;
    c->tail = j;
}

static void flush(struct pgsrv *s, struct pgconn *c)
{
    int r = s->pq->flush(c->pg);
    if (r < 0) {
        char clean[PG_MSG];
        whsem__pg_scrub(s, s->pq->errorMessage(c->pg), clean, sizeof clean);
        whsem__pgc_kill(s, c, WHSEM_E_UNAVAILABLE, "lost the connection to PostgreSQL at %s: %s",
                        s->where, clean);
        return;
    }
    c->poll_events = r ? POLLIN | POLLOUT : POLLIN;
}

static void statement_name(int k, char name[16]) { snprintf(name, 16, "whsem_%d", k); }

/* Sends the head statement: prepared in this session the first time it
 * is sent (a round trip of its own, once per session), then by name. */
static int send_head(struct pgsrv *s, struct pgconn *c, struct pgjob *j)
{
    if (j->simple) return s->pq->sendQuery(c->pg, j->sql);
    char name[16];
    int k = 0;
    while (k < c->nprepared && c->prepared[k] != j->sql) k++;
    if (k < c->nprepared) {
        statement_name(k, name);
        if (j->prepare) j->prepare(s, c, j);
        return s->pq->sendQueryPrepared(c->pg, name, j->nparams, j->values, NULL, NULL, 0);
    }
    if (j->reuse && !j->unprepared && k < PG_PREPARED_MAX) {
        statement_name(k, name);
        c->preparing = true;
        /* Parameter types come from the statement's own casts. */
        return s->pq->sendPrepare(c->pg, name, j->sql, 0, NULL);
    }
    if (j->prepare) j->prepare(s, c, j);
    return s->pq->sendQueryParams(c->pg, j->sql, j->nparams, NULL, j->values, NULL, NULL, 0);
}

void whsem__pgc_kick(struct pgsrv *s, struct pgconn *c)
{
    if (c->state != PGC_READY || c->sent || !c->head) return;
    struct pgjob *j = c->head;
    int ok = send_head(s, c, j);
    if (!ok) {
        char clean[PG_MSG];
        whsem__pg_scrub(s, s->pq->errorMessage(c->pg), clean, sizeof clean);
        whsem__pgc_kill(s, c, WHSEM_E_UNAVAILABLE, "lost the connection to PostgreSQL at %s: %s",
                        s->where, clean);
        return;
    }
    c->sent = true;
    j->sent = true;
    c->sent_ns = whsem__mono_ns();
    flush(s, c);
}

/* Reads whatever results are complete and ends their statements; never
 * waits (getResult is called only when it would not block). A statement
 * yields one result per SQL command, then NULL: its done sees the first
 * that failed, else the last. */
static void read_results(struct pgsrv *s, struct pgconn *c)
{
    while (c->state == PGC_READY && c->sent && !s->pq->isBusy(c->pg)) {
        PGresult *r = s->pq->getResult(c->pg);
        if (r) {
            if (c->keep_failed) {
                s->pq->clear(r);
                continue;
            }
            int st = s->pq->resultStatus(r);
            if (c->keep) s->pq->clear(c->keep);
            c->keep = r;
            c->keep_failed = st != PQ_COMMAND_OK && st != PQ_TUPLES_OK && st != PQ_EMPTY_QUERY;
            continue;
        }
        struct pgjob *j = c->head;
        PGresult *keep = c->keep;
        c->keep = NULL;
        c->keep_failed = false;
        c->sent = false;
        if (c->preparing) {
            /* The head's statement is prepared (or it goes as it is: a
             * cancel meant for a wait, say, hit the preparation). */
            c->preparing = false;
            if (keep && s->pq->resultStatus(keep) == PQ_COMMAND_OK)
                c->prepared[c->nprepared++] = j->sql;
            else
                j->unprepared = true;
            if (keep) s->pq->clear(keep);
            whsem__pgc_kick(s, c);
            continue;
        }
        if (!j->blocking && keep && strcmp(whsem__pg_sqlstate(s, keep), "57014") == 0) {
            /* A cancel meant for a wait that had just ended hit this
             * statement instead: it runs again (none of ours minds). */
            s->pq->clear(keep);
            whsem__pgc_kick(s, c);
            continue;
        }
        if (j->blocking) c->cancel_sent = false;
        c->head = j->next;
        if (!c->head) c->tail = NULL;
        c->idle_since_ns = whsem__mono_ns();
        j->done(s, c, j, keep);
        if (keep) s->pq->clear(keep);
        whsem__pgj_free(j);
        whsem__pgc_kick(s, c);
    }
}

void whsem__pgc_service(struct pgsrv *s, struct pgconn *c, short revents)
{
    if (revents & POLLNVAL) {
        /* Something else in this process closed our socket (a loop over
         * descriptors, closefrom): the session, and what it held, ended
         * with it. The number may name another file by now, so libpq must
         * not close it: the connection is dropped without PQfinish, its
         * memory the price. Polling it again would only spin. */
        c->fd_gone = true;
        whsem__pgc_kill(s, c, WHSEM_E_UNAVAILABLE,
                        "the connection to PostgreSQL at %s ended: its descriptor was closed "
                        "by something else in this process",
                        s->where);
        return;
    }
    if (c->state == PGC_CONNECTING) {
        switch (s->pq->connectPoll(c->pg)) {
        case PQ_POLLING_READING: c->poll_events = POLLIN; return;
        case PQ_POLLING_WRITING: c->poll_events = POLLOUT; return;
        case PQ_POLLING_OK:
            c->state = PGC_READY;
            c->was_ready = true;
            c->poll_events = POLLIN;
            s->pq->setnonblocking(c->pg, 1);
            whsem__pgc_kick(s, c);
            return;
        default: {
            char clean[PG_MSG];
            const char *m = s->pq->errorMessage(c->pg);
            whsem__pg_scrub(s, m, clean, sizeof clean);
            whsem_status st = WHSEM_E_UNAVAILABLE;
            if (strstr(m, "authentication failed") || strstr(m, "no pg_hba.conf entry") ||
                strstr(m, "password"))
                st = WHSEM_E_ACCESS_DENIED;
            else if (strstr(m, "too many clients") || strstr(m, "connection slots are reserved"))
                st = WHSEM_E_LIMIT;
            whsem__pgc_kill(s, c, st, "cannot connect to PostgreSQL: %s", clean);
            return;
        }
        }
    }
    if (c->state != PGC_READY) return;
    if (revents & POLLOUT) {
        flush(s, c);
        if (c->state != PGC_READY) return;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        if (!s->pq->consumeInput(c->pg) || s->pq->status(c->pg) == PQ_CONNECTION_BAD) {
            char clean[PG_MSG];
            whsem__pg_scrub(s, s->pq->errorMessage(c->pg), clean, sizeof clean);
            whsem__pgc_kill(s, c, WHSEM_E_UNAVAILABLE,
                            "the connection to PostgreSQL at %s ended: %s", s->where,
                            *clean ? clean : "closed by the server");
            return;
        }
        read_results(s, c);
    }
}

void whsem__pg_set_fail(struct pgfail *f, whsem_status st, const char *fmt, va_list ap)
{
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    f->status = st;
}

/* Connections whose descriptor something else closed: libpq would close
 * that number again, which may name another file by now, so they are
 * never finished. Kept reachable, they are not a leak to a leak checker
 * (nor is their memory lost twice: each is kept once, until exit). */
static pthread_mutex_t abandoned_mu = PTHREAD_MUTEX_INITIALIZER;
static PGconn **abandoned;
static size_t nabandoned, abandoned_cap;

static void abandon(PGconn *pg)
{
    pthread_mutex_lock(&abandoned_mu);
    if (nabandoned == abandoned_cap) {
        size_t cap = abandoned_cap ? 2 * abandoned_cap : 8;
        PGconn **more = realloc(abandoned, cap * sizeof *more);
        if (more) abandoned = more, abandoned_cap = cap;
    }
    if (nabandoned < abandoned_cap) abandoned[nabandoned++] = pg;
    pthread_mutex_unlock(&abandoned_mu);
}

void whsem__pgc_kill(struct pgsrv *s, struct pgconn *c, whsem_status st, const char *fmt, ...)
{
    if (c->state == PGC_DEAD) return;
    va_list ap;
    va_start(ap, fmt);
    whsem__pg_set_fail(&c->fail, st, fmt, ap);
    va_end(ap);
    c->state = PGC_DEAD;
    /* Closing the socket ends the session, and the server lets go of
     * every advisory lock it held: its tickets and markers. */
    if (c->keep) s->pq->clear(c->keep);
    c->keep = NULL;
    c->keep_failed = false;
    c->preparing = false;
    if (c->pg && !c->fd_gone) s->pq->finish(c->pg);
    else if (c->pg) abandon(c->pg);
    c->pg = NULL;
    c->nmarks = 0;
    while (c->head) {
        struct pgjob *j = c->head;
        c->head = j->next;
        if (!c->head) c->tail = NULL;
        c->sent = false;
        j->done(s, c, j, NULL);
        whsem__pgj_free(j);
    }
}
