/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL backend on Windows: not there (yet). An open that names
 * a backend fails with WHSEM_E_UNSUPPORTED and says so; no handle of this
 * backend ever exists, so its other entries are never reached.
 */
#include "backend.h"

static whsem_status pg_open(const char *final, size_t len, int32_t max_count,
                            const struct open_opts *o, whsem_sem *out_sem)
{
    (void)final, (void)len, (void)max_count, (void)o, (void)out_sem;
    return whsem__fail(WHSEM_E_UNSUPPORTED,
                       "the PostgreSQL backend (options.backend) is not available on Windows; "
                       "leave options.backend NULL for a semaphore of this machine");
}

const struct whsem_backend whsem__pg_backend = {
    .name = "PostgreSQL",
    .open = pg_open,
};
