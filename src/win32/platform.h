/* SPDX-License-Identifier: MIT */
/*
 * Windows's side of the seam (../platform.h): the segment of win32.h, slot
 * wake semaphores, and liveness by process handle (segment.c).
 */
#ifndef WHSEM_WIN32_PLATFORM_H
#define WHSEM_WIN32_PLATFORM_H

#include "win32.h"

typedef struct wseg_slot whsem_slot;
typedef struct wseg_header whsem_header;

#define WHSEM_P_NSLOTS WHSEM_W_NSLOTS
#define WHSEM_P_SLOT_FREE WSLOT_FREE
#define WHSEM_P_SLOT_ACTIVE WSLOT_ACTIVE
#define WHSEM_P_SLOT_MAX WSLOT_ACTIVE
#define WHSEM_P_WHERE_FMT "%ls"
#define WHSEM_P_WHERE(m) ((m)->obj)

static inline uint32_t whsem__p_slot_state(const whsem_slot *s) { return s->state; }
static inline uint64_t whsem__p_mono_ns(void) { return whsem__w_mono_ns(); }
static inline int64_t whsem__p_coarse_unix_ms(void) { return whsem__w_unix_ms(); }
/* A monotonic clock at tick resolution, for hold times. */
static inline uint64_t whsem__p_coarse_ns(void) { return GetTickCount64() * 1000000u; }

/* Waiters sleep on their slot's semaphore, which whoever wakes them
 * releases after unlocking: nothing to mark in the segment. */
static inline void whsem__p_mark_woken(whsem_slot *s) { (void)s; }
static inline void whsem__p_wake_locked(struct wmap *m, uint32_t i) { whsem__wake_slot(m, i, 1); }
/* Slot wakes are semaphore releases, which a later wait consumes: every
 * occasion wakes (no sleepers are counted). */
static inline enum whsem_wake whsem__p_wake_claim(whsem_slot *s)
{
    (void)s;
    return WHSEM_WAKE_SEND;
}
static inline void whsem__p_sleep_begin(whsem_slot *s) { (void)s; }
static inline void whsem__p_sleep_end(whsem_slot *s) { (void)s; }
static inline void whsem__p_engine_looked(whsem_slot *s, bool waits) { (void)s; (void)waits; }

/* The mutex is a kernel object: no lock word to check in the segment. */
static inline whsem_status whsem__p_segment_ok_locked(struct wmap *m)
{
    (void)m;
    return WHSEM_OK;
}

/* Whether slot i's process still runs (pid + creation time); a Windows
 * process cannot hand its liveness on, so process_only changes nothing. */
WHSEM_HIDDEN bool whsem__slot_alive(struct wmap *m, uint32_t i, bool process_only);
WHSEM_HIDDEN void whsem__p_release_dead_locked(struct wmap *m, uint32_t i, uint32_t state);

typedef SRWLOCK whsem_mutex;
#define WHSEM_MUTEX_INIT SRWLOCK_INIT
static inline void whsem__mutex_lock(whsem_mutex *mu) { AcquireSRWLockExclusive(mu); }
static inline void whsem__mutex_unlock(whsem_mutex *mu) { ReleaseSRWLockExclusive(mu); }
static inline bool whsem__mutex_trylock(whsem_mutex *mu) { return TryAcquireSRWLockExclusive(mu); }

static inline void whsem__mutex_init(whsem_mutex *mu) { InitializeSRWLock(mu); }

typedef CONDITION_VARIABLE whsem_cond;
#define WHSEM_COND_INIT CONDITION_VARIABLE_INIT
static inline void whsem__cond_signal(whsem_cond *cv) { WakeConditionVariable(cv); }
/* Waits on cv (mu held) at most ms; false when the time ran out. */
static inline bool whsem__cond_wait_ms(whsem_cond *cv, whsem_mutex *mu, uint32_t ms)
{
    return SleepConditionVariableSRW(cv, mu, ms, 0) != 0;
}

static inline void whsem__p_init(void) {}
/* No fork() on Windows: one process generation. */
static inline uint64_t whsem__p_pgen(void) { return 0; }

