/* SPDX-License-Identifier: MIT */
/*
 * The ticket accounting and crash recovery of a segment, once for every
 * platform (see accounting.h; the primitives are platform.h's).
 *
 * Bounded barging: handing every released ticket straight to a sleeping
 * process is perfectly fair but turns each acquisition into a context
 * switch: with more processes than CPUs throughput collapses (8 processes
 * on 2 CPUs managed a tenth of POSIX semaphores). Putting the ticket back
 * and waking a waiter to compete keeps the releaser running, like POSIX;
 * granting outright to a process that has waited too long bounds how long
 * anyone can be passed over.
 */
#include "accounting.h"

static whsem_status garbled_slot(struct wmap *m, uint32_t i)
{
    return whsem__fail(WHSEM_E_CORRUPT, WHSEM_P_WHERE_FMT ": slot %u is garbled", WHSEM_P_WHERE(m), i);
}

whsem_status whsem__check_locked(struct wmap *m)
{
    whsem_status st = whsem__p_segment_ok_locked(m);
    if (st != WHSEM_OK) return st;
    whsem_header *h = m->hdr;
    uint64_t used = 0;
    uint32_t n = whsem__slot_limit(h);
    for (uint32_t i = 0; i < n; i++) {
        const whsem_slot *s = &m->slots[i];
        uint32_t state = whsem__p_slot_state(s);
        if (state > WHSEM_P_SLOT_MAX) return garbled_slot(m, i);
        if (state != WHSEM_P_SLOT_FREE) used += (uint64_t)s->held + s->grants;
    }
    if (h->free < 0 || (uint64_t)h->free + used != (uint64_t)h->max_count ||
        h->slot_hwm > WHSEM_P_NSLOTS)
        return whsem__fail(WHSEM_E_CORRUPT,
                           WHSEM_P_WHERE_FMT ": counts do not add up (%d free + %llu held != max count %d)",
                           WHSEM_P_WHERE(m), h->free, (unsigned long long)used, h->max_count);
    return WHSEM_OK;
}

whsem_status whsem__recount_locked(struct wmap *m)
{
    whsem_status st = whsem__p_segment_ok_locked(m);
    if (st != WHSEM_OK) return st;
    whsem_header *h = m->hdr;
    uint64_t used = 0, waiting = 0;
    uint32_t n = whsem__slot_limit(h);
    for (uint32_t i = 0; i < n; i++) {
        whsem_slot *s = &m->slots[i];
        uint32_t state = whsem__p_slot_state(s);
        if (state == WHSEM_P_SLOT_FREE) continue;
        if (state > WHSEM_P_SLOT_MAX) return garbled_slot(m, i);
        used += (uint64_t)s->held + s->grants;
        waiting += s->want;
    }
    if (used > (uint64_t)h->max_count)
        return whsem__fail(WHSEM_E_CORRUPT,
                           WHSEM_P_WHERE_FMT ": %llu tickets are recorded as held but the max count is %d",
                           WHSEM_P_WHERE(m), (unsigned long long)used, h->max_count);
    h->free = (int32_t)((uint64_t)h->max_count - used);
    whsem__waiting_set(h, (uint32_t)waiting);
    if (h->rr_cursor >= WHSEM_P_NSLOTS) h->rr_cursor = 0;
    /* A waiter woken to compete may have died on its way. */
    h->ticket_woken = 0;
    return WHSEM_OK;
}

/* The next slot from *cursor on (round robin, for fairness between
 * processes) whose waiting acquisitions outnumber the tickets already
 * handed to it and, if long_ns, that has waited asleep that long; the
 * cursor moves past it. -1 if none. */
static int32_t pick_from(struct wmap *m, uint32_t *cursor, uint64_t now, uint64_t long_ns)
{
    whsem_header *h = m->hdr;
    uint32_t n = whsem__slot_limit(h);
    if (n == 0 || h->waiting == 0) return -1;
    uint32_t start = *cursor % n;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (start + k) % n;
        whsem_slot *s = &m->slots[i];
        if (whsem__p_slot_state(s) != WHSEM_P_SLOT_ACTIVE || s->want <= s->grants) continue;
        if (long_ns && (!s->wait_since_ns ||
                        now - whsem__shared_time(s->wait_since_ns, now) < long_ns))
            continue;
        *cursor = i + 1;
        return (int32_t)i;
    }
    return -1;
}

static int32_t pick_waiter(struct wmap *m)
{
    return pick_from(m, &m->hdr->rr_cursor, 0, 0);
}

