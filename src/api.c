/* SPDX-License-Identifier: MIT */
/*
 * The public functions, and the parts of them, that are the same on every
 * platform: argument and option checks, name finalization into a caller's
 * buffer, the "ask, then fill" answers, and the entry points of open,
 * query and a semaphore's name and max count, which hand over to the
 * semaphore's backend (backend.h) once the arguments are known to be
 * good. One copy, so
 * that both libraries accept and refuse exactly the same calls with the
 * same messages.
 */
#include "answers.h"
#include "api.h"
#include "backend.h"
#include "handles.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHECK_MS 100
#define DEFAULT_MODE 0600u
#define DEFAULT_CONN_CHECK_MS 1000

/* A period option: 0 keeps the default in *out. */
static whsem_status read_period(int32_t ms, const char *field, int32_t *out)
{
    if (ms < WHSEM_INFINITE)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                           "options.%s is %d; use 0 (default), -1 (infinite) or 1 ... INT32_MAX",
                           field, ms);
    if (ms != 0) *out = ms;
    return WHSEM_OK;
}

static whsem_status read_opts(const whsem_open_options *o, struct open_opts *out)
{
    out->flags = 0;
    out->check_ms = DEFAULT_CHECK_MS;
    out->mode = DEFAULT_MODE;
    out->mode_explicit = false;
    out->backend = NULL;
    out->conn_check_ms = DEFAULT_CONN_CHECK_MS;
    if (!o) return WHSEM_OK;
    if (o->struct_size < offsetof(whsem_open_options, flags) + sizeof o->flags)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                           "options.struct_size is %u; set it to sizeof(whsem_open_options)",
                           o->struct_size);
    out->flags = o->flags;
    if (out->flags & ~WHSEM_OPEN_EXACT_NAME)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "options.flags has unknown bits 0x%x",
                           out->flags & ~WHSEM_OPEN_EXACT_NAME);
    whsem_status st = WHSEM_OK;
    if (o->struct_size >= offsetof(whsem_open_options, abandonment_check_ms) + sizeof(int32_t))
        st = read_period(o->abandonment_check_ms, "abandonment_check_ms", &out->check_ms);
    if (st != WHSEM_OK) return st;
    if (o->struct_size >= offsetof(whsem_open_options, mode) + sizeof(uint32_t) && o->mode != 0) {
        if ((o->mode & ~0777u) || (o->mode & 0600u) != 0600u)
            return whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                               "options.mode 0%o must be permission bits (at most 0777) that "
                               "include owner read and write (0600)",
                               o->mode);
        out->mode = o->mode;
        out->mode_explicit = true;
    }
    if (o->struct_size >= offsetof(whsem_open_options, backend) + sizeof(const char *) &&
        o->backend && o->backend[0])
        out->backend = o->backend;
    if (o->struct_size >= offsetof(whsem_open_options, connection_check_ms) + sizeof(int32_t))
        st = read_period(o->connection_check_ms, "connection_check_ms", &out->conn_check_ms);
    return st;
}

static whsem_status open_name(const char *name, int32_t max_count, const whsem_open_options *opts,
                              whsem_sem *out_sem)
{
    if (!name) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "name is NULL");
    if (!out_sem) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_sem is NULL");
    struct open_opts o;
    whsem_status st = read_opts(opts, &o);
    if (st != WHSEM_OK) return st;
    char final[WHSEM_MAX_NAME_BYTES + 1];
    size_t len;
    st = whsem__finalize_name(name, o.flags & WHSEM_OPEN_EXACT_NAME, final, &len);
    if (st != WHSEM_OK) return st;
    return whsem__backend_for(&o)->open(final, len, max_count, &o, out_sem);
}

WHSEM_API whsem_status WHSEM_CALL whsem_open(const char *name, int32_t max_count,
                                             const whsem_open_options *opts, whsem_sem *out_sem)
{
    if (out_sem) *out_sem = 0;
    if (max_count < 1)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "max_count is %d; it must be 1 ... %d",
                           max_count, INT32_MAX);
    return open_name(name, max_count, opts, out_sem);
}

WHSEM_API whsem_status WHSEM_CALL whsem_open_existing(const char *name,
                                                      const whsem_open_options *opts,
                                                      whsem_sem *out_sem)
{
    if (out_sem) *out_sem = 0;
    return open_name(name, 0, opts, out_sem);
}

WHSEM_API whsem_status WHSEM_CALL whsem_safe_name(const char *name, char *buf, size_t size,
                                                  size_t *out_len)
{
    if (!name) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "name is NULL");
    if (!out_len) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_len is NULL");
    char final[WHSEM_MAX_NAME_BYTES + 1];
    size_t len;
    whsem_status st = whsem__finalize_name(name, false, final, &len);
    if (st != WHSEM_OK) return st;
    return whsem__copy_out(final, len, buf, size, out_len);
}

