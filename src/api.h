/* SPDX-License-Identifier: MIT */
/*
 * The part of the public API that does not depend on the platform or the
 * backend (api.c, compiled into the Linux library and whsem.dll alike):
 * api.c checks arguments and options and finalizes names; the backend
 * (backend.h) finds or makes the semaphore and builds its answers with
 * answers.h.
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
    const char *backend;      /* NULL = this machine; else a connection
                                 string, the caller's, valid during open   */
    int32_t conn_check_ms;    /* PostgreSQL: ping period, -1 = never       */
};

#endif
