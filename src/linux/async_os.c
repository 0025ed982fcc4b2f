/* SPDX-License-Identifier: MIT */
/*
 * Linux's primitives for the asynchronous engine (see platform.h): private
 * futexes, pthreads, the /proc thread probe, the eventfd of a completion
 * queue, and the dispatcher's futex_waitv.
 */
#include "platform.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX_32
#define FUTEX_32 2
#endif

/* The dispatcher polls (POLL_NS) when the kernel lacks futex_waitv. */
#define NO_WAITV_POLL_NS 10000000u

bool whsem__cond_wait_ms(whsem_cond *cv, whsem_mutex *mu, uint32_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(cv, mu, &ts) != ETIMEDOUT;
}

void whsem__p_word_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

void whsem__p_word_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t deadline)
{
    struct timespec ts, *tp = whsem__deadline_ts(deadline, &ts);
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET_PRIVATE, expected, tp, NULL, FUTEX_BITSET_MATCH_ANY);
}

whsem_status whsem__p_thread_start(whsem_thread_fn fn, const char *what)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&t, &attr, fn, NULL);
    pthread_attr_destroy(&attr);
    if (r != 0) return whsem__fail(WHSEM_E_LIMIT, "cannot start the %s thread: %s", what, strerror(r));
    return WHSEM_OK;
}

whsem_thread_id whsem__p_thread_self_open(void) { return (pid_t)syscall(SYS_gettid); }

/* Asleep (S) or in uninterruptible wait (D), as opposed to running or
 * waiting for a CPU. */
bool whsem__p_thread_blocked(whsem_thread_id id, uint64_t mark)
{
    (void)mark;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)id);
    const char *state = whsem__proc_stat_fields(path, buf, sizeof buf);
    return state && (*state == 'S' || *state == 'D');
}

whsem_status whsem__p_qsig_open(struct whsem_qsignal *s)
{
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->readable = false;
    if (s->efd < 0) return whsem__fail_errno(errno, "cannot create", "an eventfd");
    return WHSEM_OK;
}

void whsem__p_qsig_close(struct whsem_qsignal *s)
{
    if (s->efd >= 0) close(s->efd);
    s->efd = -1;
}

void whsem__p_qsig_set(struct whsem_qsignal *s)
{
    if (s->readable) return;
    uint64_t one = 1;
    s->readable = write(s->efd, &one, sizeof one) == sizeof one;
}

void whsem__p_qsig_clear(struct whsem_qsignal *s)
{
    if (!s->readable) return;
    uint64_t v;
    s->readable = read(s->efd, &v, sizeof v) != sizeof v;
}

void whsem__p_ctl_poke(struct whsem_ctl *c)
{
    atomic_fetch_add_explicit(&c->word, 1, memory_order_release);
    syscall(SYS_futex, &c->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Set once futex_waitv is found missing (then every mapping is polled
 * and no thread in whsem_op_wait helps). */
static _Atomic bool no_waitv;

void whsem__p_ws_begin(struct whsem_waitset *ws, struct whsem_ctl *c, uint32_t seq)
{
    ws->w[0] = (struct whsem_p_waitv){.val = seq, .uaddr = (uintptr_t)&c->word,
                                      .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG};
    ws->n = 1;
}

bool whsem__p_ws_add(struct whsem_waitset *ws, struct wmap *m, uint32_t seen)
{
    if (no_waitv || ws->n == WHSEM_P_WAITSET_MAX) return false;
    ws->w[ws->n++] = (struct whsem_p_waitv){
        .val = seen, .uaddr = (uintptr_t)&m->slots[m->slot].wake_seq, .flags = FUTEX_32};
    return true;
}

void whsem__p_ws_add_attaches(struct whsem_waitset *ws, struct wmap *m, uint32_t seen)
{
    if (no_waitv || ws->n == WHSEM_P_WAITSET_MAX) return;
    ws->w[ws->n++] = (struct whsem_p_waitv){.val = seen, .uaddr = (uintptr_t)&m->hdr->attaches, .flags = FUTEX_32};
}

void whsem__p_ws_wait(struct whsem_waitset *ws, struct whsem_ctl *c, uint32_t seq, uint64_t until)
{
    struct timespec ts, *tp = whsem__deadline_ts(until, &ts);
    if (!no_waitv) {
        long r = syscall(SYS_futex_waitv, ws->w, ws->n, 0, tp, CLOCK_MONOTONIC);
        if (r >= 0 || errno != ENOSYS) return;
        atomic_store(&no_waitv, true); /* an old kernel: from now on every mapping is polled */
    }
    uint64_t cap = whsem__mono_ns() + NO_WAITV_POLL_NS;
    whsem__p_word_wait(&c->word, seq, until && until < cap ? until : cap);
}

bool whsem__p_help_ok(void) { return !atomic_load(&no_waitv); }

void whsem__p_help_wait(_Atomic uint32_t *done, struct wmap *m, uint32_t seen, uint64_t deadline)
{
    struct timespec ts, *tp = whsem__deadline_ts(deadline, &ts);
    struct whsem_p_waitv w[2] = {
        {.val = 0, .uaddr = (uintptr_t)done, .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG},
        {.val = seen, .uaddr = (uintptr_t)&m->slots[m->slot].wake_seq, .flags = FUTEX_32},
    };
    if (syscall(SYS_futex_waitv, w, 2, 0, tp, CLOCK_MONOTONIC) < 0 && errno == ENOSYS)
        atomic_store(&no_waitv, true);
}

void whsem__p_wake_defer(void *wakes, struct wmap *m, int32_t slot)
{
    struct whsem_wakes *wk = wakes;
    if (wk->n == 8) return;
    wk->word[wk->n] = &m->slots[slot].wake_seq;
    /* One waiter of another process per grant; all of our own, since our
     * dispatcher is one of them and is not asleep now. */
    wk->count[wk->n++] = (uint32_t)slot == m->slot ? INT32_MAX : 1;
}

void whsem__p_wakes_flush(struct whsem_wakes *wk)
{
    for (int i = 0; i < wk->n; i++) whsem__futex_wake(wk->word[i], wk->count[i]);
    wk->n = 0;
}
