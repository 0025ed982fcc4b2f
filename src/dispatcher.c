/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher: how asynchronous operations on shared-memory semaphores
 * wait, get their tickets and end.
 *
 * A pending operation counts in its process's slot `want`, as a blocking
 * waiter does. One dispatcher thread per process sleeps (the platform's
 * multi-wait, platform.h) on its control word and on our slot's wake in
 * every mapping with pending operations. When it wakes it settles each
 * such mapping under its segment lock: the grants its process received
 * and free tickets go to pending operations oldest first, then the
 * operations that were canceled, closed or timed out end, then any grant
 * nobody here can use goes back (accounting.c). Granting and ending are
 * decided in that one place, under that one lock, so a ticket is either
 * delivered or returned: never lost.
 *
 * The segment lock is waited for at most DISPATCH_LOCK_NS per name: a
 * stopped process on one name delays nobody on another. Operations that
 * end meanwhile leave what they counted as a debt (owed_want), paid back
 * once the lock is had (pay_debts).
 *
 * While operations or blocking waits of this process wait on a mapping,
 * the dispatcher also watches the mapping's other processes (watches.c):
 * when one ends it scans the mapping at once, which hands a dead holder's
 * tickets to whoever waits, here or elsewhere.
 */
#include "accounting.h"
#include "async_engine.h"
#include "watches.h"

#include <stdlib.h>
#include <string.h>


static void unlink_pending(struct wmap *m, struct op *o)
{
    o->queued = false;
    if (o->prev) o->prev->next = o->next;
    else m->aq_head = o->next;
    if (o->next) o->next->prev = o->prev;
    else m->aq_tail = o->prev;
    o->prev = o->next = NULL;
    whsem__deadline_remove(&whsem__a_eng.deadlines, &o->dl);
}

/* Finished operations on their way out of the engine: a ticket (if any)
 * is counted in the slot but not yet published as a handle. */
struct finished {
    struct op *head, *tail;
};

static void finish(struct finished *f, struct op *o, whsem_status st, const char *detail)
{
    o->final = st;
    if (detail) whsem__a_set_detail(o, detail);
    o->link = NULL;
    if (f->tail) f->tail->link = o;
    else f->head = o;
    f->tail = o;
}

static whsem_status ensure_dispatcher_locked(void);

/* Puts m in the engine's list (engine lock held). */
static void activate(struct wmap *m, int32_t check_ms)
{
    if (!m->active) {
        whsem__p_engine_enter(m);
        atomic_store(&m->active, true);
        m->async_check_ms = check_ms;
        m->active_next = whsem__a_eng.active;
        whsem__a_eng.active = m;
    } else if (check_ms >= 0 && (m->async_check_ms < 0 || check_ms < m->async_check_ms)) {
        m->async_check_ms = check_ms;
    }
}

static void deactivate(struct wmap *m)
{
    for (struct wmap **pp = &whsem__a_eng.active; *pp; pp = &(*pp)->active_next)
        if (*pp == m) {
            *pp = m->active_next;
            break;
        }
    atomic_store(&m->active, false);
    m->active_next = NULL;
}

/*
 * Whether m's processes are to be watched now (both locks held): while
 * its operations or our blocking waits wait on it, and for a while after
 * (waits that come and go do not open and close watches each time), but
 * not once nothing of ours can start waiting on it any more.
 *
 * A blocking wait counts itself in watch.starts and watch.waits and then
 * asks the dispatcher only if watch.on is not set. watch.on is cleared
 * before the counts are looked at again, so either the dispatcher sees
 * the new wait or the wait sees watch.on cleared and asks.
 */
static bool watching(struct wmap *m, uint64_t now)
{
    uint32_t starts = atomic_load(&m->watch.starts);
    if (m->aq_head || atomic_load(&m->watch.waits) || starts != m->watch.seen_starts) {
        m->watch.seen_starts = starts;
        m->watch.until = now + WATCH_LINGER_NS;
        return true;
    }
    if (now < m->watch.until && !whsem__p_engine_alone_locked(m)) return true;
    atomic_store(&m->watch.on, false);
    return atomic_load(&m->watch.waits) || atomic_load(&m->watch.starts) != starts;
}

