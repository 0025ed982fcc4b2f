// SPDX-License-Identifier: MIT

//go:build cgo

package whsem

import (
	"errors"
	"fmt"
)

// kind is the type of the sentinel errors. Each one stands for one failure
// class of libwhsem; an *Error wraps exactly one of them.
type kind struct {
	status int32
	text   string
}

func (k *kind) Error() string { return "whsem: " + k.text }

// Sentinel errors, for use with errors.Is. Every error this package returns
// for a failure of the semaphore itself is an *Error that wraps one of
// these (context errors are returned as they are; see Semaphore.Acquire).
var (
	// ErrInvalidArgument: a number out of range or an option that does not apply.
	ErrInvalidArgument = newKind(statusEInvalidArgument, "invalid argument")
	// ErrInvalidHandle: the Semaphore is closed (or, from Ticket.Check, the
	// ticket was released).
	ErrInvalidHandle = newKind(statusEInvalidHandle, "invalid handle")
	// ErrInvalidName: the name is not valid UTF-8, contains a NUL byte, or is
	// not a valid finalized name although WithExactName was given.
	ErrInvalidName = newKind(statusEInvalidName, "invalid name")
	// ErrMaxCountMismatch: a live process has the name open with another max count.
	ErrMaxCountMismatch = newKind(statusEMaxCountMismatch, "max count mismatch")
	// ErrAccessDenied: the operating system refused access to the shared state.
	ErrAccessDenied = newKind(statusEAccessDenied, "access denied")
	// ErrCorrupt: the shared state of the name is not a valid semaphore.
	ErrCorrupt = newKind(statusECorrupt, "corrupt shared state")
	// ErrIncompatible: the shared state was created by an incompatible
	// version of libwhsem.
	ErrIncompatible = newKind(statusEIncompatible, "incompatible shared state")
	// ErrLimit: a fixed capacity is exhausted (e.g. 1024 processes on a name).
	ErrLimit = newKind(statusELimit, "limit reached")
	// ErrNoMemory: memory allocation failed.
	ErrNoMemory = newKind(statusENoMemory, "out of memory")
	// ErrWrongProcess: the ticket belongs to another process.
	ErrWrongProcess = newKind(statusEWrongProcess, "ticket of another process")
	// ErrOS: an unexpected operating system error.
	ErrOS = newKind(statusEOs, "operating system error")
	// ErrBusy: Remove without WithForce found the name open in another process.
	ErrBusy = newKind(statusEBusy, "name in use")
	// ErrNotFound: no semaphore has that name.
	ErrNotFound = newKind(statusENotFound, "not found")
	// ErrUnsupported: the operation does not exist here (a PostgreSQL
	// backend on Windows, say).
	ErrUnsupported = newKind(statusEUnsupported, "not supported")
	// ErrTicketLost: the ticket was lost while this process held it. Only a
	// ticket of a PostgreSQL backend can be lost: the session that carried
	// it ended (a server restart, pg_terminate_backend, a network failure),
	// and the server has given it to someone else already. Release of such
	// a ticket, Ticket.Check and the cause of Ticket.Context say so.
	ErrTicketLost = newKind(statusETicketLost, "ticket lost")
	// ErrUnavailable: the backend cannot be reached or loaded: the
	// PostgreSQL server is down or refuses connections, the host or
	// database does not exist, or libpq (libpq.so.5) is not installed. It
	// fails an Open, or an acquisition that needed the server while it
	// could not be reached.
	ErrUnavailable = newKind(statusEUnavailable, "backend unavailable")

	// ErrUnsupportedLibrary: the installed libwhsem does not implement the
	// ABI this package was generated from (too old, or a signature differs).
	// Every entry point returns it, wrapped with the details.
	ErrUnsupportedLibrary = errors.New("whsem: unsupported libwhsem")
)

var kinds = map[int32]*kind{}

func newKind(status int32, text string) error {
	k := &kind{status, text}
	kinds[status] = k
	return k
}

// Error describes a failed operation.
type Error struct {
	Op     string // what failed: "open", "acquire", "release", ...
	Name   string // the semaphore's name, if the operation had one
	Detail string // libwhsem's explanation, e.g. "'Global\x' is open with max count 2, not 3"
	Err    error  // one of the sentinel errors above (or, for a status this package does not know, a descriptive error)
}

func (e *Error) Error() string {
	s := "whsem: " + e.Op
	if e.Name != "" {
		s += fmt.Sprintf(" %q", e.Name)
	}
	what := e.Err.Error()
	if k, ok := e.Err.(*kind); ok {
		what = k.text
	}
	s += ": " + what
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// kindOf maps a status to its sentinel. A status newer than this package
// still gives a usable error, named by the library itself.
func kindOf(status int32) error {
	if k, ok := kinds[status]; ok {
		return k
	}
	return &kind{status, fmt.Sprintf("%s (status %d)", statusName(status), status)}
}

func newError(op, name string, status int32, detail string) error {
	return &Error{Op: op, Name: name, Detail: detail, Err: kindOf(status)}
}