/* ---- the asynchronous engine's primitives (async_os.c) ---- */

/* Uses keep a mapping (win32.h): a new operation takes one (the handle
 * that led to it may be closed meanwhile: then it is refused) and gives
 * it back once complete; the engine takes one while the mapping is in its
 * list, given back after it lets go (with no lock held: the last use
 * tears the mapping down); and a ticket handle holds one. */
static inline whsem_status whsem__p_op_hold(struct wmap *m)
{
    if (whsem__use_live(m)) return WHSEM_OK;
    return whsem__fail(WHSEM_E_INVALID_HANDLE, "the semaphore handle was closed");
}
static inline void whsem__p_op_unhold(struct wmap *m) { whsem__unuse(m); }
static inline void whsem__p_engine_enter(struct wmap *m) { whsem__use(m); }
static inline bool whsem__p_engine_leave(struct wmap *m, bool locked)
{
    (void)m, (void)locked;
    return true;
}
static inline void whsem__p_engine_release(struct wmap *m) { whsem__unuse(m); }
/* Nothing but the engine keeps m (no handle, ticket or call of ours), so
 * nothing here can start waiting on it. */
static inline bool whsem__p_engine_alone_locked(struct wmap *m) { return m->uses <= 1; }
static inline void whsem__p_ticket_made(struct wmap *m) { whsem__use(m); }

/* Words in this process's own memory that threads wait on (an operation's
 * `done`): WaitOnAddress. deadline: monotonic ns, 0 = none. */
WHSEM_HIDDEN void whsem__p_word_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t deadline);
static inline void whsem__p_word_wake_all(_Atomic uint32_t *addr) { WakeByAddressAll((void *)addr); }

/* A detached library thread (it pins the DLL: see whsem__w_pin_module). */
#define WHSEM_THREAD_FN(name) DWORD WINAPI name(void *arg)
#define WHSEM_THREAD_END return 0
typedef DWORD(WINAPI *whsem_thread_fn)(void *);
WHSEM_HIDDEN whsem_status whsem__p_thread_start(whsem_thread_fn fn, const char *what);

/* The blocked-thread probe: Windows cannot tell a blocked thread from one
 * waiting for a CPU, but CPU time that does not move is the sign of the
 * former. The mark is the thread's CPU time when its callback started. */
typedef HANDLE whsem_thread_id;
WHSEM_HIDDEN whsem_thread_id whsem__p_thread_self_open(void);
static inline void whsem__p_thread_self_close(whsem_thread_id id)
{
    if (id) CloseHandle(id);
}
WHSEM_HIDDEN uint64_t whsem__p_thread_mark(whsem_thread_id id);
static inline bool whsem__p_thread_blocked(whsem_thread_id id, uint64_t mark)
{
    return id && whsem__p_thread_mark(id) == mark;
}

/* A completion queue's signal: a manual-reset event, set while entries
 * are posted (set and cleared under the queue's mutex). */
struct whsem_qsignal {
    HANDLE event;
};
WHSEM_HIDDEN whsem_status whsem__p_qsig_open(struct whsem_qsignal *s);
static inline void whsem__p_qsig_close(struct whsem_qsignal *s)
{
    if (s->event) CloseHandle(s->event);
    s->event = NULL;
}
static inline void whsem__p_qsig_set(struct whsem_qsignal *s) { SetEvent(s->event); }
static inline void whsem__p_qsig_clear(struct whsem_qsignal *s) { ResetEvent(s->event); }
/* No descriptor to offer: an event loop waits on whsem_queue_handle's. */
WHSEM_HIDDEN whsem_status whsem__p_qsig_fd(const struct whsem_qsignal *s, int32_t *fd);
#define WHSEM_P_QSIG_NO_HANDLE ((uint64_t)0) /* NULL: -1 would be the current process */
static inline uint64_t whsem__p_qsig_handle(const struct whsem_qsignal *s)
{
    return (uint64_t)(uintptr_t)s->event;
}

/* The dispatcher's own auto-reset event, and a count of pokes (so that an
 * idle dispatcher can tell that something arrived before it exits). */
