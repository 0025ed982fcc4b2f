/* SPDX-License-Identifier: MIT */
/*
 * What the whsem command asks of the PostgreSQL backend beyond the public
 * ABI (pg/admin.c): the names a database knows, and removing one. (The
 * processes behind a semaphore, with their hosts, are
 * whsem_query_processes's.)
 */
#ifndef WHSEM_PG_ADMIN_H
#define WHSEM_PG_ADMIN_H

#include "whsem.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The names the database knows, NUL-separated then one more NUL ("ask,
 * then fill" like whsem_list). */
__attribute__((visibility("hidden"))) whsem_status
whsem__pg_list(const char *backend, char *buf, size_t size, size_t *out_len);
/* Removes a name's row (flags as whsem_unlink's): WHSEM_E_BUSY while a
 * session of another process has it open, unless forced. */
__attribute__((visibility("hidden"))) whsem_status
whsem__pg_unlink(const char *backend, const char *name, uint32_t flags);

#endif
