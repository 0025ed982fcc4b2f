/* SPDX-License-Identifier: MIT */
/*
 * The shared segment: the one place that defines what lives in
 * /dev/shm/whsem.*, what every field means and who may write it.
 *
 *   offset 0      struct seg_header   (4096 bytes: 1280 of layout 1's
 *                 fields, the counters since 1.1 at 1280 ... 3711, the
 *                 rest unused and zero)
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
 *   - the counters' atomic fields (timeouts, cancellations, waits,
 *     wait_ns, wait_buckets: ../seg_counters.h), added to by anyone;
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
 * The high-water mark. slot_hwm only grows, and a slot at or beyond it
 * holds nothing: no held, grants or want. So every walk over the slots
 * (check, recount, scans, query, handoff, unlink's "in use?") stops at
 * slot_hwm, and a name that a few processes use has touched two pages:
 * the header and the first 64 slots. Why it holds for every library of
 * layout 1, whose walks differ:
 *   - counts are written under the lock, into a slot that is ACTIVE (by
 *     its owner, or a grant to it), or that was ACTIVE and is being taken
 *     over from a dead owner;
 *   - a slot becomes ACTIVE only under the lock, with its counts zeroed,
 *     in the critical section that raises slot_hwm past it. Since 1.1 the
 *     hwm is raised first and the slot marked ACTIVE after; 1.0 marks it
 *     first and raises the hwm right after. A 1.0 process that dies in
 *     between leaves an ACTIVE slot beyond the hwm that holds nothing, and
 *     whose owner, being dead, will never give it anything;
 *   - a slot claimed (CLAIMED) beyond the hwm, by any version, holds
 *     nothing until it is activated under the lock as above.
 * Slots beyond the hwm are still found where it matters: an attaching
 * process that finds no free slot below it takes the first FREE slot at
 * or beyond it (a 1.0 process attaching there has its slot CLAIMED, not
 * FREE, and write-locks its liveness byte, which our claim's read lock
 * excludes), and one that finds no slot at all looks at every slot, dead
 * owners' beyond the hwm included, as 1.0 does. What such a leftover
 * costs is one slot of 1024 until then, or until the hwm passes it and a
 * full scan (a query, a lock takeover) frees it.
 *
 * Hints (free_hint, reuse_cursor) are written without the lock by 1.1
 * processes and ignored by 1.0, which frees slots without lowering
 * free_hint: they only say where to look first, never which slot may be
 * taken (the claim's compare-and-swap and liveness byte decide that), and
 * a search that finds nothing from them looks at every slot.
 *
 * Layout changes bump WHSEM_LAYOUT_VERSION; a library meeting another
 * version reports WHSEM_E_INCOMPATIBLE instead of guessing.
 */
#ifndef WHSEM_LAYOUT_H
#define WHSEM_LAYOUT_H

#include "../seg_counters.h"

#include <stdalign.h>
#include <stddef.h>
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
    /* The owner counts its threads asleep on wake_seq for a ticket, and the
     * wakes on their way to them, in the upper bits (SLOT_SLEEPERS_*,
     * SLOT_WAKES_*, under the segment lock): a wake is sent only to a
     * sleeper that no wake is on its way to already. A slot without this
     * bit (1.0) is woken at every occasion, as 1.0 does. */
    SLOT_F_COUNTS_SLEEPERS = 1u << 2,
    /* The owner's asynchronous engine sleeps on wake_seq too (it is not
     * counted among the sleepers): every occasion wakes the slot. */
    SLOT_F_ENGINE = 1u << 3,
};

/* seg_slot.flags, bits 8-23: threads of the owner asleep (or about to
 * sleep) on wake_seq, written by the owner; sticky at the maximum, which
 * then means "always wake". Bits 24-31: wakes sent to them that none has
 * taken up yet, written by wakers; a count too low costs a spare wake, a
 * count too high a stall, so whoever is unsure decrements. */
#define SLOT_SLEEPERS_SHIFT 8
#define SLOT_SLEEPERS_MAX 0xffffu
#define SLOT_WAKES_SHIFT 24
#define SLOT_WAKES_MAX 0xffu

