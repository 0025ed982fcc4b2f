/* SPDX-License-Identifier: MIT */
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

int whsem__reopen(struct wmap *m)
{
    struct stat st;
    int fd = open(m->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return -1;
    if (fstat(fd, &st) != 0 || st.st_dev != m->dev || st.st_ino != m->ino) {
        close(fd);
        return -1;
    }
    return fd;
}

enum byte_state { BYTE_FREE, BYTE_LOCKED, BYTE_UNKNOWN };

static enum byte_state byte_state(int fd, uint32_t i)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = WHSEM_LOCK_BASE + i, .l_len = 1};
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return BYTE_UNKNOWN;
    return fl.l_type == F_UNLCK ? BYTE_FREE : BYTE_LOCKED;
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
    return whsem__proc_stat_start(state, &ticks) && ticks == start_ticks ? PROC_RUNS : PROC_UNKNOWN;
}

bool whsem__slot_alive(struct wmap *m, uint32_t i, bool process_only)
{
    if (i == m->slot) return true; /* ourselves (or attaching to it) */
    const struct seg_slot *s = &m->slots[i];
    /* Read without the lock (a lock waiter asks about the lock's owner)
     * while a scan may be freeing the slot: whatever is read, the lock byte
     * and the start time decide. */
    uint32_t flags = atomic_load_explicit(&s->flags, memory_order_relaxed);
    int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
    bool ours = __atomic_load_n(&s->pidns, __ATOMIC_RELAXED) == whsem__self_id.pidns;
    uint64_t start = __atomic_load_n(&s->start_ticks, __ATOMIC_RELAXED);
    /* No descriptor is kept per name (mapping.h): one is opened for the
     * question. A file whose name was removed cannot be opened again, and
     * then the byte is as good as locked: only /proc can say "dead". */
    int fd = whsem__reopen(m);
    enum byte_state byte = fd < 0 ? BYTE_UNKNOWN : byte_state(fd, i);
    if (fd >= 0) close(fd);
    if (byte != BYTE_FREE) {
        if ((flags & SLOT_F_INHERITED) && !process_only) return true;
        return !(ours && proc_verdict(pid, start) == PROC_GONE);
    }
    if (flags & SLOT_F_ANCHORED) return false;
    return ours && proc_verdict(pid, start) == PROC_RUNS;
}

bool whsem__slot_abandoned(struct wmap *m, int fd, uint32_t i)
{
    const struct seg_slot *s = &m->slots[i];
    uint32_t flags = atomic_load_explicit(&s->flags, memory_order_relaxed);
    if (byte_state(fd, i) != BYTE_FREE) return false;
    return (flags & SLOT_F_ANCHORED) ||
           !(__atomic_load_n(&s->pidns, __ATOMIC_RELAXED) == whsem__self_id.pidns &&
             proc_verdict(__atomic_load_n(&s->pid, __ATOMIC_RELAXED),
                          __atomic_load_n(&s->start_ticks, __ATOMIC_RELAXED)) == PROC_RUNS);
}

static void subtract_at_most(_Atomic uint32_t *count, uint32_t n)
{
    uint32_t cur = atomic_load(count);
    while (n && !atomic_compare_exchange_weak(count, &cur, cur > n ? cur - n : 0)) {
    }
}

void whsem__forget_lock_sleeping(struct seg_header *h, struct seg_slot *s)
{
    uint32_t n = atomic_exchange(&s->lock_sleeping, 0);
    subtract_at_most(&h->lock_sleepers, n);
    if (atomic_load_explicit(&s->flags, memory_order_relaxed) & SLOT_F_COUNTS_SLEEPERS)
        subtract_at_most(&h->lock_sleepers_new, n);
}

void whsem__p_release_dead_locked(struct wmap *m, uint32_t i, uint32_t state)
{
    struct seg_slot *s = &m->slots[i];
    whsem__forget_lock_sleeping(m->hdr, s);
    /* It may have died woken and not yet back at the lock: with the wake
     * it owed the others cleared, the next unlock sends one. */
    atomic_store(&m->hdr->lock_woken, 0);
    __atomic_store_n(&s->pid, 0, __ATOMIC_RELAXED);
    atomic_store_explicit(&s->flags, 0, memory_order_relaxed);
    if (atomic_compare_exchange_strong(&s->state, &state, SLOT_FREE)) whsem__slot_freed(m->hdr, i);
}

whsem_status whsem__broken_status(struct wmap *m)
{
    return whsem__fail(WHSEM_E_CORRUPT,
                       "%s was truncated while in use (by a process that can write it); remove "
                       "the name to start afresh",
                       m->path);
}

whsem_status whsem__p_segment_ok_locked(struct wmap *m)
{
    if (whsem__is_broken(m)) return whsem__broken_status(m);
    struct seg_header *h = m->hdr;
    uint32_t bits = atomic_load_explicit(&h->lock, memory_order_relaxed) & ~WHSEM_LOCK_OWNER_MASK;
    if (bits || atomic_load(&h->lock_mode) > 1)
        return whsem__fail(WHSEM_E_CORRUPT, "%s: the lock word or mode is garbled", m->path);
    return WHSEM_OK;
}
