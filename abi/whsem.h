/* SPDX-License-Identifier: MIT */
/*
 * whsem.h — libwhsem, a named, crash-safe, cross-process counting semaphore.
 *
 * This header is the manual of the C ABI. Every declaration says what it
 * does, who owns what comes out, which thread may call it and the version
 * that introduced it ("since 1.0").
 *
 * Ground rules that hold for every function:
 *   - Handles are uint64_t values; 0 is never valid. A zero, stale,
 *     double-released or wrong-kind handle yields WHSEM_E_INVALID_HANDLE,
 *     never a crash.
 *   - Every function may be called from any thread, concurrently.
 *   - Out-parameters come last and are named out...; what they receive is
 *     valid only when the function returns WHSEM_OK.
 *   - On any status other than WHSEM_OK (an error, and WHSEM_TIMEOUT,
 *     WHSEM_CANCELED and WHSEM_PENDING too), every handle out-parameter
 *     (whsem_sem, whsem_ticket, whsem_op, whsem_cancel, whsem_queue) whose
 *     pointer is not NULL is set to 0, and so is whsem_queue_pop's tag: a
 *     caller that forgets to check the status holds the invalid handle 0,
 *     never a stale value. Likewise *out_max_count becomes 0, *out_fd -1,
 *     and *out_handle a value that names no object (UINT64_MAX, i.e. the
 *     descriptor -1, on Linux; NULL on Windows) (since 1.1).
 *   - Size out-parameters of "ask, then fill" functions (*out_len,
 *     *out_count) are written whenever the size is known, even with the
 *     WHSEM_E_INVALID_ARGUMENT of a buffer too small; see each function.
 *     Buffers and structs hold a result only after WHSEM_OK.
 *   - A failing call (negative status) leaves a detail message for the
 *     calling thread in whsem_last_error().
 *   - An asynchronous operation keeps the message of how it ended, whatever
 *     thread ended it. whsem_op_poll, whsem_op_wait and whsem_op_take_ticket,
 *     when they return its final status and that is not WHSEM_OK, make that
 *     message the calling thread's whsem_last_error(): the detail of an
 *     error, or of a WHSEM_CANCELED or WHSEM_TIMEOUT that has one (its
 *     semaphore handle was closed, say), "" otherwise (since 1.1).
 *   - Strings are UTF-8 and NUL-terminated.
 *
 * Check that header and library agree:
 *     if ((whsem_version() >> 16) != WHSEM_VERSION_MAJOR) { ... }
 */
#ifndef WHSEM_H
#define WHSEM_H

#include <stddef.h>
#include <stdint.h>

#define WHSEM_VERSION_MAJOR 1
#define WHSEM_VERSION_MINOR 1
#define WHSEM_VERSION_PATCH 0
#define WHSEM_VERSION \
    ((WHSEM_VERSION_MAJOR << 16) | (WHSEM_VERSION_MINOR << 8) | WHSEM_VERSION_PATCH)

/*
 * WHSEM_API marks every exported function; WHSEM_CALL is the one calling
 * convention of the ABI, used by every function and by the callback type.
 * Both are decided here once, for Windows too, and never change.
 * Define WHSEM_STATIC when linking a static build on Windows.
 */
#if defined(_WIN32) || defined(__CYGWIN__)
#  define WHSEM_CALL __cdecl
#  if defined(WHSEM_STATIC)
#    define WHSEM_API
#  elif defined(WHSEM_BUILDING)
#    define WHSEM_API __declspec(dllexport)
#  else
#    define WHSEM_API __declspec(dllimport)
#  endif
#else
#  define WHSEM_CALL
#  if defined(WHSEM_BUILDING) && defined(__GNUC__)
#    define WHSEM_API __attribute__((visibility("default")))
#  else
#    define WHSEM_API
#  endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Types ------------------------------------------------------------ */

typedef uint64_t whsem_sem;    /* an open semaphore (since 1.0)                    */
typedef uint64_t whsem_ticket; /* one held ticket (the C# "handle") (since 1.0)    */
typedef uint64_t whsem_op;     /* one asynchronous acquisition (since 1.0)         */
typedef uint64_t whsem_cancel; /* a cancellation source, may serve many waits (since 1.0) */
typedef int32_t whsem_status;  /* see the WHSEM_* status values (since 1.0)        */

