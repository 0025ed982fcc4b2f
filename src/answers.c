/* SPDX-License-Identifier: MIT */
/*
 * The answers of the public functions that every module gives the same
 * way, on both platforms: the messages of bad timeouts and bad handles,
 * "ask, then fill" copies into a caller's buffer, and the lists built for
 * whsem_list and whsem_query. A leaf: it calls nothing but errors.c.
 */
#include "answers.h"

#include <stdint.h>
#include <string.h>

whsem_status whsem__bad_timeout(int64_t timeout_ms)
{
    return whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                       "timeout_ms is %lld; use 0 (do not wait), -1 (wait forever) or 1 ... %d",
                       (long long)timeout_ms, INT32_MAX);
}

whsem_status whsem__invalid_handle(uint64_t h, const char *what)
{
    if (h == 0) return whsem__fail(WHSEM_E_INVALID_HANDLE, "the %s handle is 0", what);
    return whsem__fail(WHSEM_E_INVALID_HANDLE,
                       "0x%llx is not a live %s handle (closed, released, or of another kind)",
                       (unsigned long long)h, what);
}

whsem_status whsem__copy_out(const char *s, size_t len, char *buf, size_t size, size_t *out_len)
{
    if (!out_len) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_len is NULL");
    *out_len = len + 1;
    if (!buf || size < len + 1)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "buffer too small: %zu bytes needed", len + 1);
    memcpy(buf, s, len);
    buf[len] = 0;
    return WHSEM_OK;
}

void whsem__list_init(struct name_list *l, char *buf, size_t size)
{
    /* Even an empty list needs its final NUL: a buffer of size 0 holds nothing. */
    *l = (struct name_list){.buf = buf, .size = size, .need = 1, .fits = buf != NULL && size > 0};
}

void whsem__list_add(struct name_list *l, const char *name)
{
    size_t n = strlen(name) + 1;
    l->need += n;
    if (l->fits && l->used + n + 1 <= l->size) {
        memcpy(l->buf + l->used, name, n);
        l->used += n;
    } else {
        l->fits = false;
    }
}

whsem_status whsem__list_finish(struct name_list *l, size_t *out_len)
{
    *out_len = l->need;
    if (!l->fits)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "buffer too small: %zu bytes needed", l->need);
    l->buf[l->used] = 0;
    return WHSEM_OK;
}

void whsem__report_init(struct query_report *r, whsem_info *info, whsem_holder *holders,
                        size_t capacity)
{
    *r = (struct query_report){.info = info, .holders = holders, .capacity = capacity};
}

void whsem__report_init_processes(struct query_report *r, whsem_info *info,
                                  whsem_process *procs, size_t stride, size_t capacity)
{
    *r = (struct query_report){
        .info = info, .procs = (unsigned char *)procs, .stride = stride, .capacity = capacity};
}

void whsem__report_process(struct query_report *r, const struct report_proc *p)
{
    r->processes++;
    if (p->tickets) r->holding++;
    if (r->procs) {
        if (r->n < r->capacity) {
            unsigned char *at = r->procs + r->n * r->stride;
            /* A newer caller's larger element: what this version does not
             * know of reads 0. */
            memset(at, 0, r->stride);
            whsem_process *w = (whsem_process *)(void *)at;
            w->struct_size = (uint32_t)r->stride;
            w->tickets = p->tickets;
            w->waiting = p->waiting;
            w->is_self = p->self;
            w->pid = p->pid;
            w->holding_since_unix_ms = p->tickets ? p->holding_since_unix_ms : 0;
            w->waiting_since_unix_ms = p->waiting ? p->waiting_since_unix_ms : 0;
            w->host = p->host ? p->host : "";
        }
        r->n++;
        return;
    }
    if (!p->tickets) return;
    if (r->n < r->capacity) {
        whsem_holder *h = &r->holders[r->n];
        h->pid = p->pid;
        h->since_unix_ms = p->holding_since_unix_ms;
        h->tickets = p->tickets;
        h->waiting = p->waiting;
    }
    r->n++;
}

void whsem__report_finish(struct query_report *r, int32_t max_count, int32_t free_count,
                          uint32_t waiting, uint64_t recoveries)
{
    if (r->info) {
        r->info->max_count = max_count;
        r->info->free_count = free_count;
        r->info->waiters = waiting;
        r->info->processes = r->processes;
        r->info->holders = r->holding;
        r->info->recoveries = recoveries;
    }
}
