/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL backend's parts and what they share (see pg/DESIGN.md):
 *   libpq.c    loading libpq
 *   conn.c     one connection: connecting, its queue of statements, its
 *              results, its death
 *   registry.c names in the database: their row, the max count, the marker
 *   counters.c each name's counters: counted here, flushed to the database
 *   server.c   a server (one per connection string in a process): its
 *              worker thread, the names in use, waits, grants, tickets
 *   backend.c  the backend's entries in the seam (backend.h)
 * Every field below is guarded by its server's mutex unless it says
 * otherwise; only the worker thread talks to libpq.
 */
#ifndef WHSEM_PG_H
#define WHSEM_PG_H

#include "api.h"
#include "backend.h"
#include "handles.h"
#include "libpq.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct pgsrv;
struct pgconn;
struct pgname;
struct op;

/* Connections that wait for tickets of one name in one process, each on
 * its own ticket index: with max counts up to this, every index has a
 * waiter of every waiting process, so any release, and any death of a
 * holder, reaches a waiter the moment the server sees it. Above it, the
 * waiting connections take turns over the indices (pg/DESIGN.md). */
#define PG_WAITERS_MAX 4
/* How long waits nobody needs stay queued in the server before they are
 * withdrawn (a process taking turns with others waits again soon). */
#define PG_WITHDRAW_NS 20000000u
/* A withdrawn wait still queued this long after its cancel was sent is
 * canceled again (the server drops a cancel that comes too early). */
#define PG_RECANCEL_NS 50000000u
/* How soon the worker looks again at a connection it left to a caller. */
#define PG_UNPOLLED_NS 10000000u
/* Spare connections a process keeps per server (beyond those in use). */
#define PG_SPARES_MAX 2
/* libpq's connect_timeout when the connection string sets none (s). */
#define PG_CONNECT_TIMEOUT_S "5"
/* How long a connection may take to be made whatever the string says:
 * libpq's asynchronous connect has no timeout of its own. */
#define PG_CONNECT_DEADLINE_NS 5000000000ull
/* A failed connection is tried again after this, doubling up to the cap. */
#define PG_RETRY_MIN_NS 50000000u
#define PG_RETRY_MAX_NS 2000000000u
#define PG_MSG 400
/* How often a server process that waits for an index looks whether its
 * client is still there (client_connection_check_interval, ms). */
#define PG_CLIENT_CHECK_MS "100"
/* Statements a session keeps prepared (the backend has fewer). */
#define PG_PREPARED_MAX 16
/* How often a name's counters go to the database at most (ms), unless
 * WHSEM_PG_FLUSH_MS says otherwise (tests: only the flush at close). */
#define PG_FLUSH_MS 1000
/* Flushing after a failure other than a lock timeout waits this long (a
 * role that may not create whsem.counters would fail every second). */
#define PG_FLUSH_PAUSE_NS 60000000000ull
/* How long a process's exit waits for its last flushes at most. */
#define PG_EXIT_FLUSH_NS 250000000u
/* The seconds of waiters history the database keeps per name. */
#define PG_HISTORY_S 120

/* Why something failed: the status, and its message (scrubbed). */
struct pgfail {
    whsem_status status;
    char msg[PG_MSG];
};
WHSEM_HIDDEN void whsem__pg_set_fail(struct pgfail *f, whsem_status st, const char *fmt,
                                     va_list ap) __attribute__((format(printf, 3, 0)));

/* ---- statements on a connection ---- */

struct pgjob;
/* A statement's end: r is its result (the first error, else the last
 * result), or NULL when the connection died first (c->fail.msg says why).
 * Runs on the worker with the server's mutex held; frees nothing. */
typedef void (*pgjob_done)(struct pgsrv *s, struct pgconn *c, struct pgjob *j, PGresult *r);

struct pgjob {
    struct pgjob *next;
    const char *sql;
    int nparams;
    const char *values[5];
    char *text;         /* the parameters' storage (one allocation), or a
                           simple statement's own text                    */
    bool blocking;      /* may wait on the server for long: no answer
                           deadline, and the connection carries no ticket */
    bool simple;        /* several statements, no parameters              */
    bool reuse;         /* sent often: prepared once per session          */
    bool unprepared;    /* preparing its statement failed: sent as it is  */
    bool sent;          /* went to the server (it may have run there)     */
    pgjob_done done;
    /* Called just before it is sent, when what went before on the
     * connection has ended: sets parameters that depend on it. */
    void (*prepare)(struct pgsrv *s, struct pgconn *c, struct pgjob *j);
    void *ctx;
    int64_t arg;
};

