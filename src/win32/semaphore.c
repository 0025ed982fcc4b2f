/*
 * Semaphore handles, tickets and blocking waits.
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
#include "win32.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHECK_MS 100
#define DEFAULT_MODE 0600u

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

struct open_opts {
    uint32_t flags;
    int32_t check_ms;
    uint32_t mode;
};

/* The same rules as on Linux: a versioned struct read as far as the
 * caller's struct_size covers it. */
static whsem_status read_opts(const whsem_open_options *o, struct open_opts *out)
{
    out->flags = 0;
    out->check_ms = DEFAULT_CHECK_MS;
    out->mode = DEFAULT_MODE;
    if (!o) return WHSEM_OK;
    if (o->struct_size < offsetof(whsem_open_options, flags) + sizeof o->flags)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                           "options.struct_size is %u; set it to sizeof(whsem_open_options)",
                           o->struct_size);
    out->flags = o->flags;
    if (out->flags & ~WHSEM_OPEN_EXACT_NAME)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "options.flags has unknown bits 0x%x",
                           out->flags & ~WHSEM_OPEN_EXACT_NAME);
    if (o->struct_size >= offsetof(whsem_open_options, abandonment_check_ms) + sizeof(int32_t)) {
        int32_t c = o->abandonment_check_ms;
        if (c < WHSEM_INFINITE)
            return whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                               "options.abandonment_check_ms is %d; use 0 (default), -1 "
                               "(infinite) or 1 ... INT32_MAX",
                               c);
        if (c != 0) out->check_ms = c;
    }
    if (o->struct_size >= offsetof(whsem_open_options, mode) + sizeof(uint32_t) && o->mode != 0) {
        if ((o->mode & ~0777u) || (o->mode & 0600u) != 0600u)
            return whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                               "options.mode 0%o must be permission bits (at most 0777) that "
                               "include owner read and write (0600)",
                               o->mode);
        out->mode = o->mode;
    }
    return WHSEM_OK;
}

whsem_status whsem__invalid_handle(uint64_t h, const char *what)
{
    if (h == 0) return whsem__fail(WHSEM_E_INVALID_HANDLE, "the %s handle is 0", what);
    return whsem__fail(WHSEM_E_INVALID_HANDLE,
                       "0x%llx is not a live %s handle (closed, released, or of another kind)",
                       (unsigned long long)h, what);
}

static whsem_status open_impl(const char *name, int32_t max_count, const whsem_open_options *opts,
                              whsem_sem *out_sem)
{
    if (!name) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "name is NULL");
    if (!out_sem) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_sem is NULL");
    struct open_opts o;
    whsem_status st = read_opts(opts, &o);
    if (st != WHSEM_OK) return st;
    char final[WHSEM_MAX_NAME_BYTES + 1];
    size_t len;
    st = whsem__finalize_name(name, o.flags & WHSEM_OPEN_EXACT_NAME, final, &len);
    if (st != WHSEM_OK) return st;
    struct wmap *m;
    if ((st = whsem__map_get(final, len, max_count, o.mode, &m)) != WHSEM_OK) return st;
    /* The mapping's use counted by map_get becomes the handle's. */
    uint64_t h = whsem__h_alloc(HK_SEM, m, (uint64_t)(int64_t)o.check_ms, &st);
    if (!h) {
        whsem__unuse(m);
        return st;
    }
    *out_sem = h;
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_open(const char *name, int32_t max_count,
                                             const whsem_open_options *opts, whsem_sem *out_sem)
{
    if (max_count < 1)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "max_count is %d; it must be 1 ... %d",
                           max_count, INT32_MAX);
    return open_impl(name, max_count, opts, out_sem);
}

WHSEM_API whsem_status WHSEM_CALL whsem_open_existing(const char *name,
                                                      const whsem_open_options *opts,
                                                      whsem_sem *out_sem)
{
    return open_impl(name, 0, opts, out_sem);
}

WHSEM_API whsem_status WHSEM_CALL whsem_close(whsem_sem sem)
{
    struct wmap *m = whsem__h_kill_take(sem, HK_SEM);
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    /* Waits on this handle look at it again when woken, and end. */
    swait_wake_sem(sem);
    whsem__async_poke();
    whsem__unuse(m);
    return WHSEM_OK;
}

/* ---- introspection ------------------------------------------------------------------- */

