/* SPDX-License-Identifier: MIT */
/*
 * The Windows implementation's internal header: the shared segment's
 * layout, one process's view of a segment, and the small helpers every
 * file uses. DESIGN.md beside this file explains the why.
 *
 * Lock order (outer first): maps_mu -> name's open mutex -> engine lock ->
 * segment mutex -> op/queue lock; cancel_mu is taken with none of them
 * held, or alone. The segment mutex is never held across a blocking wait
 * or a callback.
 */
#ifndef WHSEM_WIN32_H
#define WHSEM_WIN32_H

#include "api.h"
#include "async.h"
#include "backend.h"
#include "common.h"
#include "handles.h"
#include "names.h"
#include "seg_counters.h"

#include <windows.h>

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- The shared segment -------------------------------------------------
 *
 *   offset 0      struct wseg_header   (4096 bytes: 1152 of layout 1's
 *                 fields, the counters since 1.1 at 1152 ... 3583, the
 *                 rest unused and zero)
 *   offset 4096   struct wseg_slot[WHSEM_W_NSLOTS]   (64 bytes each)
 *
 * A pagefile-backed section named "Global\<file name>[#<generation>]",
 * where <file name> is names.c's injective encoding of the finalized name.
 * The immutable part of the header is written by the creator while it
 * holds the name's open mutex, before anyone else can map the section.
 * Everything else is written only by the holder of the segment mutex
 * (but the counters' atomic fields, ../seg_counters.h, by anyone);
 * while nobody holds it:
 *     free + sum over ACTIVE slots of (held + grants) == max_count
 * A process that dies holding the mutex abandons it; the next owner gets
 * WAIT_ABANDONED and recounts free from the slots (segment.c).
 */
#define WHSEM_W_MAGIC "WHSEMWIN"
#define WHSEM_W_LAYOUT_VERSION 1u
#define WHSEM_W_HEADER_SIZE 4096u
#define WHSEM_W_SLOT_SIZE 64u
#define WHSEM_W_NSLOTS 1024u
#define WHSEM_W_NAME_CAP 1024u
#define WHSEM_W_SEG_SIZE (WHSEM_W_HEADER_SIZE + WHSEM_W_NSLOTS * WHSEM_W_SLOT_SIZE)


enum wslot_state { WSLOT_FREE = 0, WSLOT_ACTIVE = 1 };

struct wseg_slot {
    uint32_t state;          /* enum wslot_state                                */
    uint32_t held;           /* tickets the process has taken                   */
    uint32_t grants;         /* tickets handed to it, not yet taken by a wait   */
    uint32_t want;           /* its acquisitions that are waiting               */
    uint32_t pid;            /* Windows process id                              */
    uint32_t reserved;
    uint64_t created;        /* its creation time (FILETIME): pid + creation
                                time name a process even after the pid is reused */
    int64_t since_unix_ms;   /* when held + grants went from 0 to > 0 (0: not yet
                                seen; the next scan stamps it)                  */
    uint64_t wait_since_ns;  /* monotonic: since when it waits asleep, unserved (0: not) */
    uint8_t pad[16];
};

struct wseg_header {
    /* ---- immutable, checksummed ---- */
    char magic[8];           /* WHSEM_W_MAGIC                                   */
    uint32_t layout_version; /* WHSEM_W_LAYOUT_VERSION                          */
    uint32_t header_size;
    uint32_t slot_size;
    uint32_t nslots;
    uint64_t total_size;
    int32_t max_count;       /* 1 ... INT32_MAX                                 */
    uint32_t name_len;       /* bytes of name, < WHSEM_W_NAME_CAP               */
    int64_t created_unix_ms;
    uint32_t mode;           /* the options' mode it was created with           */
    uint32_t reserved0;
    uint64_t checksum;       /* FNV-1a 64 of everything above + name            */
    char name[WHSEM_W_NAME_CAP]; /* the finalized name, NUL-terminated          */

    /* ---- mutable, under the segment mutex ---- */
    alignas(64) int32_t free;/* tickets nobody holds or has been granted        */
    uint32_t waiting;        /* sum of slot.want                                */
    uint32_t rr_cursor;      /* next slot considered for a handoff (fairness)   */
    uint32_t slot_hwm;       /* slots [0, slot_hwm) have ever been used; one at
                                or beyond it holds nothing (segment.c raises it
                                before it marks a slot ACTIVE)                 */
    uint64_t last_scan_ns;   /* monotonic time of the last abandonment scan     */
    uint64_t recoveries;     /* dead holders reclaimed + abandoned mutexes      */
    uint64_t acquisitions;   /* tickets handed out so far (statistics)          */
    uint32_t unlinked;       /* whsem_unlink retired this generation            */
    uint32_t ticket_woken;   /* a waiter woken to compete has not looked yet     */
    uint32_t fair_cursor;    /* next slot considered for a fairness grant        */
    uint64_t fair_check_ns;  /* monotonic: no look for long waiters before this  */

    /* ---- counters, since 1.1: zero in sections 1.0 created, never
       written by 1.0 ---- */
    struct seg_counters counters;
};

_Static_assert(sizeof(struct wseg_slot) == WHSEM_W_SLOT_SIZE, "slot layout");
_Static_assert(sizeof(struct wseg_header) <= WHSEM_W_HEADER_SIZE, "header layout");
_Static_assert(offsetof(struct wseg_header, free) == 1088, "header layout");
_Static_assert(offsetof(struct wseg_header, counters) == 1152, "header layout");

/* ---- One process's view of one segment ----------------------------------- */

#define WHSEM_W_OBJ_CHARS 300 /* "Global\" + file name (<= 255) + "#gen!w1023" */

struct wmap {
    struct whsem_semobj base; /* first: what handles point at (../backend.h) */
    struct wseg_header *hdr;
    struct wseg_slot *slots;
    HANDLE section;          /* the segment                                     */
    HANDLE lock;             /* the segment mutex                               */
    HANDLE gen_section;      /* the name's generation word (see segment.c)      */
    volatile LONG *gen_word;
    uint32_t gen;            /* the generation this mapping is                  */
    HANDLE wake[WHSEM_W_NSLOTS]; /* slot wake semaphores, opened on first use   */
    uint32_t slot;           /* our slot                                        */
    int32_t max_count;
    size_t name_len;
    char name[WHSEM_MAX_NAME_BYTES + 1];
    wchar_t obj[WHSEM_W_OBJ_CHARS]; /* "Global\<file name>[#gen]"              */

    /* Open semaphore handles, live tickets, pending operations and calls
     * in flight: the last of them to go retires the mapping. A call takes
     * its use through its thread's hazard pointer (../handles.h), which
     * alone keeps the mapping while the call is quick (introspection). */
    volatile LONG uses;
    bool dead;               /* retired (under maps_mu)                         */
    struct whsem_retiree retiree;

    /* Under the segment mutex: */
    int async_ops;           /* pending asynchronous operations                 */

    /* Under the engine lock (../dispatcher.c): */
    struct op *aq_head, *aq_tail; /* pending operations, oldest first           */
    struct wmap *active_next;
    struct wmap *released_next; /* the dispatcher's, once the engine let go */
    _Atomic bool active;     /* in the engine's list (it holds a use)           */
    bool has_expired;        /* one of its operations reached its deadline      */
    int32_t async_check_ms;  /* shortest abandonment check of those operations  */
    struct whsem_watching watch; /* watching its other processes (../async.h) */
    int helpers;              /* threads in whsem_op_wait that take its wakes */
    /* Operations that ended while the dispatcher could not have the
     * segment mutex: their want still counts in our slot until it pays it
     * back (../dispatcher.c). */
    _Atomic uint32_t owed_want;
    _Atomic uint32_t owed_async_ops;
    _Atomic uint32_t owed_sleep; /* blocking waits counted asleep (Linux only) */

    struct wmap *next;       /* maps list, under maps_mu                        */
};

/* ---- Clocks and small helpers (errors.c) ------------------------------------ */

WHSEM_HIDDEN uint64_t whsem__w_mono_ns(void);
WHSEM_HIDDEN int64_t whsem__w_unix_ms(void);
/* Milliseconds to wait from now until an absolute monotonic deadline
 * (0 = forever), rounded up so that a wait never ends early. */
WHSEM_HIDDEN DWORD whsem__w_wait_ms(uint64_t until_ns, uint64_t now_ns);
/* Maps a Win32 error code to a status with a message naming what failed. */
WHSEM_HIDDEN whsem_status whsem__fail_win32(DWORD err, const char *what, const wchar_t *obj);
/* The calling thread's auto-reset event, for its blocking waits. */
WHSEM_HIDDEN HANDLE whsem__w_thread_event(void);
/* Keeps the DLL loaded for good once the library runs threads of its own. */
WHSEM_HIDDEN void whsem__w_pin_module(void);
/* Frees the per-thread state's fiber-local slot when whsem.dll is
 * unloaded (dllmain.c). */
WHSEM_HIDDEN void whsem__w_tstate_unload(void);

/* Test-only fault injection, as on Linux: the process terminates itself
 * at the named point when WHSEM_FAULT_POINT names it. */
#ifdef WHSEM_FAULT_INJECTION
WHSEM_HIDDEN void whsem__w_fault_point(const char *name);
#undef WHSEM_FAULT_POINT
#define WHSEM_FAULT_POINT(name) whsem__w_fault_point(name)
#endif

/* ---- Processes (process.c) ------------------------------------------------- */

/* This process, as slots name it: pid and creation time (FILETIME). */
struct whsem_w_self {
    uint32_t pid;
    uint64_t created;
};
WHSEM_HIDDEN struct whsem_w_self whsem__w_self(void);
/* Whether that process still runs: a pid could have been reused, not
 * together with its creation time. Doubt answers "alive". */
WHSEM_HIDDEN bool whsem__w_process_alive(uint32_t pid, uint64_t created);

/* ---- Mappings and the segment (segment.c) ---------------------------------- */

extern WHSEM_HIDDEN SRWLOCK whsem__maps_mu;

/* Finds or makes this process's mapping of a finalized name, attached to a
 * slot, with one use counted, its objects of backend be. max_count 0:
 * open existing only. */
WHSEM_HIDDEN whsem_status whsem__map_get(const char *final_name, size_t len, int32_t max_count,
                                         uint32_t mode, const struct whsem_backend *be,
                                         struct wmap **out);
/* Counts one more use of a mapping the caller holds a use of. */
WHSEM_HIDDEN void whsem__use(struct wmap *m);
/* Counts a use of a mapping the caller reached through a hazard pointer
 * only: false if its last use is gone (whatever handle led there has
 * ended). */
WHSEM_HIDDEN bool whsem__use_live(struct wmap *m);
/* Drops a use; the last one retires the mapping, which is torn down (slot
 * freed) once no thread's hazard pointer names it. Never called with a
 * segment mutex held: the teardown may run here and takes one. */
WHSEM_HIDDEN void whsem__unuse(struct wmap *m);

/* Takes the segment mutex. An abandoned mutex (its owner died inside) is
 * taken over and the counts recounted, which may reveal WHSEM_E_CORRUPT
 * (then the mutex is not held). */
WHSEM_HIDDEN whsem_status whsem__lock(struct wmap *m);
/* The same, waiting at most budget_ns: WHSEM_TIMEOUT, with a message, if
 * another process keeps the mutex that long. */
WHSEM_HIDDEN whsem_status whsem__lock_within(struct wmap *m, uint64_t budget_ns);
#define WHSEM_TRY_LOCK_NS 5000000u /* an asynchronous try-acquire */
WHSEM_HIDDEN void whsem__unlock(struct wmap *m);

/* Wakes count waits of slot i (its process's waiters recheck everything). */
WHSEM_HIDDEN void whsem__wake_slot(struct wmap *m, uint32_t i, LONG count);
/* Our own slot's wake semaphore. */
static inline HANDLE whsem__own_wake(struct wmap *m) { return m->wake[m->slot]; }

/* ---- Semaphores (semaphore.c) ----------------------------------------------- */

/* Releases a ticket counted in our slot that never became a handle. */
WHSEM_HIDDEN void whsem__give_back_unpublished(struct wmap *m);

/* ---- Cancellation (cancel.c) ----------------------------------------------- */

#include "cancel.h"

#endif