/* Timeout value meaning "wait forever" (since 1.0). */
#define WHSEM_INFINITE (-1)

/* Buckets of the wait-time histogram (whsem_wait_histogram): bucket 0
 * counts waits shorter than 2^10 ns (about 1 us), bucket i (1 ... 30)
 * those from 2^(9+i) ns to just under 2^(10+i) ns, bucket 31 those of
 * 2^40 ns (about 18 minutes) or more (since 1.1). */
#define WHSEM_WAIT_BUCKETS 32

/* ---- Statuses (values are ABI: never renumbered; more may be added) ---- */

#define WHSEM_OK 0                    /* success                                   */
#define WHSEM_TIMEOUT 1               /* the wait ended without a ticket           */
#define WHSEM_PENDING 2               /* an asynchronous operation is not final    */
#define WHSEM_CANCELED 3              /* a cancellation source or close ended it   */
#define WHSEM_E_INVALID_ARGUMENT (-1) /* NULL pointer, out-of-range number, ...    */
#define WHSEM_E_INVALID_HANDLE (-2)   /* zero, stale, released or wrong-kind handle */
#define WHSEM_E_INVALID_NAME (-3)     /* not valid UTF-8, or not a valid exact name */
#define WHSEM_E_MAX_COUNT_MISMATCH (-4) /* open elsewhere with another max count  */
#define WHSEM_E_ACCESS_DENIED (-5)    /* the OS refused access to the shared state */
#define WHSEM_E_CORRUPT (-6)          /* the shared state is not a valid segment   */
#define WHSEM_E_INCOMPATIBLE (-7)     /* created by an incompatible library layout */
#define WHSEM_E_LIMIT (-8)            /* a fixed capacity is exhausted             */
#define WHSEM_E_NO_MEMORY (-9)        /* memory allocation failed                  */
#define WHSEM_E_WRONG_PROCESS (-10)   /* the ticket belongs to another process (fork) */
#define WHSEM_E_OS (-11)              /* an unexpected operating system error      */
#define WHSEM_E_BUSY (-12)            /* the name is in use (whsem_unlink) (since 1.0) */
#define WHSEM_E_NOT_FOUND (-13)       /* no semaphore has that name (since 1.0)    */
#define WHSEM_E_UNSUPPORTED (-14)     /* not on this platform, e.g. whsem_queue_fd on
                                         Windows (since 1.0)                       */
#define WHSEM_E_TICKET_LOST (-15)     /* the ticket was lost while its holder lived:
                                         the connection or server that carried it
                                         went away (since 1.1)                     */
#define WHSEM_E_UNAVAILABLE (-16)     /* the backend cannot be reached or loaded:
                                         server down or refusing connections,
                                         client library not installed (since 1.1)  */

/* ---- Options ---------------------------------------------------------- */

/* whsem_open_options.flags: use the name as given; it must already be a
 * valid finalized name (see whsem_safe_name) or WHSEM_E_INVALID_NAME. */
#define WHSEM_OPEN_EXACT_NAME 0x1u

/* whsem_unlink flags: remove even while processes have the name open. */
#define WHSEM_UNLINK_FORCE 0x2u

/*
 * Options for whsem_open (since 1.0). A versioned struct: set struct_size
 * to sizeof(whsem_open_options); fields appended in later versions are
 * read only when struct_size covers them, so old callers keep working.
 * Zero-initialise the struct, then set what you need: every zero field
 * means "the default".
 */
