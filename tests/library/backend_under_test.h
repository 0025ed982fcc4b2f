/* SPDX-License-Identifier: MIT */
/*
 * The one place that decides which backend the suites' semaphores live
 * on, so that the same tests check the same contract on every backend:
 * WHSEM_TEST_BACKEND, a PostgreSQL connection string (CTest's
 * "pg.library." run sets it to the pg fixture's cluster), or unset for
 * this machine's shared memory. Plain C, because the other processes of
 * multi-process tests (commands.c, forked on Linux, the helper program
 * on Windows) must open what the test opened. Header-only: the Windows
 * suite does not link commands.c.
 */
#ifndef WHTEST_BACKEND_UNDER_TEST_H
#define WHTEST_BACKEND_UNDER_TEST_H

#include "whsem.h"

#include <stddef.h>
#include <stdlib.h>

/* The connection string, or NULL for shared memory. */
static inline const char *whtest_backend(void)
{
    const char *b = getenv("WHSEM_TEST_BACKEND");
    return b && b[0] ? b : NULL;
}

/* opts with the backend under test filled in (storage: *merged). Options
 * a test made invalid on purpose, or too short to have a backend field
 * (an old caller's), and a backend the test chose itself are passed
 * unchanged: what they test would change otherwise. Without a backend
 * under test, opts is passed as it is, NULL included, so that the default
 * run is exactly the run it was. */
static inline const whsem_open_options *whtest_options(const whsem_open_options *opts,
                                                       whsem_open_options *merged)
{
    const char *b = whtest_backend();
    if (!b) return opts;
    if (!opts) {
        whsem_open_options zero = {0};
        *merged = zero;
        merged->struct_size = sizeof *merged;
    } else if (opts->struct_size == sizeof *opts && !opts->backend) {
        *merged = *opts;
    } else {
        return opts;
    }
    merged->backend = b;
    return merged;
}

/* whsem_open and whsem_open_existing on the backend under test. */
static inline whsem_status whtest_open(const char *name, int32_t max_count,
                                       const whsem_open_options *opts, whsem_sem *out_sem)
{
    whsem_open_options merged;
    return whsem_open(name, max_count, whtest_options(opts, &merged), out_sem);
}

static inline whsem_status whtest_open_existing(const char *name, const whsem_open_options *opts,
                                                whsem_sem *out_sem)
{
    whsem_open_options merged;
    return whsem_open_existing(name, whtest_options(opts, &merged), out_sem);
}

#endif
