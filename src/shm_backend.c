/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory backend: a semaphore of this machine, in a segment
 * every process on the name maps (Linux: a /dev/shm file; Windows: a
 * named section). Its parts are the platform's (shm.h); this is only its
 * entry in the backend seam (backend.h).
 */
#include "accounting.h"
#include "answers.h"
#include "async_engine.h"
#include "backend.h"
#include "shm.h"

#include <string.h>

static void shm_identity(struct whsem_semobj *obj, char name[WHSEM_MAX_NAME_BYTES + 1],
                         size_t *name_len, int32_t *max_count)
{
    struct wmap *m = (struct wmap *)obj;
    if (name) {
        memcpy(name, m->name, m->name_len);
        name[m->name_len] = 0;
        *name_len = m->name_len;
    }
    *max_count = m->max_count;
}

static whsem_status shm_query(struct whsem_semobj *obj, struct query_report *r)
{
    struct wmap *m = (struct wmap *)obj;
    whsem_status st = whsem__p_query_lock(m);
    if (st != WHSEM_OK) return st;
    /* Report what is true now: look for dead processes first. */
    st = whsem__scan_locked(m, true);
    if (st == WHSEM_OK) {
        whsem_header *h = m->hdr;
        for (uint32_t i = 0, n = whsem__slot_limit(h); i < n; i++) {
            const whsem_slot *s = &m->slots[i];
            if (whsem__p_slot_state(s) != WHSEM_P_SLOT_ACTIVE) continue;
            /* Grants are tickets handed to a waiter that has not taken
             * them yet: its, and no longer waited for. Waiting since is
             * not recorded here: stamping it would cost every wait a
             * clock read under the segment lock. */
            struct report_proc p = {
                .pid = s->pid,
                .holding_since_unix_ms = s->since_unix_ms,
                .tickets = (int32_t)(s->held + s->grants),
                .waiting = s->want > s->grants ? s->want - s->grants : 0,
                .self = whsem__p_slot_is_ours(m, i),
                .host = "",
            };
            whsem__report_process(r, &p);
        }
        whsem__report_finish(r, h->max_count, h->free, h->waiting, h->recoveries);
    }
    whsem__unlock(m);
    return st;
}

/* The counters live in the segment's header (seg_counters.h): read under
 * the lock, which their writers on the slow path hold. */
static whsem_status shm_counters(struct whsem_semobj *obj, struct sem_counters *c)
{
    struct wmap *m = (struct wmap *)obj;
    whsem_status st = whsem__p_query_lock(m);
    if (st != WHSEM_OK) return st;
    whsem__counters_locked(m, c);
    whsem__unlock(m);
    return WHSEM_OK;
}

static whsem_status shm_open(const char *final, size_t len, int32_t max_count,
                             const struct open_opts *o, whsem_sem *out_sem)
{
    return whsem__shm_open(final, len, max_count, o, &whsem__shm_backend, out_sem);
}

/* This machine's names are the platform's public whsem_list and
 * whsem_unlink: the 1.0 calls, which know no other backend. */
static whsem_status shm_list(const struct whsem_backend *be, const char *where, char *buf,
                             size_t size, size_t *out_len)
{
    (void)be, (void)where;
    return whsem_list(buf, size, out_len);
}

static whsem_status shm_unlink(const struct whsem_backend *be, const char *where,
                               const char *name, uint32_t flags)
{
    (void)be, (void)where;
    return whsem_unlink(name, flags);
}

static whsem_status shm_share_liveness(struct whsem_semobj *obj, int32_t *out_fd)
{
    return whsem__p_share_liveness((struct wmap *)obj, out_fd);
}

const struct whsem_backend whsem__shm_backend = {
    .name = "shared memory",
    .open = shm_open,
    .identity = shm_identity,
    .query = shm_query,
    .counters = shm_counters,
    .async_hold = whsem__a_shm_hold,
    .async_unhold = whsem__a_shm_unhold,
    .async_start = whsem__a_shm_start,
    .async_end = whsem__a_shm_end,
    .async_wait = whsem__a_shm_wait,
    .list = shm_list,
    .unlink = shm_unlink,
    .share_liveness = shm_share_liveness,
    .acquire = whsem_acquire,
    .release = whsem_release,
    .close = whsem_close,
};

const struct whsem_backend *whsem__backend_for(const struct open_opts *o)
{
    return o->backend ? &whsem__pg_backend : &whsem__shm_backend;
}