/*
 * While the dispatcher watches m (something waits on it, or did within
 * the linger), a process that attaches wakes the dispatcher, and its
 * watches take the newcomer in at once (engine lock held). watch.on stays
 * set all that while, so that a wait that begins need not ask: asking
 * wakes the dispatcher, a context switch per wait when waits come one
 * after another (a same-CPU handoff took 2.4 times as long); keeping the
 * word in the wait set only costs the dispatcher's sleeps a key lookup.
 */
static void wait_for_attaches(struct whsem_waitset *ws, struct wmap *m)
{
    whsem__p_ws_add_attaches(ws, m, m->watch.attaches);
    atomic_store(&m->watch.on, true);
}

/* When the next abandonment scan of m is due, 0 for never (lock held). */
static uint64_t next_scan_of(struct wmap *m, uint64_t now)
{
    if (m->async_check_ms < 0) return 0;
    uint64_t period = (uint64_t)m->async_check_ms * 1000000u;
    uint64_t at = m->hdr->last_scan_ns + period;
    return at <= now ? now + period : at;
}

/* The segment lock was not to be had: operations that are over end on
 * time all the same, what they counted in the slot becomes a debt, and
 * the dispatcher comes back soon. A timeout names the lock's owner, as a
 * blocking acquisition's would (this thread's message says it). */
static void settle_unlocked(struct wmap *m, bool sweep, struct finished *f)
{
    whsem_status why;
    const char *detail;
    for (struct op *o = (sweep || m->has_expired) ? m->aq_head : NULL, *next; o; o = next) {
        next = o->next;
        if (!whsem__a_op_ended(o, &why, &detail)) continue;
        if (o->counted) {
            atomic_fetch_add(&m->owed_want, 1);
            atomic_fetch_add(&m->owed_async_ops, 1);
        }
        unlink_pending(m, o);
        finish(f, o, why, why == WHSEM_TIMEOUT ? whsem_last_error() : detail);
    }
}

/* Under the lock: what waits that ended without it still count in our
 * slot goes. A grant made to them meanwhile belongs to nobody here now:
 * settle() gives it back with the other leftovers. */
static void pay_debts(struct wmap *m)
{
    whsem_header *h = m->hdr;
    whsem_slot *s = &m->slots[m->slot];
    uint32_t n = atomic_exchange(&m->owed_want, 0);
    m->async_ops -= (int)atomic_exchange(&m->owed_async_ops, 0);
    for (; n && s->want; n--) whsem__want_less(h, s, false);
    for (n = atomic_exchange(&m->owed_sleep, 0); n; n--) whsem__p_sleep_end(s);
}

/*
 * Settles one mapping's pending operations under its segment lock (engine
 * lock held). Returns our slot's wake as seen under the lock, to sleep on.
 *
 * A mapping in the engine is held by it (whsem__p_engine_enter), so the
 * engine lets go of it under the segment lock, where closing decides too:
 * *left says it has, and *dying that the dispatcher must now call
 * whsem__p_engine_release (with no lock held).
 */
