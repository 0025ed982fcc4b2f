/* SPDX-License-Identifier: MIT */
/*
 * Segments on Windows: the named objects of a semaphore, creating and
 * validating the section, attaching this process to a slot, the segment
 * mutex with takeover after a death inside it, and crash recovery.
 *
 * The objects of a name whose file name (names.c) is F, all in Global\:
 *   F!open        mutex held while a process opens, creates or unlinks
 *                 the name: nobody maps a half-built section
 *   F!gen         a small section holding the current generation g
 *   F  or  F#g    the segment (generation 0 has no suffix)
 *   <segment>!lock     the segment mutex
 *   <segment>!w<i>     slot i's wake semaphore
 * F never contains '#' or '!' past its "whsem#" prefix (names.c escapes
 * them), so these names cannot meet another name's objects, nor the C#
 * original's semaphore, which is called Global\<name>.
 *
 * A section lives while a process has it open: a semaphore nobody uses
 * disappears with its last user, so no stale state outlives a crash.
 * whsem_unlink retires a generation (processes using it keep it) and bumps
 * F!gen, so that every later open meets a fresh semaphore: the Linux
 * library's unlink, without a file system.
 */
#include "accounting.h"
#include "shm.h"
#include "win32.h"

#include <limits.h>
#include <sddl.h>
#include <wchar.h>
#include <winternl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

SRWLOCK whsem__maps_mu = SRWLOCK_INIT;
static struct wmap *maps; /* under maps_mu */

/* ---- object names and security ------------------------------------------------- */

/* "Global\<file name>" for a finalized name. */
static void base_name(const char *final, size_t len, wchar_t out[WHSEM_W_OBJ_CHARS])
{
    char file[256];
    whsem__file_name(final, len, file);
    swprintf(out, WHSEM_W_OBJ_CHARS, L"Global\\%hs", file);
}

static void obj_name(const wchar_t *base, uint32_t gen, wchar_t out[WHSEM_W_OBJ_CHARS])
{
    if (gen) swprintf(out, WHSEM_W_OBJ_CHARS, L"%ls#%u", base, gen);
    else swprintf(out, WHSEM_W_OBJ_CHARS, L"%ls", base);
}

static void suffixed(const wchar_t *obj, const wchar_t *suffix, wchar_t out[WHSEM_W_OBJ_CHARS])
{
    swprintf(out, WHSEM_W_OBJ_CHARS, L"%ls%ls", obj, suffix);
}

/*
 * The objects' security from the options' mode: owner-only (the default
 * 0600) keeps the creator's default DACL (the creator, SYSTEM and
 * administrators); any group or other bit lets every authenticated user
 * in, Windows having no notion of the file's group here.
 */
struct objsec {
    SECURITY_ATTRIBUTES sa;
    PSECURITY_DESCRIPTOR sd;
};

static SECURITY_ATTRIBUTES *objsec_init(struct objsec *o, uint32_t mode)
{
    o->sd = NULL;
    if (!(mode & 0077u)) return NULL;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(
            L"D:(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;AU)", SDDL_REVISION_1, &o->sd, NULL))
        return NULL;
    o->sa.nLength = sizeof o->sa;
    o->sa.lpSecurityDescriptor = o->sd;
    o->sa.bInheritHandle = FALSE;
    return &o->sa;
}

static void objsec_done(struct objsec *o)
{
    if (o->sd) LocalFree(o->sd);
}

/* Takes the name's open mutex (an abandoned one is fine: what it guards,
 * a half-built section, died with its builder's handle). */
static whsem_status open_lock(const wchar_t *base, SECURITY_ATTRIBUTES *sa, HANDLE *out)
{
    wchar_t name[WHSEM_W_OBJ_CHARS];
    suffixed(base, L"!open", name);
    HANDLE mu = CreateMutexW(sa, FALSE, name);
    if (!mu) return whsem__fail_win32(GetLastError(), "cannot create the mutex", name);
    DWORD r = WaitForSingleObject(mu, INFINITE);
    if (r != WAIT_OBJECT_0 && r != WAIT_ABANDONED) {
        whsem_status st = whsem__fail_win32(GetLastError(), "cannot lock", name);
        CloseHandle(mu);
        return st;
    }
    *out = mu;
    return WHSEM_OK;
}

