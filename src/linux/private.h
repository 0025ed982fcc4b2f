/* SPDX-License-Identifier: MIT */
/*
 * Calls the whsem CLI needs that are not part of the ABI. The CLI links
 * the library statically to reach them.
 */
#ifndef WHSEM_PRIVATE_H
#define WHSEM_PRIVATE_H

#include "whsem.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A new descriptor (without FD_CLOEXEC) sharing the open file description
 * that holds this process's liveness lock on sem's segment. While any
 * process keeps it open, this process's tickets on sem count as alive:
 * `whsem run` hands it to the command so that the ticket outlives
 * `whsem run` exactly as long as the command does. The caller owns it.
 */
whsem_status whsem__share_liveness(whsem_sem sem, int *out_fd);

#ifdef __cplusplus
}
#endif

#endif
