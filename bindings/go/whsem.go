// SPDX-License-Identifier: MIT

package whsem

/*
#include <whsem.h>
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Version is the version of the loaded libwhsem, e.g. "1.0.0".
func Version() string { return C.GoString(rawVersionString()) }

func statusName(status int32) string {
	return C.GoString(rawStatusName(C.whsem_status(status)))
}

// ---- options ----------------------------------------------------------------

// An Option configures Open, OpenExisting, Remove or ListWith.
type Option func(*config)

type config struct {
	exact        bool
	force        bool
	check        time.Duration
	hasCheck     bool
	mode         fs.FileMode
	hasMode      bool
	backend      string
	connCheck    time.Duration
	hasConnCheck bool
}

// WithExactName uses the name exactly as given instead of finalizing it;
// it must then already be a finalized name (see SafeName), or the call
// fails with ErrInvalidName. For Open, OpenExisting and Remove.
func WithExactName() Option { return func(c *config) { c.exact = true } }

// WithAbandonmentCheck sets how often waiters in this process look for
// holders that died without releasing (default 100 ms): a dead holder's
// tickets return to the pool within about that long. A negative d turns the
// periodic check off; dead holders are then only noticed when one of them
// is found dead inside the semaphore's lock. On a PostgreSQL backend, whose
// server frees a dead holder's tickets at once, it only paces the waits
// for names of more than four tickets. For Open and OpenExisting.
func WithAbandonmentCheck(d time.Duration) Option {
	return func(c *config) { c.check, c.hasCheck = d, true }
}

// WithMode sets the permission bits of a semaphore this call creates
// (default 0600), applied exactly, not masked by the umask. Other users
// need read and write permission to open it. This machine's semaphores
// only: with a PostgreSQL backend (WithBackend), whose roles decide who may
// use a name, Open fails with ErrInvalidArgument. For Open and OpenExisting.
func WithMode(perm fs.FileMode) Option {
	return func(c *config) { c.mode, c.hasMode = perm, true }
}

// WithForce makes Remove remove a name even while other processes have it
// open. For Remove only.
func WithForce() Option { return func(c *config) { c.force = true } }

// WithBackend says where the semaphore lives. "" (the default) is this
// machine: every process on it that opens the name shares its tickets. A
// libpq connection string ("host=db dbname=jobs user=app") or URI
// ("postgresql://app@db/jobs") is that PostgreSQL database: every process
// on every machine that opens the name there shares its tickets, with the
// same names, max counts, contexts and guarantees. libpq (libpq.so.5) is
// loaded at the first such Open; passwords come through libpq's own means
// (~/.pgpass, PGPASSFILE, PGPASSWORD, the string itself) and never appear
// in an error. A server that cannot be reached fails the Open with
// ErrUnavailable, a refused login with ErrAccessDenied. A ticket of a
// PostgreSQL semaphore can be lost while its holder lives: see
// Ticket.Lost. For Open, OpenExisting, Remove and ListWith.
func WithBackend(conninfo string) Option {
	return func(c *config) { c.backend = conninfo }
}

// WithConnectionCheck sets how often a connection to a PostgreSQL backend
// that carries tickets is checked (default 1 s): a holder learns that its
// ticket was lost within about three periods even when the network fails
// silently (a server restart or a terminated session is seen at once). A
// negative d turns the checks off. It has no effect on this machine's
// semaphores, whose tickets cannot be lost, so that a configuration can
// set it whatever the backend. For Open and OpenExisting.
func WithConnectionCheck(d time.Duration) Option {
	return func(c *config) { c.connCheck, c.hasConnCheck = d, true }
}

func makeConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// cOptions converts the options of an open; the struct lives in Go memory
// and holds no Go pointers, so it may be handed to C as it is. The backend
// string it points to is C memory: free it with C.free (nil is fine).
func (c *config) cOptions(op, name string) (C.whsem_open_options, *C.char, error) {
	var o C.whsem_open_options
	o.struct_size = C.uint32_t(unsafe.Sizeof(o))
	invalid := func(detail string) (C.whsem_open_options, *C.char, error) {
		return o, nil, &Error{Op: op, Name: name, Detail: detail, Err: ErrInvalidArgument}
	}
	if c.force {
		return invalid("WithForce applies to Remove only")
	}
	if c.exact {
		o.flags |= constOpenExactName
	}
	var err error
	if c.hasCheck {
		if o.abandonment_check_ms, err = periodMs(c.check, "the abandonment check period"); err != nil {
			return invalid(err.Error())
		}
	}
	if c.hasConnCheck {
		if o.connection_check_ms, err = periodMs(c.connCheck, "the connection check period"); err != nil {
			return invalid(err.Error())
		}
	}
	if c.hasMode {
		if c.mode&^fs.ModePerm != 0 || c.mode == 0 {
			return invalid("the mode must be permission bits, not 0 and nothing else (got " + c.mode.String() + ")")
		}
		// Silently ignoring permissions would leave a user believing they
		// restricted access that the server's roles decide.
		if c.backend != "" {
			return invalid("WithMode applies to this machine's semaphores only: on PostgreSQL, the server's roles decide who may use a name")
		}
		o.mode = C.uint32_t(c.mode)
	}
	if o.backend, err = c.cBackend(op, name); err != nil {
		return o, nil, err
	}
	return o, o.backend, nil
}

// cBackend converts the backend for C: nil for this machine, else C memory
// to free with C.free.
func (c *config) cBackend(op, name string) (*C.char, error) {
	if c.backend == "" {
		return nil, nil
	}
	// The detail never repeats the string: it may hold a password.
	if strings.IndexByte(c.backend, 0) >= 0 {
		return nil, &Error{Op: op, Name: name, Detail: "the backend connection string contains a NUL byte", Err: ErrInvalidArgument}
	}
	return C.CString(c.backend), nil
}

// adminConfig reads the options of List and Remove, which take no
// options of an open.
func adminConfig(op, name string, opts []Option) (config, error) {
	c := makeConfig(opts)
	if c.hasCheck || c.hasMode || c.hasConnCheck {
		return c, &Error{Op: op, Name: name, Detail: "WithAbandonmentCheck, WithConnectionCheck and WithMode apply to Open only", Err: ErrInvalidArgument}
	}
	return c, nil
}

// periodMs converts a period option: negative means never (WHSEM_INFINITE),
// anything else is rounded up to whole milliseconds, 0 being refused as the
// C ABI reads 0 as "the default".
func periodMs(d time.Duration, what string) (C.int32_t, error) {
	switch {
	case d < 0:
		return constInfinite, nil
	case d == 0:
		return 0, errors.New(what + " must not be 0")
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxInt32 {
		ms = math.MaxInt32
	}
	return C.int32_t(ms), nil
}

// cName converts a name for C; Go strings may hold NUL bytes, C strings not.
func cName(op, name string) (*C.char, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, &Error{Op: op, Name: name, Detail: "the name contains a NUL byte", Err: ErrInvalidName}
	}
	return C.CString(name), nil
}

// ---- names ----------------------------------------------------------------------

// SafeName returns the name a semaphore called name really has: "Global\"
// followed by the name, or by a hash of it for names that are empty,
// contain '\' after that prefix or are longer than 260 UTF-16 code units.
// It is the same in every language and matches the C# DistributedLock
// library's WaitHandleDistributedSemaphore. Semaphore.Name returns it too.
func SafeName(name string) (string, error) {
	if err := checkLibrary(); err != nil {
		return "", err
	}
	if !utf8.ValidString(name) {
		return "", &Error{Op: "safe name", Name: name, Detail: "the name is not valid UTF-8", Err: ErrInvalidName}
	}
	cn, err := cName("safe name", name)
	if err != nil {
		return "", err
	}
	defer C.free(unsafe.Pointer(cn))
	return askThenFill("safe name", name, func(buf *C.char, size C.size_t, need *C.size_t) (C.whsem_status, string) {
		return rawSafeName(cn, buf, size, need)
	})
}

// askThenFill runs one of libwhsem's "ask for the size, then fill" calls,
// growing the buffer until the answer fits (it may grow meanwhile).
func askThenFill(op, name string, call func(buf *C.char, size C.size_t, need *C.size_t) (C.whsem_status, string)) (string, error) {
	buf := make([]byte, 512)
	for {
		need := new(C.size_t)
		st, msg := call((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), need)
		switch {
		case st == statusOk:
			n := int(*need)
			if n > 0 && buf[n-1] == 0 {
				n-- // the size includes the terminating NUL
			}
			return string(buf[:n]), nil
		case st == statusEInvalidArgument && int(*need) > len(buf):
			buf = make([]byte, int(*need)+64)
		default:
			return "", newError(op, name, int32(st), msg)
		}
	}
}

// List returns the finalized names of every semaphore on this machine that
// this process can see. ListWith lists a PostgreSQL database's.
func List() ([]string, error) {
	return ListWith()
}

// ListWith returns the finalized names of every semaphore of a backend:
// this machine's, as List, or with WithBackend those a PostgreSQL database
// knows (none where no semaphore was ever opened). It connects as Open
// would, failing with ErrUnavailable or ErrAccessDenied when it cannot.
// Options: WithBackend.
func ListWith(opts ...Option) ([]string, error) {
	if err := checkLibrary(); err != nil {
		return nil, err
	}
	c, err := adminConfig("list", "", opts)
	if err == nil && (c.exact || c.force) {
		err = &Error{Op: "list", Detail: "WithExactName and WithForce do not apply to a list", Err: ErrInvalidArgument}
	}
	if err != nil {
		return nil, err
	}
	backend, err := c.cBackend("list", "")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(backend))
	all, err := askThenFill("list", "", func(buf *C.char, size C.size_t, need *C.size_t) (C.whsem_status, string) {
		return rawListBackend(backend, buf, size, need)
	})
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, n := range strings.Split(all, "\x00") {
		if n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}

// Remove removes the name, so that the next Open creates a fresh semaphore.
// It fails with ErrBusy while another live process has the name open
// (unless WithForce is given: processes that keep it open would then no
// longer share tickets with new openers) and with ErrNotFound if no
// semaphore has that name. Options: WithExactName, WithForce, and
// WithBackend for a name of a PostgreSQL database (where a name is in use
// while a session of another process has it open; the server is reached
// as Open would, ErrUnavailable or ErrAccessDenied when it cannot be).
func Remove(name string, opts ...Option) error {
	if err := checkLibrary(); err != nil {
		return err
	}
	c, err := adminConfig("remove", name, opts)
	if err != nil {
		return err
	}
	var flags C.uint32_t
	if c.exact {
		flags |= constOpenExactName
	}
	if c.force {
		flags |= constUnlinkForce
	}
	backend, err := c.cBackend("remove", name)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(backend))
	cn, err := cName("remove", name)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cn))
	if st, msg := rawUnlinkBackend(backend, cn, flags); st != statusOk {
		return newError("remove", name, int32(st), msg)
	}
	return nil
}

// ---- semaphores ------------------------------------------------------------------

// A Semaphore is this process's handle on a named semaphore shared by
// every process on the machine that opens the same name. Its methods may
// be called from any goroutine. Close it when done; tickets acquired
// through it stay valid after Close and must still be released.
type Semaphore struct {
	h        C.whsem_sem
	name     string
	maxCount int
	closed   atomic.Bool
}

// Open opens the semaphore called name, creating it with maxCount tickets
// (1 ... 2147483647) if it does not exist. Every process that opens the
// same name must use the same max count: otherwise Open fails with
// ErrMaxCountMismatch. The name is finalized first (see SafeName) unless
// WithExactName is given.
func Open(name string, maxCount int, opts ...Option) (*Semaphore, error) {
	if maxCount < 1 || maxCount > math.MaxInt32 {
		return nil, &Error{Op: "open", Name: name, Detail: "max count must be 1 ... 2147483647", Err: ErrInvalidArgument}
	}
	return open("open", name, maxCount, opts)
}

// OpenExisting opens the semaphore called name, adopting its max count. It
// fails with ErrNotFound if no semaphore has that name.
func OpenExisting(name string, opts ...Option) (*Semaphore, error) {
	return open("open existing", name, 0, opts)
}

func open(op, name string, maxCount int, opts []Option) (*Semaphore, error) {
	if err := checkLibrary(); err != nil {
		return nil, err
	}
	c := makeConfig(opts)
	o, backend, err := c.cOptions(op, name)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(backend))
	cn, err := cName(op, name)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cn))
	var (
		h   uint64
		st  C.whsem_status
		msg string
	)
	if maxCount == 0 {
		h, st, msg = rawOpenExisting(cn, &o)
	} else {
		h, st, msg = rawOpen(cn, C.int32_t(maxCount), &o)
	}
	if st != statusOk {
		return nil, newError(op, name, int32(st), msg)
	}
	s := &Semaphore{h: C.whsem_sem(h)}
	// Name and max count never change: read them once, so the accessors
	// cannot fail later.
	if s.name, err = askThenFill(op, name, func(buf *C.char, size C.size_t, need *C.size_t) (C.whsem_status, string) {
		return rawName(s.h, buf, size, need)
	}); err == nil {
		var mc uint64
		if mc, st, msg = rawMaxCount(s.h); st == statusOk {
			s.maxCount = int(int32(mc))
		} else {
			err = newError(op, name, int32(st), msg)
		}
	}
	if err != nil {
		rawClose(s.h)
		return nil, err
	}
	// Only a backstop for a Semaphore nobody closed.
	runtime.SetFinalizer(s, (*Semaphore).Close)
	return s, nil
}

// Name is the semaphore's finalized name (see SafeName).
func (s *Semaphore) Name() string { return s.name }

// MaxCount is the number of tickets of the semaphore.
func (s *Semaphore) MaxCount() int { return s.maxCount }

// Close closes this handle. Acquisitions waiting on it end with an error
// that wraps ErrInvalidHandle (or with a ticket, if one reached them
// first); tickets already acquired stay valid. Closing a closed Semaphore
// returns an error wrapping ErrInvalidHandle.
func (s *Semaphore) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return s.closedError("close")
	}
	runtime.SetFinalizer(s, nil)
	if st, msg := rawClose(s.h); st != statusOk {
		return newError("close", s.name, int32(st), msg)
	}
	return nil
}

func (s *Semaphore) closedError(op string) error {
	return &Error{Op: op, Name: s.name, Detail: "the semaphore is closed", Err: ErrInvalidHandle}
}

// TryAcquire takes a ticket if one is free right now, without waiting. It
// returns ok == false (and no error) when none is free.
func (s *Semaphore) TryAcquire() (t Ticket, ok bool, err error) {
	return s.try("try acquire")
}

func (s *Semaphore) try(op string) (Ticket, bool, error) {
	if s.closed.Load() {
		return Ticket{}, false, s.closedError(op)
	}
	v, st, msg := rawAcquire(s.h, 0, 0)
	runtime.KeepAlive(s) // the finalizer must not close the handle during the call
	switch st {
	case statusOk:
		return newTicket(v), true, nil
	case statusTimeout:
		return Ticket{}, false, nil
	}
	return Ticket{}, false, s.acquireError(op, st, msg)
}

func (s *Semaphore) acquireError(op string, st C.whsem_status, msg string) error {
	if st == statusEInvalidHandle && s.closed.Load() {
		return s.closedError(op)
	}
	return newError(op, s.name, int32(st), msg)
}

// Acquire waits for a ticket until one is granted or ctx is done.
//
// If ctx is done before a ticket is granted, Acquire returns ctx.Err()
// itself (context.Canceled or context.DeadlineExceeded, unwrapped) and holds
// no ticket: it does not even try when ctx is already done. A ticket granted
// at the same moment as the cancellation is released again, never lost.
// A deadline on ctx is also handed to libwhsem as the wait's timeout, and
// when it passes Acquire lets that timeout end the wait (a millisecond
// later at most), so that Info counts a timeout, not a cancellation.
//
// A waiting Acquire holds no OS thread: a thousand goroutines waiting on
// a semaphore cost a thousand goroutines, not a thousand threads.
func (s *Semaphore) Acquire(ctx context.Context) (Ticket, error) {
	if err := ctx.Err(); err != nil {
		return Ticket{}, err
	}
	if t, ok, err := s.try("acquire"); ok || err != nil {
		return t, err
	}
	return s.wait(ctx)
}

func (s *Semaphore) wait(ctx context.Context) (Ticket, error) {
	timeout := int64(constInfinite)
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		if left <= 0 {
			return Ticket{}, context.DeadlineExceeded
		}
		// Rounded up, so the library never gives up before ctx does.
		if ms := (left + time.Millisecond - 1) / time.Millisecond; ms <= math.MaxInt32 {
			timeout = int64(ms)
		}
	}
	q, err := theQueue()
	if err != nil {
		return Ticket{}, err
	}
	tag, done := q.register()
	op, st, msg := rawAcquireQueued(s.h, C.int64_t(timeout), 0, q.h, C.uint64_t(tag))
	if st != statusOk {
		q.unregister(tag)
		return Ticket{}, s.acquireError("acquire", st, msg)
	}
	canceled := false
	select {
	case <-done:
	case <-ctx.Done():
		canceled = true
		// The deadline handed to libwhsem, rounded up, ends the operation
		// within a millisecond: left to it, the wait counts as the timeout
		// it is (Info.Timeouts), not as a cancellation. Canceled all the
		// same if it does not end soon.
		if timeout != constInfinite && ctx.Err() == context.DeadlineExceeded {
			grace := time.NewTimer(time.Second)
			select {
			case <-done:
				grace.Stop()
			case <-grace.C:
			}
		}
		// The operation now ends CANCELED, or OK if the grant won the race
		// (canceling an ended one does nothing): wait for the verdict
		// either way, so a granted ticket is released below rather than
		// lost.
		rawOpCancel(C.whsem_op(op))
		<-done
	}
	// A failure's msg is the operation's own message, whichever library
	// thread ended it: whsem_op_take_ticket makes it this thread's
	// (libwhsem 1.1), and the shim reads it inside the same C call.
	v, st, msg := rawOpTakeTicket(C.whsem_op(op))
	rawOpFree(C.whsem_op(op))
	runtime.KeepAlive(s)
	switch {
	case st == statusOk && canceled:
		rawRelease(C.whsem_ticket(v))
		return Ticket{}, ctx.Err()
	case st == statusOk:
		return newTicket(v), nil
	case canceled:
		return Ticket{}, ctx.Err()
	case st == statusTimeout:
		return Ticket{}, context.DeadlineExceeded
	case st == statusCanceled && s.closed.Load():
		return Ticket{}, &Error{Op: "acquire", Name: s.name, Detail: "the semaphore was closed while waiting", Err: ErrInvalidHandle}
	}
	return Ticket{}, s.acquireError("acquire", st, msg)
}

// ---- tickets -----------------------------------------------------------------

// A Ticket is one of a semaphore's tickets, held by this process until
// Release. If the process dies, even by SIGKILL, its tickets return to the
// pool. A Ticket is a small value: copies of it are the same ticket, and
// the zero Ticket holds nothing. Release every ticket: one dropped without
// Release is only given back when the garbage collector finds it, which
// may be much later, or never.
type Ticket struct {
	slot *ticketSlot
	h    uint64
}

// A ticketSlot records whether a ticket is still held. Slots are recycled
// (registering a finalizer for every ticket would cost far more than the
// acquisition itself), so a Ticket also carries its handle: a slot is
// released only by a Ticket whose handle it still holds, and libwhsem never
// hands out the same handle twice.
type ticketSlot struct {
	h atomic.Uint64
	// Set once the ticket may have a watch (Lost, Context), so that only
	// the release of such a ticket looks for one to forget. A stale copy
	// of an earlier ticket may set it too: that only costs a look.
	watched atomic.Bool
}

var slots = sync.Pool{New: func() any {
	s := new(ticketSlot)
	// A backstop only: the finalizer runs when no Ticket refers to the slot
	// any more, and releases a ticket that was dropped without Release.
	runtime.SetFinalizer(s, func(s *ticketSlot) {
		if h := s.h.Swap(0); h != 0 {
			st, _ := rawRelease(C.whsem_ticket(h))
			if s.watched.Load() {
				forgetWatch(h, st == statusETicketLost)
			}
		}
	})
	return s
}}

func newTicket(h uint64) Ticket {
	s := slots.Get().(*ticketSlot)
	s.h.Store(h)
	return Ticket{s, h}
}

// Release gives the ticket back. Releasing a released ticket (or the zero
// Ticket) does nothing and returns nil, so a deferred Release next to an
// explicit one is fine; Release may be called from any goroutine,
// concurrently. A ticket that was lost (see Lost) is released all the
// same, and the error wraps ErrTicketLost: whatever it protected was not
// protected since the loss.
func (t Ticket) Release() error {
	if t.slot == nil || !t.slot.h.CompareAndSwap(t.h, 0) {
		return nil
	}
	// Read, and cleared for the slot's next ticket, before the slot goes
	// back to the pool. A plain load on the path of every release: only a
	// watched ticket's pays for more.
	watched := t.slot.watched.Load()
	if watched {
		t.slot.watched.Store(false)
	}
	slots.Put(t.slot)
	st, msg := rawRelease(C.whsem_ticket(t.h))
	if watched {
		forgetWatch(t.h, st == statusETicketLost)
	}
	if st != statusOk {
		return newError("release", "", int32(st), msg)
	}
	return nil
}

// ---- introspection -------------------------------------------------------------

// Info is a snapshot of a semaphore's state, over all processes.
//
// The counters (Acquisitions ... Created) count since the name was
// created, over every process that uses it with libwhsem 1.1 or later. A
// backend that keeps no counters leaves them zero, and Created the zero
// Time; its WaitHistogram and WaitersHistory fail with ErrUnsupported. On
// PostgreSQL another process's counts arrive within a second or two, and
// for a role that may not create the counters' table they are zero too,
// WaitHistogram and WaitersHistory failing with ErrAccessDenied (saying
// what an administrator should run).
type Info struct {
	MaxCount   int      // the number of tickets
	Free       int      // tickets nobody holds
	Waiters    int      // acquisitions waiting, over all processes
	Processes  int      // processes that have the name open
	Recoveries uint64   // crash recoveries so far (dead holders, dead lock owners; always 0 on PostgreSQL)
	Holders    []Holder // the processes holding tickets

	Acquisitions uint64 // tickets handed out
	// Acquisitions that waited and ended without a ticket when their time
	// was up (an Acquire whose context's deadline passed). A TryAcquire
	// that finds no ticket free is not one, nor is the try an Acquire
	// makes before it waits.
	Timeouts uint64
	// Acquisitions ended by a cancellation (a context canceled, a
	// Semaphore closed) rather than by their deadline.
	Cancellations uint64
	// Acquisitions that found no ticket free and waited, however they
	// ended: what WaitHistogram counts.
	Waits    uint64
	WaitTime time.Duration // the time those waited, summed
	Releases uint64        // tickets given back: released, or reclaimed from a process that ended holding them
	// The time released tickets were held, summed, measured with a coarse
	// clock: exact over many holds, not for one.
	HoldTime time.Duration
	Created  time.Time // when the name was created
}

// Holder is a process holding tickets.
type Holder struct {
	PID     int       // process id (in the pid namespace of its creator)
	Since   time.Time // when it started holding (see the package documentation)
	Tickets int       // tickets it holds
	Waiting int       // acquisitions of that process still waiting
	// The host the process runs on, as it reported it, for a PostgreSQL
	// backend, where holders on several machines may share a pid; "" on
	// this machine.
	Host string
}

// Info returns a snapshot of the semaphore's shared state.
func (s *Semaphore) Info() (Info, error) {
	if s.closed.Load() {
		return Info{}, s.closedError("info")
	}
	var ci C.whsem_info
	ci.struct_size = C.uint32_t(unsafe.Sizeof(ci))
	// whsem_query_processes rather than whsem_query: the same snapshot,
	// with every process's host.
	var procs []C.whsem_process
	for {
		var pp *C.whsem_process
		if len(procs) > 0 {
			procs[0].struct_size = C.uint32_t(unsafe.Sizeof(procs[0]))
			pp = &procs[0]
		}
		count := new(C.size_t)
		st, msg := rawQueryProcesses(s.h, &ci, pp, C.size_t(len(procs)), count)
		if st != statusOk {
			return Info{}, s.acquireError("info", st, msg)
		}
		if int(*count) <= len(procs) {
			procs = procs[:*count]
			break
		}
		procs = make([]C.whsem_process, int(*count)+8)
	}
	runtime.KeepAlive(s)
	info := Info{
		MaxCount:   int(ci.max_count),
		Free:       int(ci.free_count),
		Waiters:    int(ci.waiters),
		Processes:  int(ci.processes),
		Recoveries: uint64(ci.recoveries),
		Holders:    []Holder{},

		Acquisitions:  uint64(ci.acquisitions),
		Timeouts:      uint64(ci.timeouts),
		Cancellations: uint64(ci.cancellations),
		Waits:         uint64(ci.waits),
		WaitTime:      nanoseconds(uint64(ci.wait_ns)),
		Releases:      uint64(ci.releases),
		HoldTime:      nanoseconds(uint64(ci.hold_ns)),
		Created:       sinceTime(int64(ci.created_unix_ms)),
	}
	for _, p := range procs {
		if p.tickets > 0 {
			info.Holders = append(info.Holders, Holder{
				PID:     int(p.pid),
				Since:   sinceTime(int64(p.holding_since_unix_ms)),
				Tickets: int(p.tickets),
				Waiting: int(p.waiting),
				Host:    C.GoString(p.host),
			})
		}
	}
	return info, nil
}

func sinceTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// nanoseconds converts a sum of nanoseconds, saturating where a Duration
// ends (after 292 years).
func nanoseconds(ns uint64) time.Duration {
	if ns > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// ---- counters ------------------------------------------------------------------

// A WaitHistogram says how long the acquisitions of a name that found no
// ticket free waited (Info.Waits of them), over every process and since
// the name was created, in log-scale buckets: the first counts waits under
// 1.024 µs, each next one waits up to twice as long as the one before, and
// the last counts waits of 2^40 ns (about 18 minutes) or more.
type WaitHistogram struct {
	Buckets []WaitBucket
}

// A WaitBucket counts the waits that lasted from Min up to, not including,
// Max. The last bucket has no upper bound: its Max is the largest
// Duration.
type WaitBucket struct {
	Min, Max time.Duration
	Count    uint64
}

// WaitHistogram returns the histogram of the name's wait times. A backend
// that keeps no counters fails with ErrUnsupported.
func (s *Semaphore) WaitHistogram() (WaitHistogram, error) {
	counts, err := fillSeries(s, "wait histogram", constWaitBuckets, rawWaitHistogram)
	if err != nil {
		return WaitHistogram{}, err
	}
	n := make([]uint64, len(counts))
	for i, c := range counts {
		n[i] = uint64(c)
	}
	return newWaitHistogram(n), nil
}

// newWaitHistogram gives counts, as whsem_wait_histogram orders them
// (see WHSEM_WAIT_BUCKETS in whsem.h), their bounds.
func newWaitHistogram(counts []uint64) WaitHistogram {
	h := WaitHistogram{Buckets: make([]WaitBucket, len(counts))}
	for i, n := range counts {
		h.Buckets[i] = WaitBucket{Min: 0, Max: math.MaxInt64, Count: n}
		if i > 0 {
			h.Buckets[i].Min = time.Duration(1) << (9 + i)
		}
		if i < len(counts)-1 {
			h.Buckets[i].Max = time.Duration(1) << (10 + i)
		}
	}
	return h
}

// Total is the number of waits the histogram counts.
func (h WaitHistogram) Total() uint64 {
	var n uint64
	for _, b := range h.Buckets {
		n += b.Count
	}
	return n
}

// Percentile estimates the wait that a fraction p (0 ... 1) of the waits
// did not exceed: Percentile(0.99) is the 99th percentile. The bucket that
// holds it is known exactly; inside it the waits are taken as spread
// evenly on the log scale (the first bucket: on a linear one), so the
// estimate is off by at most a factor of two. A wait in the last bucket,
// which has no upper bound, is reported as that bucket's Min. ok is false
// when there are no waits or p is outside 0 ... 1.
func (h WaitHistogram) Percentile(p float64) (d time.Duration, ok bool) {
	total := h.Total()
	if total == 0 || !(p >= 0 && p <= 1) {
		return 0, false
	}
	rank := p * float64(total)
	var below float64
	last := -1
	for i, b := range h.Buckets {
		if b.Count == 0 {
			continue
		}
		n := float64(b.Count)
		if below+n >= rank {
			return b.at((rank - below) / n), true
		}
		below += n
		last = i
	}
	// Rounding left the rank beyond the sum: the largest waits.
	return h.Buckets[last].at(1), true
}

// at is the wait a fraction f (0 ... 1) of the way through the bucket.
func (b WaitBucket) at(f float64) time.Duration {
	switch {
	case b.Max == math.MaxInt64:
		return b.Min
	case b.Min == 0:
		return time.Duration(f * float64(b.Max))
	}
	return time.Duration(float64(b.Min) * math.Exp2(f))
}

// WaitersHistory returns how many acquisitions of the name waited, over
// every process, in each second of the recent past: the most seen during
// that second, oldest first, the last element being the current second.
// The backend decides how many seconds it keeps (60 or more). A backend
// that keeps no counters fails with ErrUnsupported.
func (s *Semaphore) WaitersHistory() ([]int, error) {
	counts, err := fillSeries(s, "waiters history", 64, rawWaitersHistory)
	if err != nil {
		return nil, err
	}
	seconds := make([]int, len(counts))
	for i, n := range counts {
		seconds[i] = int(n)
	}
	return seconds, nil
}

// fillSeries runs one of the semaphore's "ask, then fill" calls that
// answer numbers, starting with room for guess of them.
func fillSeries[T any](s *Semaphore, op string, guess int, call func(C.whsem_sem, *T, C.size_t, *C.size_t) (C.whsem_status, string)) ([]T, error) {
	if s.closed.Load() {
		return nil, s.closedError(op)
	}
	buf := make([]T, guess)
	for {
		count := new(C.size_t)
		st, msg := call(s.h, &buf[0], C.size_t(len(buf)), count)
		runtime.KeepAlive(s)
		if st != statusOk {
			return nil, s.acquireError(op, st, msg)
		}
		if int(*count) <= len(buf) {
			return buf[:*count], nil
		}
		buf = make([]T, int(*count))
	}
}