static void grant(struct wmap *m, whsem_slot *s)
{
    if (s->held == 0 && s->grants == 0) s->since_unix_ms = whsem__p_coarse_unix_ms();
    s->grants++;
    m->hdr->acquisitions++;
    whsem__hold_other_take_locked(m->hdr);
}

/* Wakes a process to compete for a free ticket, unless a waiter woken so
 * is still on its way: it will look, and pass the turn on if tickets are
 * left (whsem__wait_done_locked). */
static int32_t compete_wake(struct wmap *m, int32_t i)
{
    whsem_header *h = m->hdr;
    if (h->ticket_woken) return -1;
    enum whsem_wake w = whsem__p_wake_claim(&m->slots[i]);
    if (w == WHSEM_WAKE_NONE) return -1;
    /* A 1.0 waiter would never clear it: those are woken as 1.0 wakes. */
    if (w == WHSEM_WAKE_SEND) h->ticket_woken = 1;
    whsem__p_mark_woken(&m->slots[i]);
    return i;
}

int32_t whsem__give_back_locked(struct wmap *m)
{
    whsem_header *h = m->hdr;
    if (h->waiting > 0) {
        uint64_t now = whsem__p_mono_ns();
        /* A check time further off than we would ever set is garbage. */
        if (now >= h->fair_check_ns || h->fair_check_ns - now > WHSEM_FAIR_CHECK_NS) {
            int32_t i = pick_from(m, &h->fair_cursor, now, WHSEM_FAIR_NS);
            if (i >= 0) {
                whsem_slot *s = &m->slots[i];
                grant(m, s);
                /* A process whose sleepers all have a wake on its way
                 * already finds the ticket when they look. */
                if (whsem__p_wake_claim(s) == WHSEM_WAKE_NONE) return -1;
                whsem__p_mark_woken(s);
                return i;
            }
            h->fair_check_ns = now + WHSEM_FAIR_CHECK_NS;
        }
    }
    h->free++;
    return whsem__pass_turn_locked(m);
}

void whsem__woke_locked(struct wmap *m)
{
    whsem__p_sleep_end(&m->slots[m->slot]);
    m->hdr->ticket_woken = 0;
}

int32_t whsem__pass_turn_locked(struct wmap *m)
{
    whsem_header *h = m->hdr;
    if (h->free <= 0 || h->waiting == 0 || h->ticket_woken) return -1;
    int32_t i = pick_waiter(m);
    return i < 0 ? -1 : compete_wake(m, i);
}

int32_t whsem__wait_done_locked(struct wmap *m, bool got)
{
    whsem__want_less(m->hdr, &m->slots[m->slot], got);
    return whsem__pass_turn_locked(m);
}

void whsem__distribute_locked(struct wmap *m)
{
    whsem_header *h = m->hdr;
    while (h->free > 0) {
        int32_t i = pick_waiter(m);
        if (i < 0) break;
        h->free--;
        grant(m, &m->slots[i]);
        /* A wake under the lock: distribution follows a recovery or an
         * abandonment scan, never the fast path. Sent even when counted
         * as on its way already: recovery must not rely on counts that a
         * dead lock owner may have left half-updated. */
        (void)whsem__p_wake_claim(&m->slots[i]);
        whsem__p_mark_woken(&m->slots[i]);
        whsem__p_wake_locked(m, (uint32_t)i);
    }
}

whsem_status whsem__scan_locked(struct wmap *m, bool full)
{
    whsem_header *h = m->hdr;
    uint32_t n = whsem__slot_limit(h);
    uint32_t dead = 0, reclaimed = 0;
    int64_t now_ms = whsem__p_coarse_unix_ms();
    for (uint32_t i = 0; i < n; i++) {
        whsem_slot *s = &m->slots[i];
        uint32_t state = whsem__p_slot_state(s);
        if (state == WHSEM_P_SLOT_FREE) continue;
        /* Holders the fast path left unstamped are stamped here: scans run
         * every abandonment-check period while anyone waits. */
        if ((s->held || s->grants) && s->since_unix_ms == 0) s->since_unix_ms = now_ms;
        if (!full && !s->held && !s->grants && !s->want) continue;
        if (whsem__slot_alive(m, i, false)) continue;
        /* Counts first, state last: a death in between leaves a slot that
         * the next scan finds dead again, never a FREE slot with counts. */
        if (s->held || s->grants) dead++;
        reclaimed++;
        whsem__count_reclaimed(h, s, now_ms);
        s->held = s->grants = s->want = 0;
        s->wait_since_ns = 0;
        WHSEM_FAULT_POINT("scan");
        whsem__p_release_dead_locked(m, i, state);
    }
    whsem_status st = WHSEM_OK;
    if (full || reclaimed) st = whsem__recount_locked(m);
    h->recoveries += dead;
    h->last_scan_ns = whsem__p_mono_ns();
    if (st == WHSEM_OK) whsem__distribute_locked(m);
    return st;
}

