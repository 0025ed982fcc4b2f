/* SPDX-License-Identifier: MIT */
/*
 * The ticket accounting of a segment, written once for every platform
 * (accounting.c, on the primitives of platform.h): taking, wanting and
 * granting tickets in slots, the barging policy of a release, and crash
 * recovery (scan, recount, distribute). Everything here runs under the
 * segment lock.
 *
 * Invariant while nobody holds the lock:
 *     free + sum over used slots of (held + grants) == max_count
 */
#ifndef WHSEM_ACCOUNTING_H
#define WHSEM_ACCOUNTING_H

#include "counters.h"
#include "platform.h"

/* Slots at or beyond slot_hwm hold nothing (linux/layout.h says why; the
 * Windows segment keeps the same order): every walk over the slots stops
 * there. A garbled hwm is clamped. */
static inline uint32_t whsem__slot_limit(const whsem_header *h)
{
    return h->slot_hwm > WHSEM_P_NSLOTS ? WHSEM_P_NSLOTS : h->slot_hwm;
}

/* A process that has waited this long gets the next released ticket handed
 * to it instead of competing for it (see whsem__give_back_locked). */
#define WHSEM_FAIR_NS 2000000u
/* After finding nobody who waited that long, releases do not look again
 * for this long (a look may visit every slot in use). */
#define WHSEM_FAIR_CHECK_NS 200000u

/* A time read from shared memory, bounded by our own clock: a process in
 * another time namespace (or a hostile writer) may have written any value,
 * and a value from "the future" must not make anyone wait for it. */
static inline uint64_t whsem__shared_time(uint64_t t, uint64_t now)
{
    return t > now ? now : t;
}

/* Whether the last abandonment scan is check_ms old. A last scan "later
 * than now" was stamped by a clock ahead of ours: it says nothing, so scan. */
static inline bool whsem__scan_due(struct wmap *m, int32_t check_ms, uint64_t now)
{
    uint64_t last = m->hdr->last_scan_ns;
    return check_ms >= 0 && (last > now || now - last >= (uint64_t)check_ms * 1000000u);
}

/* When the next abandonment scan falls due, on our clock. */
static inline uint64_t whsem__next_scan(struct wmap *m, int32_t check_ms, uint64_t now)
{
    return whsem__shared_time(m->hdr->last_scan_ns, now) + (uint64_t)check_ms * 1000000u;
}

/* Counts a ticket taken from the pool in slot s. Reading even the coarse
 * clock would cost a quarter of the fast path, so a process that starts
 * holding is stamped 0 ("not yet seen") and the next scan writes the time. */
static inline void whsem__take(whsem_slot *s)
{
    if (WHSEM_UNLIKELY(s->held == 0 && s->grants == 0)) s->since_unix_ms = 0;
    s->held++;
}

/* Takes a ticket already granted to slot s. */
static inline bool whsem__take_grant(whsem_slot *s)
{
    if (s->grants == 0) return false;
    s->grants--;
    s->held++;
    return true;
}

/* One more acquisition of slot s waits. Its process's fairness clock
 * (wait_since_ns) starts when one of its waits first sleeps unserved
 * (whsem__wait_look_locked, the dispatcher), not here: a process that has
 * registered but not yet slept is running, and a ticket granted to it
 * outright would wait for it to find a CPU. */
static inline void whsem__want_more(whsem_header *h, whsem_slot *s)
{
    s->want++;
    whsem__waiting_set(h, h->waiting + 1);
}

/* One acquisition of slot s stops waiting. A process that got a ticket has
 * been served: its remaining waits age from their next sleep. */
static inline void whsem__want_less(whsem_header *h, whsem_slot *s, bool got)
{
    whsem__waiting_set(h, h->waiting - 1);
    if (--s->want == 0 || got) s->wait_since_ns = 0;
}

/* Whether the counts are consistent (WHSEM_E_CORRUPT if not): a garbled
 * segment must never admit more than max_count. */
WHSEM_HIDDEN whsem_status whsem__check_locked(struct wmap *m);
/* Recomputes free and waiting from the slots: whatever half-done update a
 * dead lock owner left behind disappears. */
WHSEM_HIDDEN whsem_status whsem__recount_locked(struct wmap *m);
/* Hands free tickets to processes with unmet demand, waking them. */
WHSEM_HIDDEN void whsem__distribute_locked(struct wmap *m);
/* A released ticket with processes waiting. If a process has waited
 * asleep longer than WHSEM_FAIR_NS, the ticket is granted to it outright
 * (the long waiters take turns, round robin); else it goes back to the
 * pool and a waiting process is woken to compete for it, unless one woken
 * so is on its way already. Returns the slot to wake (after unlocking),
 * or -1. */
WHSEM_HIDDEN int32_t whsem__give_back_locked(struct wmap *m);
/* A blocking wait back under the lock after sleeping (woken or not): it
 * no longer sleeps, and the waiter woken to compete, if any, has looked
 * (this one, or one that will look soon: either way the next put-back
 * ticket may wake another). */