struct seg_slot {
    _Atomic uint32_t state;     /* enum seg_slot_state                          */
    uint32_t held;              /* tickets the process has taken               */
    uint32_t grants;            /* tickets handed to it, not yet taken by a waiter */
    uint32_t want;              /* its acquisitions that are waiting           */
    _Atomic uint32_t wake_seq;  /* futex: bumped to wake the process's waiters */
    _Atomic uint32_t lock_sleeping; /* its threads counted in lock_sleepers    */
    int32_t pid;                /* as seen in its own pid namespace            */
    _Atomic uint32_t flags;     /* SLOT_F_*: how the owner's liveness is shown
                                   and how it is woken (layout 1 libraries
                                   before 1.1 leave it 0); always changed by
                                   atomic read-modify-write once ACTIVE */
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
    uint32_t slot_hwm;          /* slots [0, slot_hwm) have ever been used; a
                                   slot at or beyond it holds nothing (above) */
    uint64_t last_scan_ns;      /* CLOCK_MONOTONIC of the last abandonment scan */
    uint64_t recoveries;        /* dead holders reclaimed + locks taken over   */
    uint64_t acquisitions;      /* tickets handed out so far (statistics)       */
    /* ---- 1.1; zero (nothing in flight) in segments 1.0 created ---- */
    _Atomic uint32_t lock_woken; /* 1: an unlock woke a sleeper on `lock` that
                                   has not run since; later unlocks leave the
                                   other sleepers be (seglock.c)          */
    _Atomic uint32_t lock_sleepers_new; /* those of lock_sleepers that clear
                                   lock_woken (1.0's do not: they are woken
                                   at every unlock)                       */
    uint32_t ticket_woken;      /* 1: a waiter was woken to compete for a
                                   put-back ticket and has not looked yet */
    uint32_t fair_cursor;       /* next slot considered for a fairness grant */
    uint64_t fair_check_ns;     /* CLOCK_MONOTONIC: nobody had waited long
                                   enough for one; no look before this    */

    /* ---- hints, since 1.1: atomically by anyone, without the lock ---- */
    _Atomic uint64_t free_hint; /* low 32 bits: a search for a FREE slot may
                                   start here: every slot a 1.1 process has
                                   freed since this was written has lowered
                                   it. High 32 bits: bumped by each of those
                                   frees, so that raising the hint past slots
                                   seen in use fails if one was freed
                                   meanwhile (see segment.c)               */
    _Atomic uint32_t reuse_cursor; /* round robin below slot_hwm: where the
                                   next attacher looks for a dead owner's
                                   slot to take over                      */

    /* ---- bumped atomically by anyone ---- */
    alignas(64) _Atomic uint32_t attaches; /* futex: every process that takes a
                                   slot bumps and wakes it, and those that
                                   watch the name's processes for their end
                                   (dispatcher.c) watch it too. A hint:
                                   older libraries leave it alone (their
                                   newcomers are found by a later look) */

    /* ---- counters, since 1.1 (../seg_counters.h says who writes what):
       zero in segments 1.0 created, never written by 1.0 ---- */
    struct seg_counters counters;
    /* the rest of the header, up to WHSEM_HEADER_SIZE, is unused: zero */
};

_Static_assert(sizeof(struct seg_slot) == WHSEM_SLOT_SIZE, "slot layout");
_Static_assert(sizeof(struct seg_header) <= WHSEM_HEADER_SIZE, "header layout");
/* Where layout 1 put its fields, and where 1.1's counters went. */
_Static_assert(offsetof(struct seg_header, lock) == 1088, "header layout");
_Static_assert(offsetof(struct seg_header, attaches) == 1216, "header layout");
_Static_assert(offsetof(struct seg_header, counters) == 1280, "header layout");
_Static_assert(sizeof(struct seg_header) == 1280 + sizeof(struct seg_counters), "header layout");

#define WHSEM_SEG_SIZE ((uint64_t)WHSEM_HEADER_SIZE + (uint64_t)WHSEM_NSLOTS * WHSEM_SLOT_SIZE)

static inline struct seg_slot *seg_slots(struct seg_header *h)
{
    return (struct seg_slot *)((char *)h + WHSEM_HEADER_SIZE);
}

#endif