typedef struct whsem_open_options {
    uint32_t struct_size;          /* sizeof(whsem_open_options)                  */
    uint32_t flags;                /* WHSEM_OPEN_EXACT_NAME                       */
    int32_t abandonment_check_ms;  /* how often waiters look for dead holders:
                                      0 = default (100 ms), WHSEM_INFINITE = only
                                      when a lock owner is found dead,
                                      1 ... INT32_MAX ms otherwise               */
    uint32_t mode;                 /* permission bits of a newly created segment
                                      (e.g. 0660); 0 = default 0600. Applied
                                      exactly, not masked by the umask.         */
    const char *backend;           /* where the semaphore lives (since 1.1):
                                      NULL or "" = this machine (shared memory);
                                      a libpq connection string or
                                      "postgresql://..." URI = that PostgreSQL
                                      database, shared by every machine that
                                      reaches it (libpq is loaded on first use;
                                      passwords come through libpq's own means
                                      and never appear in messages). Read only
                                      during whsem_open. Windows:
                                      WHSEM_E_UNSUPPORTED.                      */
    int32_t connection_check_ms;   /* PostgreSQL backend: how often a connection
                                      that carries tickets is checked (a ping
                                      that must be answered within twice this),
                                      so that a holder learns of a lost ticket
                                      within about three periods even when the
                                      network fails silently; a server restart
                                      or a closed connection is seen at once.
                                      0 = default (1000 ms), WHSEM_INFINITE =
                                      no pings, 1 ... INT32_MAX (since 1.1)     */
} whsem_open_options;

/*
 * A snapshot of a semaphore's shared state, filled by whsem_query
 * (since 1.0). Versioned like whsem_open_options: set struct_size.
 */
typedef struct whsem_info {
    uint32_t struct_size;   /* sizeof(whsem_info), set by the caller          */
    int32_t max_count;      /* the semaphore's max count                      */
    int32_t free_count;     /* tickets nobody holds right now                 */
    uint32_t waiters;       /* acquisitions waiting, over all processes       */
    uint32_t processes;     /* processes that have the name open              */
    uint32_t holders;       /* processes holding at least one ticket          */
    uint64_t recoveries;    /* crash recoveries so far: dead processes whose
                               tickets were reclaimed, and segment locks
                               taken over from a process that died in them
                               (always 0 on PostgreSQL, whose server frees
                               a dead session's tickets itself)           */
    /* ---- since 1.1: counters since the name was created, kept by every
       1.1 process that uses it (a 1.0 process's doings are not counted).
       A caller built against 1.0 passes the 1.0 size and gets the fields
       above only. On PostgreSQL each process adds what it counted to the
       database at most once a second, and when it closes the name's last
       handle or exits: a reader sees its own process's counts at once,
       another's within about two seconds, and a process that is killed
       loses what it counted since. ---- */
    uint64_t acquisitions;  /* tickets handed out                             */
    uint64_t timeouts;      /* acquisitions with a timeout other than 0 that
                               ended WHSEM_TIMEOUT (a try that finds no
                               ticket is not one: bindings try before
                               they wait)                                 */
    uint64_t cancellations; /* acquisitions that ended WHSEM_CANCELED (on
                               PostgreSQL, not those whose source was
                               triggered before the call)                 */
    uint64_t waits;         /* acquisitions that found no ticket free and
                               waited, however they ended: what
                               whsem_wait_histogram counts                */
    uint64_t wait_ns;       /* the time those waited, summed                  */
    uint64_t releases;      /* tickets given back: released, or reclaimed
                               from a process that ended holding them     */
    uint64_t hold_ns;       /* the time released tickets were held, summed
                               (measured with a coarse clock: exact over
                               many holds, not for one)                   */
    int64_t created_unix_ms; /* when the name was created                    */
} whsem_info;

/* One process holding tickets, filled by whsem_query (since 1.0). */
typedef struct whsem_holder {
    int64_t pid;            /* process id (in the pid namespace of its creator) */
    int64_t since_unix_ms;  /* when libwhsem first saw it holding (after holding
                               none): exact for a ticket handed to a waiter;
                               for one taken from the pool, the next scan
                               stamps it (every abandonment-check period
                               while anyone waits, and every whsem_query),
                               because reading a clock would cost the
                               uncontended acquire a quarter of its time   */
    int32_t tickets;        /* tickets it holds                                 */
    uint32_t waiting;       /* acquisitions of that process still waiting       */
} whsem_holder;

/*
 * One process that has the semaphore open: holding tickets, waiting for
 * one, or neither. Filled by whsem_query_processes (since 1.1); versioned
 * like whsem_info, through the first element's struct_size, which gives
 * the size of every element of the array.
 */