WHSEM_HIDDEN void whsem__woke_locked(struct wmap *m);
/* A free ticket that no waiter woken to compete is on its way to goes to
 * a sleeper: the slot to wake after unlocking, or -1. A woken waiter
 * passes the turn on so, whether it got a ticket or not, and the engine
 * after serving its operations: a burst of put-back tickets reaches as
 * many sleepers, one wake at a time, while a lone release keeps at most
 * one waiter on its way. */
WHSEM_HIDDEN int32_t whsem__pass_turn_locked(struct wmap *m);
/* A blocking wait ends (got: with a ticket): its want goes, and the turn
 * is passed on (whsem__pass_turn_locked's slot to wake, or -1). */
WHSEM_HIDDEN int32_t whsem__wait_done_locked(struct wmap *m, bool got);
/* Looks for dead processes (all used slots when full, else those holding
 * or wanting tickets), reclaims their tickets and hands free tickets to
 * waiting processes. */
WHSEM_HIDDEN whsem_status whsem__scan_locked(struct wmap *m, bool full);

/* Wakes slot i of m (the caller knows when: now or after unlocking). */
typedef void (*whsem_wake_fn)(void *ctx, struct wmap *m, int32_t slot);

/* After the asynchronous engine served its operations: grants nobody in
 * this process can use go to the next process; grants left over, and a
 * free ticket no operation took, are for this process's blocking waits (a
 * wake-up meant for them may have woken the engine instead). */
WHSEM_HIDDEN void whsem__settle_leftovers_locked(struct wmap *m, whsem_wake_fn wake, void *ctx);

/* An acquisition's first look (lock held): a free ticket, taken into our
 * slot. A free count above the max count is garbage and takes nothing
 * (whsem__counts_ok_locked says so). */
static inline bool whsem__take_free_first_locked(struct wmap *m)
{
    whsem_header *h = m->hdr;
    if (WHSEM_UNLIKELY(h->free <= 0 || h->free > m->max_count)) return false;
    h->free--;
    WHSEM_FAULT_POINT("acquire");
    whsem__take(&m->slots[m->slot]);
    h->acquisitions++;
    return true;
}

/* Whether the counts can be trusted beyond the first look: the platform's
 * checks of the segment, and free within the max count. WHSEM_E_CORRUPT
 * with its message if not. */
WHSEM_HIDDEN whsem_status whsem__counts_ok_locked(struct wmap *m);

/* A ticket released from our slot (lock held, held > 0): back to the
 * pool, or, with processes waiting, through whsem__give_back_locked.
 * Returns the slot to wake after unlocking, or -1. */
static inline int32_t whsem__put_back_locked(struct wmap *m)
{
    whsem_header *h = m->hdr;
    m->slots[m->slot].held--;
    WHSEM_FAULT_POINT("release");
    if (WHSEM_UNLIKELY(h->waiting > 0)) {
        int32_t w = whsem__give_back_locked(m);
        WHSEM_FAULT_POINT("handoff");
        return w;
    }
    h->free++;
    return -1;
}
/* WHSEM_E_CORRUPT: a release found our slot holding nothing. */
WHSEM_HIDDEN whsem_status whsem__nothing_held(struct wmap *m);

/* An acquisition whose first look found no free ticket (lock held, and
 * still held on return): the counts checked, then a try's second look
 * (whsem__try_once_locked); WHSEM_PENDING: the caller waits, as its
 * platform sleeps. */
WHSEM_HIDDEN whsem_status whsem__after_first_look_locked(struct wmap *m, int32_t check_ms,
                                                         bool try_only);

/* A try-acquire that found no free ticket at its first look: a ticket
 * granted to its process will do; else, when a scan for dead holders is
 * due, the scan and one more look. WHSEM_OK (the ticket counted in our
 * slot), WHSEM_TIMEOUT, or the scan's error. */
WHSEM_HIDDEN whsem_status whsem__try_once_locked(struct wmap *m, int32_t check_ms);

/* What can end a blocking wait besides a ticket and its deadline. */
struct whsem_wait {
    const _Atomic uint64_t *sem_tag; /* the entry of the semaphore handle it
                                        waits on: closed once it differs */
    uint64_t sem;
    struct cwait *cw;                /* its cancellation, or NULL */
};

/* One look of a waiting acquisition (its want counted), before it sleeps:
 * takes a grant to its process or a free ticket (WHSEM_OK, counted in our
 * slot), ends the wait (canceled, its handle closed, its deadline), or
 * runs a due scan and looks again. WHSEM_PENDING: sleep until woken, or
 * until *until if not 0 (the deadline or the next scan). */
WHSEM_HIDDEN whsem_status whsem__wait_look_locked(struct wmap *m, int32_t check_ms,
                                                  uint64_t deadline, const struct whsem_wait *w,
                                                  uint64_t *until);

#endif
