// SPDX-License-Identifier: MIT

//go:build whsem_pg

// What only a PostgreSQL backend has: refused connections, lost tickets,
// holders' hosts. These tests are built with -tags whsem_pg (CTest's
// go_test_pg, on the "pg" fixture's cluster), which runs the rest of the
// suite on the same database through WHSEM_GO_TEST_BACKEND.

package whsem

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pgBackend is the database under test. These tests are built only for a
// run against one, so a missing one is a failure, not a skip.
func pgBackend(t *testing.T) string {
	t.Helper()
	if testBackend == "" {
		t.Fatal("built with -tags whsem_pg but WHSEM_GO_TEST_BACKEND is not set: run through ctest -L pg (go_test_pg)")
	}
	return testBackend
}

// A server that cannot be reached is ErrUnavailable, a refused login
// ErrAccessDenied; neither message shows the password.
func TestPgRefusedConnectionsSayWhyAndNeverShowThePassword(t *testing.T) {
	pgBackend(t)
	name := uniqueName(t, "pg-refused")
	// Port 1 of this machine: nobody listens there.
	_, err := Open(name, 1, WithBackend("host=127.0.0.1 port=1 dbname=postgres user=app password=hunter2-Secret connect_timeout=10"))
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Open on an unreachable server = %v, want ErrUnavailable", err)
	} else if msg := err.Error(); strings.Contains(msg, "hunter2") || !strings.Contains(msg, "connect") {
		t.Errorf("the message must say it cannot connect, without the password: %s", msg)
	}
	// The fixture's role whsem_pw logs in over TCP with a password only.
	_, err = Open(name, 1, WithBackend(pgBackend(t)+" host=127.0.0.1 user=whsem_pw password=not-the-Secret-9"))
	if !errors.Is(err, ErrAccessDenied) {
		t.Errorf("Open with a wrong password = %v, want ErrAccessDenied", err)
	} else if msg := err.Error(); strings.Contains(msg, "not-the-Secret-9") || !strings.Contains(msg, "authentication failed") {
		t.Errorf("the message must say authentication failed, without the password: %s", msg)
	}
	if _, err := OpenExisting(uniqueName(t, "pg-missing"), onBackend()...); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenExisting of a name the database does not have = %v, want ErrNotFound", err)
	}
}

// Without libpq a PostgreSQL backend is ErrUnavailable saying what to
// install. In a child: this process has libpq loaded already.
func TestPgMissingLibpqIsUnavailable(t *testing.T) {
	pgBackend(t)
	_, line := startChild(t, "open-report", uniqueName(t, "pg-nolibpq"), nil,
		"WHSEM_LIBPQ=libpq-that-is-not-there.so.5")
	kind, detail, _ := strings.Cut(line, " ")
	if want := statusEUnavailable; kind != strconv.Itoa(want) || !strings.Contains(detail, "libpq") {
		t.Errorf("the child without libpq got %q, want status %d naming libpq", line, want)
	}
}

// Info names each holder's host, which on PostgreSQL may be any machine.
func TestPgHoldersHaveTheirHost(t *testing.T) {
	pgBackend(t)
	sem := openT(t, "pg-host", 2)
	tk, ok, err := sem.TryAcquire()
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	defer tk.Release()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	in := info(t, sem)
	if len(in.Holders) != 1 || in.Holders[0].PID != os.Getpid() || in.Holders[0].Host != host || in.Holders[0].Tickets != 1 {
		t.Errorf("Info().Holders = %+v, want this process (pid %d) on %q with 1 ticket", in.Holders, os.Getpid(), host)
	}
}

// ---- lost tickets ----

// psql runs one statement as the cluster's superuser (the fixture's
// service) and returns its unaligned, tuples-only output.
func psql(t *testing.T, sql string) string {
	t.Helper()
	bin := os.Getenv("WHSEM_PSQL")
	if bin == "" {
		found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql")
		slices.Sort(found)
		if len(found) > 0 {
			bin = found[len(found)-1]
		} else if bin, _ = exec.LookPath("psql"); bin == "" {
			t.Fatal("psql not found (postgresql-client; or set WHSEM_PSQL)")
		}
	}
	out, err := exec.Command(bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-d", pgBackend(t), "-c", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// terminateHolderOfIndex0 ends the server session that holds ticket index
// 0 of sem, as an administrator (or a failover) would, and fails unless
// there was exactly one.
func terminateHolderOfIndex0(t *testing.T, sem *Semaphore) {
	t.Helper()
	name := strings.ReplaceAll(sem.Name(), "'", "''")
	n := psql(t, "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l "+
		"JOIN whsem.semaphore s ON l.classid = s.id::oid "+
		"WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.objid = 0 AND l.granted "+
		"AND s.name = '"+name+"'")
	if n != "1" {
		t.Fatalf("terminated %s sessions holding index 0 of %s, want 1", n, sem.Name())
	}
}

// watchedTicket takes a free ticket of sem and watches it both ways.
func watchedTicket(t *testing.T, sem *Semaphore) (Ticket, <-chan struct{}, context.Context) {
	t.Helper()
	tk, ok, err := sem.TryAcquire()
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	ctx, cancel := tk.Context(context.Background())
	t.Cleanup(cancel)
	return tk, tk.Lost(), ctx
}

func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not within 30 s", what)
	}
}

