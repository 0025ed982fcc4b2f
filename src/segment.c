/*
 * Segment files: creating, validating and mapping them, attaching this
 * process to a slot, and tearing a mapping down.
 *
 * Creation never exposes a half-built segment: the file is built as an
 * anonymous O_TMPFILE (or under a private temporary name), given its mode
 * with fchmod (so the umask cannot change it), and only then linked under
 * its real name; link() refuses to replace, so of two racing creators one
 * wins and the other opens the winner's file.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

pthread_mutex_t whsem__maps_mu = PTHREAD_MUTEX_INITIALIZER;
struct wmap *whsem__maps;

static uint64_t checksum(const struct seg_header *h)
{
    uint64_t x = 0xcbf29ce484222325ULL;
    const unsigned char *p = (const unsigned char *)h;
    for (size_t i = 0; i < offsetof(struct seg_header, checksum); i++) x = (x ^ p[i]) * 0x100000001b3ULL;
    for (size_t i = 0; i < WHSEM_NAME_CAP; i++) x = (x ^ (unsigned char)h->name[i]) * 0x100000001b3ULL;
    return x;
}

static void init_header(struct seg_header *h, const char *name, size_t len, int32_t max_count)
{
    memcpy(h->magic, WHSEM_SEG_MAGIC, 8);
    h->layout_version = WHSEM_LAYOUT_VERSION;
    h->header_size = WHSEM_HEADER_SIZE;
    h->slot_size = WHSEM_SLOT_SIZE;
    h->nslots = WHSEM_NSLOTS;
    h->total_size = WHSEM_SEG_SIZE;
    h->max_count = max_count;
    h->name_len = (uint32_t)len;
    h->created_unix_ms = whsem__unix_ms();
    memcpy(h->name, name, len);
    h->checksum = checksum(h);
    h->free = max_count;
}

/* Checks everything that can be checked without the lock. */
static whsem_status validate(const struct seg_header *h, uint64_t file_size, const char *name,
                             size_t len, const char *path)
{
    if (memcmp(h->magic, WHSEM_SEG_MAGIC, 8) != 0)
        return whsem__fail(WHSEM_E_CORRUPT, "%s is not a libwhsem segment (bad magic)", path);
    if (h->layout_version != WHSEM_LAYOUT_VERSION)
        return whsem__fail(WHSEM_E_INCOMPATIBLE,
                           "%s has segment layout %u; this library (%s) uses layout %u", path,
                           h->layout_version, whsem_version_string(), WHSEM_LAYOUT_VERSION);
    if (h->checksum != checksum(h) || h->header_size != WHSEM_HEADER_SIZE ||
        h->slot_size != WHSEM_SLOT_SIZE || h->nslots != WHSEM_NSLOTS ||
        h->total_size != WHSEM_SEG_SIZE || h->max_count < 1 || h->name_len >= WHSEM_NAME_CAP)
        return whsem__fail(WHSEM_E_CORRUPT, "%s: segment header is garbled (checksum mismatch)", path);
    if (file_size != h->total_size)
        return whsem__fail(WHSEM_E_CORRUPT, "%s: segment is %llu bytes, expected %llu (truncated?)",
                           path, (unsigned long long)file_size, (unsigned long long)h->total_size);
    if (name && (h->name_len != len || memcmp(h->name, name, len) != 0))
        return whsem__fail(WHSEM_E_CORRUPT, "%s holds another name than '%s'", path, name);
    return WHSEM_OK;
}

