/* SPDX-License-Identifier: MIT */
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
#include "busguard.h"
#include "shm.h"
#include "recovery.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

pthread_mutex_t whsem__maps_mu = PTHREAD_MUTEX_INITIALIZER;

/* This process's mappings by name (under maps_mu): chains of a hash table
 * that doubles as it fills, so that opening one of 10,000 names is not a
 * walk over the other 9,999. */
static struct wmap **buckets;
static size_t nbuckets, nmaps;

static uint32_t name_hash(const char *name, size_t len)
{
    uint32_t x = 2166136261u;
    for (size_t i = 0; i < len; i++) x = (x ^ (unsigned char)name[i]) * 16777619u;
    return x;
}

/* Room for one more mapping; false only if there is no table at all. */
static bool maps_reserve(void)
{
    if (nmaps < nbuckets) return true;
    size_t n = nbuckets ? 2 * nbuckets : 64;
    struct wmap **b = calloc(n, sizeof *b);
    if (!b) return buckets != NULL; /* longer chains, still correct */
    for (size_t i = 0; i < nbuckets; i++)
        while (buckets[i]) {
            struct wmap *m = buckets[i];
            buckets[i] = m->next;
            m->next = b[m->name_hash & (n - 1)];
            b[m->name_hash & (n - 1)] = m;
        }
    free(buckets);
    buckets = b;
    nbuckets = n;
    return true;
}

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

static bool in_my_groups(gid_t gid)
{
    if (gid == getegid()) return true;
    gid_t groups[256];
    int n = getgroups(256, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == gid) return true;
    return false;
}

/*
 * Whether an existing file may be trusted as the segment the caller asked
 * for. Anyone who can create a file in /dev/shm can pre-create a valid
 * segment under someone else's name and then write or truncate it at will
 * ("squatting"). So a file must belong to the caller or root, unless the
 * requested mode itself shares the name with the owner's class (others,
 * or a group of ours): then that owner could write the caller's own file
 * anyway. A mode given explicitly is a promise the caller relies on, so a
 * file whose mode is wider is refused too; with the default mode, any mode
 * of a trusted owner is accepted (the C# binding creates names 0666 for
 * every language to share).
 */
static whsem_status check_owner(const struct stat *st, const struct open_opts *w, const char *path)
{
    unsigned have = (unsigned)st->st_mode & 07777u;
    uid_t me = geteuid();
    bool shared = (w->mode & 0002u) || ((w->mode & 0020u) && in_my_groups(st->st_gid));
    if (st->st_uid != me && st->st_uid != 0 && !shared)
        return whsem__fail(WHSEM_E_ACCESS_DENIED,
                           "%s belongs to uid %u (mode 0%o), not to you (uid %u) or root; another "
                           "user may have created it to tamper with it. Remove it, or share the "
                           "name on purpose by opening it with a mode that grants that user write "
                           "access",
                           path, (unsigned)st->st_uid, have, (unsigned)me);
    if (w->mode_explicit && (have & ~w->mode))
        return whsem__fail(WHSEM_E_ACCESS_DENIED,
                           "%s has mode 0%o, wider than the requested 0%o: others can change it. "
                           "Open it with mode 0%o to share it, or remove it",
                           path, have, w->mode, have);
    return WHSEM_OK;
}

