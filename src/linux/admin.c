/* SPDX-License-Identifier: MIT */
/*
 * Administration by name: removing a semaphore and listing them all.
 */
#include "busguard.h"
#include "mapping.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether some live process other than us has the segment open. Slots
 * at or beyond the hwm hold nothing (layout.h), and reading them would
 * make the file allocate their pages. */
static bool in_use_by_others(int fd, const struct seg_header *h, const struct seg_slot *slots)
{
    uint32_t n = h->slot_hwm > WHSEM_NSLOTS ? WHSEM_NSLOTS : h->slot_hwm;
    for (uint32_t i = 0; i < n; i++) {
        if (atomic_load_explicit(&slots[i].state, memory_order_relaxed) == SLOT_FREE) continue;
        if (slots[i].pid == whsem__self_id.pid && slots[i].pidns == whsem__self_id.pidns) continue;
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                           .l_start = WHSEM_LOCK_BASE + i, .l_len = 1};
        if (fcntl(fd, F_OFD_GETLK, &fl) != 0 || fl.l_type != F_UNLCK) return true;
    }
    return false;
}

WHSEM_API whsem_status WHSEM_CALL whsem_unlink(const char *name, uint32_t flags)
{
    if (!name) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "name is NULL");
    if (flags & ~(WHSEM_OPEN_EXACT_NAME | WHSEM_UNLINK_FORCE))
        return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "flags has unknown bits 0x%x",
                           flags & ~(WHSEM_OPEN_EXACT_NAME | WHSEM_UNLINK_FORCE));
    char final[WHSEM_MAX_NAME_BYTES + 1], file[256], path[sizeof(WHSEM_SHM_DIR) + 256];
    size_t len;
    whsem_status st = whsem__finalize_name(name, flags & WHSEM_OPEN_EXACT_NAME, final, &len);
    if (st != WHSEM_OK) return st;
    whsem__init();
    whsem__file_name(final, len, file);
    snprintf(path, sizeof path, "%s/%s", WHSEM_SHM_DIR, file);

    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT) return whsem__fail(WHSEM_E_NOT_FOUND, "no semaphore named '%s'", final);
    if (fd >= 0 && !(flags & WHSEM_UNLINK_FORCE)) {
        /* A file that is not a valid segment is never "in use": removing it
         * is how a corrupt name is repaired. */
        struct stat sb;
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == WHSEM_SEG_SIZE) {
            struct seg_header *h = mmap(NULL, WHSEM_SEG_SIZE, PROT_READ, MAP_SHARED, fd, 0);
            _Atomic bool broken = false;
            if (h != MAP_FAILED && whsem__busguard_add(h, WHSEM_SEG_SIZE, &broken) != WHSEM_OK) {
                munmap(h, WHSEM_SEG_SIZE);
                h = MAP_FAILED;
            }
            if (h != MAP_FAILED) {
                bool busy = memcmp(h->magic, WHSEM_SEG_MAGIC, 8) == 0 &&
                            h->layout_version == WHSEM_LAYOUT_VERSION &&
                            in_use_by_others(fd, h, seg_slots(h)) && !atomic_load(&broken);
                whsem__busguard_remove(h);
                munmap(h, WHSEM_SEG_SIZE);
                if (busy) {
                    close(fd);
                    return whsem__fail(WHSEM_E_BUSY,
                                       "'%s' is open in another live process; removing it "
                                       "would split it (use WHSEM_UNLINK_FORCE to insist)",
                                       final);
                }
            }
        }
    }
    if (fd >= 0) close(fd);
    if (unlink(path) != 0) {
        if (errno == ENOENT) return whsem__fail(WHSEM_E_NOT_FOUND, "no semaphore named '%s'", final);
        return whsem__fail_errno(errno, "cannot remove", path);
    }
    return WHSEM_OK;
}

/* The finalized name behind a file of ours, read from its header when the
 * file name does not carry it (hashed names) or cannot be decoded. */
static bool name_of(const char *file, char *out, size_t cap)
{
    if (whsem__decode_file_name(file, out, cap)) return true;
    char path[sizeof(WHSEM_SHM_DIR) + 256];
    snprintf(path, sizeof path, "%s/%s", WHSEM_SHM_DIR, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return false;
    struct seg_header h;
    ssize_t n = pread(fd, &h, sizeof h, 0);
    close(fd);
    if (n != (ssize_t)sizeof h || memcmp(h.magic, WHSEM_SEG_MAGIC, 8) != 0 ||
        h.name_len >= WHSEM_NAME_CAP || h.name_len + 1 > cap)
        return false;
    memcpy(out, h.name, h.name_len);
    out[h.name_len] = 0;
    char check[256];
    whsem__file_name(out, h.name_len, check);
    return strcmp(check, file) == 0;
}

WHSEM_API whsem_status WHSEM_CALL whsem_list(char *buf, size_t size, size_t *out_len)
{
    if (!out_len) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_len is NULL");
    DIR *d = opendir(WHSEM_SHM_DIR);
    if (!d) return whsem__fail_errno(errno, "cannot list", WHSEM_SHM_DIR);
    struct name_list l;
    whsem__list_init(&l, buf, size);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, WHSEM_FILE_PREFIX, strlen(WHSEM_FILE_PREFIX)) != 0 &&
            strncmp(de->d_name, WHSEM_HASHED_FILE_PREFIX, strlen(WHSEM_HASHED_FILE_PREFIX)) != 0)
            continue;
        char name[WHSEM_NAME_CAP];
        if (name_of(de->d_name, name, sizeof name)) whsem__list_add(&l, name);
    }
    closedir(d);
    return whsem__list_finish(&l, out_len);
}