static void open_unlock(HANDLE mu)
{
    ReleaseMutex(mu);
    CloseHandle(mu);
}

/* ---- the generation word ------------------------------------------------------ */

/* Opens (create: or creates) F!gen and maps it. ERROR_FILE_NOT_FOUND is
 * WHSEM_E_NOT_FOUND. */
static whsem_status gen_open(const wchar_t *base, bool create, SECURITY_ATTRIBUTES *sa,
                             HANDLE *out_section, volatile LONG **out_word)
{
    wchar_t name[WHSEM_W_OBJ_CHARS];
    suffixed(base, L"!gen", name);
    HANDLE s = create ? CreateFileMappingW(INVALID_HANDLE_VALUE, sa, PAGE_READWRITE, 0, 4096, name)
                      : OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, name);
    if (!s) {
        DWORD err = GetLastError();
        if (err == ERROR_FILE_NOT_FOUND) return WHSEM_E_NOT_FOUND;
        return whsem__fail_win32(err, "cannot open", name);
    }
    void *p = MapViewOfFile(s, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 4096);
    if (!p) {
        whsem_status st = whsem__fail_win32(GetLastError(), "cannot map", name);
        CloseHandle(s);
        return st;
    }
    *out_section = s;
    *out_word = p;
    return WHSEM_OK;
}

static void gen_close(HANDLE section, volatile LONG *word)
{
    UnmapViewOfFile((void *)word);
    CloseHandle(section);
}

/* ---- the segment ---------------------------------------------------------------- */

static uint64_t checksum(const struct wseg_header *h)
{
    uint64_t x = 0xcbf29ce484222325ULL;
    const unsigned char *p = (const unsigned char *)h;
    for (size_t i = 0; i < offsetof(struct wseg_header, checksum); i++)
        x = (x ^ p[i]) * 0x100000001b3ULL;
    for (size_t i = 0; i < WHSEM_W_NAME_CAP; i++) x = (x ^ (unsigned char)h->name[i]) * 0x100000001b3ULL;
    return x;
}

static void init_header(struct wseg_header *h, const char *name, size_t len, int32_t max_count,
                        uint32_t mode)
{
    memcpy(h->magic, WHSEM_W_MAGIC, 8);
    h->layout_version = WHSEM_W_LAYOUT_VERSION;
    h->header_size = WHSEM_W_HEADER_SIZE;
    h->slot_size = WHSEM_W_SLOT_SIZE;
    h->nslots = WHSEM_W_NSLOTS;
    h->total_size = WHSEM_W_SEG_SIZE;
    h->max_count = max_count;
    h->name_len = (uint32_t)len;
    h->created_unix_ms = whsem__w_unix_ms();
    h->mode = mode;
    memcpy(h->name, name, len);
    h->checksum = checksum(h);
    h->free = max_count;
}

/* name NULL: any name (whsem_list reads it). */
static whsem_status validate(const struct wseg_header *h, size_t view_size, const char *name,
                             size_t len, const wchar_t *obj)
{
    if (view_size < WHSEM_W_HEADER_SIZE || memcmp(h->magic, WHSEM_W_MAGIC, 8) != 0)
        return whsem__fail(WHSEM_E_CORRUPT, "%ls is not a libwhsem segment (bad magic)", obj);
    if (h->layout_version != WHSEM_W_LAYOUT_VERSION)
        return whsem__fail(WHSEM_E_INCOMPATIBLE,
                           "%ls has segment layout %u; this library (%s) uses layout %u", obj,
                           h->layout_version, whsem_version_string(), WHSEM_W_LAYOUT_VERSION);
    if (h->checksum != checksum(h) || h->header_size != WHSEM_W_HEADER_SIZE ||
        h->slot_size != WHSEM_W_SLOT_SIZE || h->nslots != WHSEM_W_NSLOTS ||
        h->total_size != WHSEM_W_SEG_SIZE || h->max_count < 1 || h->name_len >= WHSEM_W_NAME_CAP)
        return whsem__fail(WHSEM_E_CORRUPT, "%ls: segment header is garbled (checksum mismatch)", obj);
    if (view_size < h->total_size)
        return whsem__fail(WHSEM_E_CORRUPT, "%ls: segment is %llu bytes, expected %llu", obj,
                           (unsigned long long)view_size, (unsigned long long)h->total_size);
    if (name && (h->name_len != len || memcmp(h->name, name, len) != 0))
        return whsem__fail(WHSEM_E_CORRUPT, "%ls holds another name than '%s'", obj, name);
    return WHSEM_OK;
}

