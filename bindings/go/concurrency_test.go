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
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func TestGoroutinesNeverExceedMaxCount(t *testing.T) {
	const max, workers, rounds = 3, 16, 200
	sem := openT(t, "concurrent", max)
	var inside, most, total atomic.Int32
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
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				total.Add(1)
				runtime.Gosched()
				inside.Add(-1)
				if err := tk.Release(); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if most.Load() > max {
		t.Fatalf("%d goroutines held tickets at once, max count %d", most.Load(), max)
	}
	if total.Load() != workers*rounds {
		t.Fatalf("%d acquisitions, want %d", total.Load(), workers*rounds)
	}
	if in := info(t, sem); in.Free != max {
		t.Fatalf("Free = %d at the end, want %d", in.Free, max)
	}
	t.Logf("at most %d holders at once", most.Load())
}

// Processes (this one and children running this test binary) count
// themselves in and out of the critical section in a shared memory word:
// it must never exceed max count.
func TestProcessesNeverExceedMaxCount(t *testing.T) {
	const max, children = 2, 3
	name := uniqueName(t, "procs")
	ledger := t.TempDir() + "/ledger"
	if err := os.WriteFile(ledger, make([]byte, 4096), 0600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < children; i++ {
		_, line := startChild(t, "contend", name, nil, "WHSEM_GO_CHILD_LEDGER="+ledger, "WHSEM_GO_CHILD_MAX="+strconv.Itoa(max))
		if line != "ready" {
			t.Fatalf("child said %q", line)
		}
	}
	if code := contendWith(name, ledger, max); code != 0 {
		t.Fatalf("contending in the parent failed (%d)", code)
	}
	l, err := mapLedger(ledger)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the children to finish", func() bool { return atomic.LoadInt32(&l.done) == children+1 })
	if v := atomic.LoadInt32(&l.violations); v != 0 {
		t.Fatalf("%d times more than %d processes held tickets (at most %d)", v, max, atomic.LoadInt32(&l.most))
	}
	if atomic.LoadInt32(&l.errors) != 0 {
		t.Fatalf("%d processes failed", atomic.LoadInt32(&l.errors))
	}
	t.Logf("%d acquisitions over %d processes, at most %d holders at once", atomic.LoadInt32(&l.total), children+1, atomic.LoadInt32(&l.most))
}

type ledger struct {
	inside, most, violations, total, done, errors int32
}

func mapLedger(path string) (*ledger, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mem, err := syscall.Mmap(int(f.Fd()), 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return (*ledger)(unsafe.Pointer(&mem[0])), nil
}

// contend is the child's side of TestProcessesNeverExceedMaxCount.
func contend(name string) int {
	max, _ := strconv.Atoi(os.Getenv("WHSEM_GO_CHILD_MAX"))
	fmt.Println("ready")
	return contendWith(name, os.Getenv("WHSEM_GO_CHILD_LEDGER"), max)
}

func contendWith(name, path string, max int) int {
	l, err := mapLedger(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer atomic.AddInt32(&l.done, 1)
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		atomic.AddInt32(&l.errors, 1)
		return 1
	}
	sem, err := Open(name, max)
	if err != nil {
		return fail(err)
	}
	defer sem.Close()
	end := time.Now().Add(time.Second)
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		tk, err := sem.Acquire(ctx)
		cancel()
		if err != nil {
			return fail(err)
		}
		n := atomic.AddInt32(&l.inside, 1)
		if n > int32(max) {
			atomic.AddInt32(&l.violations, 1)
		}
		for m := atomic.LoadInt32(&l.most); n > m && !atomic.CompareAndSwapInt32(&l.most, m, n); m = atomic.LoadInt32(&l.most) {
		}
		atomic.AddInt32(&l.total, 1)
		time.Sleep(50 * time.Microsecond)
		atomic.AddInt32(&l.inside, -1)
		if err := tk.Release(); err != nil {
			return fail(err)
		}
	}
	return 0
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
	sem, err := Open(name, 1)
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
	// cgo calls and the race detector) and libwhsem's dispatcher: a bound
	// that does not grow with the number of waiters.
	limit := 20 + runtime.GOMAXPROCS(0)
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
	if in := info(t, sem); in.Waiters != 0 || in.Free != 0 {
		t.Errorf("after the children: %+v, want no waiters and our ticket held", in)
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
	sem, err := Open(name, 1)
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
