/* SPDX-License-Identifier: MIT */
/*
 * What the slot-table tests read and write in a segment file, by the
 * layout's own definitions (src/linux/layout.h) rather than by offsets
 * copied into the tests.
 */
#ifndef WHTEST_SEGMENT_PEEK_H
#define WHTEST_SEGMENT_PEEK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct whtest_slot {
    uint32_t state; /* 0 FREE, 1 CLAIMED, 2 ACTIVE */
    uint32_t held, grants, want, flags;
    int32_t pid;
    uint64_t start_ticks, pidns;
};

#define WHTEST_SLOT_CLAIMED 1u
#define WHTEST_SLOT_ACTIVE 2u

uint32_t whtest_seg_nslots(void);
/* 0 on success, -1 if the file cannot be read or written. */
int whtest_seg_hwm(const char *path, uint32_t *out);
int whtest_seg_slot(const char *path, uint32_t i, struct whtest_slot *out);
int whtest_seg_set_slot(const char *path, uint32_t i, const struct whtest_slot *in);
/* Pages of the file that exist, i.e. that some process has touched; -1 on
 * error. */
long whtest_seg_pages(const char *path);

#ifdef __cplusplus
}
#endif

#endif
