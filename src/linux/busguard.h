/* SPDX-License-Identifier: MIT */
/*
 * Surviving truncation of a mapped segment (issue 12, item 4).
 *
 * Segment files are MAP_SHARED and, for a 0666 name, anybody may
 * ftruncate() one. Every process that then touches a page beyond the new
 * end of file gets SIGBUS, whose default action would kill every user of
 * the name. The bus guard catches that SIGBUS for the ranges registered
 * here, marks the segment broken and puts zero-filled private memory in
 * place of the whole range, so the faulting instruction is retried and
 * succeeds. A zeroed segment admits nobody (free == 0, no grants), and the
 * core turns the `broken` flag into WHSEM_E_CORRUPT.
 *
 * Every SIGBUS that is not a truncation fault on a registered range goes
 * on to the handler that was installed before ours, exactly as the kernel
 * would have delivered it (see busguard.c for the rules).
 */
#ifndef WHSEM_BUSGUARD_H
#define WHSEM_BUSGUARD_H

#include "common.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* Registers [base, base + len) (base page-aligned; len is rounded up to
 * whole pages) and installs the SIGBUS handler the first time it is
 * called. *broken is set to true, from the signal handler, when the range
 * has been found truncated; it must stay valid until whsem__busguard_remove
 * returns. Ranges must not overlap.
 * Returns WHSEM_OK, WHSEM_E_INVALID_ARGUMENT, WHSEM_E_NO_MEMORY or
 * WHSEM_E_OS (sigaction failed), with a message. */
WHSEM_HIDDEN whsem_status whsem__busguard_add(void *base, size_t len, _Atomic bool *broken);

/* Unregisters the range that starts at base. Call it before munmap: once
 * it returns no handler is using the range any more, so the address may be
 * reused without the handler ever remapping someone else's memory. A base
 * that is not registered is ignored. Never call it from a signal handler. */
WHSEM_HIDDEN void whsem__busguard_remove(void *base);

#endif
