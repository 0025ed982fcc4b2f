/* SPDX-License-Identifier: MIT */
/*
 * Names in the database (registry.c): their row, their max count and the
 * marker lock of the sessions that use them.
 */
#ifndef WHSEM_PG_REGISTRY_H
#define WHSEM_PG_REGISTRY_H

#include "pg.h"

/* Serializes the statements that create the backend's objects, so that
 * two first uses at once do not race in CREATE ... IF NOT EXISTS (a
 * transaction-level advisory lock of this key). */
#define PG_CREATE_LOCK_KEY "7003624861913513325"
/* whsem.counters (pg/DESIGN.md, "Counters"): a row per name, deleted with
 * it. Its columns may be NULL (a flush makes the row empty, then adds),
 * which keeps the statement short enough to quote in a message to the
 * administrator who must run it. */
#define PG_SQL_COUNTERS_DDL                                                                    \
    "CREATE TABLE IF NOT EXISTS whsem.counters (id integer PRIMARY KEY REFERENCES "            \
    "whsem.semaphore ON DELETE CASCADE, acquisitions bigint, timeouts bigint, "                \
    "cancellations bigint, waits bigint, wait_ns bigint, releases bigint, hold_ns bigint, "   \
    "wait_buckets bigint[], waiters integer[], waiters_end bigint);"                          \
    "GRANT SELECT, INSERT, UPDATE ON whsem.counters TO PUBLIC;"

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