typedef struct whsem_process {
    uint32_t struct_size;            /* sizeof(whsem_process), set by the caller in
                                        processes[0]; written to every element */
    int32_t tickets;                 /* tickets it holds                           */
    uint32_t waiting;                /* its acquisitions still waiting (another
                                        process on PostgreSQL: its waiting
                                        connections, one per ticket index)        */
    uint32_t is_self;                /* 1 for the calling process, else 0           */
    int64_t pid;                     /* process id on its host                      */
    int64_t holding_since_unix_ms;   /* since when it holds tickets (as
                                        whsem_holder's since_unix_ms); 0 if none  */
    int64_t waiting_since_unix_ms;   /* since when its oldest acquisition waits; 0 if
                                        none, or not known (this machine's backend
                                        does not record it)                       */
    const char *host;                /* the host it runs on, as it reported it; ""
                                        for this machine's backend. Static storage
                                        for the life of the library, never NULL   */
} whsem_process;

/* ---- Library and errors ---------------------------------------------- */

/* Runtime version, major<<16 | minor<<8 | patch (since 1.0). */
WHSEM_API uint32_t WHSEM_CALL whsem_version(void);

/* Runtime version as text, e.g. "1.0.0"; static storage (since 1.0). */
WHSEM_API const char *WHSEM_CALL whsem_version_string(void);

/* Name of a status ("WHSEM_OK", ...); "WHSEM_UNKNOWN_STATUS" for values
 * this version does not know. Static storage, never NULL (since 1.0). */
WHSEM_API const char *WHSEM_CALL whsem_status_name(whsem_status status);

/* The calling thread's detail message for its last failing call, "" if
 * none. Valid until this thread's next libwhsem call (since 1.0). */
WHSEM_API const char *WHSEM_CALL whsem_last_error(void);

/*
 * A checksum of the signature of an ABI item as this library implements
 * it: a function ("whsem_open"), a struct ("struct whsem_info") or a
 * callback type ("callback whsem_callback"). 0 if the library does not know
 * the item. Generated bindings compare these with the checksums they were
 * generated from when they load the library, so that a mismatch is a clear
 * error instead of misbehaviour (since 1.0).
 */
WHSEM_API uint32_t WHSEM_CALL whsem_abi_checksum(const char *item);

/* ---- Names ------------------------------------------------------------ */

/*
 * Finalizes a name exactly as the C# DistributedLock library's
 * WaitHandleDistributedSemaphore does: prefix "Global\", at most 260
 * UTF-16 code units, and a SHA-512/base64 suffix for names that are
 * empty, contain '\' after the prefix, or are too long. Examples:
 *     "abc" -> "Global\abc"
 *     ""    -> "Global\EMPTYz4PhNX7vuL3xVChQ1m2AB9Yg5...ODJ6+SfaPg=="
 * Ask, then fill: *out_len receives the size needed including the NUL
 * whenever name is valid UTF-8; if size is too small (or buf is NULL)
 * the result is WHSEM_E_INVALID_ARGUMENT and buf is untouched.
 * WHSEM_E_INVALID_NAME if name is not valid UTF-8 (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_safe_name(const char *name, char *buf, size_t size,
                                                  size_t *out_len);

/* ---- Semaphores ------------------------------------------------------- */

/*
 * Opens the semaphore called name, creating it with max_count tickets if
 * it does not exist. max_count: 1 ... INT32_MAX. opts may be NULL for the
 * defaults. The name is finalized (see whsem_safe_name) unless
 * WHSEM_OPEN_EXACT_NAME is set.
 * Errors: WHSEM_E_MAX_COUNT_MISMATCH if a live process has it open with
 * another max count (a semaphore that no live process has open is
 * replaced by one with the new max count, as a Win32 object nobody has
 * open would be recreated), WHSEM_E_INVALID_NAME, WHSEM_E_ACCESS_DENIED, WHSEM_E_CORRUPT,
 * WHSEM_E_INCOMPATIBLE, WHSEM_E_LIMIT (too many processes on the name).
 * Owner: the caller; close with whsem_close (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_open(const char *name, int32_t max_count,
                                             const whsem_open_options *opts, whsem_sem *out_sem);

/*
 * Opens an existing semaphore, adopting its max count.
 * WHSEM_E_NOT_FOUND if nothing has that name (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_open_existing(const char *name,
                                                      const whsem_open_options *opts,
                                                      whsem_sem *out_sem);

/*
 * Closes this process's handle. Tickets acquired through it stay valid
 * and must still be released. Acquisitions waiting on this handle end
 * with WHSEM_CANCELED (or WHSEM_OK if a ticket reached them first).
 * A second close is WHSEM_E_INVALID_HANDLE (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_close(whsem_sem sem);

/* The finalized name; ask, then fill, like whsem_safe_name (since 1.0). */
WHSEM_API whsem_status WHSEM_CALL whsem_name(whsem_sem sem, char *buf, size_t size,
                                             size_t *out_len);

