/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL backend's entry in the backend seam (backend.h): handles
 * for its semaphores (struct pgname) and tickets (struct pgticket), on a
 * server shared by every open of one connection string (server.c).
 */
#include "counters.h"
#include "pg_admin.h"
#include "registry.h"
#include "server.h"

#include "answers.h"
#include "async_engine.h"
#include "platform.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One process that has a semaphore open, holds or waits, as the server's
 * lock table shows it. */
struct pgproc {
    char host[64];
    int64_t pid;            /* negative: a server process pid, not ours     */
    int64_t since_unix_ms;  /* holding since (0: not holding, or unknown)   */
    int32_t tickets;
    uint32_t waiting;       /* its waiting connections (ours: acquisitions) */
    int64_t wait_since_ms;  /* its oldest wait (0 if none)                   */
};

/* Hosts as whsem_process.host gives them: static storage for the life of
 * the library. Each distinct name is kept once; the table is bounded, as
 * hosts are whatever other clients put in their application_name. */
enum { HOSTS_MAX = 4096 };
static pthread_mutex_t hosts_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *hosts[HOSTS_MAX];
static size_t nhosts;

static const char *host_interned(const char *host)
{
    const char *found = "?";
    pthread_mutex_lock(&hosts_mu);
    size_t k = 0;
    while (k < nhosts && strcmp(hosts[k], host) != 0) k++;
    if (k < nhosts) {
        found = hosts[k];
    } else if (nhosts < HOSTS_MAX) {
        char *copy = strdup(host);
        if (copy) found = hosts[nhosts++] = copy;
    }
    pthread_mutex_unlock(&hosts_mu);
    return found;
}

static whsem_status pg_open(const char *final, size_t len, int32_t max_count,
                            const struct open_opts *o, whsem_sem *out_sem)
{
    struct pgsrv *s;
    whsem_status st = whsem__pgs_get(o, &whsem__pg_backend, &s);
    if (st != WHSEM_OK) return st;
    uint64_t h = whsem__h_reserve(HK_SEM, &st);
    if (!h) return st;
    struct pgname *n;
    st = whsem__pgs_open(s, final, len, max_count, o->check_ms, &n);
    if (st != WHSEM_OK) {
        whsem__h_unreserve(h);
        return st;
    }
    whsem__h_publish(h, n, (uint64_t)(int64_t)o->check_ms);
    *out_sem = h;
    return WHSEM_OK;
}

static void pg_identity(struct whsem_semobj *obj, char name[WHSEM_MAX_NAME_BYTES + 1],
                        size_t *name_len, int32_t *max_count)
{
    struct pgname *n = (struct pgname *)obj;
    if (name) {
        memcpy(name, n->name, n->len);
        name[n->len] = 0;
        *name_len = n->len;
    }
    *max_count = n->max_count;
}

/* A session's process, from the application_name every connection of
 * ours sets: "whsem <pid> <held since, unix ms, or -> <host>". */
static void parse_app(const struct pgrow *r, struct pgproc *w)
{
    long long pid = 0;
    char host[64] = "", since[32] = "";
    memset(w, 0, sizeof *w);
    if (sscanf(r->app, "whsem %lld %31s %63s", &pid, since, host) == 3) {
        w->pid = pid;
        w->since_unix_ms = strcmp(since, "-") == 0 ? 0 : atoll(since);
        snprintf(w->host, sizeof w->host, "%s", host);
    } else {
        /* Not one of ours (another program's advisory lock on the same
         * keys): named by its server process. */
        w->pid = -(int64_t)r->backend_pid;
        snprintf(w->host, sizeof w->host, "?");
    }
}

/* What the server's lock table says of n, one entry per process: the
 * marker means "has it open", a granted index a ticket, a waiting one a
 * wait (other processes wait with one session per index they wait on;
 * this one knows its waiting acquisitions exactly). */
struct gathered {
    struct pgproc *ps;
    size_t n, open;
    int32_t max_count, held;
    uint32_t waiting;
};

