/* SPDX-License-Identifier: MIT */
/*
 * Windows's primitives for the asynchronous engine (see platform.h):
 * WaitOnAddress, threads, the CPU-time probe, a completion queue's event,
 * and the dispatcher's WaitForMultipleObjects.
 */
#include "platform.h"

void whsem__p_word_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t deadline)
{
    uint32_t cmp = expected;
    WaitOnAddress((volatile void *)addr, &cmp, sizeof cmp,
                  whsem__w_wait_ms(deadline, deadline ? whsem__w_mono_ns() : 0));
}

whsem_status whsem__p_thread_start(whsem_thread_fn fn, const char *what)
{
    whsem__w_pin_module();
    HANDLE t = CreateThread(NULL, 0, fn, NULL, 0, NULL);
    if (!t)
        return whsem__fail(WHSEM_E_LIMIT, "cannot start the %s thread (error %lu)", what,
                           (unsigned long)GetLastError());
    CloseHandle(t);
    return WHSEM_OK;
}

whsem_thread_id whsem__p_thread_self_open(void)
{
    return OpenThread(THREAD_QUERY_LIMITED_INFORMATION, FALSE, GetCurrentThreadId());
}

uint64_t whsem__p_thread_mark(whsem_thread_id id)
{
    FILETIME c, e, k, u;
    if (!id || !GetThreadTimes(id, &c, &e, &k, &u)) return 0;
    return ((uint64_t)k.dwHighDateTime << 32 | k.dwLowDateTime) +
           ((uint64_t)u.dwHighDateTime << 32 | u.dwLowDateTime);
}

whsem_status whsem__p_qsig_open(struct whsem_qsignal *s)
{
    s->event = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!s->event) return whsem__fail_win32(GetLastError(), "cannot create an event for", L"a queue");
    return WHSEM_OK;
}

whsem_status whsem__p_qsig_fd(const struct whsem_qsignal *s, int32_t *fd)
{
    (void)s;
    *fd = -1;
    return whsem__fail(WHSEM_E_UNSUPPORTED,
                       "whsem_queue_fd: Windows has no file descriptor for a completion queue; "
                       "wait on the event HANDLE of whsem_queue_handle instead");
}

static BOOL CALLBACK ctl_init(PINIT_ONCE once, void *param, void **ctx)
{
    (void)once, (void)ctx;
    struct whsem_ctl *c = param;
    c->event = CreateEventW(NULL, FALSE, FALSE, NULL);
    return c->event != NULL;
}

whsem_status whsem__p_ctl_ready(struct whsem_ctl *c)
{
    if (InitOnceExecuteOnce(&c->once, ctl_init, c, NULL)) return WHSEM_OK;
    return whsem__fail_win32(GetLastError(), "cannot create the dispatcher's event", NULL);
}

void whsem__p_ctl_poke(struct whsem_ctl *c)
{
    atomic_fetch_add(&c->seq, 1);
    if (whsem__p_ctl_ready(c) == WHSEM_OK) SetEvent(c->event);
}

void whsem__p_ws_wait(struct whsem_waitset *ws, struct whsem_ctl *c, uint32_t seq, uint64_t until)
{
    (void)c, (void)seq;
    WaitForMultipleObjects(ws->n, ws->objs, FALSE, whsem__w_wait_ms(until, whsem__w_mono_ns()));
}

void whsem__p_wake_defer(void *wakes, struct wmap *m, int32_t slot)
{
    (void)wakes;
    LONG grants = (LONG)m->slots[slot].grants;
    whsem__wake_slot(m, (uint32_t)slot, (uint32_t)slot == m->slot && grants > 1 ? grants : 1);
}
