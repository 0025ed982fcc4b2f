/* SPDX-License-Identifier: MIT */
/*
 * The per-thread detail message, and the futex and fault-injection helpers
 * everything else leans on. (Versions and status names: status.c.)
 */
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Dynamic TLS on purpose: a library that foreign runtimes dlopen() must not
 * claim space in the static TLS block. */
static __thread char t_err[512];

WHSEM_API const char *WHSEM_CALL whsem_last_error(void) { return t_err; }

whsem_status whsem__fail(whsem_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_err, sizeof t_err, fmt, ap);
    va_end(ap);
    return status;
}

whsem_status whsem__fail_errno(int err, const char *what, const char *path)
{
    char buf[128];
    const char *msg = strerror_r(err, buf, sizeof buf);
    switch (err) {
    case EACCES:
    case EPERM:
    case EROFS:
        return whsem__fail(WHSEM_E_ACCESS_DENIED, "%s %s: %s", what, path, msg);
    case ENOMEM:
        return whsem__fail(WHSEM_E_NO_MEMORY, "%s %s: %s", what, path, msg);
    case EMFILE:
    case ENFILE:
    case ENOSPC:
    case ENOLCK:
        return whsem__fail(WHSEM_E_LIMIT, "%s %s: %s", what, path, msg);
    default:
        return whsem__fail(WHSEM_E_OS, "%s %s: %s", what, path, msg);
    }
}

int whsem__futex_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t abs_deadline_ns)
{
    struct timespec ts, *tp = whsem__deadline_ts(abs_deadline_ns, &ts);
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, tp, NULL, FUTEX_BITSET_MATCH_ANY);
    return r == 0 ? 0 : errno;
}

void whsem__futex_wake(_Atomic uint32_t *addr, int count)
{
    syscall(SYS_futex, addr, FUTEX_WAKE, count, NULL, NULL, 0);
}

#ifdef WHSEM_FAULT_INJECTION
void whsem__fault_point(const char *name)
{
    const char *want = getenv("WHSEM_FAULT_POINT");
    if (want && strcmp(want, name) == 0) {
        /* Stop here (WHSEM_FAULT_ACTION=stop), as a debugger or SIGSTOP
         * would stop a live process, and go on when continued. */
        const char *action = getenv("WHSEM_FAULT_ACTION");
        if (action && strcmp(action, "stop") == 0) {
            raise(SIGSTOP);
            return;
        }
        /* Die exactly here, as a crash or SIGKILL would. */
        kill(getpid(), SIGKILL);
        for (;;) pause();
    }
}
#endif