/* Opens and maps an existing file; ENOENT is returned as WHSEM_E_NOT_FOUND. */
static whsem_status open_existing(const char *path, const char *name, size_t len, int *out_fd,
                                  struct seg_header **out_hdr, struct stat *out_st)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) return whsem__fail(WHSEM_E_NOT_FOUND, "no semaphore named '%s'", name);
        if (errno == ELOOP)
            return whsem__fail(WHSEM_E_CORRUPT, "%s is a symbolic link, not a segment", path);
        if (errno == EISDIR || errno == ENXIO)
            return whsem__fail(WHSEM_E_CORRUPT, "%s is not a regular file, not a segment", path);
        return whsem__fail_errno(errno, "cannot open", path);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return whsem__fail_errno(e, "cannot stat", path);
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < WHSEM_HEADER_SIZE) {
        close(fd);
        return whsem__fail(WHSEM_E_CORRUPT, "%s is not a libwhsem segment (%lld bytes)", path,
                           (long long)st.st_size);
    }
    /* Map no more than the file holds: touching pages past its end would
     * raise SIGBUS. validate() rejects any size but the exact one. */
    size_t map_len = (uint64_t)st.st_size < WHSEM_SEG_SIZE ? (size_t)st.st_size : WHSEM_SEG_SIZE;
    void *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return whsem__fail_errno(e, "cannot map", path);
    }
    whsem_status s = validate(p, (uint64_t)st.st_size, name, len, path);
    if (s != WHSEM_OK) {
        munmap(p, map_len);
        close(fd);
        return s;
    }
    *out_fd = fd;
    *out_hdr = p;
    *out_st = st;
    return WHSEM_OK;
}

/* Builds a segment privately and links it into place. Returns
 * WHSEM_E_BUSY when another process linked one first. */
static whsem_status create_new(const char *path, const char *name, size_t len, int32_t max_count,
                               uint32_t mode, int *out_fd, struct seg_header **out_hdr)
{
    char tmp[sizeof(WHSEM_SHM_DIR) + 64] = "";
    int fd = open(WHSEM_SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        static _Atomic unsigned counter;
        snprintf(tmp, sizeof tmp, WHSEM_SHM_DIR "/.whsem-tmp.%d.%u", (int)getpid(),
                 atomic_fetch_add(&counter, 1));
        fd = open(tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) return whsem__fail_errno(errno, "cannot create", WHSEM_SHM_DIR);
    }
    whsem_status s = WHSEM_OK;
    void *p = MAP_FAILED;
    if (ftruncate(fd, (off_t)WHSEM_SEG_SIZE) != 0) {
        s = whsem__fail_errno(errno, "cannot size", path);
        goto fail;
    }
    p = mmap(NULL, WHSEM_SEG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        s = whsem__fail_errno(errno, "cannot map", path);
        goto fail;
    }
    init_header(p, name, len, max_count);
    if (fchmod(fd, mode) != 0) {
        s = whsem__fail_errno(errno, "cannot set the mode of", path);
        goto fail;
    }
    int r;
    if (tmp[0]) {
        r = link(tmp, path);
    } else {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        r = linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
    }
    if (r != 0) {
        s = errno == EEXIST ? WHSEM_E_BUSY : whsem__fail_errno(errno, "cannot create", path);
        goto fail;
    }
    if (tmp[0]) unlink(tmp);
    *out_fd = fd;
    *out_hdr = p;
    return WHSEM_OK;
fail:
    if (p != MAP_FAILED) munmap(p, WHSEM_SEG_SIZE);
    if (tmp[0]) unlink(tmp);
    close(fd);
    return s;
}

static bool same_file(const struct wmap *m)
{
    struct stat st;
    return stat(m->path, &st) == 0 && st.st_dev == m->dev && st.st_ino == m->ino;
}

/*
 * Finds or makes this process's mapping of a name (maps_mu held by the
 * caller). A mapping whose file has been unlinked or replaced is not
 * reused: new opens must meet the semaphore that new processes meet.
 */
