/*
 * Crash recovery: telling dead processes from live ones, giving their
 * tickets back, and repairing the counts after a death inside the lock.
 *
 * A process is alive while its slot's liveness byte is locked. The lock
 * is an open-file-description lock on our own descriptor of the segment
 * file: the kernel drops it when the last descriptor of that description
 * closes, which for a process that dies (even by SIGKILL) is at its exit.
 * No pid is involved, so pid reuse and pid namespaces cannot fool it. The
 * one way a live process can lose the lock is by closing a descriptor it
 * did not open (closefrom() and the like); for that case, a free byte is
 * double-checked against the slot's pid and process start time before
 * anything is reclaimed. Uncertainty always resolves to "alive": a wrong
 * "alive" delays tickets, a wrong "dead" would over-admit.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>

bool whsem__slot_alive(struct wmap *m, uint32_t i)
{
    if (i == m->slot) return true; /* ourselves (or attaching to it) */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = WHSEM_LOCK_BASE + i, .l_len = 1};
    if (fcntl(m->fd, F_OFD_GETLK, &fl) != 0 || fl.l_type != F_UNLCK) return true;
    const struct seg_slot *s = &m->slots[i];
    uint64_t ticks;
    return s->pid > 0 && s->pidns == whsem__self_id.pidns &&
           whsem__proc_start_ticks(s->pid, &ticks) && ticks == s->start_ticks;
}

void whsem__forget_lock_sleeping(struct seg_header *h, struct seg_slot *s)
{
    uint32_t n = atomic_exchange(&s->lock_sleeping, 0);
    uint32_t cur = atomic_load(&h->lock_sleepers);
    while (n && !atomic_compare_exchange_weak(&h->lock_sleepers, &cur, cur > n ? cur - n : 0)) {
    }
}

/* Slots past slot_hwm have never been used; a garbled hwm is clamped. */
static uint32_t slot_limit(const struct seg_header *h)
{
    return h->slot_hwm > WHSEM_NSLOTS ? WHSEM_NSLOTS : h->slot_hwm;
}

whsem_status whsem__check_locked(struct wmap *m)
{
    struct seg_header *h = m->hdr;
    uint64_t used = 0;
    for (uint32_t i = 0; i < WHSEM_NSLOTS; i++) {
        const struct seg_slot *s = &m->slots[i];
        uint32_t state = atomic_load_explicit(&s->state, memory_order_relaxed);
        if (state > SLOT_ACTIVE) return whsem__fail(WHSEM_E_CORRUPT, "%s: slot %u is garbled", m->path, i);
        if (state != SLOT_FREE) used += (uint64_t)s->held + s->grants;
    }
    uint32_t owner = atomic_load_explicit(&h->lock, memory_order_relaxed) & ~WHSEM_LOCK_OWNER_MASK;
    if (owner || h->free < 0 || (uint64_t)h->free + used != (uint64_t)h->max_count ||
        h->slot_hwm > WHSEM_NSLOTS || atomic_load(&h->lock_mode) > 1)
        return whsem__fail(WHSEM_E_CORRUPT,
                           "%s: counts do not add up (%d free + %llu held != max count %d)",
                           m->path, h->free, (unsigned long long)used, h->max_count);
    return WHSEM_OK;
}

whsem_status whsem__recount_locked(struct wmap *m)
{
    struct seg_header *h = m->hdr;
    uint64_t used = 0, waiting = 0;
    for (uint32_t i = 0; i < WHSEM_NSLOTS; i++) {
        struct seg_slot *s = &m->slots[i];
        uint32_t state = atomic_load_explicit(&s->state, memory_order_relaxed);
        if (state == SLOT_FREE) continue;
        if (state > SLOT_ACTIVE)
            return whsem__fail(WHSEM_E_CORRUPT, "%s: slot %u is garbled", m->path, i);
        if (i >= h->slot_hwm) h->slot_hwm = i + 1;
        used += (uint64_t)s->held + s->grants;
        waiting += s->want;
    }
    if (used > (uint64_t)h->max_count)
        return whsem__fail(WHSEM_E_CORRUPT,
                           "%s: %llu tickets are recorded as held but the max count is %d",
                           m->path, (unsigned long long)used, h->max_count);
    h->free = (int32_t)((uint64_t)h->max_count - used);
    h->waiting = (uint32_t)waiting;
    if (h->rr_cursor >= WHSEM_NSLOTS) h->rr_cursor = 0;
    return WHSEM_OK;
}

