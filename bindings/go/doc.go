// SPDX-License-Identifier: MIT

// Package whsem is a named, crash-safe counting semaphore shared by every
// process on a Linux machine, whatever language each process is written in.
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
// The library behind this package runs one thread of its own per process.
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
// # Names
//
// A name is finalized the way the C# DistributedLock library's
// WaitHandleDistributedSemaphore finalizes it, so "abc" is "Global\abc" in
// every language; see SafeName. Names are case-sensitive.
//
// # Holders
//
// Semaphore.Info reports who holds tickets. Holder.Since is exact for a
// ticket handed to a waiter; for one taken from a free pool it is the time
// of the next scan of the semaphore, which every Info call makes.
//
// # The library
//
// The package builds against libwhsem through pkg-config (package "whsem").
// On first use it checks that the loaded library implements the interface
// this package was built for, and otherwise every entry point fails with
// an error wrapping ErrUnsupportedLibrary.
package whsem
