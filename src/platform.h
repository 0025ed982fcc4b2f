/* SPDX-License-Identifier: MIT */
/*
 * The seam between what every platform shares and what only one has.
 * Code written once (accounting.c, the asynchronous engine, the
 * shared-memory backend's entry) includes this header and sees, for the
 * platform it is built for (linux/platform.h or win32/platform.h):
 *
 *   struct wmap              one process's view of one segment, with at
 *                            least hdr, slots, slot (our slot) and hold
 *                            (which holds are timed, counters.h)
 *   whsem_slot, whsem_header the segment's slot and header, each with the
 *                            fields of the ticket accounting: held,
 *                            grants, want, since_unix_ms, wait_since_ns;
 *                            free, waiting, rr_cursor, slot_hwm,
 *                            last_scan_ns, recoveries, acquisitions,
 *                            max_count, ticket_woken, fair_cursor, fair_check_ns,
 *                            counters (seg_counters.h), created_unix_ms
 *   WHSEM_P_NSLOTS           slots per segment
 *   WHSEM_P_SLOT_FREE/ACTIVE a slot's state values, and the largest valid
 *                            one (WHSEM_P_SLOT_MAX)
 *   whsem__p_slot_state(s)   a slot's state, as the platform reads it
 *   whsem__p_mono_ns()       a monotonic clock, a coarse wall clock, and a
 *   whsem__p_coarse_unix_ms() coarse monotonic clock cheap enough for the
 *   whsem__p_coarse_ns()     uncontended path (hold times)
 *   whsem__p_mark_woken(s)   a slot about to be woken (its wake word, if
 *                            the platform's waiters sleep on one)
 *   whsem__p_wake_locked(m, i)  wakes slot i's process under the lock
 *   whsem__p_wake_claim(s)   whether an occasion to wake slot s needs a
 *                            wake sent (counted if so): not when all its
 *                            sleepers have one on its way (enum whsem_wake)
 *   whsem__p_sleep_begin/_end(s)  a blocking wait of ours sleeps, is back
 *   whsem__p_engine_looked(s, waits)  our engine looked at our slot (it may
 *                            have taken a wake meant for a blocking wait)
 *                            and sleeps on its wake word from now on or not
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
 *   whsem__p_pgen()          the process generation (fork() bumps it)
 *
 * The asynchronous engine (async_*.c, dispatcher.c) needs, besides:
 *
 *   whsem_cond, WHSEM_COND_INIT, whsem__cond_signal, whsem__cond_wait_ms,
 *   whsem__mutex_init        a condition variable; a mutex in new memory
 *   WHSEM_THREAD_FN(name), WHSEM_THREAD_END, whsem__p_thread_start(fn, what)
 *                            a detached library thread
 *   whsem__p_word_wait/_wake_all  waits on a word of this process's memory
 *   whsem_thread_id, whsem__p_thread_self_open/_close, _thread_mark,
 *   _thread_blocked          the blocked-callback probe
 *   struct whsem_qsignal, whsem__p_qsig_open/close/set/clear/fd/handle,
 *   WHSEM_P_QSIG_NO_HANDLE   a completion queue's level-triggered signal
 *   struct whsem_ctl, whsem__p_ctl_seq/poke/ready/forget  the dispatcher's
 *                            control word
 *   struct whsem_waitset, whsem__p_ws_begin/add/wait, whsem__p_own_seen
 *                            what the dispatcher sleeps on
 *   struct whsem_wakes, whsem__p_wake_defer, whsem__p_wakes_flush  wakes
 *                            decided under a segment lock
 *   whsem__p_op_hold/unhold, whsem__p_engine_enter/leave/release,
 *   whsem__p_ticket_made     what keeps a mapping while operations, the
 *                            engine and tickets use it
 *   whsem__lock, whsem__lock_within, whsem__unlock, WHSEM_TRY_LOCK_NS
 *                            the segment lock, and a bounded wait for it
 *   whsem__p_engine_alone_locked(m)  nothing of ours can wait on m any more
 *   whsem__p_help_ok, whsem__p_help_wait  a thread in whsem_op_wait sleeps
 *                            on its operation and our slot's wake at once
 *                            (futex_waitv; Windows cannot: it does not help)
 *
 * Watching other processes for their end (watches.c) needs:
 *
 *   struct whsem_pident, whsem__p_pident_of  who a slot's process is
 *   struct whsem_pwatch, whsem__p_pwatch_open/close/drop, WHSEM_PW_*
 *                            a watch on one process (a pidfd in the
 *                            watcher's epoll set; a process handle in the
 *                            thread pool's waits), verified to name the
 *                            slot's process, reporting its end once
 *   whsem__p_attaches, whsem__p_ws_add_attaches  a wake when a process
 *                            attaches (Linux: the header's futex; Windows:
 *                            none, the dispatcher looks periodically)
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

/* Primitives declared the same on every platform. */

enum { WHSEM_PW_WATCHING, WHSEM_PW_GONE, WHSEM_PW_CANNOT };
/* Watches the process id names: fired(cookie) is called once, from a
 * thread that is not the caller's, when it ends. WHSEM_PW_GONE: it ended
 * already, or the pid names another process now; WHSEM_PW_CANNOT: it
 * cannot be watched (Linux: another pid namespace, no pidfds, no
 * descriptor left; Windows: access denied). */
WHSEM_HIDDEN int whsem__p_pwatch_open(const struct whsem_pident *id, uint64_t cookie,
                                      void (*fired)(uint64_t cookie), struct whsem_pwatch *w);
WHSEM_HIDDEN void whsem__p_pwatch_close(struct whsem_pwatch *w);

#endif
