/*
 * Crash recovery: telling dead processes from live ones, giving their
 * tickets back, and repairing the counts after a death inside the lock.
 *
 * Liveness has two witnesses, each covering the other's blind spot:
 *
 *  - The slot's liveness byte. Its owner holds an open-file-description
 *    read lock on byte WHSEM_LOCK_BASE + slot through a description that
 *    nothing but a one-page mapping refers to: the descriptor is closed as
 *    soon as the page is mapped, and the page is MADV_DONTFORK. So the lock
 *    goes away exactly when the process's memory does (exit, even by
 *    SIGKILL, or exec); no child, whether made by fork(), a raw clone or
 *    vfork+exec, inherits it, and no closefrom() can drop it early. Such a
 *    slot is marked SLOT_F_ANCHORED, and for it a free byte is final.
 *  - The process itself, by pid and start time in /proc, when it lives in
 *    our pid namespace: a locked byte whose process has exited or is a
 *    zombie is dead all the same. That is what a byte held by someone else
 *    (a read-only user locking it on purpose; whsem run's command) cannot
 *    fake. A pid that runs with another start time may be a reused pid or
 *    a process in another time namespace: doubt, so the byte decides.
 *
 * Slots of libraries older than 1.1 (no SLOT_F_ANCHORED) hold their lock
 * through an ordinary descriptor; for them a free byte is double-checked
 * against pid and start time, as those libraries do themselves.
 *
 * Uncertainty always resolves to "alive": a wrong "alive" only delays
 * tickets, a wrong "dead" would over-admit.
 */
#include "recovery.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int whsem__query_fd(struct wmap *m)
{
    struct stat st;
    int fd = atomic_load_explicit(&m->fd, memory_order_relaxed);
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == m->dev && st.st_ino == m->ino) return fd;
    /* Closed behind our back, and the number possibly reused by the
     * application: never touch it again. The path still names our file
     * unless the name was removed or replaced. */
    int nfd = open(m->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (nfd < 0) return -1;
    if (fstat(nfd, &st) != 0 || st.st_dev != m->dev || st.st_ino != m->ino) {
        close(nfd);
        return -1;
    }
    if (!atomic_compare_exchange_strong(&m->fd, &fd, nfd)) {
        close(nfd); /* another thread replaced it first */
        return fd;
    }
    return nfd;
}

enum proc_verdict { PROC_RUNS, PROC_GONE, PROC_UNKNOWN };

/* What /proc says of a pid of our namespace: gone only when it certainly
 * is (no such process, or a zombie); a /proc we cannot read says nothing. */
static enum proc_verdict proc_verdict(int32_t pid, uint64_t start_ticks)
{
    if (pid <= 0 || whsem__self_id.start_ticks == 0) return PROC_UNKNOWN;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    errno = 0;
    const char *state = whsem__proc_stat_fields(path, buf, sizeof buf);
    if (!state) return errno == ENOENT || errno == ESRCH ? PROC_GONE : PROC_UNKNOWN;
    if (*state == 'Z' || *state == 'X' || *state == 'x') return PROC_GONE;
    uint64_t ticks;
    return whsem__proc_start_ticks(pid, &ticks) && ticks == start_ticks ? PROC_RUNS : PROC_UNKNOWN;
}

bool whsem__slot_alive(struct wmap *m, uint32_t i, bool process_only)
{
    if (i == m->slot) return true; /* ourselves (or attaching to it) */
    const struct seg_slot *s = &m->slots[i];
    uint32_t flags = atomic_load_explicit(&s->flags, memory_order_relaxed);
    int32_t pid = s->pid;
    bool ours = s->pidns == whsem__self_id.pidns;
    uint64_t start = s->start_ticks;
    int fd = whsem__query_fd(m);
    if (fd < 0) return true;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = WHSEM_LOCK_BASE + i, .l_len = 1};
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return true;
    if (fl.l_type != F_UNLCK) {
        if ((flags & SLOT_F_INHERITED) && !process_only) return true;
        return !(ours && proc_verdict(pid, start) == PROC_GONE);
    }
    if (flags & SLOT_F_ANCHORED) return false;
    return ours && proc_verdict(pid, start) == PROC_RUNS;
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

whsem_status whsem__broken_status(struct wmap *m)
{
    return whsem__fail(WHSEM_E_CORRUPT,
                       "%s was truncated while in use (by a process that can write it); remove "
                       "the name to start afresh",
                       m->path);
}

whsem_status whsem__check_locked(struct wmap *m)
{
    if (whsem__is_broken(m)) return whsem__broken_status(m);
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
    if (whsem__is_broken(m)) return whsem__broken_status(m);
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
    uint64_t now = whsem__mono_ns();
    uint64_t waited = now - whsem__shared_time(s->wait_since_ns, now);
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
        if (whsem__slot_alive(m, i, false)) continue;
        /* Counts first, state last: a death in between leaves a slot that
         * the next scan finds dead again, never a FREE slot with counts.
         * The state changes by CAS: an attaching process may have taken
         * the dead slot over meanwhile (whsem__attach), and then it is its. */
        if (s->held || s->grants) dead++;
        reclaimed++;
        whsem__forget_lock_sleeping(h, s);
        s->held = s->grants = s->want = 0;
        s->wait_since_ns = 0;
        WHSEM_FAULT_POINT("scan");
        s->pid = 0;
        atomic_store_explicit(&s->flags, 0, memory_order_relaxed);
        atomic_compare_exchange_strong(&s->state, &state, SLOT_FREE);
    }
    whsem_status st = WHSEM_OK;
    if (full || reclaimed) st = whsem__recount_locked(m);
    h->recoveries += dead;
    h->last_scan_ns = whsem__mono_ns();
    if (st == WHSEM_OK) whsem__distribute_locked(m);
    return st;
}

void whsem__settle_locked(struct wmap *m)
{
    struct seg_header *h = m->hdr;
    struct seg_slot *s = &m->slots[m->slot];
    uint32_t n = atomic_exchange(&m->owed_want, 0);
    m->async_ops -= (int)atomic_exchange(&m->owed_async_ops, 0);
    uint64_t now = whsem__mono_ns();
    for (; n && s->want; n--) whsem__want_less(h, s, false, now);
    /* Grants made to the waits that gave up belong to nobody here now. */
    while (s->grants > s->want) {
        s->grants--;
        int32_t w = whsem__give_back_locked(m);
        if (w >= 0) whsem__futex_wake(&m->slots[w].wake_seq, 1);
    }
}
