/* SPDX-License-Identifier: MIT */
/*
 * Semaphore handles (opened once ../api.c has checked the arguments and
 * finalized the name), tickets and blocking waits.
 *
 * A whsem_sem handle points at this process's mapping of the name; several
 * handles (from several opens) share one mapping and one slot. A blocking
 * wait counts in its slot's `want` and sleeps on two objects: the slot's
 * wake semaphore (other processes' releases and grants) and its thread's
 * own event (a cancellation source or the close of its handle). Woken for
 * any reason it takes a grant of its process first, if there is one, and
 * only then looks at its deadline, source and handle: a ticket racing
 * with a timeout or cancellation is delivered, never lost.
 */
#include "accounting.h"
#include "shm.h"
#include "win32.h"

#include <stdlib.h>
#include <string.h>

/* ---- blocking waits that a close must wake ---------------------------------------- */

struct swait {
    struct swait *prev, *next;
    HANDLE event;
    whsem_sem sem;
};

static SRWLOCK swaits_mu = SRWLOCK_INIT;
static struct swait *swaits;

static void swait_add(struct swait *w)
{
    AcquireSRWLockExclusive(&swaits_mu);
    w->prev = NULL;
    w->next = swaits;
    if (swaits) swaits->prev = w;
    swaits = w;
    ReleaseSRWLockExclusive(&swaits_mu);
}

static void swait_remove(struct swait *w)
{
    AcquireSRWLockExclusive(&swaits_mu);
    if (w->prev) w->prev->next = w->next;
    else swaits = w->next;
    if (w->next) w->next->prev = w->prev;
    ReleaseSRWLockExclusive(&swaits_mu);
}

static void swait_wake_sem(whsem_sem sem)
{
    AcquireSRWLockShared(&swaits_mu);
    for (struct swait *w = swaits; w; w = w->next)
        if (w->sem == sem) SetEvent(w->event);
    ReleaseSRWLockShared(&swaits_mu);
}

static void wake_sync_waiter(struct cwait *w) { SetEvent(w->ctx); }

/* ---- opening and closing ----------------------------------------------------------- */

whsem_status whsem__shm_open(const char *final, size_t len, int32_t max_count,
                             const struct open_opts *o, const struct whsem_backend *be,
                             whsem_sem *out_sem)
{
    struct wmap *m;
    whsem_status st = whsem__map_get(final, len, max_count, o->mode, be, &m);
    if (st != WHSEM_OK) return st;
    /* The mapping's use counted by map_get becomes the handle's. */
    uint64_t h = whsem__h_alloc(HK_SEM, m, (uint64_t)(int64_t)o->check_ms, &st);
    if (!h) {
        whsem__unuse(m);
        return st;
    }
    *out_sem = h;
    return WHSEM_OK;
}

/* Ends a live sem or ticket handle and returns its mapping, whose use the
 * handle held is now the caller's, and (if since is not NULL) when the
 * ticket was acquired; NULL if it was not live. */
static struct wmap *kill_take(uint64_t h, enum hkind kind, uint64_t *since)
{
    struct hentry *e = whsem__h_lookup(h, kind);
    if (!e) return NULL;
    /* h's own mapping and stamp: the entry cannot be reused before it is killed. */
    struct wmap *m = atomic_load(&e->ptr);
    if (since) *since = e->since;
    return whsem__h_kill(h) ? m : NULL;
}

/* The backend of the object behind handle h, or NULL if h is not live. */
static const struct whsem_backend *backend_of(uint64_t h, enum hkind kind)
{
    struct hentry *e = whsem__h_lookup(h, kind);
    void *saved;
    struct wmap *m = e ? whsem__protect(e, h, &saved) : NULL;
    if (!m) return NULL;
    const struct whsem_backend *be = m->base.be;
    whsem__unprotect(saved);
    return be;
}

WHSEM_API whsem_status WHSEM_CALL whsem_close(whsem_sem sem)
{
    const struct whsem_backend *be = backend_of(sem, HK_SEM);
    if (be && be->close != whsem_close) return be->close(sem); /* another backend's */
    struct wmap *m = kill_take(sem, HK_SEM, NULL);
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    /* Waits on this handle look at it again when woken, and end. */
    swait_wake_sem(sem);
    whsem__async_poke();
    /* Its use and the engine's only: the engine's watching must not keep
     * the section alive after its last handle. */
    bool engine_let_go = m->uses <= 2 && whsem__async_unwatch(m);
    whsem__unuse(m);
    if (engine_let_go) whsem__p_engine_release(m);
    return WHSEM_OK;
}

/* ---- introspection ------------------------------------------------------------------- */


/* ---- tickets ------------------------------------------------------------------------- */

void whsem__give_back_unpublished(struct wmap *m)
{
    if (whsem__lock(m) != WHSEM_OK) return;
    m->slots[m->slot].held--;
    int32_t w = whsem__give_back_locked(m);
    whsem__unlock(m);
    if (w >= 0) whsem__wake_slot(m, (uint32_t)w, 1);
}

/* Blocks for a ticket; called and returns with the segment mutex NOT held.
 * On WHSEM_OK the ticket is counted in our slot's held. */
