package whsem

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"
)

// A ticket held by a process that is killed returns to the pool.
func TestTicketOfAKilledProcessComesBack(t *testing.T) {
	name := uniqueName(t, "killed")
	cmd, line := startChild(t, "hold", name, nil)
	if line != "held" {
		t.Fatalf("child said %q, want held", line)
	}
	sem, err := Open(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	if _, ok, err := sem.TryAcquire(); ok || err != nil {
		t.Fatalf("TryAcquire while the child holds the only ticket = %v, %v", ok, err)
	}
	in := info(t, sem)
	if !slices.ContainsFunc(in.Holders, func(h Holder) bool { return h.PID == cmd.Process.Pid && h.Tickets == 1 }) {
		t.Fatalf("Info does not show the child (pid %d) holding: %+v", cmd.Process.Pid, in)
	}
	recoveries := in.Recoveries
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tk, err := sem.Acquire(ctx)
	if err != nil {
		t.Fatalf("the killed child's ticket did not come back within 20 s: %v", err)
	}
	defer tk.Release()
	if in := info(t, sem); in.Recoveries <= recoveries {
		t.Errorf("recoveries %d -> %d, want it counted", recoveries, in.Recoveries)
	}
}
