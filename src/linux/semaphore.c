/* SPDX-License-Identifier: MIT */
/*
 * Semaphore handles: open (once api.c has checked the arguments and
 * finalized the name), close, introspection.
 *
 * A whsem_sem handle points at this process's mapping of the name; several
 * handles (from several opens) share one mapping and one slot. A mapping
 * lives while handles, tickets, waiting acquisitions or asynchronous
 * operations use it; the last of them to go marks it dying (under the
 * segment lock, which orders the decision against every other use) and
 * retires it.
 */
#include "async.h"
#include "shm.h"
#include "recovery.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Gives a mapping opened for nothing (a failed open) back (maps_mu held). */
static void drop_if_unused(struct wmap *m)
{
    bool dying;
    if (whsem__attached(m)) {
        if (whsem__lock_within(m, WHSEM_OPEN_LOCK_NS) != WHSEM_OK) return;
        dying = whsem__mark_dying_locked(m);
        whsem__unlock(m);
    } else {
        dying = whsem__mark_dying_locked(m);
    }
    if (dying) {
        whsem__maps_remove(m);
        whsem__retire_map(m);
    }
}

whsem_status whsem__shm_open(const char *final, size_t len, int32_t max_count,
                             const struct open_opts *o, const struct whsem_backend *be,
                             whsem_sem *out_sem)
{
    whsem__init();
    whsem_status st;
    uint64_t h = whsem__h_reserve(HK_SEM, &st);
    if (!h) return st;
    pthread_mutex_lock(&whsem__maps_mu);
    struct wmap *m;
    for (int attempt = 0;; attempt++) {
        if (attempt == 8) {
            st = whsem__fail(WHSEM_E_OS, "'%s' keeps being replaced while opening it", final);
            break;
        }
        st = whsem__map_get(final, len, max_count, o, max_count != 0, be, &m);
        if (st != WHSEM_OK) break;
        if (max_count != 0 && m->max_count != max_count) {
            int32_t theirs = m->max_count; /* drop_if_unused may free m */
            bool replaced = whsem__replace_if_stale(m);
            drop_if_unused(m);
            if (replaced) continue; /* map_get creates it anew */
            st = whsem__fail(WHSEM_E_MAX_COUNT_MISMATCH,
                             "'%s' is open with max count %d, not %d", final, theirs, max_count);
            break;
        }
        if (!whsem__attached(m) && (st = whsem__attach(m, true)) != WHSEM_OK) {
            drop_if_unused(m);
            if (st == WHSEM_E_NOT_FOUND) continue; /* replaced under us: look again */
            break;
        }
        if ((st = whsem__lock_within(m, WHSEM_OPEN_LOCK_NS)) != WHSEM_OK) {
            if (st == WHSEM_TIMEOUT) st = whsem__busy_from_timeout();
            break;
        }
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
    whsem__h_publish(h, m, (uint64_t)(int64_t)o->check_ms);
    *out_sem = h;
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_close(whsem_sem sem)
{
    struct hentry *e = whsem__h_lookup(sem, HK_SEM);
    if (!e) return whsem__invalid_handle(sem, "semaphore");
    void *saved;
    struct wmap *pm = whsem__protect(e, sem, &saved);
    if (!pm) return whsem__invalid_handle(sem, "semaphore");
    const struct whsem_backend *be = pm->base.be;
    whsem__unprotect(saved);
    if (WHSEM_UNLIKELY(be->close != whsem_close)) return be->close(sem); /* another backend's */
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
    if (dying) whsem__retire_map(m);
    else whsem__async_poke(); /* operations on this handle end */
    return WHSEM_OK;
}

/*
 * whsem_share_liveness (for whsem run, first): a descriptor that keeps this
 * process's tickets alive in whoever inherits it. It is a new read-only
 * description with its own read lock on our liveness byte, so the command
 * can neither write nor truncate the segment through it, and our slot is
 * marked SLOT_F_INHERITED: our tickets live while any holder of the
 * descriptor does, but our hold on the segment lock dies with us
 * (recovery.c).
 */
whsem_status whsem__p_share_liveness(struct wmap *m, int32_t *out_fd)
{
    whsem_status st = whsem__attached(m) ? WHSEM_OK : whsem__ensure_attached(m);
    if (st != WHSEM_OK) return st;
    int fd = open(m->path, O_RDONLY | O_NOFOLLOW);
    struct stat sb;
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET,
                       .l_start = WHSEM_LOCK_BASE + m->slot, .l_len = 1};
    if (fd < 0 && errno != ENOENT) {
        st = whsem__fail_errno(errno, "cannot open", m->path);
    } else if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_dev != m->dev || sb.st_ino != m->ino) {
        /* Our segment is not the name's any more: a descriptor of the
         * new one (or of none) would keep nothing of ours alive. */
        st = whsem__fail(WHSEM_E_NOT_FOUND, "'%s' was removed", m->name);
    } else if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        st = whsem__fail_errno(errno, "cannot lock", m->path);
    } else if (fd < 3) {
        /* Out of the way of the standard descriptors. */
        int high = fcntl(fd, F_DUPFD, 3);
        if (high < 0) st = whsem__fail_errno(errno, "cannot duplicate the descriptor of", m->path);
        close(fd);
        fd = high;
    }
    if (st != WHSEM_OK) {
        if (fd >= 0) close(fd);
        return st;
    }
    atomic_fetch_or(&m->slots[m->slot].flags, SLOT_F_INHERITED);
    *out_fd = fd;
    return WHSEM_OK;
}
