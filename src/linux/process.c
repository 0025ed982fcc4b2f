/* SPDX-License-Identifier: MIT */
/*
 * Who this process is, and what fork() does to the library.
 *
 * Tickets belong to the process that acquired them. After fork() the
 * child gets a new process generation: tickets inherited from the parent
 * fail to release with WHSEM_E_WRONG_PROCESS, and every mapping drops the
 * parent's slot. Nothing the child inherits carries the parent's liveness
 * (see recovery.c): a child made without these handlers (a raw clone) is
 * harmless to the parent's crash recovery too; it just cannot use the
 * library.
 */
#include "process.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Atomic uint64_t whsem__pgen = 1;
struct whsem_self whsem__self_id;
bool whsem__global_membarrier_ok;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

const char *whsem__proc_stat_fields(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0) return NULL;
    buf[n] = 0;
    /* The command name (field 2) may contain spaces and parentheses: the
     * other fields follow the last ')'. */
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p + 2 : NULL;
}

bool whsem__proc_stat_start(const char *fields, uint64_t *out)
{
    /* starttime is field 22; fields begins at field 3. */
    const char *p = fields - 1;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p) return false;
    }
    char *end;
    unsigned long long v = strtoull(p + 1, &end, 10);
    if (end == p + 1) return false;
    *out = v;
    return true;
}

/* The start time of a running process, or false if pid names none. */
bool whsem__proc_start_ticks(pid_t pid, uint64_t *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    const char *state = whsem__proc_stat_fields(path, buf, sizeof buf);
    /* Field 3 is the state: a zombie (or dead) process runs no code and
     * holds nothing, even though its pid and start time remain. */
    if (!state || *state == 'Z' || *state == 'X' || *state == 'x') return false;
    return whsem__proc_stat_start(state, out);
}

static void read_identity(void)
{
    whsem__self_id.pid = getpid();
    if (!whsem__proc_start_ticks(whsem__self_id.pid, &whsem__self_id.start_ticks))
        whsem__self_id.start_ticks = 0;
    struct stat st;
    whsem__self_id.pidns = stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* At load and in every fork() child. What the kernel offers is asked
 * once: it does not change in a child, which inherits the registration
 * too (registering again then returns at once). */
static void register_membarrier(void)
{
    static int cmds = -1;
    if (cmds < 0) cmds = (int)syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0);
    whsem__global_membarrier_ok =
        cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
        syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0) == 0;
}

/* The modules' hooks, sorted by order; registered from constructors, so
 * before any thread of ours exists. */
#define MAX_FORK_HOOKS 8
static const struct whsem_fork_hooks *hooks[MAX_FORK_HOOKS];
static int n_hooks;

void whsem__on_fork(const struct whsem_fork_hooks *h)
{
    if (n_hooks == MAX_FORK_HOOKS) abort(); /* a module more than planned: a build error, really */
    int i = n_hooks++;
    for (; i > 0 && hooks[i - 1]->order > h->order; i--) hooks[i] = hooks[i - 1];
    hooks[i] = h;
}

static void before_fork(void)
{
    for (int i = 0; i < n_hooks; i++) hooks[i]->prepare();
}

static void after_fork_parent(void)
{
    for (int i = n_hooks - 1; i >= 0; i--) hooks[i]->parent();
}

static void after_fork_child(void)
{
    atomic_fetch_add(&whsem__pgen, 1);
    read_identity();
    register_membarrier();
    for (int i = n_hooks - 1; i >= 0; i--) hooks[i]->child();
}

static void init(void)
{
    read_identity();
    register_membarrier();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

void whsem__init(void) { pthread_once(&init_once, init); }