/* ---- connections ---- */

enum pgconn_state { PGC_CONNECTING, PGC_READY, PGC_DEAD };
enum pgconn_role {
    PGR_MAIN,   /* short statements: registry, tries, queries; holds the
                   markers of every name the process has open           */
    PGR_WAIT,   /* blocks for one name's tickets, holding none           */
    PGR_HOLD,   /* carries tickets a wait obtained; only their releases */
    PGR_SPARE,  /* idle, reused for the next wait                        */
};

struct pgticket;
struct note;
struct pgcancel_req;

struct pgconn {
    struct pgconn *next;
    PGconn *pg;
    enum pgconn_state state;
    enum pgconn_role role;
    int poll_events;           /* what the next poll waits for           */
    struct pgjob *head, *tail; /* statements; head is in flight if sent  */
    bool sent;
    PGresult *keep;            /* the head's result so far                */
    bool keep_failed;
    uint64_t sent_ns;          /* when the head was sent                  */
    uint64_t idle_since_ns;    /* last statement's end (pings)            */
    struct pgname *wname;      /* PGR_WAIT: the name, and the slot of its
                                  waiters this connection fills           */
    int wslot;
    int32_t wid;               /* the id of the name it waits for, kept
                                  after the name is gone (an orphan wait) */
    int32_t wnext;             /* next index it waits on (taking turns)  */
    bool lock_timeout_set;
    bool cancel_sent;          /* its wait is being canceled (no waiters) */
    uint64_t cancel_sent_ns;   /* when (sent again after PG_RECANCEL_NS)  */
    int unlocking;             /* releases in flight (not on the main one) */
    int inline_users;          /* callers reading it themselves (try_here) */
    bool backed_off;           /* its failure to connect delayed the next */
    uint64_t since_stamp_ns;   /* when "held since" was last stamped      */
    int unmarking;             /* markers on their way back               */
    bool was_ready;            /* it connected once (resets the backoff)  */
    struct pgticket *tickets;  /* carried here (list through cnext)      */
    int ntickets;
    int32_t *marks;            /* names whose marker this session holds  */
    size_t nmarks, capmarks;
    struct pgfail fail;        /* why it died                            */
    /* Statements prepared in this session, by their text's address (the
     * texts are static): planning a statement each time it is sent cost
     * the server more than running it. */
    const char *prepared[PG_PREPARED_MAX];
    int nprepared;
    bool fd_gone;              /* its descriptor was closed under it      */
    bool preparing;            /* in flight: the head's statement is being
                                  prepared, then the head is sent        */
};

/* ---- counters (counters.c) ---- */

/* What this process counted of a name, in whsem_info's order. */
enum { PGK_ACQUISITIONS, PGK_TIMEOUTS, PGK_CANCELLATIONS, PGK_WAITS, PGK_WAIT_NS, PGK_RELEASES,
       PGK_HOLD_NS, PGK_N };
struct pgcounts {
    uint64_t v[PGK_N];
    uint64_t buckets[WHSEM_WAIT_BUCKETS];
};

/* A name's counters in this process until they reach whsem.counters. */
struct pgkeep {
    struct pgcounts pending;     /* counted since the last flush          */
    struct pgcounts inflight;    /* in the flush on its way               */
    bool flushing;
    bool final_wanted;           /* a final flush, once this one has ended */
    bool gone;                   /* its row was deleted: counted no more  */
    uint64_t flush_at_ns;        /* the next flush, not before            */
    /* Waiting acquisitions, the most in each second (unix seconds of this
     * machine's clock), in a ring: per_sec[t % PG_HISTORY_S]. */
    uint32_t level;              /* now                                   */
    int64_t sec_last;            /* the newest second in the ring         */
    int64_t sec_sent;            /* the database has seconds up to this   */
    int64_t sec_sending;         /* the flush on its way, up to this      */
    uint32_t per_sec[PG_HISTORY_S];
};

/* ---- names, waits and tickets ---- */

