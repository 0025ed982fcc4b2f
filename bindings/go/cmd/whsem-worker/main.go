// SPDX-License-Identifier: MIT

// Command whsem-worker is the Go participant of libwhsem's cross-language
// test. Every binding ships a worker with the same command line:
//
//	whsem-worker name NAME
//	    print the finalized name of NAME
//	whsem-worker run --name NAME --max N --duration-ms MS --log PATH [--async] [--hold-us US]
//	    for MS milliseconds: acquire a ticket (giving up after 5 s, then
//	    trying again), append "acq <pid> go <ns>" to PATH, hold it US
//	    microseconds (default 200), append "rel <pid> go <ns>", release it
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

	"libwhsem/go/whsem"
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
		"       whsem-worker run --name NAME --max N --duration-ms MS --log PATH [--async] [--hold-us US]")
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
	fs.Parse(args)
	if *name == "" || *max < 1 || *durationMs < 0 || *logPath == "" || *holdUs < 0 || fs.NArg() != 0 {
		usage()
	}

	log, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0644)
	if err != nil {
		return err
	}
	defer log.Close()
	sem, err := whsem.Open(*name, *max)
	if err != nil {
		return err
	}
	defer sem.Close()

	pid := os.Getpid()
	hold := time.Duration(*holdUs) * time.Microsecond
	end := time.Now().Add(time.Duration(*durationMs) * time.Millisecond)
	line := make([]byte, 0, 64)
	record := func(what string) error {
		line = fmt.Appendf(line[:0], "%s %d go %d\n", what, pid, monotonicNs())
		_, err := log.Write(line) // one write(2): the line is far below any short-write size
		return err
	}
	for time.Now().Before(end) {
		ticket, err := acquire(sem, *async)
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			continue // no ticket within the limit: not an error, try again
		}
		if err != nil {
			return err
		}
		if err := record("acq"); err != nil {
			ticket.Release()
			return err
		}
		time.Sleep(hold)
		if err := record("rel"); err != nil {
			ticket.Release()
			return err
		}
		if err := ticket.Release(); err != nil {
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