/* The max count (since 1.0). */
WHSEM_API whsem_status WHSEM_CALL whsem_max_count(whsem_sem sem, int32_t *out_max_count);

/*
 * A snapshot of the shared state and of the processes holding tickets.
 * info may be NULL. Ask, then fill: *out_count receives the number of
 * holders; up to capacity of them are written to holders (which may be
 * NULL when capacity is 0). Holders beyond capacity are not an error:
 * compare *out_count with capacity (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_query(whsem_sem sem, whsem_info *info,
                                              whsem_holder *holders, size_t capacity,
                                              size_t *out_count);

/*
 * A snapshot of the shared state and of every process that has the
 * semaphore open, holding, waiting or neither: whsem_query's answer with
 * the processes that hold none, the time each has waited, and (PostgreSQL)
 * the host of each. info may be NULL. Ask, then fill: *out_count receives
 * the number of processes; up to capacity are written to processes
 * (which may be NULL when capacity is 0), whose first element's
 * struct_size the caller sets (WHSEM_E_INVALID_ARGUMENT if it is smaller
 * than this version's whsem_process) (since 1.1).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_query_processes(whsem_sem sem, whsem_info *info,
                                                        whsem_process *processes,
                                                        size_t capacity, size_t *out_count);

/*
 * How long acquisitions of sem's name waited, as a histogram of
 * WHSEM_WAIT_BUCKETS log-scale buckets (see WHSEM_WAIT_BUCKETS), over
 * every process and since the name was created, like whsem_info's
 * counters. Ask, then fill: *out_count receives the number of buckets;
 * up to capacity are written to buckets (which may be NULL when capacity
 * is 0) (since 1.1).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_wait_histogram(whsem_sem sem, uint64_t *buckets,
                                                       size_t capacity, size_t *out_count);

/*
 * How many acquisitions of sem's name waited, over every process: the
 * most seen in each second of the recent past, oldest first, the last
 * element the current second (on PostgreSQL the server's seconds, each
 * the sum over processes of the most each had waiting in it). Ask, then
 * fill: *out_count receives the number of seconds this backend keeps
 * (60 or more); up to capacity of
 * the most recent are written to per_second (which may be NULL when
 * capacity is 0) (since 1.1).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_waiters_history(whsem_sem sem, uint32_t *per_second,
                                                        size_t capacity, size_t *out_count);

/*
 * Removes the name so that the next whsem_open creates a fresh
 * semaphore. flags: WHSEM_OPEN_EXACT_NAME, WHSEM_UNLINK_FORCE. Without
 * WHSEM_UNLINK_FORCE a name that another live process has open is
 * WHSEM_E_BUSY (processes that keep it open would not share tickets with
 * new openers). WHSEM_E_NOT_FOUND if nothing has that name (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_unlink(const char *name, uint32_t flags);

/*
 * The finalized names of every semaphore on this machine that the caller
 * can see, each followed by a NUL, the list followed by one more NUL.
 * Ask, then fill: *out_len receives the size needed (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_list(char *buf, size_t size, size_t *out_len);

/*
 * whsem_list of any backend: backend is read as whsem_open_options.backend
 * is. NULL or "" lists this machine, exactly as whsem_list does; a
 * PostgreSQL connection string lists the names that database knows (none
 * where no semaphore was ever opened), after connecting as whsem_open
 * would (WHSEM_E_UNAVAILABLE, WHSEM_E_ACCESS_DENIED... when it cannot).
 * Same format, and ask, then fill, as whsem_list. Windows:
 * WHSEM_E_UNSUPPORTED for any backend but this machine (since 1.1).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_list_backend(const char *backend, char *buf, size_t size,
                                                     size_t *out_len);

/*
 * whsem_unlink of any backend (backend as in whsem_list_backend): removes
 * the name so that the next whsem_open on that backend creates a fresh
 * semaphore. Flags and statuses as whsem_unlink's; on PostgreSQL a name
 * is in use while a session of another process has it open. NULL or ""
 * is exactly whsem_unlink (since 1.1).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_unlink_backend(const char *backend, const char *name,
                                                       uint32_t flags);

/* ---- Tickets ---------------------------------------------------------- */

