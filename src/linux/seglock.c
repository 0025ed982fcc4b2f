/* SPDX-License-Identifier: MIT */
/*
 * The segment lock: a futex word in the segment whose value names the
 * owning process's slot.
 *
 * Uncontended, taking and dropping it is one compare-and-swap and one
 * exchange: no system call. A waiter sleeps on the futex with a short
 * timeout; when it wakes and the same owner still holds the lock, it asks
 * whether that owner process is alive (see recovery.c). A live owner that
 * does not let go (stopped, or a word forged by a hostile writer) is waited
 * for only until the caller's deadline: no timed call outlives its timeout
 * because of another process.
 * A dead owner's lock is taken over and, because the owner may have died
 * halfway through an update, the shared counts are recounted from the
 * slots before anyone uses them.
 */
#include "recovery.h"

#include <errno.h>
#include <stdio.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SPINS 100
#define OWNER_CHECK_NS 50000000u /* how long a waiter trusts a silent owner */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Called by a thread that has counted itself in lock_sleepers, before it
 * looks at the lock again and sleeps. With every process registered for
 * membarrier(GLOBAL_EXPEDITED), the system call makes each running thread
 * of each such process execute a full barrier: an unlocker's plain store
 * of 0 either becomes visible to our next look, or its later load of
 * lock_sleepers sees our count and it wakes us. */
static void sleep_fence(struct seg_header *h)
{
    if (atomic_load_explicit(&h->lock_mode, memory_order_relaxed) == 0 &&
        syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0) == 0)
        return;
    atomic_thread_fence(memory_order_seq_cst);
}

/* Sleeps on the lock word while it still reads v, at most until `until`.
 * Counted among the sleepers only for the sleep itself, so that unlockers
 * wake threads that sleep, not threads that spin or run. Counted in the
 * header first and in our slot second (uncounted in the reverse order): a
 * death in between can only leave the header counting one sleeper too
 * many, which costs wakeups, never one too few, which would cost a stall.
 * Recovery subtracts what a dead slot still counts. We are also counted in
 * lock_sleepers_new, first in and last out: a sleeper not yet (or no
 * longer) counted there looks like a 1.0 one, which only costs a wake.
 * Awake again, we clear
 * lock_woken, with a full barrier before we look at the lock: an unlock
 * that saw it set left the wake to us, and we then see its 0. */
static int sleep_on_lock(struct wmap *m, uint32_t v, uint64_t until)
{
    struct seg_header *h = m->hdr;
    struct seg_slot *mine = &m->slots[m->slot];
    atomic_fetch_add(&h->lock_sleepers_new, 1);
    atomic_fetch_add(&h->lock_sleepers, 1);
    atomic_fetch_add(&mine->lock_sleeping, 1);
    sleep_fence(h);
    int r = atomic_load_explicit(&h->lock, memory_order_relaxed) == v
                ? whsem__futex_wait(&h->lock, v, until)
                : EAGAIN;
    atomic_fetch_sub(&mine->lock_sleeping, 1);
    atomic_fetch_sub(&h->lock_sleepers, 1);
    atomic_fetch_sub(&h->lock_sleepers_new, 1);
    atomic_exchange(&h->lock_woken, 0);
    return r;
}

/* The message of a lock that was not let go in time: who has it and what
 * that process is doing, which is usually the whole story (stopped by a
 * debugger or SIGSTOP, or a word forged by someone who can write the file). */
static whsem_status lock_timeout(struct wmap *m, uint32_t v)
{
    uint32_t owner = (v & WHSEM_LOCK_OWNER_MASK) - 1;
    int pid = owner < WHSEM_NSLOTS ? __atomic_load_n(&m->slots[owner].pid, __ATOMIC_RELAXED) : 0;
    const char *what = "alive";
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    const char *state = pid > 0 ? whsem__proc_stat_fields(path, buf, sizeof buf) : NULL;
    if (state && (*state == 'T' || *state == 't')) what = "stopped";
    else if (state && *state == 'D') what = "in uninterruptible sleep";
    else if (!state) what = "in another pid namespace, or a forged lock word";
    return whsem__fail(WHSEM_TIMEOUT,
                       "the shared state of '%s' is locked by process %d (%s), which did not "
                       "let go in time",
                       m->name, pid, what);
}

whsem_status whsem__busy_from_timeout(void)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", whsem_last_error());
    return whsem__fail(WHSEM_E_BUSY, "%s", msg);
}

whsem_status whsem__lock_slow_within(struct wmap *m, uint64_t budget_ns)
{
    return whsem__lock_slow(m, whsem__mono_ns() + budget_ns);
}

/* A short spin: the lock is held for a few dozen instructions, unless its
 * owner lost its CPU. */
static bool spin_for_lock(struct wmap *m)
{
    for (int i = 0; i < SPINS; i++) {
        cpu_relax();
        if (atomic_load_explicit(&m->hdr->lock, memory_order_relaxed) == 0 && whsem__try_lock(m))
            return true;
    }
    return false;
}

whsem_status whsem__lock_slow(struct wmap *m, uint64_t deadline_ns)
{
    struct seg_header *h = m->hdr;
    _Atomic uint32_t *lock = &h->lock;
    const uint32_t me = m->owner_id;
    whsem_status st = WHSEM_OK;
    bool held = false;
    /* Spin first, and again after each wake: a woken thread that looked
     * once and slept again would need another wake, which only comes with
     * a later unlock (one wake in flight), and would starve. */
    bool spin = true;
    for (;;) {
        if (spin && spin_for_lock(m)) return WHSEM_OK;
        spin = false;
        uint32_t v = atomic_load_explicit(lock, memory_order_relaxed);
        if (v == 0) {
            if (atomic_compare_exchange_weak_explicit(lock, &v, me, memory_order_acquire,
                                                      memory_order_relaxed)) {
                held = true;
                break;
            }
            continue;
        }
        if (whsem__is_broken(m)) {
            st = whsem__broken_status(m);
            break;
        }
        uint64_t now = whsem__mono_ns();
        uint64_t until = now + OWNER_CHECK_NS;
        if (deadline_ns && deadline_ns < until) until = deadline_ns;
        int r = now < until ? sleep_on_lock(m, v, until) : ETIMEDOUT;
        if (r != ETIMEDOUT) {
            spin = true;
            continue;
        }
        if (atomic_load_explicit(lock, memory_order_relaxed) != v) continue;
        /* Whether the owner still runs decides, before any deadline does: a
         * try-acquire must be able to take over a dead owner's lock too.
         * An owner outside the slot table can only come from a garbled
         * word; taking it over leads to the full recount, which judges. */
        uint32_t owner = (v & WHSEM_LOCK_OWNER_MASK) - 1;
        if (owner < WHSEM_NSLOTS && whsem__slot_alive(m, owner, true)) {
            if (deadline_ns && whsem__mono_ns() >= deadline_ns) {
                st = lock_timeout(m, v);
                break;
            }
            continue;
        }
        if (!atomic_compare_exchange_strong_explicit(lock, &v, me, memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        held = true;
        h->recoveries++;
        st = whsem__scan_locked(m, true);
        break;
    }
    if (held && st != WHSEM_OK) whsem__unlock(m);
    return st;
}
