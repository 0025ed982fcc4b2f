// SPDX-License-Identifier: MIT

package whsem_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/libwhsem/libwhsem/bindings/go"
)

// At most two holders at once, machine-wide, whatever process or language
// they are.
func Example() {
	name := fmt.Sprintf("example-export-%d", os.Getpid())
	sem, err := whsem.Open(name, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer whsem.Remove(name, whsem.WithForce()) // an example cleans up after itself
	defer sem.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ticket, err := sem.Acquire(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		fmt.Println("busy, try later")
		return
	} else if err != nil {
		fmt.Println(err)
		return
	}
	defer ticket.Release()

	fmt.Println("holding one of", sem.MaxCount(), "tickets")
	// Output: holding one of 2 tickets
}

// TryAcquire never waits: it reports whether a ticket was free.
func ExampleSemaphore_TryAcquire() {
	name := fmt.Sprintf("example-try-%d", os.Getpid())
	sem, _ := whsem.Open(name, 1)
	defer whsem.Remove(name, whsem.WithForce())
	defer sem.Close()

	first, ok, _ := sem.TryAcquire()
	fmt.Println("first:", ok)
	_, ok, _ = sem.TryAcquire()
	fmt.Println("second:", ok)
	first.Release()
	first.Release() // a second Release does nothing
	_, ok, _ = sem.TryAcquire()
	fmt.Println("after release:", ok)
	// Output:
	// first: true
	// second: false
	// after release: true
}

// Every process must agree on the max count; errors.Is tells the failures
// apart.
func ExampleOpen_maxCountMismatch() {
	name := fmt.Sprintf("example-mismatch-%d", os.Getpid())
	sem, _ := whsem.Open(name, 2)
	defer whsem.Remove(name, whsem.WithForce())
	defer sem.Close()

	_, err := whsem.Open(name, 3)
	fmt.Println(errors.Is(err, whsem.ErrMaxCountMismatch))
	// Output: true
}

// Names are finalized the same way in every language.
func ExampleSafeName() {
	name, _ := whsem.SafeName("nightly-export")
	fmt.Println(name)
	// Output: Global\nightly-export
}

// A canceled context ends the wait; the ticket is never lost.
func ExampleSemaphore_Acquire_cancel() {
	name := fmt.Sprintf("example-cancel-%d", os.Getpid())
	sem, _ := whsem.Open(name, 1)
	defer whsem.Remove(name, whsem.WithForce())
	defer sem.Close()
	held, _, _ := sem.TryAcquire()
	defer held.Release()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	_, err := sem.Acquire(ctx) // waits until canceled: the only ticket is held
	fmt.Println(err)
	// Output: context canceled
}

// A name shared by every machine that reaches one PostgreSQL database;
// the empty string is this machine, so a configuration can choose. (No
// output: it needs a server.)
func ExampleWithBackend() {
	sem, err := whsem.Open("nightly-import", 2, whsem.WithBackend(os.Getenv("JOBS_DB")))
	switch {
	case errors.Is(err, whsem.ErrUnavailable):
		fmt.Println("the database cannot be reached:", err)
		return
	case err != nil:
		fmt.Println(err)
		return
	}
	defer sem.Close()
}

// Work done under a ticket of a PostgreSQL backend stops when the ticket
// is lost (its session ended, and the server gave the ticket to someone
// else). (No output: it needs a server.)
func ExampleTicket_Lost() {
	ticket, err := importTicket()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ticket.Release()

	done := make(chan error, 1)
	go func() { done <- runImport(context.Background()) }()
	select {
	case <-ticket.Lost():
		fmt.Println(ticket.Release()) // wraps whsem.ErrTicketLost
	case err := <-done:
		fmt.Println("import finished:", err)
	}
}

// Or hand the work a context that the loss of the ticket cancels.
func ExampleTicket_Context() {
	ticket, err := importTicket()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ticket.Release()

	ctx, cancel := ticket.Context(context.Background())
	defer cancel()
	if err := runImport(ctx); errors.Is(context.Cause(ctx), whsem.ErrTicketLost) {
		fmt.Println("the ticket was lost during the import:", err)
	}
}

// importTicket waits for one of the two tickets of "nightly-import" on
// the jobs database. Closing the Semaphore leaves the ticket held.
func importTicket() (whsem.Ticket, error) {
	sem, err := whsem.Open("nightly-import", 2, whsem.WithBackend("postgresql://app@db/jobs"))
	if err != nil {
		return whsem.Ticket{}, err
	}
	defer sem.Close()
	return sem.Acquire(context.Background())
}

func runImport(ctx context.Context) error { return ctx.Err() }

// The name's counters: how often and how long acquisitions waited, over
// every process since the name was created.
func ExampleSemaphore_WaitHistogram() {
	name := fmt.Sprintf("example-histogram-%d", os.Getpid())
	sem, err := whsem.Open(name, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer whsem.Remove(name, whsem.WithForce())
	defer sem.Close()

	h, err := sem.WaitHistogram()
	if err != nil {
		fmt.Println(err) // wraps whsem.ErrUnsupported where the backend keeps no counters
		return
	}
	if p99, ok := h.Percentile(0.99); ok {
		fmt.Printf("99%% of %d waits took %v or less\n", h.Total(), p99)
	} else {
		fmt.Println("nobody has waited yet")
	}
	// Output: nobody has waited yet
}

// A database's names, and removing one.
func ExampleListWith() {
	jobs := whsem.WithBackend("postgresql://app@db/jobs")
	names, err := whsem.ListWith(jobs)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, name := range names {
		fmt.Println(name)
	}
	if err := whsem.Remove("nightly-import", jobs); errors.Is(err, whsem.ErrBusy) {
		fmt.Println("still in use")
	}
}
