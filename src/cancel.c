/* SPDX-License-Identifier: MIT */
/*
 * Cancellation sources, on both platforms (on platform.h's mutex, the
 * handle table and fork hooks).
 *
 * A source keeps the list of waits currently using it; triggering it
 * marks it and notifies each of them under the source's lock, so a wait
 * either registers before the trigger (and is notified) or sees the mark
 * when it registers. The triggered mark is also kept in the handle entry,
 * where the acquire fast path reads it without any lock. Locks are striped
 * by handle index: sources are independent of each other.
 */
#include "cancel.h"
#include "fork_hooks.h"
#include "handles.h"
#include "platform.h"

#include <stdlib.h>

#define NSTRIPES 16 /* few: fork() holds them all (and TSan tracks at most 64 held locks) */

struct cancel_obj {
    struct cwait *head;
    _Atomic bool triggered;
    bool freed;             /* handle gone; lives on until no wait uses it */
    struct cancel_obj *all_prev, *all_next;
};

static whsem_mutex stripes[NSTRIPES] = {[0 ... NSTRIPES - 1] = WHSEM_MUTEX_INIT};
static whsem_mutex all_mu = WHSEM_MUTEX_INIT;
static struct cancel_obj *all_objs;

static unsigned stripe_of(whsem_cancel c) { return (unsigned)(c >> WHSEM_HKIND_BITS) % NSTRIPES; }

static void all_unlink(struct cancel_obj *o)
{
    whsem__mutex_lock(&all_mu);
    if (o->all_prev) o->all_prev->all_next = o->all_next;
    else all_objs = o->all_next;
    if (o->all_next) o->all_next->all_prev = o->all_prev;
    whsem__mutex_unlock(&all_mu);
}

WHSEM_API whsem_status WHSEM_CALL whsem_cancel_new(whsem_cancel *out_cancel)
{
    if (!out_cancel) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_cancel is NULL");
    *out_cancel = 0;
    whsem__p_init();
    struct cancel_obj *o = calloc(1, sizeof *o);
    if (!o) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for a cancellation source");
    whsem_status st;
    uint64_t h = whsem__h_alloc(HK_CANCEL, o, 0, &st);
    if (!h) {
        free(o);
        return st;
    }
    whsem__mutex_lock(&all_mu);
    o->all_next = all_objs;
    if (all_objs) all_objs->all_prev = o;
    all_objs = o;
    whsem__mutex_unlock(&all_mu);
    *out_cancel = h;
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_cancel_trigger(whsem_cancel cancel)
{
    whsem_mutex *mu = &stripes[stripe_of(cancel)];
    whsem__mutex_lock(mu);
    struct hentry *e = whsem__h_lookup(cancel, HK_CANCEL);
    if (!e) {
        whsem__mutex_unlock(mu);
        return whsem__fail(WHSEM_E_INVALID_HANDLE, "0x%llx is not a live cancellation source",
                           (unsigned long long)cancel);
    }
    struct cancel_obj *o = atomic_load(&e->ptr);
    atomic_store(&e->aux, 1);
    if (!atomic_exchange(&o->triggered, true))
        for (struct cwait *w = o->head; w; w = w->next) w->notify(w);
    whsem__mutex_unlock(mu);
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_cancel_free(whsem_cancel cancel)
{
    whsem_mutex *mu = &stripes[stripe_of(cancel)];
    whsem__mutex_lock(mu);
    struct hentry *e = whsem__h_lookup(cancel, HK_CANCEL);
    if (!e || !whsem__h_kill_cas(e, cancel)) {
        whsem__mutex_unlock(mu);
        return whsem__fail(WHSEM_E_INVALID_HANDLE, "0x%llx is not a live cancellation source",
                           (unsigned long long)cancel);
    }
    struct cancel_obj *o = atomic_load(&e->ptr);
    o->freed = true;
    bool unused = o->head == NULL;
    if (unused) all_unlink(o);
    whsem__mutex_unlock(mu);
    if (unused) free(o);
    whsem__h_recycle(cancel);
    return WHSEM_OK;
}

whsem_status whsem__cancel_register(whsem_cancel c, struct cwait *w)
{
    unsigned stripe = stripe_of(c);
    whsem__mutex_lock(&stripes[stripe]);
    struct hentry *e = whsem__h_lookup(c, HK_CANCEL);
    if (!e) {
        whsem__mutex_unlock(&stripes[stripe]);
        return whsem__fail(WHSEM_E_INVALID_HANDLE, "0x%llx is not a live cancellation source",
                           (unsigned long long)c);
    }
    struct cancel_obj *o = atomic_load(&e->ptr);
    if (atomic_load(&o->triggered)) {
        whsem__mutex_unlock(&stripes[stripe]);
        return WHSEM_CANCELED;
    }
    w->obj = o;
    w->stripe = stripe;
    w->prev = NULL;
    w->next = o->head;
    if (o->head) o->head->prev = w;
    o->head = w;
    whsem__mutex_unlock(&stripes[stripe]);
    return WHSEM_OK;
}

void whsem__cancel_unregister(struct cwait *w)
{
    struct cancel_obj *o = w->obj;
    if (!o) return;
    whsem__mutex_lock(&stripes[w->stripe]);
    if (w->prev) w->prev->next = w->next;
    else o->head = w->next;
    if (w->next) w->next->prev = w->prev;
    bool last = o->freed && !o->head;
    if (last) all_unlink(o);
    whsem__mutex_unlock(&stripes[w->stripe]);
    if (last) free(o);
    w->obj = NULL;
}

bool whsem__cancel_triggered(struct cwait *w)
{
    return w->obj && atomic_load_explicit(&w->obj->triggered, memory_order_acquire);
}

static void lock_all(void)
{
    for (int i = 0; i < NSTRIPES; i++) whsem__mutex_lock(&stripes[i]);
    whsem__mutex_lock(&all_mu);
}

static void unlock_all(void)
{
    whsem__mutex_unlock(&all_mu);
    for (int i = NSTRIPES - 1; i >= 0; i--) whsem__mutex_unlock(&stripes[i]);
}

/* The waits registered in the parent belong to threads the child does
 * not have: forget them (and the sources only they kept alive). */
static void after_fork_child(void)
{
    struct cancel_obj *o = all_objs, *next;
    for (; o; o = next) {
        next = o->all_next;
        o->head = NULL;
        if (o->freed) {
            if (o->all_prev) o->all_prev->all_next = o->all_next;
            else all_objs = o->all_next;
            if (o->all_next) o->all_next->all_prev = o->all_prev;
            free(o);
        }
    }
    unlock_all();
}

static const struct whsem_fork_hooks fork_hooks = {
    WHSEM_FORK_ORDER_CANCEL, lock_all, unlock_all, after_fork_child};

__attribute__((constructor)) static void register_fork_hooks(void) { whsem__on_fork(&fork_hooks); }
