/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL backend on Windows: not there (yet). An open, a list or an
 * unlink that names a backend fails with WHSEM_E_UNSUPPORTED and says so;
 * no handle of this backend ever exists, so its other entries are never
 * reached.
 */
#include "backend.h"

static whsem_status unsupported(const char *what)
{
    return whsem__fail(WHSEM_E_UNSUPPORTED,
                       "the PostgreSQL backend (%s) is not available on Windows; "
                       "leave it NULL for a semaphore of this machine",
                       what);
}

static whsem_status pg_open(const char *final, size_t len, int32_t max_count,
                            const struct open_opts *o, whsem_sem *out_sem)
{
    (void)final, (void)len, (void)max_count, (void)o, (void)out_sem;
    return unsupported("options.backend");
}

static whsem_status pg_list(const struct whsem_backend *be, const char *where, char *buf,
                           size_t size, size_t *out_len)
{
    (void)be, (void)where, (void)buf, (void)size, (void)out_len;
    return unsupported("whsem_list_backend's backend");
}

static whsem_status pg_unlink(const struct whsem_backend *be, const char *where, const char *name,
                             uint32_t flags)
{
    (void)be, (void)where, (void)name, (void)flags;
    return unsupported("whsem_unlink_backend's backend");
}

const struct whsem_backend whsem__pg_backend = {
    .name = "PostgreSQL",
    .open = pg_open,
    .list = pg_list,
    .unlink = pg_unlink,
};
