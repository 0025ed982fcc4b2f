/* SPDX-License-Identifier: MIT */
/*
 * whsem_ticket_check and whsem_ticket_watch, the same on every platform:
 * the handle checks, then the ticket's backend. A backend whose tickets
 * live exactly as long as their process (shared memory) has no entries:
 * its tickets are never lost, so there is nothing to watch.
 */
#include "backend.h"
#include "handles.h"

/* The object behind a live ticket handle, protected until unprotect. */
static struct whsem_semobj *ticket_obj(whsem_ticket ticket, void **saved)
{
    struct hentry *e = whsem__h_lookup(ticket, HK_TICKET);
    return e ? (struct whsem_semobj *)whsem__protect(e, ticket, saved) : NULL;
}

WHSEM_API whsem_status WHSEM_CALL whsem_ticket_check(whsem_ticket ticket)
{
    void *saved;
    struct whsem_semobj *obj = ticket_obj(ticket, &saved);
    if (!obj) return whsem__invalid_handle(ticket, "ticket");
    const struct whsem_backend *be = obj->be;
    whsem_status st = be->ticket_check ? be->ticket_check(ticket, obj) : WHSEM_OK;
    whsem__unprotect(saved);
    return st;
}

WHSEM_API whsem_status WHSEM_CALL whsem_ticket_watch(whsem_ticket ticket, whsem_cancel cancel,
                                                     whsem_ticket_callback cb, void *user_data)
{
    if (cancel && !whsem__h_lookup(cancel, HK_CANCEL))
        return whsem__invalid_handle(cancel, "cancellation source");
    void *saved;
    struct whsem_semobj *obj = ticket_obj(ticket, &saved);
    if (!obj) return whsem__invalid_handle(ticket, "ticket");
    const struct whsem_backend *be = obj->be;
    whsem_status st;
    if (be->ticket_watch)
        st = be->ticket_watch(ticket, obj, cancel, cb, user_data);
    else
        st = whsem__fail(WHSEM_E_UNSUPPORTED,
                         "a ticket of the %s backend cannot be lost: it lives as long as its "
                         "process, so there is nothing to watch",
                         be->name);
    whsem__unprotect(saved);
    return st;
}
