/* SPDX-License-Identifier: MIT */
/*
 * The bus guard: a SIGBUS handler that turns the truncation of a mapped
 * segment into a broken semaphore instead of a dead process (see
 * busguard.h for the contract, DESIGN.md for why zeros are safe).
 *
 * The handler must find ranges without taking a lock (it may interrupt a
 * thread that holds any lock), so the registry is a list of fixed-size
 * chunks that are only ever appended and never freed, and every field of an
 * entry is atomic. Entries are recycled; a remover waits until no handler
 * is running before an entry (and the address range behind it) can be
 * reused, so a handler never remaps memory that is no longer ours.
 *
 * Handler flags: SA_SIGINFO for si_addr and si_code; SA_ONSTACK because a
 * fault may come from a thread running on a small stack, and because Go
 * requires it of every non-Go handler; SA_RESTART so that installing us
 * never makes a system call fail with EINTR where it did not before; no
 * SA_NODEFER, so SIGBUS stays blocked while we run (a fault inside the
 * handler kills the process instead of recursing, and a SIGBUS re-queued
 * for the default action waits until we return); and every other signal
 * blocked, so no other handler can interrupt us and jump out while we are
 * counted in `in_handler`.
 *
 * An application that installs its own SIGBUS handler after us replaces
 * ours: unless it chains to the handler it found (ours), truncation is
 * whatever its handler makes of it. Nothing can be done about that without
 * fighting the application for the signal. fork() needs nothing but a
 * reset of the handler's transient state: the registry is plain memory,
 * inherited with the mappings it describes.
 */
#include "busguard.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { LIVE, REPLACING, REPLACED };

struct guard {
    _Atomic uintptr_t base;   /* 0 while the entry is free or being filled */
    _Atomic size_t len;       /* whole pages */
    _Atomic(_Atomic bool *) broken;
    _Atomic int state;        /* LIVE, REPLACING, REPLACED */
    _Atomic bool claimed;     /* owned by a registration (taken by CAS) */
};

/* 128 entries keep the first chunk (static, so most processes never
 * allocate) at a few KiB; more chunks are appended for processes that use
 * thousands of semaphores. */
#define GUARDS_PER_CHUNK 128

struct chunk {
    struct guard g[GUARDS_PER_CHUNK];
    struct chunk *_Atomic next;
};

static struct chunk first_chunk;
/* The first chunk (counted from first_chunk) that may have a free entry. */
static _Atomic size_t first_open;

/* Handlers between their first look at the registry and their last use of
 * an entry. Paired (sequentially consistent) with the clearing of `base` in
 * whsem__busguard_remove: either the handler sees the cleared base, or the
 * remover sees the handler counted and waits for it. */
static _Atomic unsigned in_handler;

static pthread_mutex_t install_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool installed;
static size_t page_size;
/* The disposition we replaced. Written before our handler is installed
 * (and, in a race with another thread's sigaction, once more right after),
 * read only by the handler. */
static struct sigaction prev;
/* prev had SA_RESETHAND and has been called once: it is SIG_DFL now. */
static _Atomic bool prev_reset;

/* Whether the kernel forces this SIGBUS on the process: synchronous faults
 * are delivered (with the default action) even when the signal is ignored
 * or blocked; kill(), sigqueue() and action-optional memory errors are
 * not. */
static bool forced(const siginfo_t *info)
{
    return info && info->si_code > 0 && info->si_code != BUS_MCEERR_AO;
}

/* What the kernel would have done with no handler: the default action,
 * which for SIGBUS is a core dump. The same siginfo is queued again to this
 * thread; SIGBUS is blocked in here, so it is delivered as soon as we
 * return, in the context of the interrupted instruction, so the core shows
 * the real fault. (A synchronous fault would also simply recur.) */
static void default_action(int sig, siginfo_t *info)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), sig, info) != 0) raise(sig);
}

/* Passes a SIGBUS that is not ours on as the kernel would have delivered
 * it to the previous disposition. */
