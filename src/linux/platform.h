/* SPDX-License-Identifier: MIT */
/*
 * Linux's side of the seam (../platform.h): the segment of layout.h,
 * futex wake words, and the liveness of recovery.c.
 */
#ifndef WHSEM_LINUX_PLATFORM_H
#define WHSEM_LINUX_PLATFORM_H

#include "cancel.h"
#include "mapping.h"
#include "seglock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

typedef struct seg_slot whsem_slot;
typedef struct seg_header whsem_header;

#define WHSEM_P_NSLOTS WHSEM_NSLOTS
#define WHSEM_P_SLOT_FREE SLOT_FREE
#define WHSEM_P_SLOT_ACTIVE SLOT_ACTIVE
#define WHSEM_P_SLOT_MAX SLOT_ACTIVE
#define WHSEM_P_WHERE_FMT "%s"
#define WHSEM_P_WHERE(m) ((m)->path)

static inline uint32_t whsem__p_slot_state(const whsem_slot *s)
{
    return atomic_load_explicit(&((whsem_slot *)s)->state, memory_order_relaxed);
}

static inline uint64_t whsem__p_mono_ns(void) { return whsem__mono_ns(); }
static inline int64_t whsem__p_coarse_unix_ms(void) { return whsem__coarse_unix_ms(); }
/* A monotonic clock at jiffy resolution, for hold times: a read costs a
 * fraction of the precise clock's (no TSC read, no scaling). */
static inline uint64_t whsem__p_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Its waiters sleep on wake_seq: a bump makes a sleeper that has not yet
 * slept see the change, the futex wake (later, unlocked) the others. */
static inline void whsem__p_mark_woken(whsem_slot *s)
{
    atomic_fetch_add_explicit(&s->wake_seq, 1, memory_order_release);
}

static inline void whsem__p_wake_locked(struct wmap *m, uint32_t i)
{
    whsem__futex_wake(&m->slots[i].wake_seq, 1);
}

/* Whether an occasion to wake slot s (a ticket put back or granted) needs
 * a wake sent, counting it if so: not when every thread of the owner that
 * sleeps there has a wake on its way already (layout.h). Without this,
 * each release while a woken waiter waits for a CPU woke it again, and
 * 99% of the futex calls of a contended release woke nobody. */
static inline enum whsem_wake whsem__p_wake_claim(whsem_slot *s)
{
    uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
    if (!(f & SLOT_F_COUNTS_SLEEPERS)) return WHSEM_WAKE_LEGACY;
    if (f & SLOT_F_ENGINE) return WHSEM_WAKE_SEND;
    uint32_t sleepers = (f >> SLOT_SLEEPERS_SHIFT) & SLOT_SLEEPERS_MAX;
    uint32_t wakes = f >> SLOT_WAKES_SHIFT;
    if (sleepers <= wakes) return WHSEM_WAKE_NONE;
    if (wakes < SLOT_WAKES_MAX)
        atomic_fetch_add_explicit(&s->flags, 1u << SLOT_WAKES_SHIFT, memory_order_relaxed);
    return WHSEM_WAKE_SEND;
}

/* Our thread goes to sleep on our slot's wake word (lock held). */
static inline void whsem__p_sleep_begin(whsem_slot *s)
{
    uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
    if (((f >> SLOT_SLEEPERS_SHIFT) & SLOT_SLEEPERS_MAX) < SLOT_SLEEPERS_MAX)
        atomic_fetch_add_explicit(&s->flags, 1u << SLOT_SLEEPERS_SHIFT, memory_order_relaxed);
}

/* It is back under the lock, woken or not: one sleeper fewer, and one wake
 * fewer on its way (whichever thread it woke, that one is awake now or the
 * count errs on the side of a spare wake). */
