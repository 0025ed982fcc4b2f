/* SPDX-License-Identifier: MIT */
/*
 * The backend seam: where a semaphore's state lives and how its processes
 * meet. The public functions, their argument checks (api.c), handles,
 * cancellation and the asynchronous engine's front (operations, queues,
 * callbacks) are shared by every backend; a backend implements only what
 * is its own, listed in struct whsem_backend.
 *
 * Every backend's semaphore object begins with struct whsem_semobj, and
 * that object is what semaphore and ticket handles point at: shared code
 * finds the backend from any handle without knowing the object's type.
 *
 * Backends today: shared memory (this machine; shm_backend.c on the
 * platform's primitives). whsem_open_options will name others.
 */
#ifndef WHSEM_BACKEND_H
#define WHSEM_BACKEND_H

#include "api.h"
#include "common.h"

#include <stddef.h>
#include <stdint.h>

struct op;
struct hentry;
struct whsem_backend;

struct whsem_semobj {
    const struct whsem_backend *be;
};

struct whsem_backend {
    /* For messages: "shared memory". */
    const char *name;

    /* whsem_open (max_count >= 1) or whsem_open_existing (max_count 0) of
     * a finalized name, the options already checked: publishes a
     * semaphore handle in *out_sem. */
    whsem_status (*open)(const char *final, size_t len, int32_t max_count,
                         const struct open_opts *o, whsem_sem *out_sem);
    /* The finalized name (unless name is NULL) and the max count. */
    void (*identity)(struct whsem_semobj *obj, char name[WHSEM_MAX_NAME_BYTES + 1],
                     size_t *name_len, int32_t *max_count);
    /* whsem_query, arguments checked. */
    whsem_status (*query)(struct whsem_semobj *obj, whsem_info *info, whsem_holder *holders,
                          size_t capacity, size_t *out_count);
    /* Starts a new asynchronous operation o (its handle published, its
     * cancellation registered, o->m its object): returns its final status
     * now, or WHSEM_PENDING once the backend has taken it on, to end it
     * later with whsem__a_finish_op (async_engine.h). */
    whsem_status (*async_start)(struct op *o, int64_t timeout_ms, int32_t check_ms);

    /* whsem_acquire, whsem_release and whsem_close of another backend's
     * handles. The shared-memory backend serves these in the public
     * functions themselves, whose first look at the object hands any
     * other backend's to these entries: its uncontended path stays
     * without an indirect call. */
    whsem_status (*acquire)(struct whsem_semobj *obj, whsem_sem sem, struct hentry *e,
                            int64_t timeout_ms, whsem_cancel cancel, whsem_ticket *out_ticket);
    whsem_status (*release)(struct whsem_semobj *obj, whsem_ticket ticket, struct hentry *e);
    whsem_status (*close)(struct whsem_semobj *obj, whsem_sem sem, struct hentry *e);
};

extern WHSEM_HIDDEN const struct whsem_backend whsem__shm_backend;

/* The backend an open with these options uses. */
WHSEM_HIDDEN const struct whsem_backend *whsem__backend_for(const struct open_opts *o);

#endif