/* Copies a string into a caller's buffer, "ask, then fill" style. */
static whsem_status copy_out(const char *s, size_t len, char *buf, size_t size, size_t *out_len)
{
    if (!out_len) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_len is NULL");
    *out_len = len + 1;
    if (!buf || size < len + 1)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "buffer too small: %zu bytes needed", len + 1);
    memcpy(buf, s, len);
    buf[len] = 0;
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_safe_name(const char *name, char *buf, size_t size,
                                                  size_t *out_len)
{
    if (!name) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "name is NULL");
    if (!out_len) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_len is NULL");
    char final[WHSEM_MAX_NAME_BYTES + 1];
    size_t len;
    whsem_status st = whsem__finalize_name(name, false, final, &len);
    if (st != WHSEM_OK) return st;
    return copy_out(final, len, buf, size, out_len);
}

WHSEM_API whsem_status WHSEM_CALL whsem_name(whsem_sem sem, char *buf, size_t size, size_t *out_len)
{
    struct wmap *m = whsem__h_use(sem, HK_SEM);
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    whsem_status st = copy_out(m->name, m->name_len, buf, size, out_len);
    whsem__unuse(m);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_max_count(whsem_sem sem, int32_t *out_max_count)
{
    if (!out_max_count) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_max_count is NULL");
    struct wmap *m = whsem__h_use(sem, HK_SEM);
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    *out_max_count = m->max_count;
    whsem__unuse(m);
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_query(whsem_sem sem, whsem_info *info,
                                              whsem_holder *holders, size_t capacity,
                                              size_t *out_count)
{
    if (!out_count) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_count is NULL");
    if (capacity && !holders)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "holders is NULL but capacity is %zu", capacity);
    if (info && info->struct_size < sizeof(whsem_info))
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                           "info->struct_size is %u; set it to sizeof(whsem_info)",
                           info->struct_size);
    struct wmap *m = whsem__h_use(sem, HK_SEM);
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    whsem_status st = whsem__lock(m);
    if (st != WHSEM_OK) {
        whsem__unuse(m);
        return st;
    }
    /* Report what is true now: look for dead processes first. */
    st = whsem__scan_locked(m, true);
    if (st == WHSEM_OK) {
        struct wseg_header *h = m->hdr;
        size_t n = 0;
        uint32_t processes = 0;
        for (uint32_t i = 0; i < WHSEM_W_NSLOTS; i++) {
            const struct wseg_slot *s = &m->slots[i];
            if (s->state != WSLOT_ACTIVE) continue;
            processes++;
            if (!s->held && !s->grants) continue;
            if (n < capacity) {
                holders[n].pid = s->pid;
                holders[n].since_unix_ms = s->since_unix_ms;
                holders[n].tickets = (int32_t)(s->held + s->grants);
                holders[n].waiting = s->want > s->grants ? s->want - s->grants : 0;
            }
            n++;
        }
        if (info) {
            info->max_count = h->max_count;
            info->free_count = h->free;
            info->waiters = h->waiting;
            info->processes = processes;
            info->holders = (uint32_t)n;
            info->recoveries = h->recoveries;
        }
        *out_count = n;
    }
    whsem__unlock(m);
    whsem__unuse(m);
    return st;
}

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
    uint64_t now = whsem__w_mono_ns();
    uint64_t deadline = timeout_ms < 0 ? 0 : now + (uint64_t)timeout_ms * 1000000u;
    if ((result = whsem__lock(m)) != WHSEM_OK) goto out_unlocked;
    whsem__want_more(h, s, now);
    for (;;) {
        if (whsem__take_grant(s)) {
            result = WHSEM_OK;
            break;
        }
        if (h->free > 0) {
            h->free--;
            whsem__take(s);
            h->acquisitions++;
            result = WHSEM_OK;
            break;
        }
        if (cancel && whsem__cancel_triggered(&cw)) {
            result = WHSEM_CANCELED;
            break;
        }
        if (atomic_load(&se->tag) != sem) {
            result = whsem__fail(WHSEM_CANCELED, "the semaphore handle was closed while waiting");
            break;
        }
        if (deadline && now >= deadline) {
            result = WHSEM_TIMEOUT;
            break;
        }
        if (whsem__scan_due(m, check_ms, now)) {
            whsem_status st = whsem__scan_locked(m, false);
            if (st != WHSEM_OK) {
                result = st;
                break;
            }
            now = whsem__w_mono_ns();
            continue; /* the scan may have freed or granted tickets */
        }
        uint64_t until = deadline;
        if (check_ms >= 0) {
            uint64_t next_scan = h->last_scan_ns + (uint64_t)check_ms * 1000000u;
            if (!until || next_scan < until) until = next_scan;
        }
        whsem__unlock(m);
        HANDLE objs[2] = {whsem__own_wake(m), ev};
        WaitForMultipleObjects(2, objs, FALSE, whsem__w_wait_ms(until, now));
        if ((result = whsem__lock(m)) != WHSEM_OK) goto out_unlocked; /* our want is moot */
        now = whsem__w_mono_ns();
    }
    whsem__want_less(h, s, result == WHSEM_OK, now);
    whsem__unlock(m);
