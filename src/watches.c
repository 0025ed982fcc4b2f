/* SPDX-License-Identifier: MIT */
/*
 * Process watches: a dead holder noticed when it dies, not at the next
 * abandonment scan.
 *
 * While anything of this process waits on a mapping, the dispatcher
 * watches the mapping's other processes (the platform says when one
 * ends: a pidfd, a process handle). An end only makes the dispatcher scan
 * the mapping at once; the scan decides by liveness as every scan does
 * (recovery.c, process.c), so a watch that names the wrong process can
 * cost a scan, never a ticket. Processes that cannot be watched (another
 * pid namespace, no room left in the table, no pidfds) are found by the
 * scans that waits make every abandonment-check period, as before.
 *
 * The table is the engine's: it is read and written under the engine
 * lock, but for the word in which the platform reports an end (from a
 * thread of its own). A watch is known to the platform by its index and
 * the generation of its use, so that an end reported late for an earlier
 * use of the entry is ignored.
 */
#include "watches.h"

#include "async_engine.h"
#include "fork_hooks.h"

#include <string.h>

struct watch {
    struct wmap *m;           /* NULL: unused */
    uint32_t slot;
    struct whsem_pident id;
    int verdict;              /* WHSEM_PW_*                          */
    bool wanted;              /* whsem__watch_update's mark          */
    struct whsem_pwatch os;   /* when WHSEM_PW_WATCHING              */
    _Atomic uint32_t gen;     /* of its current use (never 0)         */
    _Atomic uint32_t ended;   /* the generation whose process ended   */
};

static struct watch watches[WATCH_MAX];
static _Atomic bool any_ended;

static void ended(uint64_t cookie)
{
    uint32_t i = (uint32_t)cookie;
    if (i >= WATCH_MAX) return;
    atomic_store(&watches[i].ended, (uint32_t)(cookie >> 32));
    atomic_store(&any_ended, true);
    whsem__a_poke();
}

void whsem__watch_collect_locked(struct wmap *m, struct whsem_watch_list *l)
{
    uint32_t n = m->hdr->slot_hwm < WHSEM_P_NSLOTS ? m->hdr->slot_hwm : WHSEM_P_NSLOTS;
    l->n = 0;
    for (int holders = 1; holders >= 0; holders--)
        for (uint32_t i = 0; i < n && l->n < WATCH_MAX; i++) {
            const whsem_slot *s = &m->slots[i];
            if (i == m->slot || whsem__p_slot_state(s) != WHSEM_P_SLOT_ACTIVE) continue;
            if ((s->held || s->grants) != (holders == 1)) continue;
            l->p[l->n].slot = i;
            whsem__p_pident_of(m, i, &l->p[l->n].id);
            l->n++;
        }
}

static void unwatch(struct watch *w)
{
    if (w->verdict == WHSEM_PW_WATCHING) whsem__p_pwatch_close(&w->os);
    w->m = NULL;
}

bool whsem__watch_update(struct wmap *m, const struct whsem_watch_list *l)
{
    bool known[WATCH_MAX] = {false};
    for (int i = 0; i < WATCH_MAX; i++) watches[i].wanted = false;
    for (uint32_t k = 0; k < l->n; k++)
        for (int i = 0; i < WATCH_MAX; i++) {
            struct watch *w = &watches[i];
            if (w->m == m && w->slot == l->p[k].slot && memcmp(&w->id, &l->p[k].id, sizeof w->id) == 0) {
                w->wanted = known[k] = true;
                break;
            }
        }
    for (int i = 0; i < WATCH_MAX; i++)
        if (watches[i].m == m && !watches[i].wanted) unwatch(&watches[i]);
    bool gone = false;
    for (uint32_t k = 0, i = 0; k < l->n; k++) {
        if (known[k]) continue;
        while (i < WATCH_MAX && watches[i].m) i++;
        if (i == WATCH_MAX) break; /* the rest are polled */
        struct watch *w = &watches[i];
        uint32_t gen = atomic_load(&w->gen) + 1;
        if (gen == 0) gen = 1;
        atomic_store(&w->gen, gen);
        w->m = m;
        w->slot = l->p[k].slot;
        w->id = l->p[k].id;
        w->verdict = whsem__p_pwatch_open(&w->id, (uint64_t)gen << 32 | i, ended, &w->os);
        gone |= w->verdict == WHSEM_PW_GONE;
    }
    if (gone) m->watch.death = true;
    return gone;
}

void whsem__watch_forget(struct wmap *m)
{
    for (int i = 0; i < WATCH_MAX; i++)
        if (watches[i].m == m) unwatch(&watches[i]);
}

void whsem__watch_take_ends(void)
{
    if (!atomic_exchange(&any_ended, false)) return;
    for (int i = 0; i < WATCH_MAX; i++) {
        struct watch *w = &watches[i];
        uint32_t gen = atomic_exchange(&w->ended, 0);
        if (!gen || gen != atomic_load(&w->gen) || !w->m || w->verdict != WHSEM_PW_WATCHING) continue;
        /* Watched no more (it would report nothing again), but kept, so
         * that a process the scan still finds alive (whsem run's command
         * holds its tickets) is not watched again and again. */
        whsem__p_pwatch_close(&w->os);
        w->verdict = WHSEM_PW_GONE;
        w->m->watch.death = true;
    }
}

/* ---- fork ------------------------------------------------------------------------- */

static void nothing(void) {}

/* The child's engine starts empty (async_engine.c): the parent's watches
 * are let go of, without touching what the parent still uses. */
static void watches_child(void)
{
    for (int i = 0; i < WATCH_MAX; i++) {
        if (watches[i].m && watches[i].verdict == WHSEM_PW_WATCHING) whsem__p_pwatch_drop(&watches[i].os);
        watches[i].m = NULL;
    }
    atomic_store(&any_ended, false);
}

static const struct whsem_fork_hooks fork_hooks = {WHSEM_FORK_ORDER_WATCHES, nothing, nothing,
                                                   watches_child};

__attribute__((constructor)) static void register_fork_hooks(void) { whsem__on_fork(&fork_hooks); }