/* The semaphore behind a live handle, kept from going away until
 * whsem__unprotect(*saved); NULL if sem is not one. */
static struct whsem_semobj *sem_obj(whsem_sem sem, void **saved)
{
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    return e ? (struct whsem_semobj *)whsem__protect(e, sem, saved) : NULL;
}

WHSEM_API whsem_status WHSEM_CALL whsem_name(whsem_sem sem, char *buf, size_t size, size_t *out_len)
{
    void *saved;
    struct whsem_semobj *obj = sem_obj(sem, &saved);
    if (!obj) return whsem__invalid_handle(sem, "semaphore");
    char name[WHSEM_MAX_NAME_BYTES + 1];
    size_t len;
    int32_t max_count;
    obj->be->identity(obj, name, &len, &max_count);
    whsem__unprotect(saved);
    return whsem__copy_out(name, len, buf, size, out_len);
}

WHSEM_API whsem_status WHSEM_CALL whsem_max_count(whsem_sem sem, int32_t *out_max_count)
{
    if (!out_max_count) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_max_count is NULL");
    *out_max_count = 0; /* never a max count, as 0 is never a handle */
    void *saved;
    struct whsem_semobj *obj = sem_obj(sem, &saved);
    if (!obj) return whsem__invalid_handle(sem, "semaphore");
    obj->be->identity(obj, NULL, NULL, out_max_count);
    whsem__unprotect(saved);
    return WHSEM_OK;
}

/* The counters of sem's backend, into *c (allocated: the history is
 * large). NULL with the status in *st if there are none. */
static struct sem_counters *counters_of(whsem_sem sem, whsem_status *st)
{
    void *saved;
    struct whsem_semobj *obj = sem_obj(sem, &saved);
    if (!obj) {
        *st = whsem__invalid_handle(sem, "semaphore");
        return NULL;
    }
    const struct whsem_backend *be = obj->be;
    struct sem_counters *c = NULL;
    if (!be->counters) {
        *st = whsem__fail(WHSEM_E_UNSUPPORTED, "the %s backend keeps no counters", be->name);
    } else if (!(c = calloc(1, sizeof *c))) {
        *st = whsem__fail(WHSEM_E_NO_MEMORY, "no memory for the counters");
    } else if ((*st = be->counters(obj, c)) != WHSEM_OK) {
        free(c);
        c = NULL;
    }
    whsem__unprotect(saved);
    return c;
}

/* whsem_query and whsem_query_processes once their lists are checked: r
 * says which list, and is filled by sem's backend. */
static whsem_status query(whsem_sem sem, whsem_info *info, struct query_report *r,
                          size_t *out_count)
{
    /* A caller built against 1.0 passes 1.0's size and gets 1.0's fields. */
    if (info && info->struct_size < offsetof(whsem_info, acquisitions))
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                           "info->struct_size is %u; set it to sizeof(whsem_info)",
                           info->struct_size);
    if (info && info->struct_size > offsetof(whsem_info, acquisitions)) {
        size_t tail = (info->struct_size < sizeof *info ? info->struct_size : sizeof *info) -
                      offsetof(whsem_info, acquisitions);
        memset(&info->acquisitions, 0, tail);
    }
    void *saved;
    struct whsem_semobj *obj = sem_obj(sem, &saved);
    if (!obj) return whsem__invalid_handle(sem, "semaphore");
    whsem_status st = obj->be->query(obj, r);
    whsem__unprotect(saved);
    if (st != WHSEM_OK) return st;
    *out_count = r->n;
    if (info && info->struct_size >= offsetof(whsem_info, created_unix_ms) + sizeof(int64_t)) {
        struct sem_counters *c = counters_of(sem, &st);
        /* Counters a backend cannot give (a PostgreSQL role that may not
         * create their table) read 0: the query itself succeeded. */
        if (!c) return st == WHSEM_E_UNSUPPORTED || st == WHSEM_E_ACCESS_DENIED ? WHSEM_OK : st;
        info->acquisitions = c->acquisitions;
        info->timeouts = c->timeouts;
        info->cancellations = c->cancellations;
        info->waits = c->waits;
        info->wait_ns = c->wait_ns;
        info->releases = c->releases;
        info->hold_ns = c->hold_ns;
        info->created_unix_ms = c->created_unix_ms;
        free(c);
    }
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_query(whsem_sem sem, whsem_info *info,
                                              whsem_holder *holders, size_t capacity,
                                              size_t *out_count)
{
    if (!out_count) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_count is NULL");
    if (capacity && !holders)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "holders is NULL but capacity is %zu", capacity);
    struct query_report r;
    whsem__report_init(&r, info, holders, capacity);
    return query(sem, info, &r, out_count);
}