static uint32_t settle(struct wmap *m, uint64_t now, bool sweep, struct finished *f,
                       struct whsem_wakes *wk, bool *left, bool *dying, uint64_t *next_scan)
{
    *left = *dying = false;
    *next_scan = 0;
    whsem_header *h = m->hdr;
    whsem_slot *s = &m->slots[m->slot];
    whsem_status lst = whsem__lock_within(m, DISPATCH_LOCK_NS);
    if (lst == WHSEM_OK && (lst = whsem__p_segment_ok_locked(m)) != WHSEM_OK) whsem__unlock(m);
    if (lst == WHSEM_TIMEOUT) {
        settle_unlocked(m, sweep, f);
        *next_scan = now + DISPATCH_RETRY_NS;
        return whsem__p_own_seen(m);
    }
    if (lst != WHSEM_OK) {
        /* The segment is beyond use: everything ends with that error, and
         * with the message this thread was just given. */
        while (m->aq_head) {
            struct op *o = m->aq_head;
            unlink_pending(m, o);
            finish(f, o, lst, whsem_last_error());
        }
        atomic_store(&m->watch.on, false);
        whsem__watch_forget(m);
        deactivate(m);
        *left = true;
        *dying = whsem__p_engine_leave(m, false);
        return 0;
    }
    if (atomic_load(&m->owed_want)) pay_debts(m);
    /* Operations started while the lock was not to be had count now. */
    for (struct op *o = m->aq_head; o; o = o->next)
        if (!o->counted) {
            whsem__want_more(h, s);
            m->async_ops++;
            o->counted = true;
        }
    bool scanned = false;
    whsem_status why;
    const char *detail;
again:
    /* Grants and free tickets first, to live operations oldest first. */
    for (struct op *o = m->aq_head, *next; o && (s->grants > 0 || h->free > 0); o = next) {
        next = o->next;
        if (whsem__a_op_ended(o, &why, &detail)) continue;
        if (!whsem__take_grant(s)) {
            h->free--;
            whsem__take(s);
            h->acquisitions++;
        }
        whsem__want_less(h, s, true);
        m->async_ops--;
        unlink_pending(m, o);
        finish(f, o, WHSEM_OK, NULL);
    }
    /* Then the ones that are over without a ticket: all of them after an
     * early ending, else only those whose deadline the heap gave up. */
    for (struct op *o = (sweep || m->has_expired) ? m->aq_head : NULL, *next; o; o = next) {
        next = o->next;
        if (whsem__a_op_ended(o, &why, &detail)) {
            whsem__want_less(h, s, false);
            m->async_ops--;
            unlink_pending(m, o);
            finish(f, o, why, detail);
        }
    }
    /* We are not waiting on our slot now: its wakes go to waits that
     * are, one per grant left over. */
    whsem__settle_leftovers_locked(m, whsem__p_wake_defer, wk);
    /* Woken or not, the engine has looked: tickets still free go on. */
    m->hdr->ticket_woken = 0;
    int32_t next = whsem__pass_turn_locked(m);
    if (next >= 0) whsem__p_wake_defer(wk, m, next);
    m->has_expired = false;
    /* A watched process ended: the scan finds whether it is dead (and
     * hands its tickets on), as for a scan that falls due. */
    if (!scanned && (m->watch.death || (m->aq_head && whsem__scan_due(m, m->async_check_ms, now)))) {
        scanned = true;
        m->watch.death = false;
        if (whsem__scan_locked(m, false) == WHSEM_OK) goto again;
    }
    /* Its operations wait on, unserved: they age from now (give-back's
     * fairness clock counts from a wait's first sleep). */
    if (m->aq_head && !s->wait_since_ns) s->wait_since_ns = now;
    whsem__p_engine_looked(s, m->aq_head != NULL);
    bool watch = watching(m, now);
    bool look = watch && (now >= m->watch.look_at || whsem__p_attaches(m) != m->watch.attaches);
    struct whsem_watch_list list;
    if (look) {
        m->watch.attaches = whsem__p_attaches(m);
        whsem__watch_collect_locked(m, &list);
    }
    uint32_t seen = whsem__p_own_seen(m);
    /* Written while the lock keeps m: once the engine has left it, a close
     * on another thread may free it as soon as the lock is let go. */
    if (!watch) m->watch.look_at = 0;
    if (!m->aq_head && !atomic_load(&m->owed_want) && !watch && !m->helpers) {
        deactivate(m);
        *left = true;
        *dying = whsem__p_engine_leave(m, true);
    }
    *next_scan = m->aq_head ? next_scan_of(m, now) : 0;
    whsem__unlock(m);
    /* The watches change with no segment lock held: opening one takes
     * system calls, and other processes wait for that lock. */
    if (!watch) {
        whsem__watch_forget(m); /* m only names its watches here */
        return seen;
    }
    if (look) {
        m->watch.look_at = now + WATCH_REFRESH_NS;
        whsem__watch_update(m, &list);
    }
    uint64_t at = m->watch.death ? now : m->watch.look_at;
    if (!*next_scan || at < *next_scan) *next_scan = at;
    return seen;
}

