/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL backend's entries for whsem_list_backend and
 * whsem_unlink_backend (pg/admin.c, in the backend's table): the names a
 * database knows, and removing one. be is the backend's table.
 */
#ifndef WHSEM_PG_ADMIN_H
#define WHSEM_PG_ADMIN_H

#include "whsem.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct whsem_backend;

/* The names the database knows, NUL-separated then one more NUL ("ask,
 * then fill" like whsem_list). */
__attribute__((visibility("hidden"))) whsem_status
whsem__pg_list(const struct whsem_backend *be, const char *backend, char *buf, size_t size,
               size_t *out_len);
/* Removes a name's row (flags as whsem_unlink's): WHSEM_E_BUSY while a
 * session of another process has it open, unless forced. */
__attribute__((visibility("hidden"))) whsem_status
whsem__pg_unlink(const struct whsem_backend *be, const char *backend, const char *name,
                 uint32_t flags);

#endif