static whsem_status gather(struct pgname *n, struct gathered *g)
{
    struct pgsnapshot snap;
    memset(g, 0, sizeof *g);
    whsem_status st = whsem__pgs_snapshot(n, &snap);
    if (st != WHSEM_OK) return st;
    g->ps = calloc(snap.nrows ? snap.nrows : 1, sizeof *g->ps);
    bool *open = calloc(snap.nrows ? snap.nrows : 1, sizeof *open);
    if (!g->ps || !open) {
        free(g->ps);
        free(open);
        free(snap.rows);
        return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for the snapshot");
    }
    g->max_count = snap.max_count;
    for (size_t i = 0; i < snap.nrows; i++) {
        const struct pgrow *r = &snap.rows[i];
        struct pgproc w, *p = NULL;
        parse_app(r, &w);
        for (size_t k = 0; k < g->n && !p; k++)
            if (g->ps[k].pid == w.pid && strcmp(g->ps[k].host, w.host) == 0) p = &g->ps[k];
        if (!p) {
            p = &g->ps[g->n++];
            *p = w;
            p->since_unix_ms = 0;
        }
        if (r->key2 < 0 || r->key2 >= INT32_MAX) {
            if (!open[p - g->ps]) g->open++;
            open[p - g->ps] = true;
        } else if (r->granted) {
            p->tickets++;
            g->held++;
            if (w.since_unix_ms && (!p->since_unix_ms || w.since_unix_ms < p->since_unix_ms))
                p->since_unix_ms = w.since_unix_ms;
        } else {
            p->waiting++;
            g->waiting++;
            if (r->wait_since_ms && (!p->wait_since_ms || r->wait_since_ms < p->wait_since_ms))
                p->wait_since_ms = r->wait_since_ms;
        }
    }
    /* This process: a pid is unique only on its host. */
    for (size_t k = 0; k < g->n; k++) {
        if (g->ps[k].pid != (int64_t)getpid() || strcmp(g->ps[k].host, n->srv->host) != 0 ||
            !g->ps[k].waiting)
            continue;
        g->waiting += snap.own_waiting - g->ps[k].waiting;
        g->ps[k].waiting = snap.own_waiting;
    }
    free(open);
    free(snap.rows);
    return WHSEM_OK;
}

static whsem_status pg_query(struct whsem_semobj *obj, struct query_report *r)
{
    struct pgname *n = (struct pgname *)obj;
    struct gathered g;
    whsem_status st = gather(n, &g);
    if (st != WHSEM_OK) return st;
    for (size_t i = 0; i < g.n; i++) {
        const struct pgproc *p = &g.ps[i];
        struct report_proc rp = {
            .pid = p->pid,
            .holding_since_unix_ms = p->since_unix_ms,
            .waiting_since_unix_ms = p->wait_since_ms,
            .tickets = p->tickets,
            .waiting = p->waiting,
            .self = p->pid == (int64_t)getpid() && strcmp(p->host, n->srv->host) == 0,
            .host = host_interned(p->host),
        };
        whsem__report_process(r, &rp);
    }
    int32_t free_count = g.max_count > g.held ? g.max_count - g.held : 0;
    whsem__report_finish(r, g.max_count, free_count, g.waiting, 0);
    free(g.ps);
    return WHSEM_OK;
}

/* The counters of n's name: its row of whsem.counters, and what this
 * process has not flushed yet. The first reader of a database of 1.1.0
 * creates the table; a role that may not gets the statement to hand to an
 * administrator, and its acquisitions go on as ever. */
static whsem_status pg_counters(struct whsem_semobj *obj, struct sem_counters *c)
{
    struct pgname *n = (struct pgname *)obj;
    char id[16];
    snprintf(id, sizeof id, "%d", (int)n->id);
    const char *v[] = {id, NULL};
    struct pgk_read q = {n, c};
    whsem_status st = whsem__pgs_call(n->srv, whsem__pgk_sql_read, v, whsem__pgk_take, &q);
    if (st != WHSEM_OK && whsem__pg_failed_with("42P01")) {
        st = whsem__pgs_call(n->srv, whsem__pgk_sql_create, NULL, NULL, NULL);
        if (st == WHSEM_OK) st = whsem__pgs_call(n->srv, whsem__pgk_sql_read, v, whsem__pgk_take, &q);
    }
    if (st == WHSEM_E_ACCESS_DENIED) {
        /* The server's reason without "PostgreSQL at <where>: ", so that
         * the statement fits in the message whole. */
        char why[PG_MSG], prefix[200];
        snprintf(why, sizeof why, "%s", whsem_last_error());
        snprintf(prefix, sizeof prefix, "PostgreSQL at %s: ", n->srv->where);
        size_t skip = strncmp(why, prefix, strlen(prefix)) == 0 ? strlen(prefix) : 0;
        return whsem__fail(st,
                           "whsem.counters is missing or closed to this role; an administrator "
                           "runs: " PG_SQL_COUNTERS_DDL " (%s)",
                           why + skip);
    }
    return st;
}

