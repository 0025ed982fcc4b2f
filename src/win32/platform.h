/* SPDX-License-Identifier: MIT */
/*
 * Windows's side of the seam (../platform.h): the segment of win32.h, slot
 * wake semaphores, and liveness by process handle (segment.c).
 */
#ifndef WHSEM_WIN32_PLATFORM_H
#define WHSEM_WIN32_PLATFORM_H

#include "win32.h"

typedef struct wseg_slot whsem_slot;
typedef struct wseg_header whsem_header;

#define WHSEM_P_NSLOTS WHSEM_W_NSLOTS
#define WHSEM_P_SLOT_FREE WSLOT_FREE
#define WHSEM_P_SLOT_ACTIVE WSLOT_ACTIVE
#define WHSEM_P_SLOT_MAX WSLOT_ACTIVE
#define WHSEM_P_WHERE_FMT "%ls"
#define WHSEM_P_WHERE(m) ((m)->obj)

static inline uint32_t whsem__p_slot_state(const whsem_slot *s) { return s->state; }
static inline uint64_t whsem__p_mono_ns(void) { return whsem__w_mono_ns(); }
static inline int64_t whsem__p_coarse_unix_ms(void) { return whsem__w_unix_ms(); }

/* Waiters sleep on their slot's semaphore, which whoever wakes them
 * releases after unlocking: nothing to mark in the segment. */
static inline void whsem__p_mark_woken(whsem_slot *s) { (void)s; }
static inline void whsem__p_wake_locked(struct wmap *m, uint32_t i) { whsem__wake_slot(m, i, 1); }

/* The mutex is a kernel object: no lock word to check in the segment. */
static inline whsem_status whsem__p_segment_ok_locked(struct wmap *m)
{
    (void)m;
    return WHSEM_OK;
}

/* Whether slot i's process still runs (pid + creation time); a Windows
 * process cannot hand its liveness on, so process_only changes nothing. */
WHSEM_HIDDEN bool whsem__slot_alive(struct wmap *m, uint32_t i, bool process_only);
WHSEM_HIDDEN void whsem__p_release_dead_locked(struct wmap *m, uint32_t i, uint32_t state);

typedef SRWLOCK whsem_mutex;
#define WHSEM_MUTEX_INIT SRWLOCK_INIT
static inline void whsem__mutex_lock(whsem_mutex *mu) { AcquireSRWLockExclusive(mu); }
static inline void whsem__mutex_unlock(whsem_mutex *mu) { ReleaseSRWLockExclusive(mu); }
static inline bool whsem__mutex_trylock(whsem_mutex *mu) { return TryAcquireSRWLockExclusive(mu); }

static inline void whsem__p_init(void) {}

#ifdef WHSEM_FAULT_INJECTION
#undef WHSEM_FAULT_POINT
#define WHSEM_FAULT_POINT(name) whsem__w_fault_point(name)
#endif

#endif
