/* SPDX-License-Identifier: MIT */
/*
 * Windows's primitives under the handle table (../handles.h, included
 * from there): the slot that holds a thread's record, and the fences of
 * the hazard pointers. Their slow halves are in handles_os.c.
 *
 * The record lives in a fiber-local slot, not in compiler TLS: MinGW-w64's
 * __thread is emulated through libwinpthread-1.dll, a runtime DLL whsem.dll
 * must not need, and FlsAlloc's callback is the thread-exit hook anyway.
 */
#ifndef WHSEM_WIN32_HANDLES_OS_H
#define WHSEM_WIN32_HANDLES_OS_H

#include "common.h"

#include <windows.h>

#include <stdatomic.h>
#include <stdbool.h>

struct whsem_thread;

/* FLS_OUT_OF_INDEXES until whsem__p_threads_init. */
extern WHSEM_HIDDEN _Atomic DWORD whsem__w_thread_fls;

/* This thread's record, or NULL before whsem__p_thread_set. */
static inline struct whsem_thread *whsem__p_thread(void)
{
    DWORD i = atomic_load_explicit(&whsem__w_thread_fls, memory_order_relaxed);
    return i == FLS_OUT_OF_INDEXES ? NULL : (struct whsem_thread *)FlsGetValue(i);
}

/* A full fence on both sides. FlushProcessWriteBuffers would let the
 * reader get away with a compiler barrier, as membarrier() does on Linux,
 * but Wine (8.0, where the Windows suites run) implements it as an empty
 * stub: readers would be unordered there. Next to the two mutex system
 * calls of every call on Windows, a full fence costs nothing. */
static inline void whsem__p_hazard_fence(void) { atomic_thread_fence(memory_order_seq_cst); }
static inline void whsem__p_heavy_fence(void) { atomic_thread_fence(memory_order_seq_cst); }

/* Once per process, before the first record is made: on_exit is what a
 * thread's record is handed to when the thread exits (a pointer, so that
 * the primitives below the table do not call up into it). */
WHSEM_HIDDEN void whsem__p_threads_init(void (*on_exit)(struct whsem_thread *t));
/* Makes t this thread's record, to be handed to on_exit when
 * the thread (or fiber) exits; false if it cannot be stored. */
WHSEM_HIDDEN bool whsem__p_thread_set(struct whsem_thread *t);
/* Frees the fiber-local slot (calling its callback for every thread's
 * record) when whsem.dll is unloaded (dllmain.c). */
WHSEM_HIDDEN void whsem__w_threads_unload(void);
/* There is no fork() on Windows. */
static inline void whsem__p_threads_after_fork(void) {}

#endif