WHSEM_API whsem_status WHSEM_CALL whsem_query_processes(whsem_sem sem, whsem_info *info,
                                                        whsem_process *processes,
                                                        size_t capacity, size_t *out_count)
{
    if (!out_count) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_count is NULL");
    if (capacity && !processes)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "processes is NULL but capacity is %zu",
                           capacity);
    /* The caller's element size is the stride: smaller than ours would be
     * overrun, one out of alignment would misalign every element after
     * the first. */
    if (capacity && (processes[0].struct_size < sizeof(whsem_process) ||
                     processes[0].struct_size % _Alignof(whsem_process)))
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                           "processes[0].struct_size is %u; set it to sizeof(whsem_process)",
                           processes[0].struct_size);
    struct query_report r;
    whsem__report_init_processes(&r, info, processes, capacity ? processes[0].struct_size : 0,
                                 capacity);
    return query(sem, info, &r, out_count);
}

/* The backend a call names by a string read as whsem_open_options.backend
 * is: NULL or "" is this machine, and *where becomes NULL for it. */
static const struct whsem_backend *backend_named(const char **where)
{
    if (*where && !(*where)[0]) *where = NULL;
    struct open_opts o = {.backend = *where};
    return whsem__backend_for(&o);
}

WHSEM_API whsem_status WHSEM_CALL whsem_list_backend(const char *backend, char *buf, size_t size,
                                                     size_t *out_len)
{
    if (!out_len) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_len is NULL");
    const struct whsem_backend *be = backend_named(&backend);
    return be->list(be, backend, buf, size, out_len);
}

WHSEM_API whsem_status WHSEM_CALL whsem_unlink_backend(const char *backend, const char *name,
                                                       uint32_t flags)
{
    if (!name) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "name is NULL");
    if (flags & ~(WHSEM_OPEN_EXACT_NAME | WHSEM_UNLINK_FORCE))
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "flags has unknown bits 0x%x",
                           flags & ~(WHSEM_OPEN_EXACT_NAME | WHSEM_UNLINK_FORCE));
    const struct whsem_backend *be = backend_named(&backend);
    return be->unlink(be, backend, name, flags);
}

WHSEM_API whsem_status WHSEM_CALL whsem_share_liveness(whsem_sem sem, int32_t *out_fd)
{
    if (!out_fd) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_fd is NULL");
    *out_fd = -1;
    void *saved;
    struct whsem_semobj *obj = sem_obj(sem, &saved);
    if (!obj) return whsem__invalid_handle(sem, "semaphore");
    whsem_status st;
    if (obj->be->share_liveness)
        st = obj->be->share_liveness(obj, out_fd);
    else
        st = whsem__fail(WHSEM_E_UNSUPPORTED,
                         "tickets of the %s backend live in the process's database session, "
                         "which no descriptor can hand on",
                         obj->be->name);
    whsem__unprotect(saved);
    return st;
}

/* The counters for an "ask, then fill" of up to capacity elements into
 * out (named out_name in messages): the arguments checked, *out_count 0
 * until the caller sets it. NULL with the status in *st. */
static struct sem_counters *counters_asked(whsem_sem sem, const void *out, const char *out_name,
                                           size_t capacity, size_t *out_count, whsem_status *st)
{
    if (!out_count) {
        *st = whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_count is NULL");
        return NULL;
    }
    *out_count = 0;
    if (capacity && !out) {
        *st = whsem__fail(WHSEM_E_INVALID_ARGUMENT, "%s is NULL but capacity is %zu", out_name,
                          capacity);
        return NULL;
    }
    return counters_of(sem, st);
}

WHSEM_API whsem_status WHSEM_CALL whsem_wait_histogram(whsem_sem sem, uint64_t *buckets,
                                                       size_t capacity, size_t *out_count)
{
    whsem_status st;
    struct sem_counters *c = counters_asked(sem, buckets, "buckets", capacity, out_count, &st);
    if (!c) return st;
    size_t n = capacity < WHSEM_WAIT_BUCKETS ? capacity : WHSEM_WAIT_BUCKETS;
    if (n) memcpy(buckets, c->wait_buckets, n * sizeof *buckets); /* buckets may be NULL */
    *out_count = WHSEM_WAIT_BUCKETS;
    free(c);
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_waiters_history(whsem_sem sem, uint32_t *per_second,
                                                        size_t capacity, size_t *out_count)
{
    whsem_status st;
    struct sem_counters *c =
        counters_asked(sem, per_second, "per_second", capacity, out_count, &st);
    if (!c) return st;
    /* The most recent seconds: the end of the series. */
    size_t n = capacity < c->seconds ? capacity : c->seconds;
    if (n) memcpy(per_second, c->waiters + (c->seconds - n), n * sizeof *per_second);
    *out_count = c->seconds;
    free(c);
    return WHSEM_OK;
}