whsem_status whsem__map_get(const char *name, size_t len, int32_t max_count, uint32_t mode,
                            bool create, struct wmap **out)
{
    char file[256];
    whsem__file_name(name, len, file);
    for (struct wmap *m = whsem__maps; m; m = m->next) {
        if (atomic_load_explicit(&m->dying, memory_order_relaxed) || m->name_len != len || memcmp(m->name, name, len) != 0) continue;
        if (!same_file(m)) continue;
        *out = m;
        return WHSEM_OK;
    }
    struct wmap *m = calloc(1, sizeof *m);
    if (!m) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory opening '%s'", name);
    snprintf(m->path, sizeof m->path, "%s/%s", WHSEM_SHM_DIR, file);
    memcpy(m->name, name, len + 1);
    m->name_len = len;

    whsem_status s = WHSEM_E_NOT_FOUND;
    struct stat st;
    for (int attempt = 0; attempt < 8; attempt++) {
        s = open_existing(m->path, name, len, &m->fd, &m->hdr, &st);
        if (s != WHSEM_E_NOT_FOUND || !create) break;
        s = create_new(m->path, name, len, max_count, mode, &m->fd, &m->hdr);
        if (s == WHSEM_OK) {
            if (fstat(m->fd, &st) != 0) s = whsem__fail_errno(errno, "cannot stat", m->path);
            break;
        }
        if (s != WHSEM_E_BUSY) break; /* lost a creation race: open the winner's */
    }
    if (s == WHSEM_E_BUSY)
        s = whsem__fail(WHSEM_E_OS, "'%s' keeps appearing and disappearing", name);
    if (s != WHSEM_OK) {
        free(m);
        return s;
    }
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    m->slots = seg_slots(m->hdr);
    m->max_count = m->hdr->max_count;
    m->attached_pgen = 0;
    m->next = whsem__maps;
    whsem__maps = m;
    *out = m;
    return WHSEM_OK;
}

