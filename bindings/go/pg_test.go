// SPDX-License-Identifier: MIT

//go:build whsem_pg

// What only a PostgreSQL backend has: refused connections, holders'
// hosts. These tests are built with -tags whsem_pg (CTest's
// go_test_pg, on the "pg" fixture's cluster), which runs the rest of the
// suite on the same database through WHSEM_GO_TEST_BACKEND.

package whsem

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
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