/*
 * Acquires one ticket, waiting up to timeout_ms: 0 = try once,
 * WHSEM_INFINITE = forever, 1 ... INT32_MAX ms otherwise. cancel may be 0
 * (no cancellation); a source that is already triggered makes the call
 * return WHSEM_CANCELED even when a ticket is free.
 * Returns WHSEM_OK with *out_ticket set, WHSEM_TIMEOUT or WHSEM_CANCELED
 * (no ticket: *out_ticket is 0 since 1.1), or an error. Owner: the caller;
 * release with whsem_release (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_acquire(whsem_sem sem, int64_t timeout_ms,
                                                whsem_cancel cancel, whsem_ticket *out_ticket);

/*
 * Releases a ticket. A second release is WHSEM_E_INVALID_HANDLE; a child
 * process releasing a ticket inherited through fork() gets
 * WHSEM_E_WRONG_PROCESS and the parent's ticket stays held (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_release(whsem_ticket ticket);

/*
 * Lost tickets (since 1.1). A ticket of the shared-memory backend lives
 * exactly as long as its holder process, so it cannot be lost. A ticket of
 * the PostgreSQL backend lives in a database session: if that session ends
 * while the holder lives (server restart, pg_terminate_backend, network
 * failure), the server has already given the ticket to someone else, and
 * the holder must stop relying on it. whsem_release of such a ticket
 * returns WHSEM_E_TICKET_LOST (and the handle is released all the same).
 */

/* WHSEM_OK while the ticket is held, WHSEM_E_TICKET_LOST once it is known
 * to be lost; WHSEM_E_INVALID_HANDLE for a released one. Does not wait
 * for the server (since 1.1). */
WHSEM_API whsem_status WHSEM_CALL whsem_ticket_check(whsem_ticket ticket);

/*
 * Called by a watch (see whsem_ticket_watch) exactly once, on a library
 * thread, never from inside whsem_ticket_watch or whsem_release: with
 * WHSEM_E_TICKET_LOST when the ticket is lost, or with WHSEM_OK once the
 * ticket was released without having been lost. ticket is then a name
 * only (it may already be released). The callback may call any libwhsem
 * function (since 1.1).
 */
typedef void(WHSEM_CALL *whsem_ticket_callback)(whsem_ticket ticket, whsem_status status,
                                                 void *user_data);

/*
 * Watches a held ticket for loss (C#'s HandleLostToken): when it is lost,
 * cancel (if not 0) is triggered and cb (if not NULL) is called with
 * WHSEM_E_TICKET_LOST; if it is released first, cb is called with
 * WHSEM_OK and cancel is left alone. Either way cb runs exactly once, so
 * user_data can be freed there. One watch per ticket
 * (WHSEM_E_INVALID_ARGUMENT for a second). A ticket already lost is
 * reported at once (still on a library thread). Watching costs the server
 * nothing: loss is seen on the client's side of the connection, so a
 * watched holder that dies frees its ticket as fast as any other.
 * WHSEM_E_UNSUPPORTED (nothing registered, cb never called) for a ticket
 * that cannot be lost: one of the shared-memory backend (since 1.1).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_ticket_watch(whsem_ticket ticket, whsem_cancel cancel,
                                                     whsem_ticket_callback cb, void *user_data);

/*
 * Handing tickets to a child process (since 1.1), as flock(1) hands its
 * lock to the command it runs: *out_fd receives a new file descriptor
 * (3 or above, without FD_CLOEXEC) that keeps every ticket this process
 * holds on sem alive while any process has it open, even after this
 * process has died. A command started with it inherited holds the tickets
 * as long as it lives; the tickets return to the pool only once this
 * process and every holder of the descriptor are gone. The descriptor is
 * read-only: its holders cannot write or truncate the semaphore's state,
 * and a holder stopped or killed never blocks other processes' calls.
 * Releasing a ticket still works as usual. Owner: the caller; close it
 * (and the copies children inherit) when the tickets should go with
 * this process. Shared-memory semaphores on Linux only: WHSEM_E_UNSUPPORTED
 * on Windows and for a semaphore of the PostgreSQL backend, whose tickets
 * live in this process's database session. WHSEM_E_NOT_FOUND if the name
 * was removed since sem was opened.
 */
