/*
 * The part of the public API that does not depend on the platform (api.c,
 * compiled into the Linux library and whsem.dll alike) and the calls each
 * platform's semaphore.c provides it: api.c checks arguments and options
 * and finalizes names; the platform finds or makes the semaphore and walks
 * its segment, building its answers with answers.h.
 */
#ifndef WHSEM_API_H
#define WHSEM_API_H

#include "answers.h"
#include "common.h"
#include "names.h"

#include <stdbool.h>
#include <stddef.h>

/* whsem_open_options, read as far as the caller's struct_size covers it,
 * with the defaults filled in. */
struct open_opts {
    uint32_t flags;
    int32_t check_ms;         /* abandonment check period, -1 = never      */
    uint32_t mode;            /* permission bits, always including 0600    */
    bool mode_explicit;       /* the caller chose mode: an existing segment
                                 may not be wider (see segment.c)          */
};

/* ---- each platform's semaphore.c ---------------------------------------- */

/* whsem_open (max_count >= 1) or whsem_open_existing (max_count 0) of a
 * finalized name, with the options already checked. */
WHSEM_HIDDEN whsem_status whsem__open_final(const char *final, size_t len, int32_t max_count,
                                            const struct open_opts *o, whsem_sem *out_sem);
/* whsem_query, with the arguments checked. */
WHSEM_HIDDEN whsem_status whsem__query(whsem_sem sem, whsem_info *info, whsem_holder *holders,
                                       size_t capacity, size_t *out_count);
/* The finalized name (unless name is NULL) and the max count of a live
 * semaphore handle; WHSEM_E_INVALID_HANDLE, with nothing written, if it is
 * not one. */
WHSEM_HIDDEN whsem_status whsem__sem_identity(whsem_sem sem, char name[WHSEM_MAX_NAME_BYTES + 1],
                                              size_t *name_len, int32_t *max_count);

#endif
