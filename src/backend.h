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
 * Backends: shared memory (this machine; shm_backend.c on the platform's
 * primitives) and PostgreSQL (pg/, chosen by whsem_open_options.backend;
 * Linux only, Windows answers WHSEM_E_UNSUPPORTED).
 *
 * The seam is a table of function pointers, and no file below it calls
 * the file above: the shared front reaches a backend only through its
 * table, a backend reaches the front only through the engine's
 * completion (async_engine.h).
 */
#ifndef WHSEM_BACKEND_H
#define WHSEM_BACKEND_H

#include "api.h"
#include "common.h"

#include <stddef.h>
#include <stdint.h>

struct query_report;
struct sem_counters;

struct op;
struct whsem_backend;

struct whsem_semobj {
    const struct whsem_backend *be;
};

struct whsem_backend {
    /* For messages: "shared memory". */
    const char *name;

    /* whsem_open (max_count >= 1) or whsem_open_existing (max_count 0) of
     * a finalized name, the options already checked: publishes a
     * semaphore handle in *out_sem whose object's be is this table. */
    whsem_status (*open)(const char *final, size_t len, int32_t max_count,
                         const struct open_opts *o, whsem_sem *out_sem);
    /* The finalized name (unless name is NULL) and the max count. */
    void (*identity)(struct whsem_semobj *obj, char name[WHSEM_MAX_NAME_BYTES + 1],
                     size_t *name_len, int32_t *max_count);
    /* whsem_query and whsem_query_processes, arguments checked: reports
     * every process that has obj's name open, then finishes r
     * (answers.h). */
    whsem_status (*query)(struct whsem_semobj *obj, struct query_report *r);
    /* Optional. The name's counters (answers.h), for whsem_query's 1.1
     * fields, whsem_wait_histogram and whsem_waiters_history. NULL: the
     * counters calls answer WHSEM_E_UNSUPPORTED, whsem_query zeros. */
    whsem_status (*counters)(struct whsem_semobj *obj, struct sem_counters *c);
    /* An asynchronous operation on obj: async_hold keeps obj usable for
     * it (WHSEM_OK, or the error the call fails with) before it exists,
     * async_unhold undoes that if it never comes to be. async_start
     * begins it (its handle published, its cancellation registered,
     * o->obj set): its final status now, or WHSEM_PENDING once the backend
     * has taken it on. async_end ends it (with a ticket handle if OK),
     * completes it (whsem__a_complete) and lets go of the hold: for a
     * status async_start gave, for one the shared front decided before
     * starting it (canceled already), and by the backend itself later. */
    whsem_status (*async_hold)(struct whsem_semobj *obj);
    void (*async_unhold)(struct whsem_semobj *obj);
    whsem_status (*async_start)(struct op *o, int64_t timeout_ms, int32_t check_ms);
    void (*async_end)(struct op *o, whsem_status st);
    /* Optional. whsem_op_wait's thread, on the pending operation o of
     * handle h, helps it along (it may end it itself rather than wait for
     * whoever would) until it is final, or until deadline (monotonic ns,
     * 0 = none). false: it cannot, and the caller just waits. */
    bool (*async_wait)(struct op *o, uint64_t h, uint64_t deadline);

    /* An operation of this backend may have ended early (whsem_op_cancel,
     * whsem_op_free, its cancellation source): its cancel_req is set; look
     * at the pending operations. NULL: the engine's dispatcher looks. */
    void (*async_poke)(void);

    /* whsem_ticket_check and whsem_ticket_watch of a live ticket of this
     * backend (its handle's object is obj). NULL where tickets cannot be
     * lost (they live exactly as long as their process). */
    whsem_status (*ticket_check)(whsem_ticket ticket, struct whsem_semobj *obj);
    whsem_status (*ticket_watch)(whsem_ticket ticket, struct whsem_semobj *obj,
                                 whsem_cancel cancel, whsem_ticket_callback cb, void *user_data);

    /* whsem_list_backend and whsem_unlink_backend, the arguments checked:
     * where is the backend string of the call (NULL for shared memory),
     * be this table. */
    whsem_status (*list)(const struct whsem_backend *be, const char *where, char *buf,
                         size_t size, size_t *out_len);
    whsem_status (*unlink)(const struct whsem_backend *be, const char *where, const char *name,
                           uint32_t flags);

    /* Optional. whsem_share_liveness of obj, out_fd not NULL. NULL where
     * no descriptor carries a process's tickets (they live in a database
     * session): the front answers WHSEM_E_UNSUPPORTED. */
    whsem_status (*share_liveness)(struct whsem_semobj *obj, int32_t *out_fd);

    /* whsem_acquire, whsem_release and whsem_close for this backend's
     * handles. The shared-memory backend's are the public functions
     * themselves: their first look at a handle's object hands any other
     * backend's to that backend's entries (an entry that is not the
     * function itself), so its uncontended path gains a compare and no
     * indirect call. The asynchronous engine gives back tickets through
     * release. */
    whsem_status(WHSEM_CALL *acquire)(whsem_sem sem, int64_t timeout_ms, whsem_cancel cancel,
                                      whsem_ticket *out_ticket);
    whsem_status(WHSEM_CALL *release)(whsem_ticket ticket);
    whsem_status(WHSEM_CALL *close)(whsem_sem sem);
};

extern WHSEM_HIDDEN const struct whsem_backend whsem__shm_backend;
/* pg/backend.c on Linux; on Windows a table whose open says
 * WHSEM_E_UNSUPPORTED (win32/pg_unsupported.c). */
extern WHSEM_HIDDEN const struct whsem_backend whsem__pg_backend;

/* The backend an open with these options uses (shm_backend.c). */
WHSEM_HIDDEN const struct whsem_backend *whsem__backend_for(const struct open_opts *o);

#endif