static whsem_status wait_for_ticket(struct wmap *m, struct hentry *se, whsem_sem sem,
                                    int64_t timeout_ms, whsem_cancel cancel)
{
    HANDLE ev = whsem__w_thread_event();
    if (!ev) return whsem__fail_win32(GetLastError(), "cannot create an event for", L"a wait");
    int32_t check_ms = (int32_t)atomic_load(&se->aux);
    struct swait sw = {.event = ev, .sem = sem};
    struct cwait cw = {.notify = wake_sync_waiter, .ctx = ev};
    swait_add(&sw);
    whsem_status result;
    if (cancel && (result = whsem__cancel_register(cancel, &cw)) != WHSEM_OK) {
        swait_remove(&sw);
        return result;
    }
    struct wseg_header *h = m->hdr;
    struct wseg_slot *s = &m->slots[m->slot];
    uint64_t began = whsem__w_mono_ns();
    uint64_t deadline = timeout_ms < 0 ? 0 : began + (uint64_t)timeout_ms * 1000000u;
    if ((result = whsem__lock(m)) != WHSEM_OK) goto out_unlocked;
    whsem__want_more(h, s);
    const struct whsem_wait w = {&se->tag, sem, cancel ? &cw : NULL};
    bool watched = false;
    for (;;) {
        uint64_t until;
        result = whsem__wait_look_locked(m, check_ms, deadline, &w, &until);
        if (result != WHSEM_PENDING) break;
        whsem__unlock(m);
        if (!watched) {
            watched = true;
            whsem__async_watch_begin(m);
        }
        HANDLE objs[2] = {whsem__own_wake(m), ev};
        WaitForMultipleObjects(2, objs, FALSE, whsem__w_wait_ms(until, whsem__w_mono_ns()));
        if ((result = whsem__lock(m)) != WHSEM_OK) {
            whsem__async_watch_end(m);
            goto out_unlocked; /* our want is moot */
        }
        whsem__woke_locked(m);
    }
    if (watched) whsem__async_watch_end(m);
    int32_t next = whsem__wait_done_locked(m, result == WHSEM_OK);
    whsem__unlock(m);
    if (next >= 0) whsem__wake_slot(m, (uint32_t)next, 1);
out_unlocked:
    if (cancel) whsem__cancel_unregister(&cw);
    swait_remove(&sw);
    whsem__count_wait(h, began, whsem__w_mono_ns());
    return result;
}

/* Everything but a free ticket at the first look: a try's second look,
 * or a wait. Called with the lock held; drops it. */
static whsem_status acquire_slow(struct wmap *m, struct hentry *e, whsem_sem sem,
                                 int64_t timeout_ms, whsem_cancel cancel)
{
    int32_t check_ms = (int32_t)atomic_load(&e->aux);
    whsem_status st = whsem__after_first_look_locked(m, check_ms, timeout_ms == 0);
    whsem__unlock(m);
    return st == WHSEM_PENDING ? wait_for_ticket(m, e, sem, timeout_ms, cancel) : st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_acquire(whsem_sem sem, int64_t timeout_ms,
                                                whsem_cancel cancel, whsem_ticket *out_ticket)
{
    if (!out_ticket) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_ticket is NULL");
    *out_ticket = 0;
    if (!whsem__timeout_ok(timeout_ms)) return whsem__bad_timeout(timeout_ms);
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    if (!e) return whsem__invalid_handle(sem, "semaphore");
    if (cancel) {
        struct hentry *ce = whsem__h_lookup(cancel, HK_CANCEL);
        if (!ce) return whsem__invalid_handle(cancel, "cancellation source");
        if (atomic_load(&ce->aux)) return whsem__canceled_before(e, sem, whsem_acquire);
    }
    /* One look through the hazard pointer: another backend's object goes
     * to its backend, ours gets this call's use. */
    void *saved;
    struct wmap *m = whsem__protect(e, sem, &saved);
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    const struct whsem_backend *be = m->base.be;
    bool ours = be->acquire == whsem_acquire && whsem__use_live(m);
    whsem__unprotect(saved);
    if (be->acquire != whsem_acquire) return be->acquire(sem, timeout_ms, cancel, out_ticket);
    if (!ours) return whsem__invalid_handle(sem, "semaphore");
    whsem_status st = whsem__lock(m);
    if (st != WHSEM_OK) {
        whsem__unuse(m);
        return st;
    }
    uint64_t since = 0;
    if (whsem__take_free_first_locked(m)) {
        whsem__hold_first_look_locked(m->hdr, &since);
        whsem__unlock(m);
    } else if ((st = acquire_slow(m, e, sem, timeout_ms, cancel)) != WHSEM_OK) {
        whsem__count_end(m->hdr, st, timeout_ms != 0);
        whsem__unuse(m);
        return st;
    } else {
        since = whsem__hold_begins();
    }
    /* This call's use of the mapping becomes the ticket's. */
    uint64_t ticket = whsem__h_alloc(HK_TICKET, m, 0, &st);
    if (!ticket) {
        whsem__give_back_unpublished(m);
        whsem__unuse(m);
        return st;
    }
    /* Before the caller has the handle: nobody can release it yet. */
    whsem__h_entry(ticket)->since = since;
    *out_ticket = ticket;
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_release(whsem_ticket ticket)
{
    const struct whsem_backend *be = backend_of(ticket, HK_TICKET);
    if (be && be->release != whsem_release) return be->release(ticket);
    /* Ending the handle first decides which of two racing releases wins. */
    uint64_t since;
    struct wmap *m = kill_take(ticket, HK_TICKET, &since);
    if (!m) return whsem__invalid_handle(ticket, "ticket");
    whsem_status st = whsem__lock(m);
    if (st != WHSEM_OK) {
        /* The segment is beyond use (corrupt): the count stays with our slot. */
        whsem__unuse(m);
        return st;
    }
    int32_t wake = -1;
    if (m->slots[m->slot].held == 0) {
        st = whsem__nothing_held(m);
    } else {
        wake = whsem__put_back_locked(m);
        whsem__count_hold(m->hdr, &since);
    }
    whsem__unlock(m);
    if (wake >= 0) whsem__wake_slot(m, (uint32_t)wake, 1);
    whsem__unuse(m);
    return st;
}
