// SPDX-License-Identifier: MIT

package whsem

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// watchCount is the number of tickets with a watch entry.
func watchCount() int {
	watches.mu.Lock()
	defer watches.mu.Unlock()
	return len(watches.m)
}

// liveGoroutines counts the goroutines that run or wait for something.
// runtime.NumGoroutine counts one more per foreign thread that has called
// into Go (libwhsem's thread that ran a watch callback): Go keeps it for
// the thread's life, idle, with nothing on its stack but runtime.goexit.
func liveGoroutines() int {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	live := 0
	for _, g := range strings.Split(strings.TrimSpace(string(buf)), "\n\n") {
		lines := strings.Split(g, "\n")
		if len(lines) == 3 && strings.HasSuffix(lines[0], "locked to thread]:") && strings.HasPrefix(lines[1], "runtime.goexit") {
			continue
		}
		live++
	}
	return live
}

// isClosed says whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A ticket of this machine cannot be lost (a process that dies takes its
// tickets with it): Lost is a channel that never closes, Context is its
// parent's child and nothing more, Check says it is held, and none of it
// leaves anything behind after Release.
func TestTicketsOfThisMachineAreNeverLost(t *testing.T) {
	sem, err := Open(uniqueName(t, "local-lost"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	tk, ok, err := sem.TryAcquire()
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	before := ticketCallbacks.Load()
	lost := tk.Lost()
	if lost == nil || isClosed(lost) {
		t.Fatalf("Lost() of a held local ticket = %v (closed: %v), want an open channel", lost, lost != nil && isClosed(lost))
	}
	if again := tk.Lost(); again != lost {
		t.Errorf("a second Lost() gave another channel")
	}
	ctx, cancel := tk.Context(context.Background())
	defer cancel()
	if err := tk.Check(); err != nil {
		t.Errorf("Check of a held ticket = %v", err)
	}
	if err := tk.Release(); err != nil {
		t.Fatal(err)
	}
	if isClosed(lost) || ctx.Err() != nil {
		t.Errorf("releasing closed Lost (%v) or canceled the context (%v)", isClosed(lost), ctx.Err())
	}
	if err := tk.Check(); !errors.Is(err, ErrInvalidHandle) {
		t.Errorf("Check of a released ticket = %v, want ErrInvalidHandle", err)
	}
	if n := watchCount(); n != 0 {
		t.Errorf("%d watches left after the release", n)
	}
	// libwhsem answers WHSEM_E_UNSUPPORTED to a local watch: no callback.
	if n := ticketCallbacks.Load() - before; n != 0 {
		t.Errorf("%d watch callbacks for a ticket that cannot be lost", n)
	}
}

// The zero Ticket and released ones hold nothing that could be lost.
func TestReleasedAndZeroTicketsAreNeverLost(t *testing.T) {
	sem := openT(t, "released-lost", 1)
	tk, ok, err := sem.TryAcquire()
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := tk.Release(); err != nil {
		t.Fatal(err)
	}
	for what, ticket := range map[string]Ticket{"released": tk, "zero": {}} {
		if ch := ticket.Lost(); ch == nil || isClosed(ch) {
			t.Errorf("Lost() of the %s ticket = %v, want a channel that is never closed", what, ch)
		}
		ctx, cancel := ticket.Context(context.Background())
		if ctx.Err() != nil {
			t.Errorf("Context of the %s ticket is done: %v", what, ctx.Err())
		}
		cancel()
		if err := ticket.Check(); !errors.Is(err, ErrInvalidHandle) {
			t.Errorf("Check of the %s ticket = %v, want ErrInvalidHandle", what, err)
		}
	}
	if n := watchCount(); n != 0 {
		t.Errorf("%d watches left", n)
	}
}

// Lost, Context and Release of the same ticket from many goroutines at once,
// over and over: every watch that was started is forgotten by the release,
// whichever came first, and the copies of a ticket agree on its channel.
func TestWatchesRacingReleasesLeaveNothingBehind(t *testing.T) {
	sem := openT(t, "watch-race", 2)
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	for i := 0; i < rounds; i++ {
		tk, ok, err := sem.TryAcquire()
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		var wg sync.WaitGroup
		chans := make([]<-chan struct{}, 4)
		for g := range chans {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				chans[g] = tk.Lost()
				_, cancel := tk.Context(context.Background())
				cancel()
			}(g)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.Gosched()
			if err := tk.Release(); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		for g, ch := range chans {
			if isClosed(ch) {
				t.Fatalf("round %d: goroutine %d saw the ticket lost", i, g)
			}
		}
	}
	if n := watchCount(); n != 0 {
		t.Errorf("%d watches left after %d rounds", n, rounds)
	}
}