static inline void whsem__p_sleep_end(whsem_slot *s)
{
    uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
    uint32_t sleepers = (f >> SLOT_SLEEPERS_SHIFT) & SLOT_SLEEPERS_MAX, d = 0;
    if (sleepers && sleepers < SLOT_SLEEPERS_MAX) d += 1u << SLOT_SLEEPERS_SHIFT;
    if (f >> SLOT_WAKES_SHIFT) d += 1u << SLOT_WAKES_SHIFT;
    if (d) atomic_fetch_sub_explicit(&s->flags, d, memory_order_relaxed);
}

/* Our asynchronous engine looked at our slot (lock held), and sleeps on
 * its wake word from now on or not: while it does, every occasion wakes
 * the slot. A futex wake may have reached the engine rather than the
 * blocking wait it was counted for, so the wakes counted as on their way
 * are forgotten: at worst a spare wake, never a sleeper left without. */
static inline void whsem__p_engine_looked(whsem_slot *s, bool waits)
{
    uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
    uint32_t keep = ~((uint32_t)SLOT_WAKES_MAX << SLOT_WAKES_SHIFT);
    if (waits) {
        if (!(f & SLOT_F_ENGINE))
            atomic_fetch_or_explicit(&s->flags, SLOT_F_ENGINE, memory_order_relaxed);
    } else {
        keep &= ~(uint32_t)SLOT_F_ENGINE;
    }
    if (f & ~keep) atomic_fetch_and_explicit(&s->flags, keep, memory_order_relaxed);
}

/* Whether slot i's owner may still use what the slot holds. With
 * process_only, whether the owner process itself runs: what decides a
 * takeover of the segment lock, which a descriptor handed to another
 * process must not keep (SLOT_F_INHERITED). Doubt answers "alive". */
WHSEM_HIDDEN bool whsem__slot_alive(struct wmap *m, uint32_t i, bool process_only);
/* Frees a dead process's slot whose counts are zero: its share of the
 * lock sleepers, its identity, then its state (by CAS: an attaching
 * process may have taken the slot over meanwhile). */
WHSEM_HIDDEN void whsem__p_release_dead_locked(struct wmap *m, uint32_t i, uint32_t state);
/* A truncated file (busguard), or lock-word bits no library writes. */
WHSEM_HIDDEN whsem_status whsem__p_segment_ok_locked(struct wmap *m);


typedef pthread_mutex_t whsem_mutex;
#define WHSEM_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
static inline void whsem__mutex_lock(whsem_mutex *mu) { pthread_mutex_lock(mu); }
static inline void whsem__mutex_unlock(whsem_mutex *mu) { pthread_mutex_unlock(mu); }
static inline bool whsem__mutex_trylock(whsem_mutex *mu) { return pthread_mutex_trylock(mu) == 0; }

static inline void whsem__mutex_init(whsem_mutex *mu) { pthread_mutex_init(mu, NULL); }

typedef pthread_cond_t whsem_cond;
#define WHSEM_COND_INIT PTHREAD_COND_INITIALIZER
static inline void whsem__cond_signal(whsem_cond *cv) { pthread_cond_signal(cv); }
/* Waits on cv (mu held) at most ms; false when the time ran out. */
WHSEM_HIDDEN bool whsem__cond_wait_ms(whsem_cond *cv, whsem_mutex *mu, uint32_t ms);

static inline void whsem__p_init(void) { whsem__init(); }
/* The process generation, which fork() bumps in the child (process.h). */
static inline uint64_t whsem__p_pgen(void)
{
    return atomic_load_explicit(&whsem__pgen, memory_order_relaxed);
}

/* ---- the asynchronous engine's primitives (async_os.c) ---- */

/* A new operation's hold on the mapping it reached through a handle (and
 * a hazard pointer): Linux needs only the mapping attached to a slot of
 * this process (a forked child attaches on first use); pending, the
 * engine's hold keeps it. */
static inline whsem_status whsem__p_op_hold(struct wmap *m)
{
    return whsem__attached(m) ? WHSEM_OK : whsem__ensure_attached(m);
}
static inline void whsem__p_op_unhold(struct wmap *m) { (void)m; }
/* The engine's hold on a mapping with pending operations: its `active`
 * flag itself, which keeps anyone else from retiring it. Letting go
 * (under the segment lock when locked) says whether the engine was its
 * last user, and must then retire it with whsem__p_engine_release. */
