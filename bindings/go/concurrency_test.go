// SPDX-License-Identifier: MIT

package whsem

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Many goroutines acquiring at once, by TryAcquire and by Acquire, whose
// waits end through the process's one completion queue: its drain goroutine
// must hand every completion to the goroutine waiting for it. Every
// acquisition completes and every ticket comes back. (That holders never
// exceed the max count, across threads or processes, the library proves
// itself: tests/library Semantics.ThreadsNeverExceedMaxCount and
// MultiProcess.*, and xlang_chaos with Go workers among others.)
func TestConcurrentGoroutinesAllGetTheirTickets(t *testing.T) {
	const max, workers, rounds = 3, 16, 200
	sem := openT(t, "concurrent", max)
	var total atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				var tk Ticket
				if (w+i)%3 == 0 {
					var ok bool
					var err error
					for !ok && err == nil {
						tk, ok, err = sem.TryAcquire()
						runtime.Gosched()
					}
					if err != nil {
						t.Error(err)
						return
					}
				} else {
					var err error
					if tk, err = sem.Acquire(context.Background()); err != nil {
						t.Error(err)
						return
					}
				}
				total.Add(1)
				runtime.Gosched()
				if err := tk.Release(); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if total.Load() != workers*rounds {
		t.Fatalf("%d acquisitions, want %d", total.Load(), workers*rounds)
	}
	if in := info(t, sem); in.Free != max || in.Waiters != 0 {
		t.Fatalf("at the end: %+v, want %d free and no waiters", in, max)
	}
}

// osThreads is the number of OS threads of this process.
func osThreads() (int, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("no Threads: line in /proc/self/status")
}

// A thousand goroutines waiting for a ticket must not hold a thousand OS
// threads: their waits go through the netpoller, not blocking C calls.
// Each measurement runs in a fresh child process, since the Go runtime
// keeps every thread it ever started: what other tests did must not count.
func TestWaitingGoroutinesHoldNoThreads(t *testing.T) {
	const waiters, blocking = 1000, 50
	name := uniqueName(t, "threads")
	sem, err := Open(name, 1, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	held, _, _ := sem.TryAcquire()
	defer held.Release()

	threads := func(mode string, n int) int {
		cmd, line := startChild(t, mode, name, nil, "WHSEM_GO_CHILD_WAITERS="+strconv.Itoa(n))
		var got int
		if _, err := fmt.Sscanf(line, "threads %d", &got); err != nil {
			t.Fatalf("child %s said %q", mode, line)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %s: %v", mode, err)
		}
		return got
	}
	during := threads("waiters", waiters)
	// The runtime's own threads (one per P, sysmon, a few spare ones for
	// cgo calls and the race detector) and libwhsem's dispatcher, plus the
	// Ms the scheduler adds when cgo calls are slowed by a loaded machine
	// (32 were seen in CI beside the sanitizer builds): far below the one
	// per waiter, 1,000, that the bound is there to catch.
	limit := 20 + runtime.GOMAXPROCS(0) + waiters/25
	t.Logf("%d OS threads in a process with %d goroutines waiting (limit %d)", during, waiters, limit)
	if during > limit {
		t.Errorf("%d OS threads with %d waiting goroutines, want at most %d", during, waiters, limit)
	}
	// The control: blocking C calls do hold a thread per waiter, and the
	// same measurement sees it.
	pinned := threads("blocking", blocking)
	t.Logf("control: %d OS threads in a process with %d goroutines in blocking C waits", pinned, blocking)
	if pinned < blocking {
		t.Errorf("the control measured %d threads for %d blocking waits: the measurement is blind", pinned, blocking)
	}
	// A child's sessions on a PostgreSQL backend end when the server sees
	// it exit, which may come just after it did.
	eventually(t, "the children's waits to be gone", func() bool { return info(t, sem).Waiters == 0 })
	if in := info(t, sem); in.Free != 0 {
		t.Errorf("after the children: %+v, want our ticket held", in)
	}
}

// waitersChild is the child's side of TestWaitingGoroutinesHoldNoThreads:
// n goroutines wait for the parent's ticket (by Acquire, or for the
// control by blocking C calls), the child counts its threads, ends the
// waits, checks how they ended and reports "threads N".
func waitersChild(mode, name string) error {
	n, err := strconv.Atoi(os.Getenv("WHSEM_GO_CHILD_WAITERS"))
	if err != nil {
		return err
	}
	sem, err := Open(name, 1, onBackend()...)
	if err != nil {
		return err
	}
	defer sem.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, st, msg := rawCancelNew()
	if st != statusOk {
		return errors.New(msg)
	}
	defer rawCancelFree(cancelHandle(src))
	results := make(chan error, n)
	wait := func() {
		if mode == "blocking" {
			v, st, msg := rawAcquire(sem.h, constInfinite, cancelHandle(src))
			switch st {
			case statusCanceled:
				results <- nil
			case statusOk:
				rawRelease(ticketHandle(v))
				results <- errors.New("a blocking wait got the parent's ticket")
			default:
				results <- newError("acquire", name, int32(st), msg)
			}
			return
		}
		tk, err := sem.Acquire(ctx)
		tk.Release()
		if err == context.Canceled {
			err = nil
		} else if err == nil {
			err = errors.New("a waiter got the parent's ticket")
		}
		results <- err
	}
	// The waits start in batches, each once the previous one is waiting.
	// Starting a wait is a short C call, but on a loaded machine the OS may
	// preempt it mid-call, and after 20 µs the Go runtime starts another
	// thread to run the other goroutines: a burst of a thousand such calls
	// can leave a few dozen idle threads behind. That is about starting,
	// not about waiting, which is what this measures.
	deadline := time.Now().Add(20 * time.Second)
	for started := 0; started < n; {
		for i := 0; i < 10 && started < n; i++ {
			go wait()
			started++
		}
		for {
			in, err := sem.Info()
			if err != nil {
				return err
			}
			if in.Waiters >= started {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("only %d of %d goroutines waiting after 20 s", in.Waiters, started)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	threads, err := osThreads()
	if err != nil {
		return err
	}
	cancel()
	rawCancelTrigger(cancelHandle(src))
	for i := 0; i < n; i++ {
		select {
		case err := <-results:
			if err != nil {
				return err
			}
		case <-time.After(20 * time.Second):
			return fmt.Errorf("only %d of %d waits ended within 20 s of the cancellation", i, n)
		}
	}
	fmt.Println("threads", threads)
	return nil
}
