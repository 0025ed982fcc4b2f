// SPDX-License-Identifier: MIT

package whsem

import (
	"context"
	"errors"
	"math/rand"
	"testing"
	"time"
)

func TestAcquireWithADoneContextTakesNothing(t *testing.T) {
	sem := openT(t, "done", 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if tk, err := sem.Acquire(ctx); tk != (Ticket{}) || err != context.Canceled {
		t.Fatalf("Acquire(canceled) = %v, %v; want nil, context.Canceled", tk, err)
	}
	past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	if tk, err := sem.Acquire(past); tk != (Ticket{}) || err != context.DeadlineExceeded {
		t.Fatalf("Acquire(expired) = %v, %v; want nil, context.DeadlineExceeded", tk, err)
	}
	if in := info(t, sem); in.Free != 1 {
		t.Fatalf("a free ticket was taken by an Acquire whose context was done: %+v", in)
	}
}

func TestAcquireCancelWhileWaiting(t *testing.T) {
	sem := openT(t, "cancel", 1)
	held, _, _ := sem.TryAcquire()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		tk, err := sem.Acquire(ctx)
		tk.Release()
		got <- err
	}()
	eventually(t, "the Acquire to wait", func() bool { return info(t, sem).Waiters == 1 })
	cancel()
	select {
	case err := <-got:
		if err != context.Canceled {
			t.Fatalf("Acquire = %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("cancellation did not end the Acquire within 20 s")
	}
	if in := info(t, sem); in.Waiters != 0 {
		t.Errorf("a canceled wait is still counted: %+v", in)
	}
	held.Release()
	// On PostgreSQL a release does not wait for the server, and the
	// canceled wait, still queued there a moment, may be handed the
	// ticket and give it back: it comes back, if not at once.
	eventually(t, "the released ticket to be free", func() bool { return info(t, sem).Free == 1 })
}

func TestAcquireDeadline(t *testing.T) {
	sem := openT(t, "deadline", 1)
	held, _, _ := sem.TryAcquire()
	defer held.Release()
	const wait = 150 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	tk, err := sem.Acquire(ctx)
	if tk != (Ticket{}) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire = %v, %v; want context.DeadlineExceeded", tk, err)
	}
	if elapsed := time.Since(start); elapsed < wait-time.Millisecond {
		t.Errorf("Acquire gave up after %v, before the %v deadline", elapsed, wait)
	}
	if in := info(t, sem); in.Waiters != 0 {
		t.Errorf("a timed-out wait is still counted: %+v", in)
	}
}

// A release racing with the cancellation of the goroutine waiting for it
// either gives that goroutine the ticket or leaves it in the pool: it is
// never lost, whichever wins, and a canceled Acquire never holds a ticket.
func TestCancellationRacingAGrantNeverLosesATicket(t *testing.T) {
	iterations := 300
	if testing.Short() {
		iterations = 50
	}
	sem := openT(t, "race", 1)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	var granted, canceled, timedOut int
	for i := 0; i < iterations; i++ {
		held, ok, err := sem.TryAcquire()
		if !ok || err != nil {
			t.Fatalf("iteration %d: the ticket is not free: %v, %v", i, ok, err)
		}
		useDeadline := i%2 == 1
		var ctx context.Context
		var cancel context.CancelFunc
		if useDeadline {
			// The library's own timeout races with the release.
			ctx, cancel = context.WithTimeout(context.Background(), time.Duration(1+rng.Intn(3))*time.Millisecond)
		} else {
			ctx, cancel = context.WithCancel(context.Background())
		}
		type result struct {
			tk  Ticket
			err error
		}
		got := make(chan result, 1)
		go func() {
			tk, err := sem.Acquire(ctx)
			got <- result{tk, err}
		}()
		if !useDeadline {
			eventually(t, "the Acquire to wait", func() bool { return info(t, sem).Waiters == 1 })
		} else {
			time.Sleep(time.Duration(rng.Intn(3000)) * time.Microsecond)
		}
		go held.Release()
		if !useDeadline {
			go cancel()
		}
		r := <-got
		cancel()
		switch {
		case r.err == nil && r.tk != (Ticket{}):
			granted++
			r.tk.Release()
		case r.err == context.Canceled && r.tk == (Ticket{}):
			canceled++
		case r.err == context.DeadlineExceeded && r.tk == (Ticket{}):
			timedOut++
		default:
			t.Fatalf("iteration %d: Acquire = %v, %v", i, r.tk, r.err)
		}
		// Every release is synchronous, so the ticket is back by now (the
		// racing Release may still be running: wait for it).
		eventually(t, "the ticket to be free", func() bool {
			in := info(t, sem)
			return in.Free == 1 && in.Waiters == 0
		})
	}
	t.Logf("%d iterations: %d granted, %d canceled, %d timed out", iterations, granted, canceled, timedOut)
	if granted+canceled+timedOut != iterations {
		t.Fatal("outcomes do not add up")
	}
}