static size_t view_size(const void *p)
{
    MEMORY_BASIC_INFORMATION mbi;
    return VirtualQuery(p, &mbi, sizeof mbi) ? mbi.RegionSize : 0;
}

/* Opens, or creates, the segment of m->obj and its mutex (open mutex held). */
static whsem_status open_segment(struct wmap *m, int32_t max_count, uint32_t mode,
                                 SECURITY_ATTRIBUTES *sa)
{
    bool created = false;
    m->section = OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, m->obj);
    if (!m->section) {
        DWORD err = GetLastError();
        if (err != ERROR_FILE_NOT_FOUND) return whsem__fail_win32(err, "cannot open", m->obj);
        if (max_count == 0) return whsem__fail(WHSEM_E_NOT_FOUND, "no semaphore named '%s'", m->name);
        m->section = CreateFileMappingW(INVALID_HANDLE_VALUE, sa, PAGE_READWRITE, 0,
                                        WHSEM_W_SEG_SIZE, m->obj);
        if (!m->section) return whsem__fail_win32(GetLastError(), "cannot create", m->obj);
        /* Only a process outside the open protocol could have made it meanwhile;
         * validation below judges what it holds. */
        created = GetLastError() != ERROR_ALREADY_EXISTS;
    }
    void *p = MapViewOfFile(m->section, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 0);
    if (!p) return whsem__fail_win32(GetLastError(), "cannot map", m->obj);
    m->hdr = p;
    m->slots = (struct wseg_slot *)((char *)p + WHSEM_W_HEADER_SIZE);
    if (created) init_header(m->hdr, m->name, m->name_len, max_count, mode);
    whsem_status st = validate(m->hdr, view_size(p), m->name, m->name_len, m->obj);
    if (st != WHSEM_OK) return st;
    m->max_count = m->hdr->max_count;
    wchar_t lock[WHSEM_W_OBJ_CHARS];
    suffixed(m->obj, L"!lock", lock);
    m->lock = CreateMutexW(sa, FALSE, lock);
    if (!m->lock) return whsem__fail_win32(GetLastError(), "cannot create the mutex", lock);
    return WHSEM_OK;
}

/* ---- the segment mutex and recovery ------------------------------------------------ */


static whsem_status lock_ms(struct wmap *m, DWORD ms)
{
    DWORD r = WaitForSingleObject(m->lock, ms);
    if (r == WAIT_OBJECT_0) return WHSEM_OK;
    if (r == WAIT_TIMEOUT)
        return whsem__fail(WHSEM_TIMEOUT, "%ls: another process holds the segment mutex", m->obj);
    if (r != WAIT_ABANDONED) return whsem__fail_win32(GetLastError(), "cannot lock", m->obj);
    /* Its owner died inside the critical section, maybe halfway through an
     * update: nothing it protects is trusted until recounted. */
    m->hdr->recoveries++;
    whsem_status st = whsem__scan_locked(m, true);
    if (st != WHSEM_OK) ReleaseMutex(m->lock);
    return st;
}

whsem_status whsem__lock(struct wmap *m) { return lock_ms(m, INFINITE); }

whsem_status whsem__lock_within(struct wmap *m, uint64_t budget_ns)
{
    uint64_t ms = (budget_ns + 999999u) / 1000000u;
    return lock_ms(m, ms >= INFINITE ? INFINITE - 1 : (DWORD)ms);
}

void whsem__unlock(struct wmap *m) { ReleaseMutex(m->lock); }

whsem_status whsem__p_query_lock(struct wmap *m) { return whsem__lock(m); }

/* A process's liveness is its process handle, which a child cannot
 * inherit as a stand-in for its parent's life. */
whsem_status whsem__p_share_liveness(struct wmap *m, int32_t *out_fd)
{
    (void)m, (void)out_fd;
    return whsem__fail(WHSEM_E_UNSUPPORTED,
                       "whsem_share_liveness: Windows has no descriptor that keeps a process's "
                       "tickets alive; a ticket lives exactly as long as its process");
}


