/* SPDX-License-Identifier: MIT */
/* See segment_peek.h. */
#define _GNU_SOURCE
#include "segment_peek.h"

#include "layout.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

uint32_t whtest_seg_nslots(void) { return WHSEM_NSLOTS; }

int whtest_seg_hwm(const char *path, uint32_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = pread(fd, out, sizeof *out, offsetof(struct seg_header, slot_hwm));
    close(fd);
    return n == (ssize_t)sizeof *out ? 0 : -1;
}

static off_t slot_offset(uint32_t i) { return (off_t)WHSEM_HEADER_SIZE + (off_t)i * WHSEM_SLOT_SIZE; }

int whtest_seg_slot(const char *path, uint32_t i, struct whtest_slot *out)
{
    struct seg_slot s;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = pread(fd, &s, sizeof s, slot_offset(i));
    close(fd);
    if (n != (ssize_t)sizeof s) return -1;
    out->state = s.state;
    out->held = s.held;
    out->grants = s.grants;
    out->want = s.want;
    out->flags = s.flags;
    out->pid = s.pid;
    out->start_ticks = s.start_ticks;
    out->pidns = s.pidns;
    return 0;
}

int whtest_seg_set_slot(const char *path, uint32_t i, const struct whtest_slot *in)
{
    struct seg_slot s;
    memset(&s, 0, sizeof s);
    s.state = in->state;
    s.held = in->held;
    s.grants = in->grants;
    s.want = in->want;
    s.flags = in->flags;
    s.pid = in->pid;
    s.start_ticks = in->start_ticks;
    s.pidns = in->pidns;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = pwrite(fd, &s, sizeof s, slot_offset(i));
    close(fd);
    return n == (ssize_t)sizeof s ? 0 : -1;
}

long whtest_seg_pages(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    long pages = -1;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        size_t len = (size_t)st.st_size, page = (size_t)sysconf(_SC_PAGESIZE);
        void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        unsigned char *vec = malloc((len + page - 1) / page);
        /* mincore reads page-cache residency: a page of a /dev/shm file is
         * there exactly when it has been touched. Mapping it touches none. */
        if (p != MAP_FAILED && vec && mincore(p, len, vec) == 0) {
            pages = 0;
            for (size_t k = 0; k < (len + page - 1) / page; k++) pages += vec[k] & 1;
        }
        free(vec);
        if (p != MAP_FAILED) munmap(p, len);
    }
    close(fd);
    return pages;
}
