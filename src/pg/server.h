/* SPDX-License-Identifier: MIT */
/*
 * A PostgreSQL server as one process sees it (server.c): what the
 * backend's entries (backend.c) ask of it. Callers never touch a
 * connection: they record what they want under the server's mutex and
 * wake the worker, which alone talks to the server and decides every
 * outcome.
 */
#ifndef WHSEM_PG_SERVER_H
#define WHSEM_PG_SERVER_H

#include "pg.h"

/* The server of a connection string (shared by every open of it in this
 * process), its worker started; be is what its handles' objects name. */
WHSEM_HIDDEN whsem_status whsem__pgs_get(const struct open_opts *o, const struct whsem_backend *be,
                                         struct pgsrv **out);
/* Finds or registers a name (max_count 0: an existing one) and counts a
 * handle on it; waits for the server at most the connection's timeout. */
WHSEM_HIDDEN whsem_status whsem__pgs_open(struct pgsrv *s, const char *final, size_t len,
                                          int32_t max_count, int32_t check_ms,
                                          struct pgname **out);
/* Lets go of a count on n (a handle, an operation's hold). */
WHSEM_HIDDEN void whsem__pgs_unref(struct pgname *n);
/* Counts an asynchronous operation's hold on n; an error if n is unusable. */
WHSEM_HIDDEN whsem_status whsem__pgs_ref(struct pgname *n);
/* Ends the waits that came through handle sem (WHSEM_CANCELED). */
WHSEM_HIDDEN void whsem__pgs_close_waits(struct pgname *n, whsem_sem sem);

/* A blocking acquisition: WHSEM_OK with *out (its handle to be made), or
 * the status it ended with. */
WHSEM_HIDDEN whsem_status whsem__pgs_acquire(struct pgname *n, whsem_sem sem, int64_t timeout_ms,
                                             whsem_cancel cancel, struct pgticket **out);
/* Counts an acquisition that ended with st before it began (a source
 * triggered already). */
WHSEM_HIDDEN void whsem__pgs_ended_early(struct pgname *n, whsem_status st);
/* Starts an asynchronous acquisition for the engine's operation o. */
WHSEM_HIDDEN whsem_status whsem__pgs_start(struct pgname *n, struct op *o, int64_t timeout_ms);
/* The worker looks at the cancellation requests of operations. */
WHSEM_HIDDEN void whsem__pgs_poke_all(void);

/* Gives a ticket back (its handle already dead): WHSEM_OK, or
 * WHSEM_E_TICKET_LOST if its session had ended. Does not wait for the
 * server. */
WHSEM_HIDDEN whsem_status whsem__pgs_release(struct pgticket *t);
/* Records the handle made for a ticket. */
WHSEM_HIDDEN void whsem__pgs_named(struct pgticket *t, whsem_ticket h);
/* Gives back a ticket no handle was made for. */
WHSEM_HIDDEN void whsem__pgs_discard(struct pgticket *t);
WHSEM_HIDDEN whsem_status whsem__pgs_check(struct pgticket *t);
WHSEM_HIDDEN whsem_status whsem__pgs_watch(struct pgticket *t, whsem_cancel cancel,
                                           whsem_ticket_callback cb, void *user_data);

/* A statement of a caller's on the main connection, waited for; take
 * reads its result (on the worker: copy what is needed), if there is one
 * to read. */
typedef whsem_status (*pgs_take)(struct pgsrv *s, PGresult *r, void *ctx, char *msg, size_t size);
WHSEM_HIDDEN whsem_status whsem__pgs_call(struct pgsrv *s, const char *sql,
                                          const char *const *values, pgs_take take, void *ctx);

/* whsem_query's rows: every advisory lock of the name, with the session
 * that holds or waits for it. */
struct pgrow {
    int64_t key2;          /* the ticket index, or 4294967295 for the marker */
    bool granted;
    int32_t backend_pid;
    int64_t wait_since_ms; /* not granted: since when (0 if unknown)         */
    char app[64];          /* the session's application_name                */
};
struct pgsnapshot {
    struct pgrow *rows;
    size_t nrows;
    uint32_t own_waiting;  /* this process's waiting acquisitions, exactly  */
    int32_t max_count;
};
WHSEM_HIDDEN whsem_status whsem__pgs_snapshot(struct pgname *n, struct pgsnapshot *out);

#endif