enum pgacq_state { PGA_NEW, PGA_TRYING, PGA_WAITING, PGA_DONE };

/* One acquisition, blocking or asynchronous. Its outcome is decided once,
 * under the server's mutex (state PGA_DONE): a grant and a timeout,
 * cancellation or close never both win. */
struct pgacq {
    struct pgacq *prev, *next;   /* the name's waiting list              */
    struct pgacq *tprev, *tnext; /* the name's list of those whose try is
                                    in flight and that would wait after it */
    bool in_tries;
    struct pgacq *start_next;    /* the server's list of new ones         */
    struct pgacq *async_next;    /* the server's pending asynchronous ones */
    struct pgname *n;
    whsem_sem sem;               /* the handle it came through (close)   */
    enum pgacq_state state;
    int refs;                    /* its owner, and a statement in flight */
    bool try_only;
    bool settling;               /* a try that found nothing, waiting only
                                    for our own withdrawn waits to end   */
    bool settled;                /* and then tried again                  */
    bool aside_busy;             /* when its try was sent, a session of ours
                                    other than the main one was waiting or
                                    giving an index back                  */
    bool waited;                 /* it found no ticket and queued         */
    uint64_t start_ns;           /* when it began (its wait's length)     */
    uint64_t deadline_ns;        /* 0 = none                              */
    struct op *op;               /* asynchronous: the engine's operation */
    _Atomic bool canceled;       /* blocking: its source was triggered (set
                                    under the source's lock, not ours)     */
    _Atomic uint32_t word;       /* blocking: bumped when something happens */
    _Atomic int wake_fd;         /* blocking, once it read its waits'
                                    connections itself (wait_here): an
                                    eventfd written when something happens;
                                    -1 before                            */
    whsem_status status;         /* once PGA_DONE                        */
    struct pgticket *ticket;     /* once PGA_DONE with WHSEM_OK          */
    char msg[PG_MSG];
};

struct pgticket {
    struct whsem_semobj base;    /* first: ticket handles point here     */
    struct pgticket *cnext, *cprev; /* its connection's list, or the pool */
    struct pgname *n;
    struct pgconn *c;            /* NULL once lost or released            */
    int32_t index;
    uint64_t handle;
    uint64_t since_ns;           /* when it was handed out (coarse clock) */
    bool lost;
    char lost_msg[PG_MSG];
    bool watched;                /* a watch waits to be told              */
    bool watch_once;             /* a watch was set (one per ticket)      */
    struct note *watch_note;     /* allocated by the watch: telling it
                                    cannot fail for want of memory       */
    whsem_cancel watch_cancel;
    whsem_ticket_callback watch_cb;
    void *watch_data;
};

enum pgname_state { PGN_REGISTERING, PGN_READY, PGN_BROKEN };

struct pgname {
    struct whsem_semobj base;    /* first: semaphore handles point here  */
    struct whsem_retiree retiree;
    struct pgname *next;
    struct pgsrv *srv;
    char name[WHSEM_MAX_NAME_BYTES + 1];
    size_t len;
    int32_t id;                  /* its row in whsem.semaphore            */
    int32_t max_count;           /* asked for (0: adopt), then the one    */
    int32_t check_ms;            /* turns of the waiting connections      */
    enum pgname_state state;
    bool reg_started;
    int retries;                 /* registrations started again           */
    struct pgfail fail;          /* PGN_BROKEN: why                        */
    _Atomic uint32_t word;       /* bumped when registration ends         */
    int refs;                    /* handles, acquisitions, tickets        */
    /* Statements in flight that name it (registry steps, tries): a dropped
     * name is freed only once they have ended (their answers still come). */
    int jobs;
    bool dropped;                /* out of the server's list: on s->dropped */
    struct pgacq *wait_head, *wait_tail;
    uint32_t nwaiting;           /* in the waiting list                   */
    uint32_t nsettling;          /* of which tries that only settle       */
    uint64_t idle_since_ns;      /* nobody has waited since (0: someone does) */
    struct pgconn *waiters[PG_WAITERS_MAX];
    struct pgkeep keep;          /* its counters                          */
    /* Acquisitions that will wait if their try finds nothing: a grant to
     * one of our waiting sessions that arrives while no acquisition
     * waits yet goes to one of them, rather than back to the server and
     * through another process's grant (a second hop). */
    struct pgacq *try_head;
};