static inline void whsem__p_engine_enter(struct wmap *m) { (void)m; }
static inline bool whsem__p_engine_leave(struct wmap *m, bool locked)
{
    return locked && m->handles == 0 && whsem__mark_dying_locked(m);
}
static inline void whsem__p_engine_release(struct wmap *m) { whsem__finish_dying(m); }
/* Under the segment lock: no semaphore handle of ours is open on m any
 * more, so nothing here can start waiting on it. */
static inline bool whsem__p_engine_alone_locked(struct wmap *m) { return m->handles == 0; }
/* A ticket keeps its mapping through the slot's held count. */
static inline void whsem__p_ticket_made(struct wmap *m) { (void)m; }

/* Words in this process's own memory that threads wait on (an operation's
 * `done`): a private futex. deadline: monotonic ns, 0 = none. */
WHSEM_HIDDEN void whsem__p_word_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t deadline);
WHSEM_HIDDEN void whsem__p_word_wake_all(_Atomic uint32_t *addr);

/* A detached library thread; its function is declared WHSEM_THREAD_FN and
 * ends with WHSEM_THREAD_END. what names it in the message on failure. */
#define WHSEM_THREAD_FN(name) void *name(void *arg)
#define WHSEM_THREAD_END return NULL
typedef void *(*whsem_thread_fn)(void *);
WHSEM_HIDDEN whsem_status whsem__p_thread_start(whsem_thread_fn fn, const char *what);

/* The blocked-thread probe: is a thread of ours that has been inside a
 * callback for a while blocked (asleep, in I/O), or only waiting for a
 * CPU? Its /proc state tells; the mark is unused. */
typedef pid_t whsem_thread_id;
WHSEM_HIDDEN whsem_thread_id whsem__p_thread_self_open(void);
static inline void whsem__p_thread_self_close(whsem_thread_id id) { (void)id; }
static inline uint64_t whsem__p_thread_mark(whsem_thread_id id) { (void)id; return 0; }
WHSEM_HIDDEN bool whsem__p_thread_blocked(whsem_thread_id id, uint64_t mark);

/* A completion queue's signal: an eventfd that is readable while entries
 * are posted (set and cleared under the queue's mutex). */
struct whsem_qsignal {
    int efd;
    bool readable;           /* efd holds a count */
};
WHSEM_HIDDEN whsem_status whsem__p_qsig_open(struct whsem_qsignal *s);
WHSEM_HIDDEN void whsem__p_qsig_close(struct whsem_qsignal *s);
WHSEM_HIDDEN void whsem__p_qsig_set(struct whsem_qsignal *s);
WHSEM_HIDDEN void whsem__p_qsig_clear(struct whsem_qsignal *s);
/* whsem_queue_fd's and whsem_queue_handle's answers. */
static inline whsem_status whsem__p_qsig_fd(const struct whsem_qsignal *s, int32_t *fd)
{
    *fd = s->efd;
    return WHSEM_OK;
}
#define WHSEM_P_QSIG_NO_HANDLE ((uint64_t)(int64_t)-1)
static inline uint64_t whsem__p_qsig_handle(const struct whsem_qsignal *s)
{
    return (uint64_t)(int64_t)s->efd;
}

/* The dispatcher's own word, which local events bump and wake. */
struct whsem_ctl {
    _Atomic uint32_t word;
};
static inline uint32_t whsem__p_ctl_seq(struct whsem_ctl *c)
{
    return atomic_load_explicit(&c->word, memory_order_acquire);
}
WHSEM_HIDDEN void whsem__p_ctl_poke(struct whsem_ctl *c);
static inline whsem_status whsem__p_ctl_ready(struct whsem_ctl *c) { (void)c; return WHSEM_OK; }
static inline void whsem__p_ctl_forget(struct whsem_ctl *c) { atomic_store(&c->word, 0); }

