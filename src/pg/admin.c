/* SPDX-License-Identifier: MIT */
/*
 * whsem_list_backend and whsem_unlink_backend on a PostgreSQL database
 * (pg_admin.h): the rows of whsem.semaphore.
 */
#include "names.h"
#include "pg_admin.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long whsem_unlink waits for the marker of a process that has just
 * gone: at most UNLINK_TRIES pauses. */
enum { UNLINK_TRIES = 20, UNLINK_PAUSE_US = 50000 };

static whsem_status server_of(const struct whsem_backend *be, const char *backend,
                              struct pgsrv **out)
{
    struct open_opts o = {.check_ms = 100, .mode = 0600, .backend = backend, .conn_check_ms = 1000};
    return whsem__pgs_get(&o, be, out);
}

static whsem_status take_names(struct pgsrv *s, PGresult *r, void *ctx, char *msg, size_t size)
{
    (void)msg, (void)size;
    struct name_list *l = ctx;
    for (int i = 0; i < s->pq->ntuples(r); i++) whsem__list_add(l, s->pq->getvalue(r, i, 0));
    return WHSEM_OK;
}

/* A database where no semaphore was ever opened has no table: no names. */
static bool no_table(void)
{
    return whsem__pg_failed_with("42P01") || whsem__pg_failed_with("3F000");
}

whsem_status whsem__pg_list(const struct whsem_backend *be, const char *backend, char *buf,
                            size_t size, size_t *out_len)
{
    struct pgsrv *s;
    whsem_status st = server_of(be, backend, &s);
    if (st != WHSEM_OK) return st;
    struct name_list l;
    whsem__list_init(&l, buf, size);
    st = whsem__pgs_call(s, "SELECT name FROM whsem.semaphore ORDER BY name", NULL, take_names, &l);
    if (st != WHSEM_OK && !no_table()) return st;
    return whsem__list_finish(&l, out_len);
}

struct found {
    char id[24];
    bool alone;
};

static whsem_status take_id(struct pgsrv *s, PGresult *r, void *ctx, char *msg, size_t size)
{
    struct found *f = ctx;
    if (s->pq->ntuples(r) == 0) {
        snprintf(msg, size, "no semaphore of that name in PostgreSQL at %s", s->where);
        return WHSEM_E_NOT_FOUND;
    }
    snprintf(f->id, sizeof f->id, "%s", s->pq->getvalue(r, 0, 0));
    f->alone = s->pq->getvalue(r, 0, 1)[0] == 't';
    return WHSEM_OK;
}

whsem_status whsem__pg_unlink(const struct whsem_backend *be, const char *backend, const char *name,
                              uint32_t flags)
{
    char final[WHSEM_MAX_NAME_BYTES + 1];
    size_t len;
    whsem_status st = whsem__finalize_name(name, flags & WHSEM_OPEN_EXACT_NAME, final, &len);
    if (st != WHSEM_OK) return st;
    struct pgsrv *s;
    if ((st = server_of(be, backend, &s)) != WHSEM_OK) return st;
    /* The exclusive marker, if nobody else holds the shared one: the row
     * goes while nobody can be using it. Forced, it goes regardless, and
     * whoever still uses the old key keeps a semaphore new openers do
     * not share (as with a removed segment file). */
    struct found f;
    const char *v[] = {final, NULL};
    /* A process that has just exited (whsem status, say) may hold its
     * marker a moment longer: the server ends a session soon after its
     * client has gone, not at once. */
    for (int tries = 0;; tries++) {
        st = whsem__pgs_call(
            s, "SELECT id, pg_try_advisory_lock(id, -1) FROM whsem.semaphore WHERE name = $1", v,
            take_id, &f);
        if (st != WHSEM_OK) {
            if (no_table()) return whsem__fail(WHSEM_E_NOT_FOUND, "no semaphore named '%s'", final);
            return st;
        }
        if (f.alone || (flags & WHSEM_UNLINK_FORCE) || tries == UNLINK_TRIES) break;
        usleep(UNLINK_PAUSE_US);
    }
    const char *idv[] = {f.id, NULL};
    if (!f.alone && !(flags & WHSEM_UNLINK_FORCE))
        return whsem__fail(WHSEM_E_BUSY, "'%s' is open in another live process", final);
    st = whsem__pgs_call(s, "DELETE FROM whsem.semaphore WHERE id = $1::int", idv, NULL, NULL);
    if (f.alone) {
        whsem_status u = whsem__pgs_call(s, "SELECT pg_advisory_unlock($1::int, -1)", idv,
                                         NULL, NULL);
        if (st == WHSEM_OK) st = u;
    }
    return st;
}