/* Whether settling m now would do nothing (engine lock held): only its
 * processes are watched (for blocking waits), none ended or attached, and
 * the next look at them is not due. */
static bool quiet(struct wmap *m, uint64_t now, bool sweep)
{
    return !m->aq_head && !atomic_load(&m->owed_want) && !sweep && !m->watch.death &&
           now < m->watch.look_at && whsem__p_attaches(m) == m->watch.attaches;
}

void whsem__async_collect_debt(struct wmap *m)
{
    whsem__mutex_lock(&whsem__a_eng.mu);
    activate(m, -1);
    /* Without a dispatcher the next lock of this process pays instead. */
    (void)ensure_dispatcher_locked();
    whsem__mutex_unlock(&whsem__a_eng.mu);
    whsem__a_poke();
}

void whsem__async_watch_begin(struct wmap *m)
{
    atomic_fetch_add(&m->watch.starts, 1);
    atomic_fetch_add(&m->watch.waits, 1);
    if (atomic_load(&m->watch.on)) return;
    whsem__mutex_lock(&whsem__a_eng.mu);
    /* The dispatcher watches m (again), and waits for its attaches. */
    activate(m, -1);
    /* Without a dispatcher the wait polls, as it always could. */
    bool ask = ensure_dispatcher_locked() == WHSEM_OK;
    whsem__mutex_unlock(&whsem__a_eng.mu);
    if (ask) whsem__a_poke();
}

void whsem__async_watch_end(struct wmap *m) { atomic_fetch_sub(&m->watch.waits, 1); }

bool whsem__async_unwatch(struct wmap *m)
{
    whsem__mutex_lock(&whsem__a_eng.mu);
    bool go = atomic_load(&m->active) && !m->aq_head && !atomic_load(&m->owed_want) && !m->helpers &&
              !atomic_load(&m->watch.waits);
    if (go) { /* as in watching(): a wait that begins now asks again */
        atomic_store(&m->watch.on, false);
        go = !atomic_load(&m->watch.waits);
    }
    bool release = false;
    if (go) {
        whsem__watch_forget(m);
        m->watch.look_at = 0;
        deactivate(m);
        release = whsem__p_engine_leave(m, false);
    }
    whsem__mutex_unlock(&whsem__a_eng.mu);
    return release;
}

/* Gives back a ticket counted in our slot that no handle could be made
 * for. */
static void give_back_unpublished(struct wmap *m)
{
    if (whsem__lock(m) != WHSEM_OK) return;
    m->slots[m->slot].held--;
    int32_t w = whsem__give_back_locked(m);
    whsem__unlock(m);
    if (w >= 0) whsem__p_wake_locked(m, (uint32_t)w); /* as well after the unlock */
}

whsem_status whsem__a_shm_hold(struct whsem_semobj *obj) { return whsem__p_op_hold((struct wmap *)obj); }

void whsem__a_shm_unhold(struct whsem_semobj *obj) { whsem__p_op_unhold((struct wmap *)obj); }

/* Ends an operation that is over (no locks held); a callback goes to
 * later when not NULL (see whsem__a_complete). */
static void end_op(struct op *o, whsem_status st, struct whsem_cb_batch *later)
{
    struct wmap *m = (struct wmap *)o->obj; /* o may be recycled once complete */
    uint64_t ticket = 0;
    if (o->wait_began) whsem__count_wait(m->hdr, o->wait_began, whsem__p_mono_ns());
    whsem__count_end(m->hdr, st, o->wait_began != 0);
    if (st == WHSEM_OK) {
        if ((ticket = whsem__h_alloc(HK_TICKET, m, o->pgen, &st))) {
            /* Not yet handed out: whsem__a_complete does that. */
            whsem__h_entry(ticket)->since = whsem__hold_begins();
            whsem__p_ticket_made(m);
        } else {
            whsem__a_set_detail(o, whsem_last_error());
            give_back_unpublished(m);
        }
    }
    whsem__cancel_unregister(&o->cw);
    whsem__a_complete(o, st, ticket, later);
    whsem__p_op_unhold(m);
}

