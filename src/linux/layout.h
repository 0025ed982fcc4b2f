/* SPDX-License-Identifier: MIT */
/*
 * The shared segment: the one place that defines what lives in
 * /dev/shm/whsem.*, what every field means and who may write it.
 *
 *   offset 0      struct seg_header   (4096 bytes)
 *   offset 4096   struct seg_slot[nslots]   (64 bytes each)
 *   byte range WHSEM_LOCK_BASE + i   the liveness lock of slot i (an OFD
 *                 read lock held through the owner's anchor, see
 *                 recovery.c; the range lies past the end of the file,
 *                 which record locks allow)
 *
 * The immutable part of the header is written once, before the file is
 * linked into place, and is covered by a checksum. Everything else is
 * written only by the holder of the segment lock `lock`, except:
 *   - slot.wake_seq, a futex word anyone may increment (atomically) to wake
 *     that process's waiters;
 *   - attaches, a futex word every attaching process increments;
 *   - slot.state FREE -> CLAIMED and ACTIVE -> CLAIMED (taking over a dead
 *     owner's slot), by compare-and-swap without the lock: the CAS is what
 *     makes two claimers exclusive; then the claimer writes pid, pidns,
 *     start_ticks and flags before it takes the lock to activate the slot.
 *
 * Invariant while nobody holds `lock`:
 *     free + sum over slots of (held + grants) == max_count
 * A process that dies while holding `lock` may leave it broken; whoever
 * takes the lock over recounts `free` from the slots (see accounting.c).
 *
 * Layout changes bump WHSEM_LAYOUT_VERSION; a library meeting another
 * version reports WHSEM_E_INCOMPATIBLE instead of guessing.
 */
#ifndef WHSEM_LAYOUT_H
#define WHSEM_LAYOUT_H

#include <stdalign.h>
#include <stdint.h>

#define WHSEM_SEG_MAGIC "WHSEMSEG"
#define WHSEM_LAYOUT_VERSION 1u
#define WHSEM_HEADER_SIZE 4096u
#define WHSEM_SLOT_SIZE 64u
#define WHSEM_NSLOTS 1024u
#define WHSEM_NAME_CAP 1024u
#define WHSEM_LOCK_BASE ((int64_t)1 << 40)

/* seg_header.lock: 0 = free, else the owner's slot + 1. */
#define WHSEM_LOCK_OWNER_MASK 0x7fffffffu

enum seg_slot_state {
    SLOT_FREE = 0,    /* nobody; claimed by compare-and-swap              */
    SLOT_CLAIMED = 1, /* a process is attaching (or died attaching)       */
    SLOT_ACTIVE = 2,  /* attached: the process named by pid uses it       */
};

/* seg_slot.flags, written by the slot's owner. */
enum seg_slot_flags {
    /* The owner's liveness lock is held through a private, fork-less mapping
     * (see recovery.c): its byte is free exactly when the process has exited
     * or exec'd, so a free byte needs no second opinion. */
    SLOT_F_ANCHORED = 1u << 0,
    /* The owner handed a descriptor holding its liveness lock to other
     * processes on purpose (whsem run's command): its *tickets* live while
     * any of them does, but its hold on the segment lock dies with it. */
    SLOT_F_INHERITED = 1u << 1,
};

struct seg_slot {
    _Atomic uint32_t state;     /* enum seg_slot_state                          */
    uint32_t held;              /* tickets the process has taken               */
    uint32_t grants;            /* tickets handed to it, not yet taken by a waiter */
    uint32_t want;              /* its acquisitions that are waiting           */
    _Atomic uint32_t wake_seq;  /* futex: bumped to wake the process's waiters */
    _Atomic uint32_t lock_sleeping; /* its threads counted in lock_sleepers    */
    int32_t pid;                /* as seen in its own pid namespace            */
    _Atomic uint32_t flags;     /* SLOT_F_*: how the owner's liveness is shown
                                   (layout 1 libraries before 1.1 leave it 0) */
    uint64_t start_ticks;       /* /proc/<pid>/stat start time: pid + start time
                                   name a process even after the pid is reused */
    uint64_t pidns;             /* inode of its pid namespace                   */
    int64_t since_unix_ms;      /* when held + grants last went from 0 to > 0
                                   (0: not yet seen; see whsem__take)          */
    uint64_t wait_since_ns;     /* CLOCK_MONOTONIC: since when the process has
                                   waited asleep without getting a ticket
                                   (0: not; 1.0 counted from registering) */
};

struct seg_header {
    /* ---- immutable, checksummed ---- */
    char magic[8];              /* WHSEM_SEG_MAGIC                              */
    uint32_t layout_version;    /* WHSEM_LAYOUT_VERSION                         */
    uint32_t header_size;       /* WHSEM_HEADER_SIZE                            */
    uint32_t slot_size;         /* WHSEM_SLOT_SIZE                              */
    uint32_t nslots;            /* WHSEM_NSLOTS                                 */
    uint64_t total_size;        /* header + slots: the file's exact size        */
    int32_t max_count;          /* 1 ... INT32_MAX                              */
    uint32_t name_len;          /* bytes of name, < WHSEM_NAME_CAP              */
    int64_t created_unix_ms;
    uint64_t checksum;          /* FNV-1a 64 of everything above + name         */
    char name[WHSEM_NAME_CAP];  /* the finalized name, NUL-terminated           */

    /* ---- mutable, under `lock` (but for lock_sleepers) ---- */
    alignas(64) _Atomic uint32_t lock; /* the segment lock, see seglock.c      */
    _Atomic uint32_t lock_sleepers; /* threads asleep (or about to sleep) on
                                   `lock`; atomically by anyone             */
    _Atomic uint32_t lock_mode; /* 0: unlock is a plain store (every process
                                   here can issue membarrier); 1: unlock is
                                   an atomic exchange. Only ever goes 0 -> 1 */
    int32_t free;               /* tickets nobody holds or has been granted     */
    uint32_t waiting;           /* sum of slot.want                             */
    uint32_t rr_cursor;         /* next slot considered for a handoff (fairness) */
    uint32_t slot_hwm;          /* slots [0, slot_hwm) have ever been used      */
    uint64_t last_scan_ns;      /* CLOCK_MONOTONIC of the last abandonment scan */
    uint64_t recoveries;        /* dead holders reclaimed + locks taken over   */
    uint64_t acquisitions;      /* tickets handed out so far (statistics)       */

    /* ---- bumped atomically by anyone ---- */
    alignas(64) _Atomic uint32_t attaches; /* futex: every process that takes a
                                   slot bumps and wakes it, and those that
                                   watch the name's processes for their end
                                   (dispatcher.c) watch it too. A hint:
                                   older libraries leave it alone (their
                                   newcomers are found by a later look) */
};

_Static_assert(sizeof(struct seg_slot) == WHSEM_SLOT_SIZE, "slot layout");
_Static_assert(sizeof(struct seg_header) <= WHSEM_HEADER_SIZE, "header layout");

#define WHSEM_SEG_SIZE ((uint64_t)WHSEM_HEADER_SIZE + (uint64_t)WHSEM_NSLOTS * WHSEM_SLOT_SIZE)

static inline struct seg_slot *seg_slots(struct seg_header *h)
{
    return (struct seg_slot *)((char *)h + WHSEM_HEADER_SIZE);
}

#endif
