/* SPDX-License-Identifier: MIT */
/*
 * Small pieces every part of the library uses: the status-with-message
 * helper, clocks, futexes and branch hints.
 */
#ifndef WHSEM_COMMON_H
#define WHSEM_COMMON_H

#include "whsem.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define WHSEM_LIKELY(x) __builtin_expect(!!(x), 1)
#define WHSEM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#ifdef _WIN32
/* PE has no symbol visibility (the .def file decides what whsem.dll
 * exports), and MinGW's "printf" format is msvcrt's, which lacks %zu. */
#define WHSEM_HIDDEN
#define WHSEM_PRINTF_FORMAT gnu_printf
#else
#define WHSEM_HIDDEN __attribute__((visibility("hidden")))
#define WHSEM_PRINTF_FORMAT printf
#endif

/* Records a detail message for the calling thread and returns status, so
 * that error paths read `return whsem__fail(WHSEM_E_..., "...", ...);`. */
WHSEM_HIDDEN whsem_status whsem__fail(whsem_status status, const char *fmt, ...)
    __attribute__((format(WHSEM_PRINTF_FORMAT, 2, 3)));

/* Maps an errno from opening/mapping shared state to a status + message. */
WHSEM_HIDDEN whsem_status whsem__fail_errno(int err, const char *what, const char *path);

static inline uint64_t whsem__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wall-clock milliseconds at jiffy resolution: enough for "held since",
 * and cheap enough to read on the acquire fast path. */
static inline int64_t whsem__coarse_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t whsem__unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An absolute CLOCK_MONOTONIC deadline as the timespec the kernel takes:
 * ts, or NULL for 0 (no deadline). */
static inline struct timespec *whsem__deadline_ts(uint64_t abs_deadline_ns, struct timespec *ts)
{
    if (!abs_deadline_ns) return NULL;
    ts->tv_sec = (time_t)(abs_deadline_ns / 1000000000u);
    ts->tv_nsec = (long)(abs_deadline_ns % 1000000000u);
    return ts;
}

/* Futexes on shared mappings (never FUTEX_PRIVATE_FLAG: other processes
 * wait on the same words). abs_deadline_ns is on CLOCK_MONOTONIC, 0 means
 * forever; an absolute deadline means EINTR and spurious wakeups never
 * stretch a timeout. Returns 0, or an errno (ETIMEDOUT, EAGAIN, EINTR). */
WHSEM_HIDDEN int whsem__futex_wait(_Atomic uint32_t *addr, uint32_t expected,
                                   uint64_t abs_deadline_ns);
WHSEM_HIDDEN void whsem__futex_wake(_Atomic uint32_t *addr, int count);

/* Test-only fault injection: in builds with WHSEM_FAULT_INJECTION, the
 * process SIGKILLs itself at the named point when the environment variable
 * WHSEM_FAULT_POINT names it. Compiled out of the shipped library. */
#ifdef WHSEM_FAULT_INJECTION
WHSEM_HIDDEN void whsem__fault_point(const char *name);
#define WHSEM_FAULT_POINT(name) whsem__fault_point(name)
#else
#define WHSEM_FAULT_POINT(name) ((void)0)
#endif

/* What an occasion to wake a slot calls for (whsem__p_wake_claim, platform.h). */
enum whsem_wake {
    WHSEM_WAKE_NONE,   /* every sleeper there has a wake on its way        */
    WHSEM_WAKE_SEND,   /* send one; its waiter will look and say so        */
    WHSEM_WAKE_LEGACY, /* send one; a 1.0 waiter, which never says it looked */
};

#endif