/* A free ticket, counted in our slot. A blocking wait that takes one is an
 * acquisition like any other (the statistics count every ticket handed
 * out: fast path, grants and waits alike). */
static bool take_free(struct wmap *m)
{
    whsem_header *h = m->hdr;
    if (h->free <= 0) return false;
    h->free--;
    whsem__take(&m->slots[m->slot]);
    h->acquisitions++;
    whsem__hold_other_take_locked(h);
    return true;
}

whsem_status whsem__counts_ok_locked(struct wmap *m)
{
    whsem_status st = whsem__p_segment_ok_locked(m);
    if (st != WHSEM_OK) return st;
    if (m->hdr->free > m->max_count)
        return whsem__fail(WHSEM_E_CORRUPT, WHSEM_P_WHERE_FMT ": %d free tickets but max count %d",
                           WHSEM_P_WHERE(m), m->hdr->free, m->max_count);
    return WHSEM_OK;
}

whsem_status whsem__nothing_held(struct wmap *m)
{
    return whsem__fail(WHSEM_E_CORRUPT, WHSEM_P_WHERE_FMT ": our slot records no ticket to release",
                       WHSEM_P_WHERE(m));
}

whsem_status whsem__try_once_locked(struct wmap *m, int32_t check_ms)
{
    if (whsem__take_grant(&m->slots[m->slot])) return WHSEM_OK;
    if (!whsem__scan_due(m, check_ms, whsem__p_mono_ns())) return WHSEM_TIMEOUT;
    whsem_status st = whsem__scan_locked(m, false);
    if (st != WHSEM_OK) return st;
    return take_free(m) ? WHSEM_OK : WHSEM_TIMEOUT;
}

whsem_status whsem__after_first_look_locked(struct wmap *m, int32_t check_ms, bool try_only)
{
    whsem_status st = whsem__counts_ok_locked(m);
    if (st != WHSEM_OK) return st;
    return try_only ? whsem__try_once_locked(m, check_ms) : WHSEM_PENDING;
}

whsem_status whsem__wait_look_locked(struct wmap *m, int32_t check_ms, uint64_t deadline,
                                     const struct whsem_wait *w, uint64_t *until)
{
    for (;;) {
        whsem_status st = whsem__p_segment_ok_locked(m);
        if (st != WHSEM_OK) return st;
        /* A grant to this process (any of its waits may take it), a free
         * ticket, then the ways the wait can end. */
        if (whsem__take_grant(&m->slots[m->slot]) || take_free(m)) return WHSEM_OK;
        if (w->cw && whsem__cancel_triggered(w->cw)) return WHSEM_CANCELED;
        if (atomic_load_explicit(w->sem_tag, memory_order_acquire) != w->sem)
            return whsem__fail(WHSEM_CANCELED, "the semaphore handle was closed while waiting");
        uint64_t now = whsem__p_mono_ns();
        if (deadline && now >= deadline) return WHSEM_TIMEOUT;
        if (whsem__scan_due(m, check_ms, now)) {
            if ((st = whsem__scan_locked(m, false)) != WHSEM_OK) return st;
            continue; /* the scan may have freed or granted tickets */
        }
        *until = deadline;
        if (check_ms >= 0) {
            uint64_t next_scan = whsem__next_scan(m, check_ms, now);
            if (!*until || next_scan < *until) *until = next_scan;
        }
        whsem_slot *s = &m->slots[m->slot];
        if (!s->wait_since_ns) s->wait_since_ns = now; /* goes to sleep unserved */
        return WHSEM_PENDING;
    }
}

void whsem__settle_leftovers_locked(struct wmap *m, whsem_wake_fn wake, void *ctx)
{
    whsem_slot *s = &m->slots[m->slot];
    while (s->grants > s->want) {
        s->grants--;
        int32_t w = whsem__give_back_locked(m);
        if (w >= 0) wake(ctx, m, w);
    }
    if (s->grants > 0 || (m->hdr->free > 0 && s->want > 0)) {
        whsem__p_mark_woken(s);
        wake(ctx, m, (int32_t)m->slot);
    }
}
