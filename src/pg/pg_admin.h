/* SPDX-License-Identifier: MIT */
/*
 * What the whsem command asks of the PostgreSQL backend beyond the public
 * ABI (pg/admin.c, pg/backend.c): the processes behind a semaphore with
 * their hosts, the names a database knows, and removing one.
 */
#ifndef WHSEM_PG_ADMIN_H
#define WHSEM_PG_ADMIN_H

#include "whsem.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One process that has a PostgreSQL semaphore open, holds or waits. */
struct whsem_pg_process {
    char host[64];
    int64_t pid;            /* negative: a server process pid, not ours   */
    int64_t since_unix_ms;  /* holding since (0: not holding, or unknown) */
    int32_t tickets;
    uint32_t waiting;       /* its waiting connections (ours: acquisitions) */
    int64_t wait_since_ms;  /* its oldest wait (0 if none)                  */
};

/* The processes of sem (a PostgreSQL semaphore), and its info; *out is
 * malloc()ed. WHSEM_E_UNSUPPORTED for a semaphore of another backend. */
__attribute__((visibility("hidden"))) whsem_status
whsem__pg_processes(whsem_sem sem, whsem_info *info, struct whsem_pg_process **out, size_t *n);
/* The names the database knows, NUL-separated then one more NUL ("ask,
 * then fill" like whsem_list). */
__attribute__((visibility("hidden"))) whsem_status
whsem__pg_list(const char *backend, char *buf, size_t size, size_t *out_len);
/* Removes a name's row (flags as whsem_unlink's): WHSEM_E_BUSY while a
 * session of another process has it open, unless forced. */
__attribute__((visibility("hidden"))) whsem_status
whsem__pg_unlink(const char *backend, const char *name, uint32_t flags);

#endif