/* ---- attaching and detaching ------------------------------------------------------- */

/* Gives this process a slot (open mutex held, so nobody unlinks meanwhile). */
static whsem_status attach(struct wmap *m, SECURITY_ATTRIBUTES *sa)
{
    struct whsem_w_self me = whsem__w_self();
    whsem_status st = whsem__lock(m);
    if (st != WHSEM_OK) return st;
    if ((st = whsem__check_locked(m)) != WHSEM_OK) goto out;
    uint32_t slot = WHSEM_W_NSLOTS;
    for (int pass = 0; pass < 2 && slot == WHSEM_W_NSLOTS; pass++) {
        /* The second pass follows a full scan, which frees dead processes' slots. */
        if (pass == 1 && (st = whsem__scan_locked(m, true)) != WHSEM_OK) goto out;
        for (uint32_t i = 0; i < WHSEM_W_NSLOTS; i++)
            if (m->slots[i].state == WSLOT_FREE) {
                slot = i;
                break;
            }
    }
    if (slot == WHSEM_W_NSLOTS) {
        st = whsem__fail(WHSEM_E_LIMIT, "all %u process slots of '%s' are in use by live processes",
                         WHSEM_W_NSLOTS, m->name);
        goto out;
    }
    wchar_t name[WHSEM_W_OBJ_CHARS], suffix[16];
    swprintf(suffix, 16, L"!w%u", slot);
    suffixed(m->obj, suffix, name);
    /* A previous owner's leftover wake-ups may still count in it: they only
     * cost spurious wakes, since every waiter rechecks. */
    m->wake[slot] = CreateSemaphoreW(sa, 0, LONG_MAX, name);
    if (!m->wake[slot]) {
        st = whsem__fail_win32(GetLastError(), "cannot create the semaphore", name);
        goto out;
    }
    struct wseg_slot *s = &m->slots[slot];
    s->held = s->grants = s->want = 0;
    s->pid = me.pid;
    s->created = me.created;
    s->since_unix_ms = 0;
    s->wait_since_ns = 0;
    WHSEM_FAULT_POINT("attach");
    /* The hwm first: the slot walks of ../accounting.c stop at it, and
     * once ACTIVE the slot may hold tickets. */
    if (m->hdr->slot_hwm <= slot) m->hdr->slot_hwm = slot + 1;
    s->state = WSLOT_ACTIVE;
    m->slot = slot;
out:
    whsem__unlock(m);
    return st;
}

static void unmap(struct wmap *m)
{
    for (uint32_t i = 0; i < WHSEM_W_NSLOTS; i++)
        if (m->wake[i]) CloseHandle(m->wake[i]);
    if (m->lock) CloseHandle(m->lock);
    if (m->hdr) UnmapViewOfFile(m->hdr);
    if (m->section) CloseHandle(m->section);
    if (m->gen_word) gen_close(m->gen_section, m->gen_word);
    free(m);
}

/* Gives the slot back (nothing uses the mapping any more, and no hazard
 * pointer names it) and unmaps. */
static void destroy(void *p)
{
    struct wmap *m = p;
    if (whsem__lock(m) == WHSEM_OK) {
        struct wseg_slot *s = &m->slots[m->slot];
        bool had = s->held || s->grants || s->want;
        s->held = s->grants = s->want = 0;
        s->pid = 0;
        s->state = WSLOT_FREE;
        /* Grants that reached us after our last wait left go to others. */
        if (had && whsem__recount_locked(m) == WHSEM_OK) whsem__distribute_locked(m);
        whsem__unlock(m);
    }
    unmap(m);
}

void whsem__use(struct wmap *m) { InterlockedIncrement(&m->uses); }

/* A use counted only while another one is: at 0 the handle that led here
 * has ended (each live handle holds a use), and the mapping may already be
 * retired. */
bool whsem__use_live(struct wmap *m)
{
    for (LONG n = m->uses; n > 0;) {
        LONG seen = InterlockedCompareExchange(&m->uses, n + 1, n);
        if (seen == n) return true;
        n = seen;
    }
    return false;
}

