// SPDX-License-Identifier: MIT

// Package whsem is a named, crash-safe counting semaphore shared by every
// process on a Linux machine, whatever language each process is written in,
// or by every process on every machine that reaches one PostgreSQL
// database (WithBackend).
//
// Any process that opens the same name with the same max count shares one
// pool of tickets: at most max count of them are held at any time, across
// all processes. A process that dies, even by SIGKILL, gives its tickets
// back (within the abandonment check period, 100 ms by default).
//
//	sem, err := whsem.Open("nightly-export", 2)
//	if err != nil {
//		return err
//	}
//	defer sem.Close()
//	ticket, err := sem.Acquire(ctx) // waits; ctx's deadline and cancellation apply
//	if err != nil {
//		return err // ctx.Err(), or an *Error
//	}
//	defer ticket.Release()
//
// # Waiting costs no thread
//
// A goroutine blocked in Acquire holds no OS thread: all waits of a process
// complete through one descriptor watched by Go's network poller, so a
// thousand waiting goroutines cost a thousand goroutines and nothing more.
// The library behind this package runs one thread of its own per process
// (and one per PostgreSQL server it talks to).
//
// # Errors
//
// Failures are *Error values wrapping one of the sentinel errors
// (ErrMaxCountMismatch, ErrNotFound, ...), so errors.Is works:
//
//	if errors.Is(err, whsem.ErrMaxCountMismatch) { ... }
//
// Acquire returns the context's own error (context.Canceled or
// context.DeadlineExceeded) when the context ends the wait.
//
// # Across machines: PostgreSQL
//
// WithBackend("postgresql://app@db/jobs") puts the name on that database,
// with the same names, max counts, contexts, errors and guarantees;
// WithBackend("") is this machine, so a configuration may choose. A server
// that cannot be reached is ErrUnavailable, a refused login
// ErrAccessDenied, and no error ever shows a password.
//
// A ticket there lives in a database session. If the session ends while
// the process holds the ticket (pg_terminate_backend, a server restart, a
// network failure), the server has given the ticket to someone else. The
// holder learns it the Go way:
//
//	select {
//	case <-ticket.Lost(): // closed when the ticket is lost
//		return ticket.Release() // an error wrapping ErrTicketLost
//	case r := <-results:
//		...
//	}
//
// or through ticket.Context(ctx), canceled with cause ErrTicketLost, and
// ticket.Check(). A ticket of this machine cannot be lost (a process that
// dies takes its tickets with it): its Lost channel is never closed, so
// code can watch tickets whatever the backend. Watching begins with the
// first Lost or Context of a ticket; a ticket nobody asks about costs
// nothing more.
//
// # Names
//
// A name is finalized the way the C# DistributedLock library's
// WaitHandleDistributedSemaphore finalizes it, so "abc" is "Global\abc" in
// every language; see SafeName. Names are case-sensitive.
//
// # Holders
//
// Semaphore.Info reports who holds tickets (and, on PostgreSQL, on which
// host). Holder.Since is exact for a
// ticket handed to a waiter; for one taken from a free pool it is the time
// of the next scan of the semaphore, which every Info call makes.
//
// # Counters
//
// Info also counts, over every process since the name was created:
// acquisitions, timeouts, cancellations, waits, releases, and the time
// spent waiting and holding. WaitHistogram sorts the waits into log-scale
// buckets (WaitHistogram.Percentile estimates a percentile from them), and
// WaitersHistory says how many acquisitions waited in each recent second.
//
// # Administration
//
// List and ListWith list names, Remove removes one; with WithBackend, a
// PostgreSQL database's.
//
// # The library
//
// The package builds against libwhsem through pkg-config (package "whsem").
// On first use it checks that the loaded library implements the interface
// this package was built for, and otherwise every entry point fails with
// an error wrapping ErrUnsupportedLibrary.
package whsem
