/*
 * Semaphore handles: open, close, introspection.
 *
 * A whsem_sem handle points at this process's mapping of the name; several
 * handles (from several opens) share one mapping and one slot. A mapping
 * lives while handles, tickets, waiting acquisitions or asynchronous
 * operations use it; the last of them to go marks it dying (under the
 * segment lock, which orders the decision against every other use) and
 * retires it.
 */
#include "internal.h"
#include "private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHECK_MS 100
#define DEFAULT_MODE 0600u

struct open_opts {
    uint32_t flags;
    int32_t check_ms;
    uint32_t mode;
};

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

void whsem__maps_remove(struct wmap *m)
{
    for (struct wmap **pp = &whsem__maps; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            return;
        }
}

/* Under the lock (or maps_mu for a mapping with no slot): whether nothing
 * uses the mapping any more; if so it is marked dying. */
bool whsem__mark_dying_locked(struct wmap *m)
{
    if (atomic_load_explicit(&m->dying, memory_order_relaxed) || m->handles != 0 ||
        m->async_ops != 0)
        return false;
    if (whsem__attached(m)) {
        const struct seg_slot *s = &m->slots[m->slot];
        if (s->held || s->grants || s->want) return false;
    }
    atomic_store_explicit(&m->dying, true, memory_order_relaxed);
    return true;
}

void whsem__finish_dying(struct wmap *m)
{
    pthread_mutex_lock(&whsem__maps_mu);
    whsem__maps_remove(m);
    pthread_mutex_unlock(&whsem__maps_mu);
    whsem__retire(m);
}

/* Gives a mapping opened for nothing (a failed open) back (maps_mu held). */
static void drop_if_unused(struct wmap *m)
{
    bool dying;
    if (whsem__attached(m)) {
        if (whsem__lock(m) != WHSEM_OK) return;
        dying = whsem__mark_dying_locked(m);
        whsem__unlock(m);
    } else {
        dying = whsem__mark_dying_locked(m);
    }
    if (dying) {
        whsem__maps_remove(m);
        whsem__retire(m);
    }
}

whsem_status whsem__ensure_attached(struct wmap *m)
{
    whsem_status st = WHSEM_OK;
    pthread_mutex_lock(&whsem__maps_mu);
    if (!whsem__attached(m)) st = whsem__attach(m, false);
    pthread_mutex_unlock(&whsem__maps_mu);
    return st;
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
    whsem__init();

    uint64_t h = whsem__h_reserve(HK_SEM, &st);
    if (!h) return st;
    pthread_mutex_lock(&whsem__maps_mu);
    struct wmap *m;
    for (int attempt = 0;; attempt++) {
        if (attempt == 8) {
            st = whsem__fail(WHSEM_E_OS, "'%s' keeps being replaced while opening it", final);
            break;
        }
        st = whsem__map_get(final, len, max_count, o.mode, max_count != 0, &m);
        if (st != WHSEM_OK) break;
        if (max_count != 0 && m->max_count != max_count) {
            bool replaced = whsem__replace_if_stale(m);
            drop_if_unused(m);
            if (replaced) continue; /* map_get creates it anew */
            st = whsem__fail(WHSEM_E_MAX_COUNT_MISMATCH,
                             "'%s' is open with max count %d, not %d", final, m->max_count,
                             max_count);
            break;
        }
        if (!whsem__attached(m) && (st = whsem__attach(m, true)) != WHSEM_OK) {
            drop_if_unused(m);
            if (st == WHSEM_E_NOT_FOUND) continue; /* replaced under us: look again */
            break;
        }
        if ((st = whsem__lock(m)) != WHSEM_OK) break;
        bool dying = atomic_load_explicit(&m->dying, memory_order_relaxed);
        if (!dying) m->handles++;
        whsem__unlock(m);
        if (!dying) break;
        /* The last ticket of a closed mapping went away between finding
         * the mapping and locking it; its dying flag makes map_get skip it. */
    }
    pthread_mutex_unlock(&whsem__maps_mu);
    if (st != WHSEM_OK) {
        whsem__h_unreserve(h);
        return st;
    }
    whsem__h_publish(h, m, (uint64_t)(int64_t)o.check_ms);
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
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    if (!e) return whsem__invalid_handle(sem, "semaphore");
    pthread_mutex_lock(&whsem__maps_mu);
    /* The entry's mapping stays valid here: this handle's count in
     * m->handles keeps it alive until we drop it below. */
    struct wmap *m = atomic_load(&e->ptr);
    if (!whsem__h_kill_cas(e, sem)) {
        pthread_mutex_unlock(&whsem__maps_mu);
        return whsem__invalid_handle(sem, "semaphore");
    }
    bool dying;
    if (whsem__attached(m) && whsem__lock(m) == WHSEM_OK) {
        m->handles--;
        struct seg_slot *s = &m->slots[m->slot];
        /* Waits on this handle look at its entry when woken. */
        if (s->want) whsem__wake_slot(s, INT32_MAX);
        dying = whsem__mark_dying_locked(m);
        whsem__unlock(m);
    } else {
        m->handles--;
        dying = whsem__mark_dying_locked(m);
    }
    if (dying) whsem__maps_remove(m);
    pthread_mutex_unlock(&whsem__maps_mu);
    whsem__h_recycle(sem);
    if (dying) whsem__retire(m);
    else whsem__async_poke(); /* operations on this handle end */
    return WHSEM_OK;
}