void whsem__unuse(struct wmap *m)
{
    if (InterlockedDecrement(&m->uses) != 0) return;
    /* Whoever brings the count to 0 retires the mapping, unless an open
     * found it in the list and counted a use meanwhile. */
    AcquireSRWLockExclusive(&whsem__maps_mu);
    bool last = m->uses == 0 && !m->dead;
    if (last) {
        m->dead = true;
        for (struct wmap **pp = &maps; *pp; pp = &(*pp)->next)
            if (*pp == m) {
                *pp = m->next;
                break;
            }
    }
    ReleaseSRWLockExclusive(&whsem__maps_mu);
    if (last) {
        m->retiree = (struct whsem_retiree){.obj = m, .destroy = destroy};
        whsem__retire(&m->retiree);
    }
}

/* ---- opening ---------------------------------------------------------------------------- */

whsem_status whsem__map_get(const char *final, size_t len, int32_t max_count, uint32_t mode,
                            const struct whsem_backend *be, struct wmap **out)
{
    wchar_t base[WHSEM_W_OBJ_CHARS];
    base_name(final, len, base);
    AcquireSRWLockExclusive(&whsem__maps_mu);
    /* A mapping of ours is reused while its generation is current: after an
     * unlink, new opens must meet the semaphore that new processes meet. */
    for (struct wmap *m = maps; m; m = m->next) {
        if (m->dead || m->name_len != len || memcmp(m->name, final, len) != 0) continue;
        if ((uint32_t)*m->gen_word != m->gen) continue;
        whsem__use(m);
        ReleaseSRWLockExclusive(&whsem__maps_mu);
        if (max_count != 0 && m->max_count != max_count) {
            whsem__unuse(m);
            return whsem__fail(WHSEM_E_MAX_COUNT_MISMATCH, "'%s' is open with max count %d, not %d",
                               final, m->max_count, max_count);
        }
        *out = m;
        return WHSEM_OK;
    }
    struct objsec sec;
    SECURITY_ATTRIBUTES *sa = objsec_init(&sec, mode);
    struct wmap *m = calloc(1, sizeof *m);
    HANDLE open_mu = NULL;
    whsem_status st;
    if (!m) {
        st = whsem__fail(WHSEM_E_NO_MEMORY, "out of memory opening '%s'", final);
        goto out;
    }
    m->base.be = be;
    memcpy(m->name, final, len + 1);
    m->name_len = len;
    m->uses = 1;
    if ((st = open_lock(base, sa, &open_mu)) != WHSEM_OK) goto out;
    st = gen_open(base, max_count != 0, sa, &m->gen_section, &m->gen_word);
    if (st == WHSEM_E_NOT_FOUND) st = whsem__fail(WHSEM_E_NOT_FOUND, "no semaphore named '%s'", final);
    if (st != WHSEM_OK) goto out;
    m->gen = (uint32_t)*m->gen_word;
    obj_name(base, m->gen, m->obj);
    if ((st = open_segment(m, max_count, mode, sa)) != WHSEM_OK) goto out;
    if (max_count != 0 && m->max_count != max_count) {
        st = whsem__fail(WHSEM_E_MAX_COUNT_MISMATCH, "'%s' is open with max count %d, not %d",
                         final, m->max_count, max_count);
        goto out;
    }
    if ((st = attach(m, sa)) != WHSEM_OK) goto out;
    m->next = maps;
    maps = m;
out:
    if (open_mu) open_unlock(open_mu);
    ReleaseSRWLockExclusive(&whsem__maps_mu);
    objsec_done(&sec);
    if (st != WHSEM_OK) {
        if (m) unmap(m);
        return st;
    }
    *out = m;
    return WHSEM_OK;
}

/* ---- administration by name ----------------------------------------------------------- */