WHSEM_API whsem_status WHSEM_CALL whsem_share_liveness(whsem_sem sem, int32_t *out_fd);

/* ---- Cancellation sources ---------------------------------------------- */

/* Creates an untriggered source. Owner: the caller; free with
 * whsem_cancel_free (since 1.0). */
WHSEM_API whsem_status WHSEM_CALL whsem_cancel_new(whsem_cancel *out_cancel);

/* Triggers the source: every wait using it ends promptly with
 * WHSEM_CANCELED, and later waits using it do not start. Idempotent
 * (since 1.0). */
WHSEM_API whsem_status WHSEM_CALL whsem_cancel_trigger(whsem_cancel cancel);

/* Frees the source. Waits already using it are unaffected (they can no
 * longer be canceled through it) (since 1.0). */
WHSEM_API whsem_status WHSEM_CALL whsem_cancel_free(whsem_cancel cancel);

/* ---- Asynchronous acquisition ------------------------------------------ */

/*
 * An asynchronous acquisition (a whsem_op) completes in one of three ways,
 * chosen per operation; pick the one that fits your runtime:
 *
 *  - Poll or block: whsem_op_poll() returns WHSEM_PENDING until the final
 *    status; whsem_op_wait() blocks the calling thread until then. Simple,
 *    but one blocked thread per waiting operation.
 *  - Callback: whsem_acquire_async() with a callback. The library calls it
 *    once, on a thread of its own, when the operation is final. Natural
 *    for runtimes that can take a call from a foreign thread (C#'s
 *    UnmanagedCallersOnly, Rust's Waker, C).
 *  - Completion queue: whsem_acquire_queued() posts the finished operation
 *    to a whsem_queue whose file descriptor is readable while anything is
 *    posted. An event loop (epoll, kqueue-style reactors, Go's netpoller)
 *    waits on one descriptor for any number of operations, and no foreign
 *    thread ever calls into its runtime. One queue per event loop; many
 *    loops in one process each have their own.
 *
 * However it completes, an operation is freed with whsem_op_free(), and
 * a ticket it acquired is moved out with whsem_op_take_ticket() (or
 * released by whsem_op_free() if nobody took it). Cancellation
 * (whsem_op_cancel, a cancellation source, whsem_close of its semaphore,
 * whsem_op_free) racing with a grant either delivers the ticket (status
 * WHSEM_OK) or returns it to the pool: it is never lost.
 *
 * The library uses a bounded number of threads for all operations of a
 * process, however many are pending: one dispatcher, plus callback threads
 * (one, more only while callbacks block).
 */

/*
 * Called exactly once per operation that was given one, on a library
 * thread, after the final status is visible to whsem_op_poll; never from
 * inside whsem_acquire_async. status is the final status (WHSEM_OK,
 * WHSEM_TIMEOUT, WHSEM_CANCELED or an error). The callback may call any
 * libwhsem function, including whsem_op_take_ticket, whsem_op_free,
 * whsem_release and a new whsem_acquire_async. If the operation was freed
 * before it completed, the callback still runs once (with WHSEM_CANCELED
 * or the status it reached) and op is already invalid: treat it as a
 * name only. Callbacks should return promptly; a callback that blocks
 * makes the library start another callback thread (since 1.0).
 */
typedef void(WHSEM_CALL *whsem_callback)(whsem_op op, whsem_status status, void *user_data);

/* A completion queue for event loops (since 1.0). */
typedef uint64_t whsem_queue;