void whsem__a_shm_end(struct op *o, whsem_status st) { end_op(o, st, NULL); }

/* Makes a pending operation known to the dispatcher. Without a dispatcher
 * the wait would never end: it is canceled, and the caller sees why
 * through the operation. */
static void enqueue(struct op *o, int32_t check_ms)
{
    struct wmap *m = o->m;
    whsem__mutex_lock(&whsem__a_eng.mu);
    activate(m, check_ms);
    o->prev = m->aq_tail;
    o->next = NULL;
    o->queued = true;
    if (m->aq_tail) m->aq_tail->next = o;
    else m->aq_head = o;
    m->aq_tail = o;
    if (o->dl.at && !whsem__deadline_push(&whsem__a_eng.deadlines, &o->dl))
        o->dl.at = whsem__p_mono_ns(); /* cannot time it: end it */
    whsem_status ds = ensure_dispatcher_locked();
    /* Under the engine lock: a dispatcher started later may end it. */
    if (ds != WHSEM_OK) whsem__a_set_detail(o, whsem_last_error());
    whsem__mutex_unlock(&whsem__a_eng.mu);
    if (ds != WHSEM_OK) {
        atomic_store(&o->cancel_req, true);
        whsem__a_poke_endings();
    } else {
        whsem__a_poke();
    }
}

whsem_status whsem__a_shm_start(struct op *o, int64_t timeout_ms, int32_t check_ms)
{
    struct wmap *m = o->m = (struct wmap *)o->obj;
    /* Never blocked on another process here: if the lock is not to be had
     * at once, the dispatcher counts the operation later. */
    whsem_status st = whsem__lock_within(m, timeout_ms == 0 ? WHSEM_TRY_LOCK_NS : DISPATCH_LOCK_NS);
    if (st == WHSEM_TIMEOUT && timeout_ms != 0) {
        o->wait_began = whsem__p_mono_ns();
        enqueue(o, check_ms);
        return WHSEM_PENDING;
    }
    if (st == WHSEM_OK && (st = whsem__p_segment_ok_locked(m)) != WHSEM_OK) whsem__unlock(m);
    if (st != WHSEM_OK) {
        whsem__a_set_detail(o, whsem_last_error()); /* an error, or a try whose lock was not let go */
        return st;
    }
    whsem_header *hd = m->hdr;
    whsem_slot *s = &m->slots[m->slot];
    whsem_status now_status = WHSEM_PENDING;
    if (hd->free > 0) {
        hd->free--;
        whsem__take(s);
        hd->acquisitions++;
        now_status = WHSEM_OK;
    } else if (timeout_ms == 0) {
        now_status = whsem__try_once_locked(m, check_ms);
        if (now_status < 0) whsem__a_set_detail(o, whsem_last_error());
    } else {
        whsem__want_more(hd, s);
        m->async_ops++;
        o->counted = true;
        o->wait_began = whsem__p_mono_ns();
        whsem__p_engine_looked(s, true);
    }
    whsem__unlock(m);
    if (now_status == WHSEM_PENDING) enqueue(o, check_ms);
    return now_status;
}

/* Publishes tickets and delivers the batch (no locks held); callbacks go
 * to later when not NULL. */
static void deliver(struct finished *f, struct whsem_cb_batch *later)
{
    while (f->head) {
        struct op *o = f->head;
        f->head = o->link;
        end_op(o, o->final, later);
    }
}

/* What settling one mapping leaves to do once the engine lock is let go. */
static void after_settle(struct whsem_wakes *wk, struct finished *f, struct whsem_cb_batch *later,
                         struct wmap *dying)
{
    whsem__p_wakes_flush(wk);
    deliver(f, later);
    while (dying) {
        struct wmap *m = dying;
        dying = m->released_next;
        whsem__p_engine_release(m);
    }
}

