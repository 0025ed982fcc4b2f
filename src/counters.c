/* SPDX-License-Identifier: MIT */
/*
 * A segment's counters (seg_counters.h, counters.h), once for every
 * platform.
 *
 * The waiters history is a ring of per-second maxima of the header's
 * `waiting`, written where `waiting` changes: only the slow path, under
 * the lock. A second in which nothing changed has no write; so that a
 * reader can still tell "nothing changed" from "not kept", the first
 * change after a quiet spell writes the seconds of the spell with the
 * value that held through them, and the seconds since the last change
 * (waiters_sec) have the current value.
 */
#include "counters.h"

#include "backend.h"
#include "handles.h"

_Static_assert(WHSEM_SEG_WAIT_BUCKETS == WHSEM_WAIT_BUCKETS, "one histogram");
_Static_assert(WHSEM_SEG_HISTORY <= WHSEM_HISTORY_MAX, "the history fits the report");

static inline void add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint32_t unix_sec(void) { return (uint32_t)(whsem__p_coarse_unix_ms() / 1000); }

void whsem__hold_sample_locked(whsem_header *h, uint64_t *since)
{
    struct seg_counters *c = &h->counters;
    uint64_t tick = whsem__hold_stamp(0); /* the clock, no weight yet */
    /* The first looks since the last timed one (1.0 peers' included: they
     * time nothing); at least this one. Hostile writes make it anything. */
    uint64_t n = (h->acquisitions - c->sample_acq) - (c->other_takes - c->sample_other);
    if (n == 0) n = 1;
    else if (n > WHSEM_HOLD_TAG) n = WHSEM_HOLD_TAG;
    /* The last timed hold began in this same tick: holds come faster than
     * the clock tells apart, time fewer. Else time every one again: long
     * holds are what the sum is made of. */
    if (tick == c->sample_tick) {
        if (c->sample_shift < WHSEM_HOLD_SHIFT_MAX) c->sample_shift++;
    } else {
        c->sample_shift = 0;
    }
    if (c->sample_shift > WHSEM_HOLD_SHIFT_MAX) c->sample_shift = 0;
    c->sample_tick = tick;
    c->sample_acq = h->acquisitions;
    c->sample_other = c->other_takes;
    c->sample_next = h->acquisitions + (1u << c->sample_shift);
    *since = tick | n;
}

void whsem__count_timed_hold(whsem_header *h, uint64_t *pstamp)
{
    uint64_t stamp = *pstamp;
    *pstamp = 0;
    uint64_t now = whsem__p_coarse_ns() & ~(uint64_t)WHSEM_HOLD_TAG;
    uint64_t began = stamp & ~(uint64_t)WHSEM_HOLD_TAG, n = stamp & WHSEM_HOLD_TAG;
    if (now >= began) h->counters.hold_ns += (now - began) * n;
}

void whsem__count_end(whsem_header *h, whsem_status st, bool timed)
{
    if (st == WHSEM_TIMEOUT && timed) add(&h->counters.timeouts, 1);
    else if (st == WHSEM_CANCELED) add(&h->counters.cancellations, 1);
}

void whsem__count_wait(whsem_header *h, uint64_t began, uint64_t ended)
{
    uint64_t ns = ended > began ? ended - began : 0;
    add(&h->counters.waits, 1);
    add(&h->counters.wait_ns, ns);
    add(&h->counters.wait_buckets[whsem__wait_bucket(ns)], 1);
}

void whsem__waiting_set(whsem_header *h, uint32_t n)
{
    struct seg_counters *c = &h->counters;
    uint32_t before = h->waiting, now = unix_sec(), last = c->waiters_sec;
    h->waiting = n;
    struct seg_waiters_sec *e = &c->waiters[now % WHSEM_SEG_HISTORY];
    if (e->sec != now) {
        /* The first change this second: `before` held since the last
         * change (if the clock went back, nothing is known to have). */
        if (last < now) {
            uint32_t from = now - last < WHSEM_SEG_HISTORY ? last + 1 : now - (WHSEM_SEG_HISTORY - 1);
            for (uint32_t s = from; s != now; s++)
                c->waiters[s % WHSEM_SEG_HISTORY] = (struct seg_waiters_sec){s, before};
        }
        *e = (struct seg_waiters_sec){now, before};
    }
    if (n > e->most) e->most = n;
    c->waiters_sec = now;
}