static void chain(int sig, siginfo_t *info, void *ctx)
{
    bool reset = atomic_load(&prev_reset);
    void (*handler)(int) = reset ? SIG_DFL : prev.sa_handler;
    if (handler == SIG_IGN) {
        if (forced(info)) default_action(sig, info);
        return;
    }
    if (handler == SIG_DFL) {
        default_action(sig, info);
        return;
    }
    int flags = prev.sa_flags;
    if (flags & SA_RESETHAND) atomic_store(&prev_reset, true);
    /* The kernel would run it with the interrupted thread's mask plus its
     * sa_mask plus (without SA_NODEFER) the signal itself; ours blocks
     * everything. The kernel restores the interrupted mask when we return;
     * a handler that jumps out finds the mask it would have found. (A
     * runtime that chains to us without a context gets ours.) */
    if (ctx) {
        const ucontext_t *uc = ctx;
        sigset_t mask;
        sigemptyset(&mask);
        /* Only the kernel's signals: the rest of glibc's sigset_t in a
         * signal frame is not the kernel's to fill. */
        for (int s = 1; s < 65; s++)
            if (sigismember(&uc->uc_sigmask, s) == 1 || sigismember(&prev.sa_mask, s) == 1)
                sigaddset(&mask, s);
        if (!(flags & SA_NODEFER)) sigaddset(&mask, sig);
        pthread_sigmask(SIG_SETMASK, &mask, NULL);
    }
    if (flags & SA_SIGINFO)
        prev.sa_sigaction(sig, info, ctx);
    else
        handler(sig);
}

/* Whether reading the byte at addr still faults, asked of the kernel
 * (which answers EFAULT instead of raising SIGBUS). Any other failure
 * (a seccomp filter, say) answers "no". */
static bool still_faults(uintptr_t addr)
{
    char byte;
    struct iovec local = { &byte, 1 }, remote = { (void *)addr, 1 };
    return syscall(SYS_process_vm_readv, getpid(), &local, 1UL, &remote, 1UL, 0UL) < 0 &&
           errno == EFAULT;
}

/* The fault hit g's range: mark the segment broken and put zeros in place
 * of the range. Returns whether the faulting access may be retried. */
static bool replace(struct guard *g, uintptr_t base, size_t len, uintptr_t addr)
{
    /* Broken first: whoever sees the zeros can already see why. */
    atomic_store(atomic_load(&g->broken), true);
    int expected = LIVE;
    if (atomic_compare_exchange_strong(&g->state, &expected, REPLACING)) {
        /* A raw system call: sanitizers intercept mmap(), and their
         * interceptors are not written to run in a signal handler. */
        long r = syscall(SYS_mmap, base, len, PROT_READ | PROT_WRITE,
                         MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
        if (r == (long)base) {
            atomic_store(&g->state, REPLACED);
            return true;
        }
        /* Nothing to retry on: crashing beats faulting forever. */
        atomic_store(&g->state, LIVE);
        return false;
    }
    /* Another thread is replacing the range: the access faults again until
     * it is done. */
    if (expected == REPLACING) return true;
    /* Replaced already, usually by a thread that faulted at the same time
     * as this one. If the page still faults, something else was mapped
     * there without unregistering the range: do not retry forever. */
    return !still_faults(addr);
}

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
    int saved_errno = errno;
    /* BUS_ADRERR is what an access past the end of a mapped file gets.
     * Other codes (and a SIGBUS sent by kill(), whose si_addr is the
     * sender's pid and uid) are never ours. */
    if (info && info->si_code == BUS_ADRERR) {
        uintptr_t addr = (uintptr_t)info->si_addr;
        bool ours = false, retry = false;
        atomic_fetch_add(&in_handler, 1);
        for (struct chunk *c = &first_chunk; c && !ours; c = atomic_load(&c->next)) {
            for (int i = 0; i < GUARDS_PER_CHUNK; i++) {
                struct guard *g = &c->g[i];
                uintptr_t base = atomic_load(&g->base);
                if (base == 0) continue;
                size_t len = atomic_load_explicit(&g->len, memory_order_relaxed);
                if (addr - base >= len) continue;
                ours = true;
                retry = replace(g, base, len, addr);
                break;
            }
        }
        atomic_fetch_sub(&in_handler, 1);
        if (retry) {
            errno = saved_errno;
            return;
        }
    }
    errno = saved_errno;
    chain(sig, info, ctx);
    errno = saved_errno;
}

/* In the child of fork(), only the forking thread exists, and it was not
 * inside the handler: what other threads were doing there never ends. */
static void after_fork_child(void)
{
    atomic_store(&in_handler, 0);
    for (struct chunk *c = &first_chunk; c; c = atomic_load(&c->next))
        for (int i = 0; i < GUARDS_PER_CHUNK; i++) {
            int expected = REPLACING;
            atomic_compare_exchange_strong(&c->g[i].state, &expected, LIVE);
        }
}

