/* SPDX-License-Identifier: MIT */
/*
 * Who this process is (pid, start time, pid namespace, fork generation)
 * and the fork() hooks of the modules (process.c).
 */
#ifndef WHSEM_PROCESS_H
#define WHSEM_PROCESS_H

#include "common.h"
#include "fork_hooks.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Bumped in every child after fork(): tickets and slot attachments carry
 * the generation they were made in, so a child can tell inherited ones. */
extern WHSEM_HIDDEN _Atomic uint64_t whsem__pgen;

struct whsem_self {
    pid_t pid;
    uint64_t start_ticks;
    uint64_t pidns;
};
extern WHSEM_HIDDEN struct whsem_self whsem__self_id;

/* Whether this process is registered for membarrier(GLOBAL_EXPEDITED),
 * which lets segment unlocks be plain stores (seglock.c). */
extern WHSEM_HIDDEN bool whsem__global_membarrier_ok;

WHSEM_HIDDEN void whsem__init(void);
WHSEM_HIDDEN bool whsem__proc_start_ticks(pid_t pid, uint64_t *out);
/* Reads a /proc/.../stat file into buf; returns its fields from the third
 * (the state letter) on, or NULL. */
WHSEM_HIDDEN const char *whsem__proc_stat_fields(const char *path, char *buf, size_t size);
/* The start time (field 22) in what whsem__proc_stat_fields returned. */
WHSEM_HIDDEN bool whsem__proc_stat_start(const char *fields, uint64_t *out);



#endif
