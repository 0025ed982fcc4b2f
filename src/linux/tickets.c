/* SPDX-License-Identifier: MIT */
/*
 * Acquiring and releasing tickets, and waiting for them.
 *
 * The fast path is one lock/unlock pair on the segment lock around a
 * decrement of `free`: no system call. A waiter registers its demand in
 * its process's slot (want) and sleeps on the slot's futex; a releaser that
 * sees demand puts its ticket back and wakes a waiting process to compete
 * for it, or grants it outright to a process that has waited long enough
 * (bounded barging, see whsem__give_back_locked). Any waiter of the granted process may take the
 * grant, and a waiter whose timeout or cancellation races with a grant
 * takes the ticket rather than leaving it stranded: a ticket is always
 * either delivered or back in the pool (the lost-ticket bug of the C#
 * original, DistributedLock #120, cannot happen here).
 */
#include "async.h"
#include "cancel.h"
#include "counters.h"
#include "handles.h"
#include "recovery.h"

#include <errno.h>


static void wake_sync_waiter(struct cwait *w)
{
    struct seg_slot *s = w->ctx;
    whsem__wake_slot(s, INT32_MAX);
}

/* How often a wait stuck on the segment lock looks at its cancellation
 * source and handle: the promptness SPEC.md promises (10 ms). */
#define WAIT_LOCK_SLICE_NS 10000000u

/*
 * Takes the segment lock for a waiting acquisition. Whatever the lock's
 * owner does (it may be stopped, or the word forged), the wait still ends
 * at its deadline, on cancellation, or when its handle is closed.
 */
static whsem_status lock_for_wait(struct wmap *m, struct hentry *se, whsem_sem sem,
                                  struct cwait *cw, bool has_cancel, uint64_t deadline)
{
    for (;;) {
        uint64_t until = whsem__mono_ns() + WAIT_LOCK_SLICE_NS;
        if (deadline && deadline < until) until = deadline;
        whsem_status st = whsem__lock_until(m, until);
        if (st != WHSEM_TIMEOUT) return st;
        if (has_cancel && whsem__cancel_triggered(cw)) return WHSEM_CANCELED;
        if (atomic_load_explicit(&se->tag, memory_order_acquire) != sem)
            return whsem__fail(WHSEM_CANCELED, "the semaphore handle was closed while waiting");
        if (deadline && whsem__mono_ns() >= deadline) return WHSEM_TIMEOUT;
    }
}

/* A registered wait that ends without the lock: its `want`, and its count
 * as a sleeper, are paid back by the dispatcher once it gets the lock. */
static void owe_want(struct wmap *m)
{
    atomic_fetch_add(&m->owed_sleep, 1);
    atomic_fetch_add(&m->owed_want, 1);
    whsem__async_collect_debt(m);
}

/* Blocks for a ticket; called and returns with the segment lock NOT held.
 * On WHSEM_OK the ticket is counted in our slot's held. */
static whsem_status wait_for_ticket(struct wmap *m, struct hentry *se, whsem_sem sem,
                                    int64_t timeout_ms, whsem_cancel cancel)
{
    struct seg_header *h = m->hdr;
    struct seg_slot *s = &m->slots[m->slot];
    int32_t check_ms = (int32_t)atomic_load_explicit(&se->aux, memory_order_relaxed);
    struct cwait cw = {.notify = wake_sync_waiter, .ctx = s};
    if (cancel) {
        whsem_status st = whsem__cancel_register(cancel, &cw);
        if (st != WHSEM_OK) return st;
    }
    uint64_t began = whsem__mono_ns();
    uint64_t deadline = timeout_ms < 0 ? 0 : began + (uint64_t)timeout_ms * 1000000u;
    whsem_status result = lock_for_wait(m, se, sem, &cw, cancel != 0, deadline);
    if (result != WHSEM_OK) goto out_unlocked;
    whsem__want_more(h, s);
    const struct whsem_wait w = {&se->tag, sem, cancel ? &cw : NULL};
    bool watched = false;
    for (;;) {
        uint64_t until;
        result = whsem__wait_look_locked(m, check_ms, deadline, &w, &until);
        if (result == WHSEM_E_CORRUPT) goto out_locked; /* our want is moot */
        if (result != WHSEM_PENDING) break;
        whsem__p_sleep_begin(s);
        uint32_t seen = atomic_load_explicit(&s->wake_seq, memory_order_acquire);
        whsem__unlock(m);
        if (!watched) {
            watched = true;
            whsem__async_watch_begin(m);
        }
        whsem__futex_wait(&s->wake_seq, seen, until);
        whsem_status st = lock_for_wait(m, se, sem, &cw, cancel != 0, deadline);
        if (st != WHSEM_OK) {
            /* Timed out, canceled or closed while the lock was not to be
             * had: our want stays counted until it is paid back. (A
             * corrupt segment is unusable; our want is moot there.) */
            if (watched) whsem__async_watch_end(m);
            if (st != WHSEM_E_CORRUPT) owe_want(m);
            result = st;
            goto out_unlocked;
        }
        whsem__woke_locked(m);
    }
    int32_t next = whsem__wait_done_locked(m, result == WHSEM_OK);
    if (watched) whsem__async_watch_end(m);
    whsem__unlock(m);
    if (next >= 0) whsem__futex_wake(&m->slots[next].wake_seq, 1);
    goto out_unlocked;
out_locked:
    if (watched) whsem__async_watch_end(m);
    whsem__unlock(m);
out_unlocked:
    whsem__cancel_unregister(&cw);
    whsem__count_wait(h, began, whsem__mono_ns());
    return result;
}