static whsem_status install(void)
{
    if (atomic_load_explicit(&installed, memory_order_acquire)) return WHSEM_OK;
    whsem_status s = WHSEM_OK;
    pthread_mutex_lock(&install_mu);
    if (atomic_load_explicit(&installed, memory_order_relaxed)) goto out;
    long ps = sysconf(_SC_PAGESIZE);
    page_size = ps > 0 ? (size_t)ps : 4096;
    int e = pthread_atfork(NULL, NULL, after_fork_child);
    if (e != 0) {
        s = whsem__fail(WHSEM_E_NO_MEMORY, "cannot register the bus guard's fork handler: %s",
                        strerror(e));
        goto out;
    }
    /* prev must be complete before the handler can run. */
    if (sigaction(SIGBUS, NULL, &prev) != 0) {
        s = whsem__fail(WHSEM_E_OS, "cannot read the SIGBUS disposition: %s", strerror(errno));
        goto out;
    }
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &old) != 0) {
        s = whsem__fail(WHSEM_E_OS, "cannot install the SIGBUS handler: %s", strerror(errno));
        goto out;
    }
    /* Another thread changed the disposition in between: chain to what we
     * actually replaced. */
    if (old.sa_handler != prev.sa_handler || old.sa_flags != prev.sa_flags) prev = old;
    atomic_store_explicit(&installed, true, memory_order_release);
out:
    pthread_mutex_unlock(&install_mu);
    return s;
}

static void fill(struct guard *g, uintptr_t base, size_t len, _Atomic bool *broken)
{
    atomic_store_explicit(&g->len, len, memory_order_relaxed);
    atomic_store_explicit(&g->broken, broken, memory_order_relaxed);
    atomic_store_explicit(&g->state, LIVE, memory_order_relaxed);
    atomic_store(&g->base, base); /* publishes the fields above */
}

whsem_status whsem__busguard_add(void *base, size_t len, _Atomic bool *broken)
{
    whsem_status s = install();
    if (s != WHSEM_OK) return s;
    uintptr_t b = (uintptr_t)base;
    if (b == 0 || len == 0 || len > SIZE_MAX / 2 || broken == NULL || b % page_size != 0)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "bus guard: bad range %p + %zu", base, len);
    len = (len + page_size - 1) / page_size * page_size;

    /* From the first chunk that may have room: a process with 10,000
     * names would otherwise try every entry before it finds one. Entries
     * are taken by CAS, so the hint only decides where to start; a second
     * pass from the start finds what a stale hint skipped. */
    size_t from = atomic_load_explicit(&first_open, memory_order_relaxed), k = 0;
    for (int pass = 0; pass < 2; pass++, from = 0, k = 0) {
        for (struct chunk *c = &first_chunk; c; c = atomic_load(&c->next), k++) {
            if (k < from) continue;
            for (int i = 0; i < GUARDS_PER_CHUNK; i++) {
                bool expected = false;
                if (atomic_load_explicit(&c->g[i].claimed, memory_order_relaxed) ||
                    !atomic_compare_exchange_strong(&c->g[i].claimed, &expected, true))
                    continue;
                fill(&c->g[i], b, len, broken);
                if (k != from) atomic_store_explicit(&first_open, k, memory_order_relaxed);
                return WHSEM_OK;
            }
        }
    }
    /* All full: append a chunk, its first entry already ours. Two threads
     * may append at once; the spare room is used later. */
    struct chunk *n = calloc(1, sizeof *n);
    if (!n) return whsem__fail(WHSEM_E_NO_MEMORY, "bus guard: cannot grow the registry");
    atomic_store_explicit(&n->g[0].claimed, true, memory_order_relaxed);
    fill(&n->g[0], b, len, broken);
    struct chunk *tail = &first_chunk;
    for (;;) {
        struct chunk *expected = NULL;
        if (atomic_compare_exchange_strong(&tail->next, &expected, n)) break;
        tail = expected;
    }
    return WHSEM_OK;
}

void whsem__busguard_remove(void *base)
{
    uintptr_t b = (uintptr_t)base;
    if (b == 0) return;
    size_t k = 0;
    for (struct chunk *c = &first_chunk; c; c = atomic_load(&c->next), k++) {
        for (int i = 0; i < GUARDS_PER_CHUNK; i++) {
            struct guard *g = &c->g[i];
            uintptr_t expected = b;
            /* A CAS: of two removers of one range, one clears it. */
            if (atomic_load_explicit(&g->base, memory_order_relaxed) != b ||
                !atomic_compare_exchange_strong(&g->base, &expected, 0))
                continue;
            if (k < atomic_load_explicit(&first_open, memory_order_relaxed))
                atomic_store_explicit(&first_open, k, memory_order_relaxed);
            /* A handler may have read the entry before it was cleared; it
             * may still remap the range, which must be ours until it is
             * done. Handlers are short and cannot be interrupted; sleeping
             * rather than yielding lets one run even if it was preempted by
             * a remover of higher real-time priority. */
            while (atomic_load(&in_handler) != 0) nanosleep(&(struct timespec){0, 10000}, NULL);
            atomic_store_explicit(&g->claimed, false, memory_order_release);
            return;
        }
    }
}