struct pgsrv {
    struct pgsrv *next;
    pthread_mutex_t mu;
    char *conninfo;              /* the caller's string: the key; never shown */
    char *password;              /* parsed from it, to scrub from messages */
    char where[160];             /* "host:port/db" for messages            */
    int32_t check_ms;
    int evfd;                    /* wakes the worker                        */
    _Atomic uint32_t unlocked;   /* bumped when a release on a session other
                                    than the main one ends (snapshots wait) */
    bool worker_running;
    pthread_t worker;
    bool forked;                 /* inherited through fork(): unusable      */
    struct pgconn *conns;
    struct pgconn *main;
    uint64_t retry_at_ns;        /* connecting again is paused until then   */
    uint64_t retry_ns;
    struct pgname *names;
    struct pgname *dropped;      /* dropped names with statements in flight */
    struct pgacq *starts, *starts_tail; /* new acquisitions (start_next)   */
    struct pgacq *async;         /* pending asynchronous acquisitions      */
    struct note *notes;          /* watches to tell, from callers           */
    pthread_cond_t cancel_cv;    /* the canceler thread: PQcancel blocks    */
    bool canceler_running;
    struct pgcancel_req *cancels;
    char host[64];
    struct pollfd *pollfds;      /* the worker's poll set, and whose each is */
    struct pgconn **owners;
    const struct whsem_libpq *pq;
    const struct whsem_backend *be; /* what its handles' objects name */
    uint64_t flush_ns;           /* counters' flush period                  */
    uint64_t flush_paused_until_ns; /* after a failed flush                 */
    int flushes;                 /* flushes on their way                    */
    _Atomic uint32_t flushed;    /* bumped when one ends (exit waits)       */
};

/* ---- conn.c ---- */
/* A new connection (PGC_CONNECTING, or PGC_DEAD with why set). */
WHSEM_HIDDEN struct pgconn *whsem__pgc_new(struct pgsrv *s, enum pgconn_role role);
/* Queues a statement; on a dead connection it ends at once (done with
 * NULL), so a done handler must not queue again on a connection that
 * died. */
WHSEM_HIDDEN void whsem__pgc_push(struct pgsrv *s, struct pgconn *c, struct pgjob *j);
/* Sends the head statement if the connection is ready for it. */
WHSEM_HIDDEN void whsem__pgc_kick(struct pgsrv *s, struct pgconn *c);
/* Services a ready descriptor: connection steps, results (their done
 * handlers run here). */
WHSEM_HIDDEN void whsem__pgc_service(struct pgsrv *s, struct pgconn *c, short revents);
/* Ends a connection that failed: every statement's done runs with NULL.
 * The session (and what it held) ends with the socket. */
WHSEM_HIDDEN void whsem__pgc_kill(struct pgsrv *s, struct pgconn *c, whsem_status st,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
WHSEM_HIDDEN bool whsem__pgc_marked(const struct pgconn *c, int32_t id);
WHSEM_HIDDEN void whsem__pgc_mark(struct pgconn *c, int32_t id, bool on);
/* A job with up to 5 text parameters (NULL-terminated list of values). */
WHSEM_HIDDEN struct pgjob *whsem__pgj_new(const char *sql, pgjob_done done, void *ctx,
                                          int64_t arg, const char *const *values);
WHSEM_HIDDEN void whsem__pgj_free(struct pgjob *j);
/* Replaces a job's parameters (false: out of memory, unchanged). */
WHSEM_HIDDEN bool whsem__pgj_set(struct pgjob *j, const char *const *values);
/* libpq's message with the password (if any) masked. */
WHSEM_HIDDEN void whsem__pg_scrub(const struct pgsrv *s, const char *in, char *out, size_t size);
/* The status a failed statement means, and its message (scrubbed). */
WHSEM_HIDDEN whsem_status whsem__pg_result_error(struct pgsrv *s, const PGresult *r, char *msg,
                                                 size_t size);
WHSEM_HIDDEN const char *whsem__pg_sqlstate(const struct pgsrv *s, const PGresult *r);
/* Whether the calling thread's last error (whsem_last_error) came from a
 * statement that failed with SQLSTATE state. */
WHSEM_HIDDEN bool whsem__pg_failed_with(const char *state);

#endif
