/* SPDX-License-Identifier: MIT */
/*
 * Names in the database (registry.c): their row, their max count and the
 * marker lock of the sessions that use them.
 */
#ifndef WHSEM_PG_REGISTRY_H
#define WHSEM_PG_REGISTRY_H

#include "pg.h"

/* Finds or creates n's row and takes its marker on main, checking the max
 * count; n ends PGN_READY or PGN_BROKEN (its word is bumped). */
WHSEM_HIDDEN void whsem__pgr_register(struct pgsrv *s, struct pgconn *main, struct pgname *n);
/* Takes n's marker on c and checks that the max count is still n's; a
 * change (possible only while no session of ours held the marker) breaks
 * n with WHSEM_E_MAX_COUNT_MISMATCH. */
WHSEM_HIDDEN void whsem__pgr_mark(struct pgsrv *s, struct pgconn *c, struct pgname *n);
/* Whether a marker of ours is on its way back. */
WHSEM_HIDDEN bool whsem__pgr_unmarking(const struct pgsrv *s);
/* Lets go of c's marker of name id (if it holds one). */
WHSEM_HIDDEN void whsem__pgr_unmark(struct pgsrv *s, struct pgconn *c, int32_t id);

#endif