/* What the dispatcher sleeps on: its own word and the wake word of our
 * slot in every mapping with pending operations (futex_waitv). A mapping
 * the set has no room for (or a kernel without futex_waitv) is polled. */
#define WHSEM_P_WAITSET_MAX 128 /* the kernel's limit */
struct whsem_p_waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};
struct whsem_waitset {
    struct whsem_p_waitv w[WHSEM_P_WAITSET_MAX];
    int n;
};
WHSEM_HIDDEN void whsem__p_ws_begin(struct whsem_waitset *ws, struct whsem_ctl *c, uint32_t seq);
/* seen: what whsem__p_own_seen said under the segment lock. */
WHSEM_HIDDEN bool whsem__p_ws_add(struct whsem_waitset *ws, struct wmap *m, uint32_t seen);
/* Sleeps until an event, a wake of a member, or until (0: none). */
WHSEM_HIDDEN void whsem__p_ws_wait(struct whsem_waitset *ws, struct whsem_ctl *c, uint32_t seq,
                                   uint64_t until);
/* How many processes took a slot of m so far (layout.h), and that count
 * in the wait set: the next to attach ends the sleep (a set with no room
 * left does without: the dispatcher's periodic look finds newcomers). */
static inline uint32_t whsem__p_attaches(struct wmap *m)
{
    return atomic_load_explicit(&m->hdr->attaches, memory_order_acquire);
}
WHSEM_HIDDEN void whsem__p_ws_add_attaches(struct whsem_waitset *ws, struct wmap *m, uint32_t seen);
/* A thread in whsem_op_wait that settles its operation's mapping itself
 * sleeps on the operation's `done` and our slot's wake word of m at once
 * (futex_waitv), until one moves (from 0; from seen) or until deadline. */
WHSEM_HIDDEN bool whsem__p_help_ok(void);
WHSEM_HIDDEN void whsem__p_help_wait(_Atomic uint32_t *done, struct wmap *m, uint32_t seen,
                                     uint64_t deadline);
/* Our slot's wake word as seen under the segment lock: a wake after it
 * ends the dispatcher's sleep. */
static inline uint32_t whsem__p_own_seen(struct wmap *m)
{
    return atomic_load_explicit(&m->slots[m->slot].wake_seq, memory_order_acquire);
}

/* ---- watching processes for their end (pwatch.c) ---- */

/* Who a slot's process is, as read under the segment lock (no padding:
 * shared code compares identities bytewise). */
struct whsem_pident {
    int64_t pid;
    uint64_t start_ticks;
    uint64_t pidns;
};
/* Whether slot i of m is the calling process's (not its parent's, after
 * fork()). */
static inline bool whsem__p_slot_is_ours(const struct wmap *m, uint32_t i)
{
    return whsem__attached(m) && i == m->slot;
}
static inline void whsem__p_pident_of(struct wmap *m, uint32_t i, struct whsem_pident *id)
{
    const whsem_slot *s = &m->slots[i];
    *id = (struct whsem_pident){.pid = s->pid, .start_ticks = s->start_ticks, .pidns = s->pidns};
}
/* A pidfd in the watcher's epoll set, and what it was (fstat) when made. */
struct whsem_pwatch {
    int fd;
    dev_t st_dev;
    ino_t st_ino;
};
/* A fork() child's copy of a watch of its parent: let go of. */
WHSEM_HIDDEN void whsem__p_pwatch_drop(struct whsem_pwatch *w);

/* Wakes decided under a segment lock and done once the engine lock is let
 * go. Words, not mappings: a mapping that leaves the engine may be
 * unmapped by then, and a wake on a stale word is harmless. */
struct whsem_wakes {
    _Atomic uint32_t *word[8];
    int count[8];
    int n;
};
/* The shape of whsem__settle_leftovers_locked's wake callback. */
WHSEM_HIDDEN void whsem__p_wake_defer(void *wakes, struct wmap *m, int32_t slot);
WHSEM_HIDDEN void whsem__p_wakes_flush(struct whsem_wakes *wk);

#endif