/* Picks the next process (round robin, for fairness between processes)
 * whose waiting acquisitions outnumber the tickets already handed to it. */
static int32_t pick_waiter(struct wmap *m)
{
    struct seg_header *h = m->hdr;
    uint32_t n = slot_limit(h);
    if (n == 0 || h->waiting == 0) return -1;
    uint32_t start = h->rr_cursor % n;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (start + k) % n;
        struct seg_slot *s = &m->slots[i];
        if (atomic_load_explicit(&s->state, memory_order_relaxed) == SLOT_ACTIVE &&
            s->want > s->grants) {
            h->rr_cursor = i + 1;
            return (int32_t)i;
        }
    }
    return -1;
}

static void grant(struct wmap *m, struct seg_slot *s)
{
    if (s->held == 0 && s->grants == 0) s->since_unix_ms = whsem__coarse_unix_ms();
    s->grants++;
    m->hdr->acquisitions++;
    atomic_fetch_add_explicit(&s->wake_seq, 1, memory_order_release);
}

/*
 * Bounded barging. Handing every released ticket straight to a sleeping
 * process is perfectly fair but turns each acquisition into a context
 * switch: with more processes than CPUs throughput collapses (8 processes
 * on 2 CPUs managed a tenth of POSIX semaphores). Putting the ticket back
 * and waking a waiter to compete keeps the releaser running, like POSIX;
 * granting outright to a process that has waited too long bounds how long
 * anyone can be passed over.
 */
int32_t whsem__give_back_locked(struct wmap *m)
{
    int32_t i = pick_waiter(m);
    if (i < 0) {
        m->hdr->free++;
        return -1;
    }
    struct seg_slot *s = &m->slots[i];
    uint64_t waited = whsem__mono_ns() - s->wait_since_ns;
    if (s->wait_since_ns && waited >= WHSEM_FAIR_NS) {
        grant(m, s);
    } else {
        m->hdr->free++;
        atomic_fetch_add_explicit(&s->wake_seq, 1, memory_order_release);
    }
    return i;
}

void whsem__distribute_locked(struct wmap *m)
{
    struct seg_header *h = m->hdr;
    while (h->free > 0) {
        int32_t i = pick_waiter(m);
        if (i < 0) break;
        h->free--;
        grant(m, &m->slots[i]);
        /* A wake under the lock: distribution follows a recovery or an
         * abandonment scan, never the fast path. */
        whsem__futex_wake(&m->slots[i].wake_seq, 1);
    }
}

whsem_status whsem__scan_locked(struct wmap *m, bool full)
{
    struct seg_header *h = m->hdr;
    uint32_t n = full ? WHSEM_NSLOTS : slot_limit(h);
    uint32_t dead = 0, reclaimed = 0;
    int64_t now_ms = whsem__coarse_unix_ms();
    for (uint32_t i = 0; i < n; i++) {
        struct seg_slot *s = &m->slots[i];
        uint32_t state = atomic_load_explicit(&s->state, memory_order_relaxed);
        if (state == SLOT_FREE) continue;
        /* Holders the fast path left unstamped are stamped here: scans run
         * every abandonment-check period while anyone waits. */
        if ((s->held || s->grants) && s->since_unix_ms == 0) s->since_unix_ms = now_ms;
        if (!full && !s->held && !s->grants && !s->want) continue;
        if (whsem__slot_alive(m, i)) continue;
        /* Counts first, state last: a death in between leaves a slot that
         * the next scan finds dead again, never a FREE slot with counts. */
        if (s->held || s->grants) dead++;
        reclaimed++;
        whsem__forget_lock_sleeping(h, s);
        s->held = s->grants = s->want = 0;
        s->wait_since_ns = 0;
        WHSEM_FAULT_POINT("scan");
        s->pid = 0;
        atomic_store_explicit(&s->state, SLOT_FREE, memory_order_relaxed);
    }
    whsem_status st = WHSEM_OK;
    if (full || reclaimed) st = whsem__recount_locked(m);
    h->recoveries += dead;
    h->last_scan_ns = whsem__mono_ns();
    if (st == WHSEM_OK) whsem__distribute_locked(m);
    return st;
}