/* Opens and maps an existing file; ENOENT is returned as WHSEM_E_NOT_FOUND. */
static whsem_status open_existing(const char *path, const char *name, size_t len,
                                  const struct open_opts *w, _Atomic bool *broken, int *out_fd,
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
    whsem_status owner = check_owner(&st, w, path);
    if (owner != WHSEM_OK) {
        close(fd);
        return owner;
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
    /* Guarded before the first look: the file may be truncated any time. */
    whsem_status s = whsem__busguard_add(p, map_len, broken);
    if (s != WHSEM_OK) {
        munmap(p, map_len);
        close(fd);
        return s;
    }
    s = validate(p, (uint64_t)st.st_size, name, len, path);
    if (s == WHSEM_OK && atomic_load(broken))
        s = whsem__fail(WHSEM_E_CORRUPT, "%s was truncated while being opened", path);
    if (s != WHSEM_OK) {
        whsem__busguard_remove(p);
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
                               uint32_t mode, _Atomic bool *broken, int *out_fd,
                               struct seg_header **out_hdr)
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
    if ((s = whsem__busguard_add(p, WHSEM_SEG_SIZE, broken)) != WHSEM_OK) {
        munmap(p, WHSEM_SEG_SIZE);
        p = MAP_FAILED;
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
    if (p != MAP_FAILED) {
        whsem__busguard_remove(p);
        munmap(p, WHSEM_SEG_SIZE);
    }
    if (tmp[0]) unlink(tmp);
    close(fd);
    return s;
}

static bool same_file(const struct wmap *m, struct stat *st)
{
    return stat(m->path, st) == 0 && st->st_dev == m->dev && st->st_ino == m->ino;
}

/*
 * Finds or makes this process's mapping of a name (maps_mu held by the
 * caller). A mapping whose file has been unlinked or replaced is not
 * reused: new opens must meet the semaphore that new processes meet.
 */
whsem_status whsem__map_get(const char *name, size_t len, int32_t max_count,
                            const struct open_opts *w, bool create,
                            const struct whsem_backend *be, struct wmap **out)
{
    char file[256];
    whsem__file_name(name, len, file);
    uint32_t hash = name_hash(name, len);
    for (struct wmap *m = nbuckets ? buckets[hash & (nbuckets - 1)] : NULL; m; m = m->next) {
        if (atomic_load_explicit(&m->dying, memory_order_relaxed) || m->name_hash != hash ||
            m->name_len != len || memcmp(m->name, name, len) != 0)
            continue;
        struct stat st;
        if (!same_file(m, &st)) continue;
        /* Found by another open of this process, whose options may have
         * been laxer: the file must satisfy this caller's too. */
        whsem_status owner = check_owner(&st, w, m->path);
        if (owner != WHSEM_OK) return owner;
        *out = m;
        return WHSEM_OK;
    }
    size_t path_size = sizeof(WHSEM_SHM_DIR) + strlen(file) + 1;
    struct wmap *m = maps_reserve() ? calloc(1, sizeof *m + len + 1 + path_size) : NULL;
    if (!m) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory opening '%s'", name);
    m->base.be = be; /* before any handle can lead to m */
    m->name = (char *)(m + 1);
    m->path = m->name + len + 1;
    snprintf(m->path, path_size, "%s/%s", WHSEM_SHM_DIR, file);
    memcpy(m->name, name, len + 1);
    m->name_len = len;

    whsem_status s = WHSEM_E_NOT_FOUND;
    struct stat st;
    for (int attempt = 0; attempt < 8; attempt++) {
        int fd = -1;
        s = open_existing(m->path, name, len, w, &m->broken, &fd, &m->hdr, &st);
        if (s == WHSEM_E_NOT_FOUND && create) {
            s = create_new(m->path, name, len, max_count, w->mode, &m->broken, &fd, &m->hdr);
            if (s == WHSEM_OK && fstat(fd, &st) != 0) {
                s = whsem__fail_errno(errno, "cannot stat", m->path);
                whsem__busguard_remove(m->hdr);
                munmap(m->hdr, WHSEM_SEG_SIZE);
            }
        }
        /* The mapping keeps the file; the descriptor would only cost the
         * application one of its own (mapping.h). */
        if (fd >= 0) close(fd);
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
    m->name_hash = hash;
    m->next = buckets[hash & (nbuckets - 1)];
    buckets[hash & (nbuckets - 1)] = m;
    nmaps++;
    *out = m;
    return WHSEM_OK;
}

static bool lock_byte(int fd, uint32_t i, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = WHSEM_LOCK_BASE + i, .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

#define ANCHOR_SIZE 4096u

static void drop_anchor(struct wmap *m)
{
    if (m->anchor) munmap(m->anchor, ANCHOR_SIZE);
    m->anchor = NULL;
}

/* ---- The free-slot hint (layout.h) ---- */

/* Raises the hint read as w to `to`, unless a slot was freed since. */
static void hint_raise(struct seg_header *h, uint64_t w, uint32_t to)
{
    if (to > whsem__hint_index(w))
        atomic_compare_exchange_strong(&h->free_hint, &w, (uint64_t)whsem__hint_seq(w) << 32 | to);
}

static uint32_t state_of(const struct seg_slot *s)
{
    return atomic_load_explicit(&((struct seg_slot *)s)->state, memory_order_relaxed);
}

/* Who owns slot s, read without the lock (a scan may be freeing it): a
 * takeover compares it after its compare-and-swap. */
static struct seg_slot identity_of(const struct seg_slot *s)
{
    return (struct seg_slot){.pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED),
                             .start_ticks = __atomic_load_n(&s->start_ticks, __ATOMIC_RELAXED)};
}

/*
 * Claims slot i by compare-and-swap from `from` (FREE, or ACTIVE for a
 * dead owner's slot) once fd, the description that will be our anchor,
 * read-locks its liveness byte, so that the claim is visibly alive from
 * the first instant. Read locks coexist, so a read-only user who locks
 * bytes cannot keep us out; a 1.0 library's write lock on the byte (its
 * slot, or its claim in progress) can, and so keeps the two apart. A slot
 * that the segment lock's word names is left alone: its owner died
 * holding the lock, and the lock must be taken over by compare-and-swap
 * (seglock.c), never by inheriting the slot, or two processes could both
 * believe they hold it. WHSEM_OK, WHSEM_TIMEOUT (not this slot) or an
 * error of the byte lock.
 */
static whsem_status claim(struct wmap *m, int fd, uint32_t i, uint32_t from, const struct seg_slot *seen)
{
    if (!lock_byte(fd, i, F_RDLCK))
        return errno == EAGAIN || errno == EACCES ? WHSEM_TIMEOUT
                                                  : whsem__fail_errno(errno, "cannot lock a slot of", m->path);
    struct seg_slot *s = &m->slots[i];
    uint32_t expected = from;
    bool ok = atomic_compare_exchange_strong(&s->state, &expected, SLOT_CLAIMED);
    if (ok && (atomic_load(&m->hdr->lock) & WHSEM_LOCK_OWNER_MASK) == i + 1) ok = false;
    /* Taking over: between our verdict and the CAS the slot may have been
     * freed and attached by a live process; its identity tells. */
    else if (ok && seen) {
        struct seg_slot now = identity_of(s);
        ok = now.pid == seen->pid && now.start_ticks == seen->start_ticks;
    }
    if (!ok) {
        if (expected == from) {
            expected = SLOT_CLAIMED;
            atomic_compare_exchange_strong(&s->state, &expected, from);
        }
        lock_byte(fd, i, F_UNLCK);
        return WHSEM_TIMEOUT;
    }
    s->pid = whsem__self_id.pid;
    s->pidns = whsem__self_id.pidns;
    s->start_ticks = whsem__self_id.start_ticks;
    atomic_store(&s->flags, SLOT_F_ANCHORED | SLOT_F_COUNTS_SLEEPERS);
    return WHSEM_OK;
}

static uint32_t hwm_now(const struct seg_header *h)
{
    uint32_t n = __atomic_load_n(&h->slot_hwm, __ATOMIC_RELAXED);
    return n > WHSEM_NSLOTS ? WHSEM_NSLOTS : n;
}

/* Takes slot i over if it is ACTIVE and its owner has certainly died,
 * by its liveness byte (asked through fd). */
static whsem_status take_over_dead(struct wmap *m, int fd, uint32_t i)
{
    struct seg_slot *s = &m->slots[i];
    struct seg_slot seen = identity_of(s);
    if (state_of(s) != SLOT_ACTIVE || !whsem__slot_abandoned(m, fd, i)) return WHSEM_TIMEOUT;
    return claim(m, fd, i, SLOT_ACTIVE, &seen);
}

/* How many slots that hold tickets, and how many more that wait for
 * them, an attacher asks about. Taking a dead one over gives its tickets
 * back at once, as 1.0 did by asking every slot (a dead waiter's slot
 * matters as much: releases grant tickets to a process that has waited
 * long, and a dead one has); a name with more live claimants than this
 * leaves the rest to the abandonment scans. */
#define HOLDER_PROBES 4u
#define WAITER_PROBES 8u

/* *more_dead: another of the slots asked about has a dead owner too (a
 * storm of deaths): the attach then runs a scan, rather than leaving
 * those tickets to the next abandonment scan. */
static whsem_status take_over_dead_claimant(struct wmap *m, int fd, uint32_t hwm, uint32_t *out,
                                            bool *more_dead)
{
    struct seg_header *h = m->hdr;
    if (hwm == 0 || (__atomic_load_n(&h->free, __ATOMIC_RELAXED) == m->max_count &&
                     __atomic_load_n(&h->waiting, __ATOMIC_RELAXED) == 0))
        return WHSEM_TIMEOUT;
    const uint32_t cap[2] = {HOLDER_PROBES, WAITER_PROBES};
    uint32_t found[2][WAITER_PROBES], n[2] = {0, 0}; /* holders, waiters */
    uint32_t start = atomic_fetch_add_explicit(&h->reuse_cursor, 1, memory_order_relaxed) % hwm;
    for (uint32_t k = 0; k < hwm && (n[0] < cap[0] || n[1] < cap[1]); k++) {
        uint32_t i = (start + k) % hwm;
        const struct seg_slot *s = &m->slots[i];
        int waits_only = !(__atomic_load_n(&s->held, __ATOMIC_RELAXED) ||
                           __atomic_load_n(&s->grants, __ATOMIC_RELAXED));
        if (state_of(s) == SLOT_ACTIVE && (!waits_only || __atomic_load_n(&s->want, __ATOMIC_RELAXED)) &&
            n[waits_only] < cap[waits_only])
            found[waits_only][n[waits_only]++] = i;
    }
    whsem_status taken = WHSEM_TIMEOUT;
    for (uint32_t k = 0; k < n[0] + n[1] && !*more_dead; k++) {
        uint32_t i = k < n[0] ? found[0][k] : found[1][k - n[0]];
        if (taken == WHSEM_OK) {
            *more_dead = whsem__slot_abandoned(m, fd, i);
            continue;
        }
        taken = take_over_dead(m, fd, i);
        if (taken == WHSEM_OK) *out = i;
        else if (taken != WHSEM_TIMEOUT) return taken;
    }
    return taken;
}

/* Processes that exit without closing leave their slots ACTIVE. An
 * attacher that finds no free slot below the hwm asks about this many of
 * them before it raises the hwm: reusing a dead owner's slot keeps the
 * hwm, and what the name touches, where it is. */
#define REUSE_PROBES 2u

/*
 * Finds a slot and claims it (see layout.h), cheapest first:
 *  1. a dead owner's slot among those below slot_hwm that hold, then
 *     wait for, tickets (HOLDER_PROBES and WAITER_PROBES at most, one
 *     fcntl each: its liveness byte), when the header says anyone holds
 *     or waits;
 *  2. a FREE slot below slot_hwm, from free_hint (memory reads);
 *  3. a dead owner's slot among REUSE_PROBES below slot_hwm, from
 *     reuse_cursor;
 *  4. a FREE slot at or beyond slot_hwm;
 *  5. every slot, free or whose owner is dead: slots 1.0 freed (it leaves
 *     free_hint alone) and leftovers beyond the hwm are found only here.
 * Taking a dead owner's slot over gives its tickets back at once
 * (whsem__attach). WHSEM_TIMEOUT: no slot at all.
 */
static whsem_status find_slot(struct wmap *m, int fd, uint32_t *out, bool *taken_over, bool *more_dead)
{
    struct seg_header *h = m->hdr;
    uint32_t hwm = hwm_now(h);
    whsem_status st = take_over_dead_claimant(m, fd, hwm, out, more_dead);
    *taken_over = st == WHSEM_OK;
    if (st != WHSEM_TIMEOUT) return st;

    uint64_t w = atomic_load(&h->free_hint);
    uint32_t unsure = hwm; /* the first FREE slot we could not take */
    for (uint32_t i = whsem__hint_index(w); i < hwm; i++) {
        if (state_of(&m->slots[i]) != SLOT_FREE) continue;
        if ((st = claim(m, fd, i, SLOT_FREE, NULL)) == WHSEM_OK) {
            hint_raise(h, w, unsure < i ? unsure : i + 1);
            *out = i;
            return WHSEM_OK;
        }
        if (st != WHSEM_TIMEOUT) return st;
        if (unsure > i) unsure = i;
    }
    hint_raise(h, w, unsure);

    for (uint32_t k = 0; k < REUSE_PROBES && k < hwm; k++) {
        uint32_t i = atomic_fetch_add_explicit(&h->reuse_cursor, 1, memory_order_relaxed) % hwm;
        st = take_over_dead(m, fd, i);
        *taken_over = st == WHSEM_OK;
        if (st == WHSEM_OK) *out = i;
        if (st != WHSEM_TIMEOUT) return st;
    }

    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = pass == 0 ? hwm : 0; i < WHSEM_NSLOTS; i++) {
            struct seg_slot *s = &m->slots[i];
            uint32_t state = state_of(s);
            struct seg_slot seen = identity_of(s);
            if (state == SLOT_CLAIMED) continue; /* a scan frees it if its claimer died */
            if (state == SLOT_ACTIVE) {
                if (pass == 0) continue;
                m->slot = UINT32_MAX; /* nobody is "ourselves" to slot_alive yet */
                if (whsem__slot_alive(m, i, false)) continue;
            }
            if ((st = claim(m, fd, i, state, state == SLOT_ACTIVE ? &seen : NULL)) == WHSEM_OK) {
                *out = i;
                *taken_over = state == SLOT_ACTIVE;
                return WHSEM_OK;
            }
            if (st != WHSEM_TIMEOUT) return st;
        }
    }
    return WHSEM_TIMEOUT;
}

/* Gives a claimed slot up before it was activated. A fresh slot holds
 * nothing; a taken-over one still holds its dead owner's counts, so it is
 * left CLAIMED with no anchor: the next scan finds it dead and reclaims. */
static void unclaim(struct wmap *m, uint32_t i, bool taken_over)
{
    struct seg_slot *s = &m->slots[i];
    if (!taken_over) {
        s->pid = 0;
        atomic_store(&s->flags, 0);
        atomic_store(&s->state, SLOT_FREE);
        whsem__slot_freed(m->hdr, i);
    }
    drop_anchor(m);
}

/* Turns the description that read-locks our slot's byte into the anchor
 * (recovery.c): a private page mapped from it, kept out of fork()
 * children, is then all that refers to it. */
static whsem_status make_anchor(struct wmap *m, int fd)
{
    void *p = mmap(NULL, ANCHOR_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED && madvise(p, ANCHOR_SIZE, MADV_DONTFORK) != 0) {
        int e = errno;
        munmap(p, ANCHOR_SIZE);
        errno = e;
        p = MAP_FAILED;
    }
    if (p == MAP_FAILED) return whsem__fail_errno(errno, "cannot map a page of", m->path);
    m->anchor = p;
    return WHSEM_OK;
}

/* The description that becomes our anchor, opened by the path (no
 * descriptor stays open per name): a process forked after the name was
 * removed or replaced has nothing left to reach the file through. */
static int anchor_fd(struct wmap *m, whsem_status *st)
{
    int fd = whsem__reopen(m);
    if (fd < 0)
        *st = whsem__fail(WHSEM_E_NOT_FOUND,
                          "'%s' was removed or replaced since this process mapped it; a process "
                          "forked since cannot use it: open the name again",
                          m->name);
    return fd;
}

/*
 * Gives this process a slot (maps_mu held), then activates it under the
 * segment lock, where a taken-over slot's tickets go back to the pool.
 */
whsem_status whsem__attach(struct wmap *m, bool require_linked)
{
    struct seg_header *h = m->hdr;
    atomic_store(&m->owed_want, 0);
    atomic_store(&m->owed_async_ops, 0);
    atomic_store(&m->owed_sleep, 0);
    m->anchor = NULL; /* a fork child's copy names the parent's page */
    whsem_status st;
    int fd = anchor_fd(m, &st);
    if (fd < 0) return st;
    bool taken_over = false, more_dead = false;
    uint32_t i = 0;
    st = find_slot(m, fd, &i, &taken_over, &more_dead);
    if (st == WHSEM_TIMEOUT)
        st = whsem__fail(WHSEM_E_LIMIT, "all %u process slots of '%s' are in use by live processes",
                         WHSEM_NSLOTS, m->name);
    if (st != WHSEM_OK) {
        close(fd);
        return st;
    }
    struct seg_slot *s = &m->slots[i];
    m->slot = i;
    m->owner_id = i + 1;
    if ((st = make_anchor(m, fd)) == WHSEM_OK) {
        st = whsem__lock_within(m, WHSEM_OPEN_LOCK_NS);
        if (st == WHSEM_TIMEOUT) st = whsem__busy_from_timeout();
        if (st == WHSEM_OK && (st = whsem__check_locked(m)) != WHSEM_OK) whsem__unlock(m);
    }
    if (st != WHSEM_OK) {
        unclaim(m, i, taken_over);
        close(fd);
        return st;
    }
    WHSEM_FAULT_POINT("attach");
    /* A segment found stale and replaced (see whsem__replace_if_stale)
     * is unlinked under its lock: a new opener that mapped it just
     * before must go and find the new one. */
    struct stat sb;
    bool unlinked = require_linked && fstat(fd, &sb) == 0 && sb.st_nlink == 0;
    close(fd); /* the anchor page holds the description now */
    if (unlinked) {
        s->held = s->grants = s->want = 0;
        whsem__unlock(m);
        unclaim(m, i, false);
        return WHSEM_E_NOT_FOUND;
    }
    bool reclaimed = s->held || s->grants || s->want;
    if (reclaimed) h->recoveries++;
    whsem__forget_lock_sleeping(h, s); /* the dead owner's share */
    /* Our unlocks may be plain stores only if every process here can
     * fence them with membarrier(); we cannot, so none may. */
    if (!whsem__global_membarrier_ok) atomic_store(&h->lock_mode, 1);
    s->held = s->grants = s->want = 0;
    /* Again, under the lock: a scan that judged the dead owner before our
     * claim may have cleared the identity we wrote. */
    s->pid = whsem__self_id.pid;
    s->start_ticks = whsem__self_id.start_ticks;
    s->pidns = whsem__self_id.pidns;
    atomic_store(&s->flags, SLOT_F_ANCHORED | SLOT_F_COUNTS_SLEEPERS);
    s->since_unix_ms = 0;
    s->wait_since_ns = 0;
    /* The hwm first: a slot beyond it must hold nothing (layout.h), and
     * once ACTIVE ours may. */
    if (h->slot_hwm <= i) h->slot_hwm = i + 1;
    atomic_store(&s->state, SLOT_ACTIVE);
    atomic_fetch_add(&h->attaches, 1);
    st = reclaimed ? whsem__recount_locked(m) : WHSEM_OK;
    /* More than one claimant died: the others' tickets too, now. The scan
     * distributes what it frees and what our takeover freed. */
    if (st == WHSEM_OK && more_dead) st = whsem__scan_locked(m, false);
    else if (st == WHSEM_OK && reclaimed) whsem__distribute_locked(m);
    whsem__unlock(m);
    /* Processes that watch the name's processes (dispatcher.c) watch us
     * too from now on. */
    whsem__futex_wake(&h->attaches, INT32_MAX);
    if (st != WHSEM_OK) return st;
    m->attached_pgen = atomic_load(&whsem__pgen);
    return WHSEM_OK;
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
    if (whsem__lock_within(m, WHSEM_OPEN_LOCK_NS) != WHSEM_OK) return false;
    bool stale = true;
    uint32_t n = whsem__slot_limit(m->hdr);
    for (uint32_t i = 0; i < n && stale; i++)
        stale = state_of(&m->slots[i]) == SLOT_FREE || i == m->slot || !whsem__slot_alive(m, i, false);
    /* Unlinked under the lock, so that nobody attaches to it afterwards. */
    struct stat st;
    if (stale && (!same_file(m, &st) || unlink(m->path) != 0)) stale = false;
    whsem__unlock(m);
    return stale;
}

static void destroy_cb(void *m) { whsem__destroy(m); }

void whsem__retire_map(struct wmap *m)
{
    m->retiree = (struct whsem_retiree){.obj = m, .destroy = destroy_cb};
    whsem__retire(&m->retiree);
}

/* Unmaps a retired mapping, giving its slot back if this process owns it. */
void whsem__destroy(struct wmap *m)
{
    if (whsem__attached(m) && whsem__lock(m) == WHSEM_OK) {
        struct seg_slot *s = &m->slots[m->slot];
        s->held = s->grants = s->want = 0;
        s->pid = 0;
        atomic_store(&s->flags, 0);
        atomic_store(&s->state, SLOT_FREE);
        whsem__slot_freed(m->hdr, m->slot);
        whsem__unlock(m);
    }
    if (whsem__attached(m)) drop_anchor(m);
    whsem__busguard_remove(m->hdr);
    munmap(m->hdr, WHSEM_SEG_SIZE);
    free(m);
}

/* A fork() child owns no slot yet. It shares the parent's mapping of each
 * file, which holds no liveness lock (the anchors are not inherited), so
 * keeping it is harmless; it only forgets the anchor pages, which do not
 * exist in it, and the parent's debts. */
static void maps_after_fork_child(void)
{
    for (size_t i = 0; i < nbuckets; i++)
        for (struct wmap *m = buckets[i]; m; m = m->next) {
            m->anchor = NULL;
            atomic_store(&m->owed_want, 0);
            atomic_store(&m->owed_async_ops, 0);
            atomic_store(&m->owed_sleep, 0);
        }
    pthread_mutex_unlock(&whsem__maps_mu);
}

static void maps_lock(void) { pthread_mutex_lock(&whsem__maps_mu); }
static void maps_unlock(void) { pthread_mutex_unlock(&whsem__maps_mu); }

static const struct whsem_fork_hooks fork_hooks = {WHSEM_FORK_ORDER_MAPS, maps_lock, maps_unlock,
                                                   maps_after_fork_child};

__attribute__((constructor)) static void register_fork_hooks(void) { whsem__on_fork(&fork_hooks); }

/* ---- Lifetime: a mapping lives while handles, tickets, waits or the
 * asynchronous engine use it; the last of them retires it. */

void whsem__maps_remove(struct wmap *m)
{
    if (!nbuckets) return;
    for (struct wmap **pp = &buckets[m->name_hash & (nbuckets - 1)]; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            nmaps--;
            return;
        }
}

/* Under the lock (or maps_mu for a mapping with no slot): whether nothing
 * uses the mapping any more; if so it is marked dying. */
bool whsem__mark_dying_locked(struct wmap *m)
{
    /* The engine holds a mapping it has in its list (operations counted or
     * not yet counted, debts); it decides itself when it lets go. */
    if (atomic_load_explicit(&m->dying, memory_order_relaxed) || m->handles != 0 ||
        m->async_ops != 0 || atomic_load(&m->active))
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
    whsem__retire_map(m);
}

whsem_status whsem__ensure_attached(struct wmap *m)
{
    whsem_status st = WHSEM_OK;
    pthread_mutex_lock(&whsem__maps_mu);
    if (!whsem__attached(m)) st = whsem__attach(m, false);
    pthread_mutex_unlock(&whsem__maps_mu);
    return st;
}

whsem_status whsem__p_query_lock(struct wmap *m)
{
    whsem_status st = whsem__attached(m) ? WHSEM_OK : whsem__ensure_attached(m);
    if (st == WHSEM_OK && (st = whsem__lock_within(m, WHSEM_OPEN_LOCK_NS)) == WHSEM_TIMEOUT)
        st = whsem__busy_from_timeout();
    return st;
}
