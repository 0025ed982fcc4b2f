/* SPDX-License-Identifier: MIT */
/*
 * Windows's primitives under the handle table (handles_os.h): a
 * fiber-local slot whose callback tells the table that a thread exits.
 */
#include "handles.h"

_Atomic DWORD whsem__w_thread_fls = FLS_OUT_OF_INDEXES;
static INIT_ONCE fls_once = INIT_ONCE_STATIC_INIT;
static void (*on_exit_fn)(struct whsem_thread *t);

static void WINAPI thread_exit(void *t)
{
    if (t) on_exit_fn(t);
}

static BOOL CALLBACK fls_init(PINIT_ONCE once, void *param, void **ctx)
{
    (void)once, (void)ctx;
    on_exit_fn = (void (*)(struct whsem_thread *))param;
    atomic_store(&whsem__w_thread_fls, FlsAlloc(thread_exit));
    return TRUE;
}

void whsem__p_threads_init(void (*on_exit)(struct whsem_thread *t))
{
    InitOnceExecuteOnce(&fls_once, fls_init, (void *)on_exit, NULL);
}

bool whsem__p_thread_set(struct whsem_thread *t)
{
    DWORD i = atomic_load(&whsem__w_thread_fls);
    return i != FLS_OUT_OF_INDEXES && FlsSetValue(i, t);
}

void whsem__w_threads_unload(void)
{
    DWORD i = atomic_exchange(&whsem__w_thread_fls, FLS_OUT_OF_INDEXES);
    if (i != FLS_OUT_OF_INDEXES) FlsFree(i);
}