bool whsem__a_shm_wait(struct op *o, uint64_t h, uint64_t deadline)
{
    if (!whsem__p_help_ok()) return false;
    /* As a blocked whsem_acquire does before it sleeps: this thread's
     * handle record and cache are made now, not after the wake-up that
     * ends the operation here (its ticket gets a handle then). */
    whsem_status ignored;
    uint64_t warm = whsem__h_reserve(HK_TICKET, &ignored);
    if (warm) whsem__h_unreserve(warm);
    whsem__mutex_lock(&whsem__a_eng.mu);
    /* Still pending in the engine, which holds it and its mapping: it is
     * the operation of handle h. */
    if (!o->queued || o->cb_handle != h) {
        whsem__mutex_unlock(&whsem__a_eng.mu);
        return false;
    }
    struct wmap *m = o->m;
    /* The dispatcher leaves our slot's wakes on m to us from now on (it
     * learns so when poked), so that a release wakes this thread alone. */
    m->helpers++;
    bool poke = true;
    atomic_fetch_add(&o->done_waiters, 1);
    for (;;) {
        uint64_t now = whsem__p_mono_ns();
        struct finished f = {0};
        struct whsem_wakes wk = {.n = 0};
        bool left, is_dying;
        uint64_t next;
        uint32_t seen = settle(m, now, false, &f, &wk, &left, &is_dying, &next);
        /* Helpers keep m in the engine, so only an error lets it go. */
        bool over = !o->queued || left || !whsem__h_lookup(h, HK_OP) || (deadline && now >= deadline);
        if (over) {
            m->helpers--;
            /* The dispatcher takes m's wakes back (its timers let m go). */
            poke = !left && !m->helpers && m->aq_head;
            /* Whoever ends it now need not wake us (we look at `done`). */
            atomic_fetch_sub(&o->done_waiters, 1);
        }
        if (is_dying) m->released_next = NULL;
        whsem__mutex_unlock(&whsem__a_eng.mu);
        after_settle(&wk, &f, NULL, is_dying ? m : NULL);
        if (poke) whsem__a_poke();
        poke = false;
        if (over) break;
        if (!atomic_load(&o->done)) whsem__p_help_wait(&o->done, m, seen, deadline);
        whsem__mutex_lock(&whsem__a_eng.mu);
    }
    return true;
}

/* A dispatcher that another replaced (see async_callbacks.c): a wake it
 * may have taken is passed on, and its thread runs callbacks from now on. */
static void step_down(void)
{
    whsem__a_poke();
    whsem__a_become_callback_thread();
}

