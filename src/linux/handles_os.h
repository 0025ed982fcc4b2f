/* SPDX-License-Identifier: MIT */
/*
 * Linux's primitives under the handle table (../handles.h, included from
 * there): the slot that holds a thread's record, and the fence a
 * hazard-pointer reader pays. Their slow halves are in handles_os.c.
 */
#ifndef WHSEM_LINUX_HANDLES_OS_H
#define WHSEM_LINUX_HANDLES_OS_H

#include "common.h"

#include <stdatomic.h>
#include <stdbool.h>

struct whsem_thread;

/* initial-exec: one pointer of static TLS, which glibc reserves room for
 * even in libraries loaded with dlopen() (as foreign runtimes load us),
 * instead of a call into the dynamic loader on every access. */
#define WHSEM_TLS_INITIAL_EXEC __attribute__((tls_model("initial-exec")))
extern WHSEM_HIDDEN __thread struct whsem_thread *whsem__t_self WHSEM_TLS_INITIAL_EXEC;
extern WHSEM_HIDDEN bool whsem__membarrier_ok;

/* This thread's record, or NULL before whsem__p_thread_set. */
static inline struct whsem_thread *whsem__p_thread(void) { return whsem__t_self; }

/* The reader's half of the hazard-pointer fence: nothing but a compiler
 * barrier while the reclaimer's membarrier() orders for it. */
static inline void whsem__p_hazard_fence(void)
{
    if (WHSEM_LIKELY(whsem__membarrier_ok))
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
}

/* Once per process, before the first record is made: on_exit is what a
 * thread's record is handed to when the thread exits (a pointer, so that
 * the primitives below the table do not call up into it). */
WHSEM_HIDDEN void whsem__p_threads_init(void (*on_exit)(struct whsem_thread *t));
/* Makes t this thread's record, to be handed to on_exit when
 * the thread exits; false if the thread cannot be told about (no memory). */
WHSEM_HIDDEN bool whsem__p_thread_set(struct whsem_thread *t);
/* The reclaimer's half: orders every thread's earlier hazard stores
 * before the scan that follows. */
WHSEM_HIDDEN void whsem__p_heavy_fence(void);
/* In a fork() child: the membarrier registration belongs to the old mm. */
WHSEM_HIDDEN void whsem__p_threads_after_fork(void);

#endif
