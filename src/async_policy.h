/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous engine's policy, one for every platform: how long it
 * waits before it decides something, and how much it keeps.
 */
#ifndef WHSEM_ASYNC_POLICY_H
#define WHSEM_ASYNC_POLICY_H

/* Callbacks that have all been blocked (not running: asleep, or no CPU
 * time used) this long inside one callback: start another callback thread,
 * up to MAX_CALLBACK_THREADS. Long enough that a callback doing a little
 * work is not mistaken for a stuck one, short enough that other callbacks
 * are not held up for long. */
#define STALL_NS 50000000u
#define MAX_CALLBACK_THREADS 16
/* Extra callback threads exit after this long with nothing to run. */
#define CALLBACK_IDLE_MS 2000
/* The dispatcher exits after this long with nothing pending. */
#define IDLE_EXIT_NS 2000000000u
/* Mappings the dispatcher cannot wait on (past the platform's limit, or
 * without the platform's multi-wait) are looked at this often. */
#define POLL_NS 10000000u
/* The dispatcher serves every semaphore of the process: it waits this long
 * at most for one segment lock, and tries again this much later, so that a
 * stopped process on one name delays nobody on another. */
#define DISPATCH_LOCK_NS 1000000u
#define DISPATCH_RETRY_NS 5000000u
/* Processes watched for their end (watches.c), at most, in all: each is a
 * descriptor (a pidfd) or a handle, and descriptors are the
 * application's too. Holders come first; the rest are polled. */
#define WATCH_MAX 64
/* A mapping whose processes are watched looks again at which they are
 * this often while anything of ours waits on it (a process that attached
 * since is polled until then), and stops watching after this long with
 * nothing waiting (a new wait soon after finds its watches in place). */
#define WATCH_REFRESH_NS 100000000u
#define WATCH_LINGER_NS 1000000000u
/* As long as a thread's message (errors.c), so that none is cut short. */
#define DETAIL_BYTES 512

#endif
