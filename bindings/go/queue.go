// SPDX-License-Identifier: MIT

package whsem

/*
#include <whsem.h>
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// A goroutine waiting for a ticket must not sit in a blocking C call: that
// would hold an OS thread per waiter. Waits therefore go through one
// libwhsem completion queue per process, whose descriptor is readable while
// finished operations are posted. Go's netpoller watches that descriptor,
// and a single goroutine pops the completions and wakes the goroutine that
// waits on each one. No thread is held by anybody while they wait.
type completionQueue struct {
	h C.whsem_queue

	mu      sync.Mutex
	waiters map[uint64]chan struct{} // by tag: closed when the operation is final
	nextTag uint64

	// Written by whsem_queue_pop; only the drain goroutine uses it. Kept
	// apart so that C is handed a pointer to memory holding no Go pointers.
	popped *struct {
		op  C.whsem_op
		tag C.uint64_t
	}
}

var (
	queueMu sync.Mutex
	queue   *completionQueue
)

// theQueue returns the process's completion queue, creating it (and its
// drain goroutine) on first use. A failure is returned, not remembered: a
// later call tries again.
func theQueue() (*completionQueue, error) {
	queueMu.Lock()
	defer queueMu.Unlock()
	if queue != nil {
		return queue, nil
	}
	h, st, msg := rawQueueNew()
	if st != statusOk {
		return nil, newError("acquire", "", int32(st), msg)
	}
	fdv, st, msg := rawQueueFd(C.whsem_queue(h))
	if st != statusOk {
		rawQueueFree(C.whsem_queue(h))
		return nil, newError("acquire", "", int32(st), msg)
	}
	// The descriptor belongs to the queue: give the poller a duplicate of
	// its own, so nothing on the Go side can ever close the queue's. Both
	// share one open file description, hence its readiness and its
	// O_NONBLOCK, which the poller needs to accept it.
	dup, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(int32(fdv)), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		rawQueueFree(C.whsem_queue(h))
		return nil, &Error{Op: "acquire", Detail: "cannot duplicate the completion queue descriptor: " + errno.Error(), Err: ErrOS}
	}
	if err := syscall.SetNonblock(int(dup), true); err != nil {
		syscall.Close(int(dup))
		rawQueueFree(C.whsem_queue(h))
		return nil, &Error{Op: "acquire", Detail: "cannot make the completion queue descriptor non-blocking: " + err.Error(), Err: ErrOS}
	}
	f := os.NewFile(dup, "whsem-completions")
	q := &completionQueue{
		h:       C.whsem_queue(h),
		waiters: make(map[uint64]chan struct{}),
		popped: new(struct {
			op  C.whsem_op
			tag C.uint64_t
		}),
	}
	go q.drain(f)
	queue = q
	return q, nil
}

// register reserves a tag for one operation and the channel that is closed
// when that operation is final.
func (q *completionQueue) register() (uint64, chan struct{}) {
	ch := make(chan struct{})
	q.mu.Lock()
	q.nextTag++
	tag := q.nextTag
	q.waiters[tag] = ch
	q.mu.Unlock()
	return tag, ch
}

// unregister forgets a tag whose operation was never started.
func (q *completionQueue) unregister(tag uint64) {
	q.mu.Lock()
	delete(q.waiters, tag)
	q.mu.Unlock()
}

// drain runs for the life of the process. The queue and its descriptor are
// never freed: one per process, like the library's own dispatcher thread.
func (q *completionQueue) drain(f *os.File) {
	rc, err := f.SyscallConn()
	if err == nil {
		// The poller is edge-triggered. The library raises the descriptor
		// when it posts to an empty queue and lowers it in the pop that
		// empties it, so popping until the queue is empty before parking
		// again can never miss a completion: one posted after the last pop
		// raises the descriptor again, and the poller remembers that edge
		// even if it comes before this goroutine parks.
		err = rc.Read(func(uintptr) bool {
			q.popAll()
			return false // never done: park until readable, then pop again
		})
	}
	// Not reached unless the poller refuses the descriptor, which Linux's
	// epoll does not do for an eventfd. Waiters must still be woken, so
	// fall back to polling the queue rather than leaving them stranded.
	fmt.Fprintf(os.Stderr, "whsem: completion queue descriptor not pollable (%v); polling instead\n", err)
	for {
		q.popAll()
		time.Sleep(time.Millisecond)
	}
}

func (q *completionQueue) popAll() {
	p := q.popped
	for {
		st, _ := rawQueuePop(q.h, &p.op, &p.tag)
		if st != statusOk {
			return // WHSEM_PENDING: empty, and the descriptor is lowered
		}
		tag := uint64(p.tag)
		q.mu.Lock()
		ch := q.waiters[tag]
		delete(q.waiters, tag)
		q.mu.Unlock()
		if ch != nil {
			close(ch)
		}
	}
}
