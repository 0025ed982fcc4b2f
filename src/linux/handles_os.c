/* SPDX-License-Identifier: MIT */
/*
 * Linux's primitives under the handle table (handles_os.h): a pthread key
 * whose destructor tells the table that a thread exits, and
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) as the reclaimer's fence.
 */
#include "handles.h"

#include <pthread.h>

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread struct whsem_thread *whsem__t_self WHSEM_TLS_INITIAL_EXEC;
bool whsem__membarrier_ok;

static pthread_key_t thread_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static void (*_Atomic on_exit_fn)(struct whsem_thread *t);

static void thread_exit(void *arg)
{
    atomic_load_explicit(&on_exit_fn, memory_order_acquire)(arg);
    whsem__t_self = NULL;
}

static void make_key(void)
{
    pthread_key_create(&thread_key, thread_exit);
    int cmds = (int)syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0)
        whsem__membarrier_ok = true;
}

void whsem__p_threads_init(void (*on_exit)(struct whsem_thread *t))
{
    atomic_store_explicit(&on_exit_fn, on_exit, memory_order_release);
    pthread_once(&key_once, make_key);
}

bool whsem__p_thread_set(struct whsem_thread *t)
{
    if (pthread_setspecific(thread_key, t) != 0) return false;
    whsem__t_self = t;
    return true;
}

void whsem__p_heavy_fence(void)
{
    if (!whsem__membarrier_ok ||
        syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) != 0)
        atomic_thread_fence(memory_order_seq_cst);
}

void whsem__p_threads_after_fork(void)
{
    if (whsem__membarrier_ok &&
        syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) != 0)
        whsem__membarrier_ok = false;
}