void whsem__count_reclaimed(whsem_header *h, const whsem_slot *s, int64_t now_ms)
{
    /* since_unix_ms is when the process was first seen holding (a grant,
     * or the first scan after its fast-path acquisition): every ticket it
     * holds counts from then, exact for one ticket at a time. Never before
     * the name existed: the slot may hold anything. */
    int64_t since = s->since_unix_ms > h->created_unix_ms ? s->since_unix_ms : h->created_unix_ms;
    if (!s->held || s->since_unix_ms <= 0 || now_ms <= since) return;
    uint64_t each = (uint64_t)(now_ms - since) * 1000000u, all;
    if (__builtin_mul_overflow(each, (uint64_t)s->held, &all)) all = UINT64_MAX;
    h->counters.hold_ns += all;
}

whsem_status whsem__canceled_before(struct hentry *e, uint64_t sem,
                                    whsem_status(WHSEM_CALL *shm_acquire)(whsem_sem, int64_t,
                                                                          whsem_cancel, whsem_ticket *))
{
    void *saved;
    struct wmap *m = whsem__protect(e, sem, &saved);
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    /* Compared by the acquire entry, as the public functions tell their
     * own objects (backend.h): this file is below the backend's table. */
    if (((struct whsem_semobj *)m)->be->acquire == shm_acquire) whsem__count_end(m->hdr, WHSEM_CANCELED, true);
    whsem__unprotect(saved);
    return WHSEM_CANCELED;
}

void whsem__counters_locked(struct wmap *m, struct sem_counters *c)
{
    whsem_header *h = m->hdr;
    const struct seg_counters *k = &h->counters;
    c->acquisitions = h->acquisitions;
    /* Every ticket handed out is out now or has come back (a release, a
     * reclaim, a grant given back): releases need no write of their own.
     * Counts a dead lock owner left half-done may not add up: never
     * below zero. */
    uint64_t out = h->free >= 0 && h->free <= h->max_count ? (uint64_t)(h->max_count - h->free) : 0;
    c->releases = c->acquisitions > out ? c->acquisitions - out : 0;
    c->timeouts = atomic_load_explicit(&k->timeouts, memory_order_relaxed);
    c->cancellations = atomic_load_explicit(&k->cancellations, memory_order_relaxed);
    c->waits = atomic_load_explicit(&k->waits, memory_order_relaxed);
    c->wait_ns = atomic_load_explicit(&k->wait_ns, memory_order_relaxed);
    c->hold_ns = k->hold_ns;
    c->created_unix_ms = h->created_unix_ms;
    for (unsigned i = 0; i < WHSEM_SEG_WAIT_BUCKETS; i++)
        c->wait_buckets[i] = atomic_load_explicit(&k->wait_buckets[i], memory_order_relaxed);

    uint32_t now = unix_sec(), last = k->waiters_sec, carry = 0;
    c->seconds = WHSEM_SEG_HISTORY;
    for (uint32_t i = 0; i < WHSEM_SEG_HISTORY; i++) {
        uint32_t s = now - (WHSEM_SEG_HISTORY - 1) + i;
        const struct seg_waiters_sec *e = &k->waiters[s % WHSEM_SEG_HISTORY];
        uint32_t v;
        if (e->sec == s && s != 0) v = e->most;
        else if (s > last) v = h->waiting; /* nothing changed since */
        else v = carry;                    /* the clock went back   */
        /* A 1.0 process changes `waiting` without writing the history. */
        if (s == now && h->waiting > v) v = h->waiting;
        c->waiters[i] = carry = v;
    }
}