WHSEM_API whsem_status WHSEM_CALL whsem_unlink(const char *name, uint32_t flags)
{
    if (!name) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "name is NULL");
    if (flags & ~(WHSEM_OPEN_EXACT_NAME | WHSEM_UNLINK_FORCE))
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "flags has unknown bits 0x%x",
                           flags & ~(WHSEM_OPEN_EXACT_NAME | WHSEM_UNLINK_FORCE));
    char final[WHSEM_MAX_NAME_BYTES + 1];
    size_t len;
    whsem_status st = whsem__finalize_name(name, flags & WHSEM_OPEN_EXACT_NAME, final, &len);
    if (st != WHSEM_OK) return st;
    struct whsem_w_self me = whsem__w_self();
    wchar_t base[WHSEM_W_OBJ_CHARS], obj[WHSEM_W_OBJ_CHARS];
    base_name(final, len, base);
    HANDLE open_mu, gen_section = NULL, section = NULL;
    volatile LONG *gen_word = NULL;
    struct wseg_header *h = NULL;
    if ((st = open_lock(base, NULL, &open_mu)) != WHSEM_OK) return st;
    st = gen_open(base, false, NULL, &gen_section, &gen_word);
    if (st == WHSEM_OK) {
        obj_name(base, (uint32_t)*gen_word, obj);
        section = OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, obj);
        if (!section && GetLastError() != ERROR_FILE_NOT_FOUND)
            st = whsem__fail_win32(GetLastError(), "cannot open", obj);
        else if (!section)
            st = WHSEM_E_NOT_FOUND;
        else if (!(h = MapViewOfFile(section, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 0)))
            st = whsem__fail_win32(GetLastError(), "cannot map", obj);
    }
    if (st == WHSEM_E_NOT_FOUND) st = whsem__fail(WHSEM_E_NOT_FOUND, "no semaphore named '%s'", final);
    /* A section that is not a valid segment is never "in use": retiring it
     * is how a corrupt name is repaired. */
    bool valid = h && validate(h, view_size(h), final, len, obj) == WHSEM_OK;
    if (st == WHSEM_OK && valid && !(flags & WHSEM_UNLINK_FORCE)) {
        /* Read without the segment mutex, as on Linux: a process attaching
         * needs the open mutex, which we hold, and one leaving is harmless. */
        const struct wseg_slot *slots = (const struct wseg_slot *)((char *)h + WHSEM_W_HEADER_SIZE);
        for (uint32_t i = 0; i < WHSEM_W_NSLOTS && st == WHSEM_OK; i++) {
            const struct wseg_slot *s = &slots[i];
            if (s->state == WSLOT_FREE || (s->pid == me.pid && s->created == me.created)) continue;
            if (whsem__w_process_alive(s->pid, s->created))
                st = whsem__fail(WHSEM_E_BUSY,
                                 "'%s' is open in another live process; removing it would "
                                 "split it (use WHSEM_UNLINK_FORCE to insist)",
                                 final);
        }
    }
    if (st == WHSEM_OK) {
        if (valid) h->unlinked = 1;
        InterlockedIncrement(gen_word);
    }
    if (h) UnmapViewOfFile(h);
    if (section) CloseHandle(section);
    if (gen_word) gen_close(gen_section, gen_word);
    open_unlock(open_mu);
    return st;
}

/* NtQueryDirectoryObject's record. */
struct dir_entry {
    UNICODE_STRING name;
    UNICODE_STRING type;
};
typedef LONG(NTAPI *open_dir_fn)(HANDLE *, ACCESS_MASK, OBJECT_ATTRIBUTES *);
typedef LONG(NTAPI *query_dir_fn)(HANDLE, void *, ULONG, BOOLEAN, BOOLEAN, ULONG *, ULONG *);

/* The finalized name held by the current generation of a segment whose
 * object name (without "Global\") is obj, if it is one of ours. */
static bool listed_name(const wchar_t *obj, size_t obj_len, char *out, size_t cap)
{
    /* Our segments: "whsem.<enc>[#g]" or "whsem#<hex>[#g]"; companions
     * carry a '!'. */
    if (obj_len < 7 || obj_len >= WHSEM_W_OBJ_CHARS - 16 || wcsncmp(obj, L"whsem", 5) != 0 ||
        (obj[5] != L'.' && obj[5] != L'#') || wmemchr(obj, L'!', obj_len))
        return false;
    wchar_t full[WHSEM_W_OBJ_CHARS], base[WHSEM_W_OBJ_CHARS];
    swprintf(full, WHSEM_W_OBJ_CHARS, L"Global\\%.*ls", (int)obj_len, obj);
    wcscpy(base, full);
    wchar_t *gen = wcschr(base + 7 + 6, L'#');
    if (gen) *gen = 0;
    HANDLE open_mu;
    if (open_lock(base, NULL, &open_mu) != WHSEM_OK) return false;
    bool ok = false;
    HANDLE s = OpenFileMappingW(FILE_MAP_READ, FALSE, full);
    const struct wseg_header *h = s ? MapViewOfFile(s, FILE_MAP_READ, 0, 0, 0) : NULL;
    if (h && validate(h, view_size(h), NULL, 0, full) == WHSEM_OK && !h->unlinked &&
        h->name_len < cap) {
        memcpy(out, h->name, h->name_len);
        out[h->name_len] = 0;
        ok = true;
    }
    if (h) UnmapViewOfFile(h);
    if (s) CloseHandle(s);
    open_unlock(open_mu);
    return ok;
}

