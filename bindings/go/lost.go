// SPDX-License-Identifier: MIT

package whsem

/*
#include <whsem.h>

// Defined in Go below (//export); a C declaration so that its address can
// be handed to whsem_ticket_watch.
extern void whsemGoTicketWatched(whsem_ticket ticket, whsem_status status, void *user_data);
*/
import "C"

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"
)

// A ticket of a PostgreSQL backend lives in a database session. When that
// session ends while its holder lives, the server has already given the
// ticket away, and libwhsem tells a watch on the ticket by a callback on a
// thread of its own. Go code learns of it through a context that the
// callback cancels: its Done channel is Ticket.Lost, and Ticket.Context
// derives from it.
//
// Watching costs a cgo call and, when the ticket ends, a call from a C
// thread into Go, so a ticket is only watched once someone asks (Lost,
// Context): an uncontended acquire + release pays nothing for it.
type ticketWatch struct {
	lost context.Context // canceled, with cause errTicketLost, once the ticket is lost
	lose context.CancelCauseFunc
}

// The watches of the tickets this process holds, by ticket handle. The
// handle is the token that crosses into C and comes back as the callback's
// first argument: libwhsem never reuses one, so it names one watch for the
// life of the process, and no Go pointer is ever given to C. An entry lives
// from the first Lost or Context until the ticket's release (Release, or
// the slot's finalizer): a lost ticket keeps its entry, so that later calls
// see the loss too, and never holds its slot (the entry refers to no
// ticketSlot), so a dropped ticket is still finalized.
var watches = struct {
	mu sync.Mutex // held only by Go code, never across a cgo call
	m  map[uint64]*ticketWatch
}{m: make(map[uint64]*ticketWatch)}

// ticketCallbacks counts the watch callbacks received, so that tests can
// tell that a release's callback has come and gone.
var ticketCallbacks atomic.Int64

// never is the Lost channel of a ticket that cannot be lost (a released
// one, the zero Ticket): nothing ever closes it.
var never = make(chan struct{})

// errTicketLost is the cause of every loss: the callback carries a status
// only, and a loss has one explanation.
var errTicketLost = &Error{Op: "hold", Err: ErrTicketLost,
	Detail: "the database session that carried the ticket ended (server restart, pg_terminate_backend, network failure); the server has given the ticket to someone else"}

// whsemGoTicketWatched is whsem_ticket_watch's callback. It runs on a
// libwhsem thread, exactly once per watch: with WHSEM_E_TICKET_LOST when
// the ticket is lost, with WHSEM_OK after a release without loss. It only
// takes a short lock and cancels a context (which closes channels and
// starts the goroutines of context.AfterFunc), so the library's thread is
// never held up by Go code.
//
//export whsemGoTicketWatched
func whsemGoTicketWatched(ticket C.whsem_ticket, status C.whsem_status, _ unsafe.Pointer) {
	// A panic must not cross into C, where it would take the process down
	// with a library thread's stack: say it and go on.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "whsem: panic in the ticket watch callback: %v\n", r)
		}
	}()
	ticketCallbacks.Add(1)
	h := uint64(ticket)
	watches.mu.Lock()
	w := watches.m[h]
	if status != statusETicketLost {
		delete(watches.m, h) // released: nothing more will come
	}
	watches.mu.Unlock()
	if w != nil && status == statusETicketLost {
		w.lose(errTicketLost)
	}
}

// watch returns the ticket's watch, starting it on first use, or nil for a
// ticket that is not held (released, or the zero Ticket).
func (t Ticket) watch() *ticketWatch {
	if t.slot == nil {
		return nil
	}
	watches.mu.Lock()
	if w := watches.m[t.h]; w != nil {
		watches.mu.Unlock()
		return w
	}
	// Marked before the check that the ticket is held: a Release that
	// takes the ticket after that check reads the mark after it, and so
	// forgets the entry made here (see Release).
	t.slot.watched.Store(true)
	if t.slot.h.Load() != t.h {
		watches.mu.Unlock()
		return nil
	}
	w := new(ticketWatch)
	w.lost, w.lose = context.WithCancelCause(context.Background())
	watches.m[t.h] = w
	watches.mu.Unlock()

	// The entry exists before the watch does, so the callback always
	// finds it. The status needs no handling: WHSEM_E_UNSUPPORTED is a
	// ticket of this machine, which cannot be lost, and
	// WHSEM_E_INVALID_HANDLE one that another goroutine released
	// meanwhile, whose Release forgets the entry. Either way the watch
	// is never canceled, as a ticket that is not lost should be.
	rawTicketWatch(C.whsem_ticket(t.h), 0, C.whsem_ticket_callback(C.whsemGoTicketWatched), nil)
	return w
}

// forgetWatch drops the watch of a ticket that was just released; lost
// says that the release reported the ticket lost, which the watch's
// callback may not have said yet.
func forgetWatch(h uint64, lost bool) {
	watches.mu.Lock()
	w := watches.m[h]
	delete(watches.m, h)
	watches.mu.Unlock()
	if w != nil && lost {
		w.lose(errTicketLost)
	}
}

// Lost returns a channel that is closed when the ticket is lost: its
// database session ended while this process held it, and the server has
// given it to someone else (see ErrTicketLost). Only a ticket of a
// PostgreSQL backend can be lost; for any other ticket, a released one or
// the zero Ticket, Lost returns a channel that is never closed. It is
// meant for select:
//
//	select {
//	case <-ticket.Lost():
//		return ticket.Release() // ErrTicketLost: stop relying on the ticket
//	case result := <-work:
//		...
//	}
//
// Every call for a held ticket returns the same channel, whichever copy
// of the Ticket it is made on. The first call starts watching the ticket
// (a cgo call); the watch ends with the ticket's release, which never
// closes the channel. Lost may be called from any goroutine.
func (t Ticket) Lost() <-chan struct{} {
	if w := t.watch(); w != nil {
		return w.lost.Done()
	}
	return never
}

// Context returns a context derived from parent that is also canceled when
// the ticket is lost, with an error wrapping ErrTicketLost as its cause
// (context.Cause), so that work done under the ticket stops when the
// ticket stops protecting it:
//
//	ctx, cancel := ticket.Context(ctx)
//	defer cancel()
//	err := export(ctx) // ends if the ticket is lost
//	if errors.Is(context.Cause(ctx), whsem.ErrTicketLost) { ... }
//
// As for Lost, only a ticket of a PostgreSQL backend can be lost; for other
// tickets the context is parent's child and nothing more. Releasing the
// ticket does not cancel the context: call cancel when done, as with
// context.WithCancel. No goroutine waits on the ticket's behalf.
func (t Ticket) Context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	w := t.watch()
	if w == nil {
		return ctx, func() { cancel(nil) }
	}
	stop := context.AfterFunc(w.lost, func() { cancel(context.Cause(w.lost)) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// Check reports whether the ticket still protects anything: nil while it
// is held, an error wrapping ErrTicketLost once it is known to be lost
// (see Lost), and one wrapping ErrInvalidHandle for a released ticket or
// the zero Ticket. It does not ask the server: a loss is known as soon as
// the connection that carried the ticket is seen to end.
func (t Ticket) Check() error {
	if t.slot == nil {
		return &Error{Op: "check", Detail: "the zero Ticket holds nothing", Err: ErrInvalidHandle}
	}
	if t.slot.h.Load() != t.h {
		return &Error{Op: "check", Detail: "the ticket was released", Err: ErrInvalidHandle}
	}
	if st, msg := rawTicketCheck(C.whsem_ticket(t.h)); st != statusOk {
		return newError("check", "", int32(st), msg)
	}
	return nil
}