struct whsem_ctl {
    HANDLE event;
    _Atomic uint32_t seq;
    INIT_ONCE once;
};
static inline uint32_t whsem__p_ctl_seq(struct whsem_ctl *c) { return atomic_load(&c->seq); }
WHSEM_HIDDEN void whsem__p_ctl_poke(struct whsem_ctl *c);
WHSEM_HIDDEN whsem_status whsem__p_ctl_ready(struct whsem_ctl *c);
static inline void whsem__p_ctl_forget(struct whsem_ctl *c) { (void)c; }

/* What the dispatcher sleeps on: its event and our slot's wake semaphore
 * of every mapping with pending operations (WaitForMultipleObjects); the
 * mappings past its limit are polled. */
struct whsem_waitset {
    HANDLE objs[MAXIMUM_WAIT_OBJECTS];
    DWORD n;
};
static inline void whsem__p_ws_begin(struct whsem_waitset *ws, struct whsem_ctl *c, uint32_t seq)
{
    (void)seq;
    ws->objs[0] = c->event;
    ws->n = 1;
}
/* Pending operations keep m in the engine, and only the dispatcher lets it
 * go: the semaphore's handle stays valid while the dispatcher waits. */
static inline bool whsem__p_ws_add(struct whsem_waitset *ws, struct wmap *m, uint32_t seen)
{
    (void)seen;
    if (ws->n == MAXIMUM_WAIT_OBJECTS) return false;
    ws->objs[ws->n++] = whsem__own_wake(m);
    return true;
}
WHSEM_HIDDEN void whsem__p_ws_wait(struct whsem_waitset *ws, struct whsem_ctl *c, uint32_t seq,
                                   uint64_t until);
/* Nobody tells a Windows process that another one attached: the
 * dispatcher's periodic look finds it (WATCH_REFRESH_NS). */
static inline uint32_t whsem__p_attaches(struct wmap *m)
{
    (void)m;
    return 0;
}
static inline void whsem__p_ws_add_attaches(struct whsem_waitset *ws, struct wmap *m, uint32_t seen)
{
    (void)ws, (void)m, (void)seen;
}
/* WaitOnAddress (an operation's `done`) cannot be waited on together
 * with a semaphore (our slot's wake): a thread in whsem_op_wait waits for
 * the dispatcher. */
static inline bool whsem__p_help_ok(void) { return false; }
static inline void whsem__p_help_wait(_Atomic uint32_t *done, struct wmap *m, uint32_t seen,
                                      uint64_t deadline)
{
    (void)done, (void)m, (void)seen, (void)deadline;
}
/* A semaphore keeps its count: nothing to remember from under the lock. */
static inline uint32_t whsem__p_own_seen(struct wmap *m)
{
    (void)m;
    return 0;
}

/* ---- watching processes for their end (process.c) ---- */

/* Who a slot's process is: pid and creation time (no padding: shared
 * code compares identities bytewise). */
struct whsem_pident {
    uint64_t pid;
    uint64_t created;
};
/* Whether slot i of m is the calling process's. */
static inline bool whsem__p_slot_is_ours(const struct wmap *m, uint32_t i) { return i == m->slot; }
static inline void whsem__p_pident_of(struct wmap *m, uint32_t i, struct whsem_pident *id)
{
    *id = (struct whsem_pident){.pid = m->slots[i].pid, .created = m->slots[i].created};
}
/* The process's handle and its wait in the thread pool. */
struct whsem_pwatch {
    HANDLE process;
    HANDLE wait;
};
/* No fork() on Windows. */
static inline void whsem__p_pwatch_drop(struct whsem_pwatch *w) { (void)w; }

/* Releasing a slot's wake semaphore is safe under the segment mutex, and
 * the mapping stays open until the engine lets go of it: wakes are done
 * at once. One per grant for another process; for our own slot, as many
 * as it has grants, since our dispatcher is one of its waiters and is not
 * asleep now. */
struct whsem_wakes {
    int n;
};
WHSEM_HIDDEN void whsem__p_wake_defer(void *wakes, struct wmap *m, int32_t slot);
static inline void whsem__p_wakes_flush(struct whsem_wakes *wk) { (void)wk; }

#endif