WHSEM_API whsem_status WHSEM_CALL whsem_list(char *buf, size_t size, size_t *out_len)
{
    if (!out_len) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_len is NULL");
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    open_dir_fn open_dir = ntdll ? (open_dir_fn)(void *)GetProcAddress(ntdll, "NtOpenDirectoryObject") : NULL;
    query_dir_fn query_dir = ntdll ? (query_dir_fn)(void *)GetProcAddress(ntdll, "NtQueryDirectoryObject") : NULL;
    if (!open_dir || !query_dir)
        return whsem__fail(WHSEM_E_OS, "ntdll has no NtOpenDirectoryObject/NtQueryDirectoryObject");
    UNICODE_STRING dir_name = {sizeof L"\\BaseNamedObjects" - sizeof(wchar_t),
                               sizeof L"\\BaseNamedObjects", (wchar_t *)L"\\BaseNamedObjects"};
    OBJECT_ATTRIBUTES oa = {.Length = sizeof oa, .ObjectName = &dir_name};
    HANDLE dir;
    LONG nt = open_dir(&dir, 0x0001 /* DIRECTORY_QUERY */, &oa);
    if (nt < 0)
        return whsem__fail(nt == (LONG)0xC0000022 ? WHSEM_E_ACCESS_DENIED : WHSEM_E_OS,
                           "cannot list \\BaseNamedObjects (NTSTATUS 0x%08lx)", (unsigned long)nt);
    /* Collected first, looked at after: opening a segment creates its
     * open mutex in the very directory being enumerated. */
    wchar_t (*found)[WHSEM_W_OBJ_CHARS] = NULL;
    size_t nfound = 0, capfound = 0;
    union {
        struct dir_entry e;
        char bytes[4096];
    } rec;
    bool oom = false;
    /* An enumeration walks the directory by index, so an object removed
     * meanwhile (other processes close semaphores all the time) can make it
     * skip one that stays: two passes, merged, make that rare. */
    for (int pass = 0; pass < 2 && !oom; pass++) {
        ULONG ctx = 0, ret;
        for (bool first = true; query_dir(dir, &rec, sizeof rec, TRUE, first, &ctx, &ret) >= 0;
             first = false) {
            const struct dir_entry *e = &rec.e;
            size_t n = e->name.Length / sizeof(wchar_t);
            if (e->type.Length != 7 * sizeof(wchar_t) || wcsncmp(e->type.Buffer, L"Section", 7) != 0 ||
                n < 7 || n >= WHSEM_W_OBJ_CHARS || wcsncmp(e->name.Buffer, L"whsem", 5) != 0)
                continue;
            bool dup = false;
            for (size_t i = 0; i < nfound && !dup; i++)
                dup = wcsncmp(found[i], e->name.Buffer, n) == 0 && found[i][n] == 0;
            if (dup) continue;
            if (nfound == capfound) {
                size_t cap = capfound ? 2 * capfound : 64;
                void *p = realloc(found, cap * sizeof *found);
                if (!p) {
                    oom = true;
                    break;
                }
                found = p;
                capfound = cap;
            }
            wmemcpy(found[nfound], e->name.Buffer, n);
            found[nfound++][n] = 0;
        }
    }
    CloseHandle(dir);
    if (oom) {
        free(found);
        return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory listing semaphores");
    }
    struct name_list l;
    whsem__list_init(&l, buf, size);
    for (size_t i = 0; i < nfound; i++) {
        char name[WHSEM_W_NAME_CAP];
        if (listed_name(found[i], wcslen(found[i]), name, sizeof name)) whsem__list_add(&l, name);
    }
    free(found);
    return whsem__list_finish(&l, out_len);
}
