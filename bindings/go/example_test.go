// SPDX-License-Identifier: MIT

package whsem_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"libwhsem/go/whsem"
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