/* Everything but a free ticket at the first look: a try's second look,
 * or a wait. Called with the lock held; drops it. */
static __attribute__((noinline)) whsem_status acquire_slow(struct wmap *m, struct hentry *e,
                                                           whsem_sem sem, int64_t timeout_ms,
                                                           whsem_cancel cancel)
{
    int32_t check_ms = (int32_t)atomic_load_explicit(&e->aux, memory_order_relaxed);
    whsem_status st = whsem__after_first_look_locked(m, check_ms, timeout_ms == 0);
    whsem__unlock(m);
    return st == WHSEM_PENDING ? wait_for_ticket(m, e, sem, timeout_ms, cancel) : st;
}

/* The segment lock was busy at the first try. A try-acquire waits for it
 * only briefly (a live owner may be stopped); a timed or infinite one
 * waits as a waiter does, with its deadline and cancellation. *since
 * (0) becomes the ticket's stamp. */
static __attribute__((noinline)) whsem_status acquire_contended(struct wmap *m, struct hentry *e,
                                                                whsem_sem sem, int64_t timeout_ms,
                                                                whsem_cancel cancel, uint64_t *since)
{
    whsem_status st;
    if (timeout_ms != 0) {
        st = wait_for_ticket(m, e, sem, timeout_ms, cancel);
    } else if ((st = whsem__lock_slow_within(m, WHSEM_TRY_LOCK_NS)) != WHSEM_OK) {
        return st;
    } else if (whsem__take_free_first_locked(m)) {
        whsem__hold_first_look_locked(m->hdr, since);
        whsem__unlock(m);
        return WHSEM_OK;
    } else {
        st = acquire_slow(m, e, sem, 0, cancel);
    }
    if (st == WHSEM_OK) *since = whsem__hold_begins();
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_acquire(whsem_sem sem, int64_t timeout_ms,
                                                whsem_cancel cancel, whsem_ticket *out_ticket)
{
    if (WHSEM_UNLIKELY(!out_ticket))
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_ticket is NULL");
    *out_ticket = 0;
    if (WHSEM_UNLIKELY(!whsem__timeout_ok(timeout_ms))) return whsem__bad_timeout(timeout_ms);
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    if (WHSEM_UNLIKELY(!e)) return whsem__invalid_handle(sem, "semaphore");
    if (cancel) {
        struct hentry *ce = whsem__h_lookup(cancel, HK_CANCEL);
        if (!ce) return whsem__invalid_handle(cancel, "cancellation source");
        if (atomic_load_explicit(&ce->aux, memory_order_acquire)) return whsem__canceled_before(e, sem, whsem_acquire);
    }
    struct whsem_thread *t = whsem__self();
    if (WHSEM_UNLIKELY(!t)) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for the thread record");
    void *saved;
    struct wmap *m = whsem__protect_t(t, e, sem, &saved);
    if (WHSEM_UNLIKELY(!m)) return whsem__invalid_handle(sem, "semaphore");
    whsem_status st;
    const struct whsem_backend *be = m->base.be;
    if (WHSEM_UNLIKELY(be->acquire != whsem_acquire)) { /* another backend's */
        whsem__unprotect_t(t, saved);
        return be->acquire(sem, timeout_ms, cancel, out_ticket);
    }
    struct hentry *te = NULL;
    if (WHSEM_UNLIKELY(!whsem__attached(m)) && (st = whsem__ensure_attached(m)) != WHSEM_OK)
        goto out;
    /* The reserved entry's tag is the ticket (less its kind), and the
     * entry is ours: the ticket is read from it again where it is needed
     * rather than kept in a register across the locked section, which the
     * compiler spills to the stack there (a store the lock's atomic
     * instruction waits for: 1% of the pair). */
    if (WHSEM_UNLIKELY(!whsem__h_reserve_t(t, HK_TICKET, &st, &te))) {
        te = NULL;
        goto out;
    }
    if (WHSEM_LIKELY(whsem__try_lock(m))) {
        if (WHSEM_LIKELY(whsem__take_free_first_locked(m))) {
            whsem__hold_first_look_locked(m->hdr, &te->since);
            whsem__unlock(m);
        } else if ((st = acquire_slow(m, e, sem, timeout_ms, cancel)) != WHSEM_OK) {
            goto out;
        } else {
            te->since = whsem__hold_begins();
        }
    } else if ((st = acquire_contended(m, e, sem, timeout_ms, cancel, &te->since)) != WHSEM_OK) {
        goto out;
    }
    uint64_t ticket = atomic_load_explicit(&te->tag, memory_order_relaxed) | HK_TICKET;
    whsem__h_publish_e(te, ticket, m,
                       atomic_load_explicit(&whsem__pgen, memory_order_relaxed));
    whsem__unprotect_t(t, saved);
    *out_ticket = ticket;
    return WHSEM_OK;
out:
    if (te) whsem__h_recycle_t(t, atomic_load_explicit(&te->tag, memory_order_relaxed));
    whsem__count_end(m->hdr, st, timeout_ms != 0);
    whsem__unprotect_t(t, saved);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_release(whsem_ticket ticket)
{
    struct hentry *e = whsem__h_lookup(ticket, HK_TICKET);
    if (WHSEM_UNLIKELY(!e)) return whsem__invalid_handle(ticket, "ticket");
    if (WHSEM_UNLIKELY(atomic_load_explicit(&e->aux, memory_order_relaxed) !=
                       atomic_load_explicit(&whsem__pgen, memory_order_relaxed)))
        return whsem__fail(WHSEM_E_WRONG_PROCESS,
                           "ticket 0x%llx was acquired by the parent process; only it can "
                           "release it",
                           (unsigned long long)ticket);
    struct whsem_thread *t = whsem__self();
    if (WHSEM_UNLIKELY(!t)) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for the thread record");
    void *saved;
    struct wmap *m = whsem__protect_t(t, e, ticket, &saved);
    if (WHSEM_UNLIKELY(!m)) return whsem__invalid_handle(ticket, "ticket");
    const struct whsem_backend *be = m->base.be;
    if (WHSEM_UNLIKELY(be->release != whsem_release)) { /* another backend's */
        whsem__unprotect_t(t, saved);
        return be->release(ticket);
    }
    whsem_status st = whsem__lock(m);
    if (WHSEM_UNLIKELY(st != WHSEM_OK)) {
        whsem__unprotect_t(t, saved);
        return st;
    }
    /* Two threads releasing the same ticket both got this far; the lock
     * orders them and the second finds the entry dead. */
    if (WHSEM_UNLIKELY(atomic_load_explicit(&e->tag, memory_order_relaxed) != ticket)) {
        whsem__unlock(m);
        whsem__unprotect_t(t, saved);
        return whsem__invalid_handle(ticket, "ticket");
    }
    if (WHSEM_UNLIKELY(whsem__is_broken(m) || m->slots[m->slot].held == 0)) {
        st = whsem__is_broken(m) ? whsem__broken_status(m) : whsem__nothing_held(m);
        whsem__unlock(m);
        whsem__unprotect_t(t, saved);
        return st;
    }
    atomic_store_explicit(&e->tag, whsem__h_next_gen_tag(ticket), memory_order_relaxed);
    int32_t wake = whsem__put_back_locked(m);
    /* After: the slot's address computed for the check above serves the
     * put-back, a call before it would make the compiler compute it anew. */
    whsem__count_hold(m->hdr, &e->since);
    bool dying = WHSEM_UNLIKELY(m->handles == 0) && whsem__mark_dying_locked(m);
    whsem__unlock(m);
    if (WHSEM_UNLIKELY(wake >= 0)) whsem__futex_wake(&m->slots[wake].wake_seq, 1);
    whsem__unprotect_t(t, saved);
    whsem__h_recycle_t(t, ticket);
    if (WHSEM_UNLIKELY(dying)) whsem__finish_dying(m);
    return WHSEM_OK;
}