static WHSEM_THREAD_FN(dispatcher)
{
    (void)arg;
    uint64_t idle_since = 0;
    struct whsem_waitset ws;
    whsem__mutex_lock(&whsem__a_eng.mu);
    const uint32_t gen = atomic_load(&whsem__a_eng.leader_gen);
    whsem__a_leader_up(true);
    for (;;) {
        if (atomic_load(&whsem__a_eng.leader_gen) != gen) {
            whsem__mutex_unlock(&whsem__a_eng.mu);
            step_down();
            WHSEM_THREAD_END;
        }
        uint64_t now = whsem__p_mono_ns();
        uint32_t seq = whsem__p_ctl_seq(&whsem__a_eng.ctl);
        uint32_t endings = atomic_load_explicit(&whsem__a_eng.endings, memory_order_acquire);
        bool sweep = endings != whsem__a_eng.swept_endings;
        whsem__a_eng.swept_endings = endings;
        for (struct whsem_deadline *d;
             (d = whsem__deadline_first(&whsem__a_eng.deadlines)) && d->at <= now;) {
            struct op *o = whsem__a_op_of(d);
            whsem__deadline_remove(&whsem__a_eng.deadlines, d);
            o->expired = true;
            o->m->has_expired = true;
        }
        struct finished f = {0};
        struct wmap *dying = NULL;
        struct whsem_wakes wk = {.n = 0};
        uint64_t until = 0;
        bool polled = false;
        whsem__p_ws_begin(&ws, &whsem__a_eng.ctl, seq);
        whsem__watch_take_ends();
        for (struct wmap *m = whsem__a_eng.active, *next; m; m = next) {
            next = m->active_next;
            bool left, is_dying;
            uint64_t next_scan;
            if (quiet(m, now, sweep)) {
                if (!until || m->watch.look_at < until) until = m->watch.look_at;
                wait_for_attaches(&ws, m);
                continue;
            }
            uint32_t seen = settle(m, now, sweep, &f, &wk, &left, &is_dying, &next_scan);
            if (left) { /* not to be touched again, unless ours to release */
                if (is_dying) {
                    /* Not through active_next: a new operation may put m
                     * back in the engine before we release it. */
                    m->released_next = dying;
                    dying = m;
                }
                continue;
            }
            if (next_scan && (!until || next_scan < until)) until = next_scan;
            /* Only a debt: nothing to wait on, it retries. A thread in
             * whsem_op_wait that helps takes m's wakes itself. */
            if (m->aq_head && !m->helpers && !whsem__p_ws_add(&ws, m, seen)) polled = true;
            wait_for_attaches(&ws, m);
        }
        struct whsem_deadline *first = whsem__deadline_first(&whsem__a_eng.deadlines);
        if (first && (!until || first->at < until)) until = first->at;
        bool idle = whsem__a_eng.active == NULL;
        whsem__mutex_unlock(&whsem__a_eng.mu);

        struct whsem_cb_batch later = {0};
        after_settle(&wk, &f, &later, dying);
        /* Its callbacks run here, which they may do only while quick (see
         * async_callbacks.c); the wait set above stays right however long
         * they take: a wake meanwhile moves a word it waits on. */
        if (!whsem__a_lead_callbacks(later.head, gen)) {
            step_down();
            WHSEM_THREAD_END;
        }

        if (whsem__a_check_callbacks() && (!until || until > now + STALL_NS)) until = now + STALL_NS;
        if (polled && (!until || until > now + POLL_NS)) until = now + POLL_NS;
        if (idle) {
            if (!idle_since) idle_since = now;
            if (now - idle_since >= IDLE_EXIT_NS) {
                whsem__mutex_lock(&whsem__a_eng.mu);
                if (!whsem__a_eng.active && whsem__p_ctl_seq(&whsem__a_eng.ctl) == seq &&
                    atomic_load(&whsem__a_eng.leader_gen) == gen) {
                    whsem__a_eng.dispatcher_running = false;
                    whsem__a_leader_up(false);
                    whsem__mutex_unlock(&whsem__a_eng.mu);
                    WHSEM_THREAD_END;
                }
                continue; /* something arrived: go round with the lock held */
            }
            if (!until || until > idle_since + IDLE_EXIT_NS) until = idle_since + IDLE_EXIT_NS;
        } else {
            idle_since = 0;
        }
        whsem__p_ws_wait(&ws, &whsem__a_eng.ctl, seq, until);
        whsem__mutex_lock(&whsem__a_eng.mu);
    }
}

/* A callback thread found the dispatcher of generation gen inside one
 * callback for STALL_NS: another dispatcher takes over. Whether one did. */
static bool replace_dispatcher(uint32_t gen)
{
    whsem__mutex_lock(&whsem__a_eng.mu);
    /* The new one reads the generation once we let go of the lock. */
    bool ok = whsem__a_eng.dispatcher_running && atomic_load(&whsem__a_eng.leader_gen) == gen &&
              whsem__p_thread_start(dispatcher, "dispatcher") == WHSEM_OK;
    if (ok) atomic_fetch_add(&whsem__a_eng.leader_gen, 1);
    whsem__mutex_unlock(&whsem__a_eng.mu);
    return ok;
}

static whsem_status ensure_dispatcher_locked(void)
{
    if (whsem__a_eng.dispatcher_running) return WHSEM_OK;
    atomic_store(&whsem__a_eng.replace_leader, replace_dispatcher);
    whsem_status st = whsem__p_ctl_ready(&whsem__a_eng.ctl);
    if (st == WHSEM_OK) st = whsem__p_thread_start(dispatcher, "dispatcher");
    if (st == WHSEM_OK) whsem__a_eng.dispatcher_running = true;
    return st;
}