/*
 * Starts acquiring one ticket without blocking. timeout_ms and cancel as
 * for whsem_acquire. cb may be NULL (poll/wait only); user_data is passed
 * to cb untouched. Returns WHSEM_OK and the operation in *out_op (which
 * may already be final, e.g. when a ticket was free); argument and handle
 * errors are returned directly and create no operation. An already
 * triggered source yields an operation that completes WHSEM_CANCELED
 * without acquiring. Owner: the caller; free with whsem_op_free (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_acquire_async(whsem_sem sem, int64_t timeout_ms,
                                                      whsem_cancel cancel, whsem_callback cb,
                                                      void *user_data, whsem_op *out_op);

/*
 * WHSEM_PENDING, or the final status (since 1.0). A final status other
 * than WHSEM_OK comes with the operation's message in whsem_last_error()
 * (since 1.1).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_op_poll(whsem_op op);

/*
 * Blocks up to timeout_ms (0 = do not block, WHSEM_INFINITE = forever)
 * until the operation is final; returns the final status, or
 * WHSEM_PENDING if it is still pending when the timeout passes (since 1.0).
 * A final status other than WHSEM_OK comes with the operation's message in
 * whsem_last_error() (since 1.1).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_op_wait(whsem_op op, int64_t timeout_ms);

/*
 * Moves the acquired ticket out of a WHSEM_OK operation, once; the caller
 * then owns it (release with whsem_release). Returns the operation's
 * status instead when it is not WHSEM_OK (WHSEM_PENDING, WHSEM_TIMEOUT,
 * ...), with *out_ticket 0 and, once final, the operation's message in
 * whsem_last_error() (since 1.1); WHSEM_E_INVALID_ARGUMENT if the ticket
 * was already taken (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_op_take_ticket(whsem_op op, whsem_ticket *out_ticket);

/* Requests cancellation; idempotent, and harmless on a final operation
 * (since 1.0). */
WHSEM_API whsem_status WHSEM_CALL whsem_op_cancel(whsem_op op);

/*
 * Frees the operation: a pending one is canceled first (its callback still
 * runs once), an untaken ticket is released. A second free is
 * WHSEM_E_INVALID_HANDLE (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_op_free(whsem_op op);

/* ---- Completion queues --------------------------------------------------- */

/* Creates a completion queue. Owner: the caller; free with whsem_queue_free
 * (since 1.0). */
WHSEM_API whsem_status WHSEM_CALL whsem_queue_new(whsem_queue *out_queue);

/*
 * The queue's file descriptor: readable (POLLIN/EPOLLIN) while at least one
 * completion is posted, not readable once all are popped (level-triggered;
 * with edge-triggered epoll, pop until WHSEM_PENDING). Owned by the queue:
 * do not read, write or close it. WHSEM_E_UNSUPPORTED on Windows, which has
 * no descriptors: use whsem_queue_handle there (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_queue_fd(whsem_queue queue, int32_t *out_fd);

/*
 * The queue's waitable object, for code that runs on both platforms: on
 * Windows a manual-reset event HANDLE, signaled while at least one
 * completion is posted and reset once all are popped (wait with
 * WaitForSingleObject/WaitForMultipleObjects); on Linux the descriptor of
 * whsem_queue_fd. Owned by the queue: do not close, set or reset it; valid
 * until whsem_queue_free (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_queue_handle(whsem_queue queue, uint64_t *out_handle);

/*
 * Like whsem_acquire_async, but the finished operation is posted to queue
 * with tag (any value you like, e.g. an index into your own table)
 * instead of calling back (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_acquire_queued(whsem_sem sem, int64_t timeout_ms,
                                                       whsem_cancel cancel, whsem_queue queue,
                                                       uint64_t tag, whsem_op *out_op);

/*
 * Pops the oldest posted completion: WHSEM_OK with the operation and its
 * tag, or WHSEM_PENDING when nothing is posted. The operation's final
 * status is then available from whsem_op_poll (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_queue_pop(whsem_queue queue, whsem_op *out_op,
                                                  uint64_t *out_tag);

/*
 * Frees the queue. Operations still pending on it are canceled; their
 * completions are dropped (their tickets released when they are freed)
 * (since 1.0).
 */
WHSEM_API whsem_status WHSEM_CALL whsem_queue_free(whsem_queue queue);

#ifdef __cplusplus
}
#endif

#endif /* WHSEM_H */