out_unlocked:
    if (cancel) whsem__cancel_unregister(&cw);
    swait_remove(&sw);
    return result;
}

/* Everything but a free ticket at the first look: try-once with a scan
 * for dead holders, or a wait. Called with the mutex held; drops it. */
static whsem_status acquire_slow(struct wmap *m, struct hentry *e, whsem_sem sem,
                                 int64_t timeout_ms, whsem_cancel cancel)
{
    struct wseg_header *h = m->hdr;
    if (h->free > m->max_count) {
        whsem__unlock(m);
        return whsem__fail(WHSEM_E_CORRUPT, "%ls: %d free tickets but max count %d", m->obj,
                           h->free, m->max_count);
    }
    if (timeout_ms != 0) {
        whsem__unlock(m);
        return wait_for_ticket(m, e, sem, timeout_ms, cancel);
    }
    /* Try once: a ticket granted to this process will do; else, if the
     * last look for dead holders is stale, look now. */
    struct wseg_slot *s = &m->slots[m->slot];
    whsem_status st = WHSEM_TIMEOUT;
    if (whsem__take_grant(s)) {
        st = WHSEM_OK;
    } else if (whsem__scan_due(m, (int32_t)atomic_load(&e->aux), whsem__w_mono_ns()) &&
               (st = whsem__scan_locked(m, false)) == WHSEM_OK) {
        st = WHSEM_TIMEOUT;
        if (h->free > 0) {
            h->free--;
            whsem__take(s);
            h->acquisitions++;
            st = WHSEM_OK;
        }
    }
    whsem__unlock(m);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_acquire(whsem_sem sem, int64_t timeout_ms,
                                                whsem_cancel cancel, whsem_ticket *out_ticket)
{
    if (!out_ticket) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_ticket is NULL");
    if (timeout_ms < WHSEM_INFINITE || timeout_ms > INT32_MAX)
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT,
                           "timeout_ms is %lld; use 0 (try once), -1 (infinite) or 1 ... %d",
                           (long long)timeout_ms, INT32_MAX);
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    if (!e) return whsem__invalid_handle(sem, "semaphore");
    if (cancel) {
        struct hentry *ce = whsem__h_lookup(cancel, HK_CANCEL);
        if (!ce) return whsem__invalid_handle(cancel, "cancellation source");
        if (atomic_load(&ce->aux)) return WHSEM_CANCELED;
    }
    struct wmap *m = whsem__h_use(sem, HK_SEM);
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    whsem_status st = whsem__lock(m);
    if (st != WHSEM_OK) {
        whsem__unuse(m);
        return st;
    }
    struct wseg_header *h = m->hdr;
    if (h->free > 0 && h->free <= m->max_count) {
        h->free--;
        WHSEM_W_FAULT("acquire");
        whsem__take(&m->slots[m->slot]);
        h->acquisitions++;
        whsem__unlock(m);
    } else if ((st = acquire_slow(m, e, sem, timeout_ms, cancel)) != WHSEM_OK) {
        whsem__unuse(m);
        return st;
    }
    /* This call's use of the mapping becomes the ticket's. */
    uint64_t ticket = whsem__h_alloc(HK_TICKET, m, 0, &st);
    if (!ticket) {
        whsem__give_back_unpublished(m);
        whsem__unuse(m);
        return st;
    }
    *out_ticket = ticket;
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_release(whsem_ticket ticket)
{
    /* Ending the handle first decides which of two racing releases wins. */
    struct wmap *m = whsem__h_kill_take(ticket, HK_TICKET);
    if (!m) return whsem__invalid_handle(ticket, "ticket");
    whsem_status st = whsem__lock(m);
    if (st != WHSEM_OK) {
        /* The segment is beyond use (corrupt): the count stays with our slot. */
        whsem__unuse(m);
        return st;
    }
    struct wseg_header *h = m->hdr;
    struct wseg_slot *s = &m->slots[m->slot];
    int32_t wake = -1;
    if (s->held == 0) {
        st = whsem__fail(WHSEM_E_CORRUPT, "%ls: our slot records no ticket to release", m->obj);
    } else {
        s->held--;
        WHSEM_W_FAULT("release");
        if (h->waiting > 0) {
            wake = whsem__give_back_locked(m);
            WHSEM_W_FAULT("handoff");
        } else {
            h->free++;
        }
    }
    whsem__unlock(m);
    if (wake >= 0) whsem__wake_slot(m, (uint32_t)wake, 1);
    whsem__unuse(m);
    return st;
}