/* Copies a string into a caller's buffer, "ask, then fill" style. */
whsem_status whsem__copy_out(const char *s, size_t len, char *buf, size_t size, size_t *out_len)
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
    return whsem__copy_out(final, len, buf, size, out_len);
}

WHSEM_API whsem_status WHSEM_CALL whsem_name(whsem_sem sem, char *buf, size_t size, size_t *out_len)
{
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    void *saved;
    struct wmap *m = e ? whsem__protect(e, sem, &saved) : NULL;
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    whsem_status st = whsem__copy_out(m->name, m->name_len, buf, size, out_len);
    whsem__unprotect(saved);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_max_count(whsem_sem sem, int32_t *out_max_count)
{
    if (!out_max_count) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_max_count is NULL");
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    void *saved;
    struct wmap *m = e ? whsem__protect(e, sem, &saved) : NULL;
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    *out_max_count = m->max_count;
    whsem__unprotect(saved);
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
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    void *saved;
    struct wmap *m = e ? whsem__protect(e, sem, &saved) : NULL;
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    whsem_status st = whsem__attached(m) ? WHSEM_OK : whsem__ensure_attached(m);
    if (st == WHSEM_OK) st = whsem__lock(m);
    if (st != WHSEM_OK) {
        whsem__unprotect(saved);
        return st;
    }
    /* Report what is true now: look for dead processes first. */
    st = whsem__scan_locked(m, true);
    if (st == WHSEM_OK) {
        struct seg_header *h = m->hdr;
        size_t n = 0;
        uint32_t processes = 0;
        for (uint32_t i = 0; i < WHSEM_NSLOTS; i++) {
            const struct seg_slot *s = &m->slots[i];
            if (atomic_load_explicit(&s->state, memory_order_relaxed) != SLOT_ACTIVE) continue;
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
    whsem__unprotect(saved);
    return st;
}

whsem_status whsem__share_liveness(whsem_sem sem, int *out_fd)
{
    if (!out_fd) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_fd is NULL");
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    void *saved;
    struct wmap *m = e ? whsem__protect(e, sem, &saved) : NULL;
    if (!m) return whsem__invalid_handle(sem, "semaphore");
    whsem_status st = whsem__attached(m) ? WHSEM_OK : whsem__ensure_attached(m);
    if (st == WHSEM_OK) {
        int fd = fcntl(m->fd, F_DUPFD, 3);
        if (fd < 0) st = whsem__fail_errno(errno, "cannot duplicate the descriptor of", m->path);
        else *out_fd = fd;
    }
    whsem__unprotect(saved);
    return st;
}
