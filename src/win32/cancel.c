/*
 * Cancellation sources.
 *
 * A source keeps the list of waits currently using it; triggering marks it
 * and notifies each of them under one lock, so a wait either registers
 * before the trigger (and is notified) or sees the mark when it registers.
 * The mark is also kept in the handle entry, where whsem_acquire reads it
 * without the lock. One lock for all sources: triggers are rare, and the
 * lock is held only for list updates.
 */
#include "win32.h"

#include <stdlib.h>

struct cancel_obj {
    struct cwait *head;
    _Atomic bool triggered; /* read without the lock by waits (a leaf) */
    bool freed; /* handle gone; lives on until no wait uses it */
};

static SRWLOCK cancel_mu = SRWLOCK_INIT;

WHSEM_API whsem_status WHSEM_CALL whsem_cancel_new(whsem_cancel *out_cancel)
{
    if (!out_cancel) return whsem__fail(WHSEM_E_INVALID_ARGUMENT, "out_cancel is NULL");
    *out_cancel = 0;
    struct cancel_obj *o = calloc(1, sizeof *o);
    if (!o) return whsem__fail(WHSEM_E_NO_MEMORY, "out of memory for a cancellation source");
    whsem_status st;
    uint64_t h = whsem__h_alloc(HK_CANCEL, o, 0, &st);
    if (!h) {
        free(o);
        return st;
    }
    *out_cancel = h;
    return WHSEM_OK;
}

static whsem_status not_a_source(whsem_cancel c)
{
    return whsem__fail(WHSEM_E_INVALID_HANDLE, "0x%llx is not a live cancellation source",
                       (unsigned long long)c);
}

WHSEM_API whsem_status WHSEM_CALL whsem_cancel_trigger(whsem_cancel cancel)
{
    AcquireSRWLockExclusive(&cancel_mu);
    struct hentry *e = whsem__h_lookup(cancel, HK_CANCEL);
    if (!e) {
        ReleaseSRWLockExclusive(&cancel_mu);
        return not_a_source(cancel);
    }
    struct cancel_obj *o = e->ptr;
    atomic_store(&e->aux, 1);
    if (!atomic_exchange(&o->triggered, true)) {
        for (struct cwait *w = o->head; w; w = w->next) w->notify(w);
    }
    ReleaseSRWLockExclusive(&cancel_mu);
    return WHSEM_OK;
}

WHSEM_API whsem_status WHSEM_CALL whsem_cancel_free(whsem_cancel cancel)
{
    AcquireSRWLockExclusive(&cancel_mu);
    struct hentry *e = whsem__h_lookup(cancel, HK_CANCEL);
    struct cancel_obj *o = e ? e->ptr : NULL;
    if (!e || !whsem__h_kill(cancel)) {
        ReleaseSRWLockExclusive(&cancel_mu);
        return not_a_source(cancel);
    }
    o->freed = true;
    bool unused = o->head == NULL;
    ReleaseSRWLockExclusive(&cancel_mu);
    if (unused) free(o);
    return WHSEM_OK;
}

whsem_status whsem__cancel_register(whsem_cancel c, struct cwait *w)
{
    AcquireSRWLockExclusive(&cancel_mu);
    struct hentry *e = whsem__h_lookup(c, HK_CANCEL);
    if (!e) {
        ReleaseSRWLockExclusive(&cancel_mu);
        return not_a_source(c);
    }
    struct cancel_obj *o = e->ptr;
    if (atomic_load(&o->triggered)) {
        ReleaseSRWLockExclusive(&cancel_mu);
        return WHSEM_CANCELED;
    }
    w->obj = o;
    w->prev = NULL;
    w->next = o->head;
    if (o->head) o->head->prev = w;
    o->head = w;
    ReleaseSRWLockExclusive(&cancel_mu);
    return WHSEM_OK;
}

void whsem__cancel_unregister(struct cwait *w)
{
    struct cancel_obj *o = w->obj;
    if (!o) return;
    AcquireSRWLockExclusive(&cancel_mu);
    if (w->prev) w->prev->next = w->next;
    else o->head = w->next;
    if (w->next) w->next->prev = w->prev;
    bool last = o->freed && !o->head;
    ReleaseSRWLockExclusive(&cancel_mu);
    if (last) free(o);
    w->obj = NULL;
}

bool whsem__cancel_triggered(struct cwait *w)
{
    return w->obj && atomic_load(&w->obj->triggered);
}
