/* SPDX-License-Identifier: MIT */
/*
 * The seam between what every platform shares and what only one has.
 * Code written once (accounting.c) includes this header and sees, for the
 * platform it is built for (linux/platform.h or win32/platform.h):
 *
 *   struct wmap              one process's view of one segment, with at
 *                            least hdr, slots and slot (our slot)
 *   whsem_slot, whsem_header the segment's slot and header, each with the
 *                            fields of the ticket accounting: held,
 *                            grants, want, since_unix_ms, wait_since_ns;
 *                            free, waiting, rr_cursor, slot_hwm,
 *                            last_scan_ns, recoveries, acquisitions,
 *                            max_count
 *   WHSEM_P_NSLOTS           slots per segment
 *   WHSEM_P_SLOT_FREE/ACTIVE a slot's state values, and the largest valid
 *                            one (WHSEM_P_SLOT_MAX)
 *   whsem__p_slot_state(s)   a slot's state, as the platform reads it
 *   whsem__p_mono_ns()       a monotonic clock, and a coarse wall clock
 *   whsem__p_coarse_unix_ms()
 *   whsem__p_mark_woken(s)   a slot about to be woken (its wake word, if
 *                            the platform's waiters sleep on one)
 *   whsem__p_wake_locked(m, i)  wakes slot i's process under the lock
 *   whsem__p_release_dead_locked(m, i, state)  frees a dead process's slot
 *                            (its counts are already zero)
 *   whsem__p_segment_ok_locked(m)  platform checks of the segment
 *                            (WHSEM_E_CORRUPT with its message if not)
 *   WHSEM_P_WHERE_FMT, WHSEM_P_WHERE(m)  how a segment is named in messages
 *   whsem__slot_alive(m, i, process_only)  liveness (see each DESIGN.md)
 *   struct cwait, whsem__cancel_triggered(w)  a wait's cancellation
 *   whsem_mutex, WHSEM_MUTEX_INIT, whsem__mutex_lock/unlock/trylock
 *                            a plain lock
 *   whsem__p_init()          the process-wide set-up before first use
 *
 * The handle table (handles.h, written once) needs a few primitives that
 * handles.h includes itself, from linux/handles_os.h or win32/handles_os.h,
 * because mapping.h needs the table before this header is complete:
 *
 *   whsem__p_thread()        this thread's record (initial-exec TLS on
 *                            Linux, a fiber-local slot on Windows)
 *   whsem__p_threads_init(), whsem__p_thread_set(t)  set-up, and making t
 *                            the thread's record, handed back to
 *                            whsem__h_thread_exit when the thread exits
 *   whsem__p_hazard_fence(), whsem__p_heavy_fence()  the two halves of the
 *                            hazard pointers' Dekker fence (asymmetric on
 *                            Linux: membarrier(); full on Windows)
 *   whsem__p_threads_after_fork()  what a fork() child renews (Linux)
 */
#ifndef WHSEM_PLATFORM_H
#define WHSEM_PLATFORM_H

#ifdef _WIN32
#include "win32/platform.h"
#else
#include "linux/platform.h"
#endif

#endif