static bool lock_byte(int fd, uint32_t i, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = WHSEM_LOCK_BASE + i, .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

/* A slot whose byte we could lock belongs to nobody alive, unless its
 * process closed our descriptor behind our back: pid + start time tell. */
static bool owner_still_runs(const struct seg_slot *s)
{
    uint64_t ticks;
    return s->pid > 0 && s->pidns == whsem__self_id.pidns &&
           whsem__proc_start_ticks(s->pid, &ticks) && ticks == s->start_ticks;
}

/*
 * Gives this process a slot (maps_mu held). The slot's liveness byte lock
 * is taken first: holding it proves that no live process owns the slot,
 * so a FREE slot can be claimed and a dead owner's slot taken over.
 */
whsem_status whsem__attach(struct wmap *m, bool require_linked)
{
    struct seg_header *h = m->hdr;
    for (uint32_t i = 0; i < WHSEM_NSLOTS; i++) {
        if (!lock_byte(m->fd, i, F_WRLCK)) {
            if (errno == EAGAIN || errno == EACCES) continue;
            return whsem__fail_errno(errno, "cannot lock a slot of", m->path);
        }
        struct seg_slot *s = &m->slots[i];
        uint32_t state = atomic_load(&s->state);
        if (state != SLOT_FREE && owner_still_runs(s)) {
            lock_byte(m->fd, i, F_UNLCK);
            continue;
        }
        atomic_store(&s->state, SLOT_CLAIMED);
        m->slot = i;
        m->owner_id = i + 1;
        whsem_status st;
        uint32_t v = atomic_load(&h->lock);
        if ((v & WHSEM_LOCK_OWNER_MASK) == m->owner_id) {
            /* The slot's dead owner died holding the segment lock, and its
             * identity is now ours: we hold the lock by inheritance. */
            h->recoveries++;
            st = whsem__scan_locked(m, true);
            if (st != WHSEM_OK) whsem__unlock(m);
        } else {
            st = whsem__lock(m);
            if (st == WHSEM_OK && (st = whsem__check_locked(m)) != WHSEM_OK) whsem__unlock(m);
        }
        if (st != WHSEM_OK) {
            atomic_store(&s->state, SLOT_FREE);
            lock_byte(m->fd, i, F_UNLCK);
            return st;
        }
        WHSEM_FAULT_POINT("attach");
        /* A segment found stale and replaced (see whsem__replace_if_stale)
         * is unlinked under its lock: a new opener that mapped it just
         * before must go and find the new one. */
        struct stat sb;
        if (require_linked && fstat(m->fd, &sb) == 0 && sb.st_nlink == 0) {
            s->held = s->grants = s->want = 0;
            atomic_store(&s->state, SLOT_FREE);
            whsem__unlock(m);
            lock_byte(m->fd, i, F_UNLCK);
            return WHSEM_E_NOT_FOUND;
        }
        bool reclaimed = s->held || s->grants || s->want;
        if (reclaimed) h->recoveries++;
        whsem__forget_lock_sleeping(h, s); /* the dead owner's share */
        /* Our unlocks may be plain stores only if every process here can
         * fence them with membarrier(); we cannot, so none may. */
        if (!whsem__global_membarrier_ok) atomic_store(&h->lock_mode, 1);
        s->held = s->grants = s->want = 0;
        s->pid = whsem__self_id.pid;
        s->start_ticks = whsem__self_id.start_ticks;
        s->pidns = whsem__self_id.pidns;
        s->since_unix_ms = 0;
        s->wait_since_ns = 0;
        atomic_store(&s->state, SLOT_ACTIVE);
        if (h->slot_hwm <= i) h->slot_hwm = i + 1;
        st = reclaimed ? whsem__recount_locked(m) : WHSEM_OK;
        if (st == WHSEM_OK && reclaimed) whsem__distribute_locked(m);
        whsem__unlock(m);
        if (st != WHSEM_OK) return st;
        m->attached_pgen = atomic_load(&whsem__pgen);
        return WHSEM_OK;
    }
    return whsem__fail(WHSEM_E_LIMIT, "all %u process slots of '%s' are in use by live processes",
                       WHSEM_NSLOTS, m->name);
}

/*
 * A segment that no live process has attached carries nothing but its max
 * count: opening it with another max count replaces it (as the system
 * would recreate a Win32 object that nobody has open) instead of failing
 * forever after a crash or a change of configuration. maps_mu held, m
 * unused by this process. Returns whether it was replaced.
 */
bool whsem__replace_if_stale(struct wmap *m)
{
    if (m->handles || (!whsem__attached(m) && whsem__attach(m, true) != WHSEM_OK)) return false;
    if (whsem__lock(m) != WHSEM_OK) return false;
    bool stale = true;
    for (uint32_t i = 0; i < WHSEM_NSLOTS && stale; i++) {
        uint32_t state = atomic_load_explicit(&m->slots[i].state, memory_order_relaxed);
        stale = state == SLOT_FREE || i == m->slot || !whsem__slot_alive(m, i);
    }
    /* Unlinked under the lock, so that nobody attaches to it afterwards. */
    if (stale && (!same_file(m) || unlink(m->path) != 0)) stale = false;
    whsem__unlock(m);
    return stale;
}

/* Unmaps a retired mapping, giving its slot back if this process owns it. */
void whsem__destroy(struct wmap *m)
{
    if (whsem__attached(m) && whsem__lock(m) == WHSEM_OK) {
        struct seg_slot *s = &m->slots[m->slot];
        s->held = s->grants = s->want = 0;
        s->pid = 0;
        atomic_store(&s->state, SLOT_FREE);
        whsem__unlock(m);
        /* Unlocked explicitly: a process we handed a duplicate of the
         * descriptor to (whsem run's command) would keep the lock, and
         * with it the slot, alive after our close. */
        lock_byte(m->fd, m->slot, F_UNLCK);
    }
    close(m->fd);
    munmap(m->hdr, WHSEM_SEG_SIZE);
    free(m);
}

/* The child of fork() owns no slot yet, and must not keep the parent's
 * open file descriptions (and with them its liveness locks): each mapping
 * gets a fresh description of the same file. */
void whsem__maps_after_fork_child(void)
{
    for (struct wmap *m = whsem__maps; m; m = m->next) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", m->fd);
        int fd = open(proc, O_RDWR | O_CLOEXEC);
        if (fd < 0) fd = open(m->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            dup3(fd, m->fd, O_CLOEXEC);
            close(fd);
        } else {
            /* Without a fresh description we cannot attach in this child;
             * closing is what keeps the parent's crash detectable. */
            int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (devnull >= 0) {
                dup3(devnull, m->fd, O_CLOEXEC);
                close(devnull);
            }
        }
    }
}