// A held ticket whose session is terminated is lost, and every way of
// asking says so: Lost closes, Context is canceled with ErrTicketLost as its
// cause, Check and Release wrap ErrTicketLost. The server has given the
// ticket to someone else meanwhile (here: another acquisition of ours), and
// once released nothing of the watch is left: no entry, no goroutine.
func TestPgTerminatedSessionLosesTheTicketAndTheHolderIsTold(t *testing.T) {
	pgBackend(t)
	sem := openT(t, "pg-lost", 1)
	// The process's completion queue has a goroutine for good, from the
	// first wait on: start it before counting.
	if _, err := theQueue(); err != nil {
		t.Fatal(err)
	}
	baseline := liveGoroutines()
	tk, lost, ctx := watchedTicket(t, sem)
	copied := tk
	if copied.Lost() != lost {
		t.Error("a copy of the ticket has another Lost channel")
	}
	if err := tk.Check(); err != nil || isClosed(lost) || ctx.Err() != nil {
		t.Fatalf("before anything happened: Check %v, lost %v, ctx %v", err, isClosed(lost), ctx.Err())
	}

	terminateHolderOfIndex0(t, sem)
	waitClosed(t, "Lost() after the holder's session was terminated", lost)
	waitClosed(t, "Context() after the loss", ctx.Done())
	if cause := context.Cause(ctx); !errors.Is(cause, ErrTicketLost) || ctx.Err() != context.Canceled {
		t.Errorf("the context ended with %v (cause %v), want context.Canceled caused by ErrTicketLost", ctx.Err(), cause)
	}
	if err := tk.Check(); !errors.Is(err, ErrTicketLost) {
		t.Errorf("Check of the lost ticket = %v, want ErrTicketLost", err)
	}
	// Asking again, after the loss, gives the same answers.
	if !isClosed(tk.Lost()) {
		t.Error("Lost() asked after the loss is not closed")
	}
	later, cancelLater := tk.Context(context.Background())
	waitClosed(t, "a Context() made after the loss", later.Done())
	cancelLater()

	// The server gave the ticket back: the semaphore's only ticket is
	// someone else's to take now, while ours is still not released.
	wait, cancelWait := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelWait()
	other, err := sem.Acquire(wait)
	if err != nil {
		t.Fatalf("Acquire after the loss: %v", err)
	}
	if _, ok, err := sem.TryAcquire(); ok || err != nil {
		t.Fatalf("a second ticket of max count 1: %v, %v", ok, err)
	}
	if err := tk.Release(); !errors.Is(err, ErrTicketLost) {
		t.Errorf("Release of the lost ticket = %v, want ErrTicketLost", err)
	} else if !strings.Contains(err.Error(), "lost") {
		t.Errorf("Release of the lost ticket says %q", err)
	}
	if err := tk.Release(); err != nil {
		t.Errorf("a second Release = %v, want nil", err)
	}
	if err := other.Release(); err != nil {
		t.Fatal(err)
	}
	if n := watchCount(); n != 0 {
		t.Errorf("%d watches left after the release", n)
	}
	eventually(t, "the goroutines of the watch to end", func() bool { return liveGoroutines() <= baseline })
}

// A watched ticket released without loss is not lost: its watch is called
// back once (with WHSEM_OK) and closes nothing; Lost and Context of a
// released ticket stay open.
func TestPgWatchedTicketReleasedIsNotLost(t *testing.T) {
	pgBackend(t)
	sem := openT(t, "pg-notlost", 2)
	baseline := liveGoroutines()
	callbacks := ticketCallbacks.Load()
	tk, lost, ctx := watchedTicket(t, sem)
	if err := tk.Release(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the release's watch callback", func() bool { return ticketCallbacks.Load() == callbacks+1 })
	if isClosed(lost) || ctx.Err() != nil {
		t.Errorf("after a release without loss: lost %v, context %v", isClosed(lost), ctx.Err())
	}
	if n := watchCount(); n != 0 {
		t.Errorf("%d watches left after the release", n)
	}
	eventually(t, "no more goroutines than before the ticket", func() bool { return liveGoroutines() <= baseline })
	// Tickets that were never watched cost no callback at all.
	for i := 0; i < 10; i++ {
		tk, _, _ := sem.TryAcquire()
		if err := tk.Release(); err != nil {
			t.Fatal(err)
		}
	}
	tk, _, _ = sem.TryAcquire()
	tk.Lost()
	tk.Release()
	eventually(t, "the watched ticket's callback", func() bool { return ticketCallbacks.Load() == callbacks+2 })
}
