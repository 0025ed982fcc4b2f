// SPDX-License-Identifier: MIT

package whsem

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"
)

// The binding works across processes: a ticket that a child process takes
// through it is held against this one (and Info lists the child as its
// holder), and the child's Release wakes an Acquire waiting here. That
// tickets of killed processes come back, and that processes never exceed
// the max count, the library proves itself (tests/library: Crash.*,
// Async.AKilledHolderHandsItsTicketToAnAsyncWaiter, MultiProcess.*) and
// with Go workers among others in the cross-language test (xlang_chaos).
func TestATicketOfAChildProcessIsHeldUntilItReleases(t *testing.T) {
	name := uniqueName(t, "child")
	cmd, line := startChild(t, "hold", name, nil)
	if line != "held" {
		t.Fatalf("child said %q, want held", line)
	}
	sem, err := Open(name, 1, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	if _, ok, err := sem.TryAcquire(); ok || err != nil {
		t.Fatalf("TryAcquire while the child holds the only ticket = %v, %v", ok, err)
	}
	if in := info(t, sem); !slices.ContainsFunc(in.Holders, func(h Holder) bool { return h.PID == cmd.Process.Pid && h.Tickets == 1 }) {
		t.Fatalf("Info does not show the child (pid %d) holding: %+v", cmd.Process.Pid, in)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		tk, err := sem.Acquire(ctx)
		if err == nil {
			err = tk.Release()
		}
		got <- err
	}()
	eventually(t, "the Acquire to wait", func() bool { return info(t, sem).Waiters == 1 })
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Acquire while the child releases: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the child's Release failed: %v", err)
	}
}