static whsem_status pg_async_hold(struct whsem_semobj *obj)
{
    return whsem__pgs_ref((struct pgname *)obj);
}

static void pg_async_unhold(struct whsem_semobj *obj) { whsem__pgs_unref((struct pgname *)obj); }

static whsem_status pg_async_start(struct op *o, int64_t timeout_ms, int32_t check_ms)
{
    (void)check_ms;
    return whsem__pgs_start((struct pgname *)o->obj, o, timeout_ms);
}

static void pg_async_end(struct op *o, whsem_status st)
{
    /* Only for a status decided before the worker took the operation on:
     * never WHSEM_OK, so there is no ticket. */
    if (st < 0) whsem__a_set_detail(o, whsem_last_error());
    struct pgname *n = (struct pgname *)o->obj;
    whsem__pgs_ended_early(n, st);
    whsem__cancel_unregister(&o->cw);
    whsem__a_complete(o, st, 0, NULL);
    whsem__pgs_unref(n);
}

static whsem_status WHSEM_CALL pg_acquire(whsem_sem sem, int64_t timeout_ms, whsem_cancel cancel,
                                          whsem_ticket *out_ticket)
{
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    void *saved;
    struct pgname *n = e ? (struct pgname *)whsem__protect(e, sem, &saved) : NULL;
    if (!n) return whsem__invalid_handle(sem, "semaphore");
    /* The handle's count keeps n: the hazard is not needed past here,
     * and holding it across a long wait would keep the reclaimer busy. */
    whsem_status st = whsem__pgs_ref(n);
    whsem__unprotect(saved);
    if (st != WHSEM_OK) return st;
    struct pgticket *t;
    st = whsem__pgs_acquire(n, sem, timeout_ms, cancel, &t);
    if (st == WHSEM_OK) {
        uint64_t h = whsem__h_alloc(HK_TICKET, t, whsem__p_pgen(), &st);
        if (!h) {
            whsem__pgs_discard(t);
        } else {
            whsem__pgs_named(t, h);
            *out_ticket = h;
        }
    }
    whsem__pgs_unref(n);
    return st;
}

static whsem_status WHSEM_CALL pg_release(whsem_ticket ticket)
{
    struct hentry *e = whsem__h_lookup(ticket, HK_TICKET);
    if (!e) return whsem__invalid_handle(ticket, "ticket");
    if (atomic_load(&e->aux) != whsem__p_pgen())
        return whsem__fail(WHSEM_E_WRONG_PROCESS,
                           "ticket 0x%llx was acquired by the parent process; only it can "
                           "release it",
                           (unsigned long long)ticket);
    struct pgticket *t = atomic_load(&e->ptr);
    if (!whsem__h_kill(ticket)) return whsem__invalid_handle(ticket, "ticket");
    return whsem__pgs_release(t);
}

static whsem_status WHSEM_CALL pg_close(whsem_sem sem)
{
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    if (!e) return whsem__invalid_handle(sem, "semaphore");
    struct pgname *n = atomic_load(&e->ptr);
    if (!whsem__h_kill_cas(e, sem)) return whsem__invalid_handle(sem, "semaphore");
    whsem__pgs_close_waits(n, sem);
    whsem__h_recycle(sem);
    whsem__pgs_unref(n);
    return WHSEM_OK;
}

static whsem_status pg_ticket_check(whsem_ticket ticket, struct whsem_semobj *obj)
{
    (void)ticket;
    return whsem__pgs_check((struct pgticket *)obj);
}

static whsem_status pg_ticket_watch(whsem_ticket ticket, struct whsem_semobj *obj,
                                    whsem_cancel cancel, whsem_ticket_callback cb, void *user_data)
{
    (void)ticket;
    return whsem__pgs_watch((struct pgticket *)obj, cancel, cb, user_data);
}

const struct whsem_backend whsem__pg_backend = {
    .name = "PostgreSQL",
    .open = pg_open,
    .identity = pg_identity,
    .query = pg_query,
    .counters = pg_counters,
    .async_hold = pg_async_hold,
    .async_unhold = pg_async_unhold,
    .async_start = pg_async_start,
    .async_end = pg_async_end,
    .async_poke = whsem__pgs_poke_all,
    .ticket_check = pg_ticket_check,
    .ticket_watch = pg_ticket_watch,
    .list = whsem__pg_list,
    .unlink = whsem__pg_unlink,
    .acquire = pg_acquire,
    .release = pg_release,
    .close = pg_close,
};
