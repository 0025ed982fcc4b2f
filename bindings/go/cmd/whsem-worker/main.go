// SPDX-License-Identifier: MIT

// Command whsem-worker is the Go participant of libwhsem's cross-language
// test. Every binding ships a worker with the same command line:
//
//	whsem-worker name NAME
//	    print the finalized name of NAME
//	whsem-worker run --name NAME --max N --duration-ms MS --log PATH [--async] [--hold-us US] [--backend CONNINFO]
//	    for MS milliseconds: acquire a ticket (giving up after 5 s, then
//	    trying again), append "acq <pid> go <ns>" to PATH, hold it US
//	    microseconds (default 200), append "rel <pid> go <ns>", release it
//
// With --backend the name lives in that PostgreSQL database instead of on
// this machine. A ticket held there can be lost (its session terminated,
// the server restarted): the worker watches it through Ticket.Lost while
// it holds it, and if it is lost appends "lost <pid> go <ns>" at once
// instead of the "rel" line, drops the ticket (whose release then says
// ErrTicketLost, as expected) and goes on acquiring. An acquisition that
// fails because the server cannot be reached (ErrUnavailable) or its
// session was lost (ErrTicketLost) is tried again too.
//
// <ns> is CLOCK_MONOTONIC in nanoseconds, the clock every worker shares.
// Each line is one write(2) to a file opened with O_APPEND, so lines of
// concurrent workers never interleave.
//
// Every Go acquisition is asynchronous (the goroutine waits in the
// netpoller, not in a blocking call). Without --async the 5 s limit is the
// context's deadline, which becomes libwhsem's own timeout; with --async it
// is enforced by canceling the context, so the wait ends through
// libwhsem's cancellation instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/libwhsem/libwhsem/bindings/go"
)

const acquireLimit = 5 * time.Second

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "name":
		if len(os.Args) != 3 {
			usage()
		}
		var name string
		if name, err = whsem.SafeName(os.Args[2]); err == nil {
			fmt.Println(name)
		}
	case "run":
		err = run(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "whsem-worker:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: whsem-worker name NAME\n"+
		"       whsem-worker run --name NAME --max N --duration-ms MS --log PATH [--async] [--hold-us US] [--backend CONNINFO]")
	os.Exit(2)
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	name := fs.String("name", "", "semaphore name")
	max := fs.Int("max", 0, "max count")
	durationMs := fs.Int("duration-ms", 0, "how long to keep acquiring, in milliseconds")
	logPath := fs.String("log", "", "file to append acq/rel lines to")
	async := fs.Bool("async", false, "end an unsuccessful wait by cancellation instead of a timeout")
	holdUs := fs.Int("hold-us", 200, "how long to hold each ticket, in microseconds")
	backend := fs.String("backend", "", "a PostgreSQL connection string: the name lives there")
	fs.Parse(args)
	if *name == "" || *max < 1 || *durationMs < 0 || *logPath == "" || *holdUs < 0 || fs.NArg() != 0 {
		usage()
	}

	log, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0644)
	if err != nil {
		return err
	}
	defer log.Close()
	sem, err := whsem.Open(*name, *max, whsem.WithBackend(*backend))
	if err != nil {
		return err
	}
	defer sem.Close()

	pid := os.Getpid()
	holdTime := time.Duration(*holdUs) * time.Microsecond
	end := time.Now().Add(time.Duration(*durationMs) * time.Millisecond)
	line := make([]byte, 0, 64)
	record := func(what string) error {
		line = fmt.Appendf(line[:0], "%s %d go %d\n", what, pid, monotonicNs())
		_, err := log.Write(line) // one write(2): the line is far below any short-write size
		return err
	}
	hold := time.NewTimer(0)
	<-hold.C
	for time.Now().Before(end) {
		ticket, err := acquire(sem, *async)
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
			continue // no ticket within the limit: not an error, try again
		case errors.Is(err, whsem.ErrUnavailable) || errors.Is(err, whsem.ErrTicketLost):
			// The server went away, or our session did while we waited:
			// try again, without spinning while it is down.
			time.Sleep(10 * time.Millisecond)
			continue
		case err != nil:
			return err
		}
		if err := record("acq"); err != nil {
			ticket.Release()
			return err
		}
		// A ticket of this machine cannot be lost: only a backend's is
		// worth watching (and a nil channel never fires).
		var lost <-chan struct{}
		if *backend != "" {
			lost = ticket.Lost()
		}
		hold.Reset(holdTime)
		wasLost := false
		select {
		case <-hold.C:
			// Told at the end of the hold: lost all the same.
			select {
			case <-lost:
				wasLost = true
			default:
			}
		case <-lost:
			wasLost = true
			if !hold.Stop() {
				<-hold.C
			}
		}
		if wasLost {
			if err := record("lost"); err != nil {
				return err
			}
			// The server gave the ticket away already: releasing it only
			// frees our handle, and says so.
			if err := ticket.Release(); err != nil && !errors.Is(err, whsem.ErrTicketLost) {
				return err
			}
			continue
		}
		if err := record("rel"); err != nil {
			ticket.Release()
			return err
		}
		// A loss between the end of the hold and here is the server's
		// news, not a failure of ours.
		if err := ticket.Release(); err != nil && !errors.Is(err, whsem.ErrTicketLost) {
			return err
		}
	}
	if err := sem.Close(); err != nil {
		return err
	}
	return log.Close()
}

func acquire(sem *whsem.Semaphore, async bool) (whsem.Ticket, error) {
	if !async {
		ctx, cancel := context.WithTimeout(context.Background(), acquireLimit)
		defer cancel()
		return sem.Acquire(ctx)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := time.AfterFunc(acquireLimit, cancel)
	defer timer.Stop()
	return sem.Acquire(ctx)
}

// monotonicNs reads CLOCK_MONOTONIC, which Go's time package does not
// expose as an absolute value, so that the lines of workers in other
// languages compare with these.
func monotonicNs() int64 {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1 /* CLOCK_MONOTONIC */, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		panic(errno)
	}
	return ts.Nano()
}
