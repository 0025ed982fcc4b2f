// SPDX-License-Identifier: MIT

package whsem

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

var allSentinels = []error{ErrInvalidArgument, ErrInvalidHandle, ErrInvalidName,
	ErrMaxCountMismatch, ErrAccessDenied, ErrCorrupt, ErrIncompatible, ErrLimit,
	ErrNoMemory, ErrWrongProcess, ErrOS, ErrBusy, ErrNotFound, ErrUnsupported,
	ErrTicketLost, ErrUnavailable}

// Every status maps to exactly its sentinel, and to no other one. This
// covers the statuses no test can provoke from Go (a full process table, an
// allocation failure, a forked ticket, an OS failure).
func TestEveryStatusMapsToItsSentinel(t *testing.T) {
	statuses := []int32{statusEInvalidArgument, statusEInvalidHandle, statusEInvalidName,
		statusEMaxCountMismatch, statusEAccessDenied, statusECorrupt, statusEIncompatible,
		statusELimit, statusENoMemory, statusEWrongProcess, statusEOs, statusEBusy, statusENotFound,
		statusEUnsupported, statusETicketLost, statusEUnavailable}
	for i, st := range statuses {
		err := newError("op", "n", st, "detail")
		for j, s := range allSentinels {
			if errors.Is(err, s) != (i == j) {
				t.Errorf("status %d: errors.Is(err, %v) = %v", st, s, i != j)
			}
		}
		var e *Error
		if !errors.As(err, &e) || e.Op != "op" || e.Detail != "detail" {
			t.Errorf("status %d: errors.As gives %+v", st, e)
		}
	}
}

func TestUnknownStatusIsStillAUsableError(t *testing.T) {
	err := newError("acquire", "x", -99, "something new")
	for _, s := range allSentinels {
		if errors.Is(err, s) {
			t.Errorf("an unknown status matches %v", s)
		}
	}
	msg := err.Error()
	for _, want := range []string{"acquire", "-99", "something new", "WHSEM_UNKNOWN_STATUS"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	name := uniqueName(t, "message")
	a, err := Open(name, 2, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = Open(name, 3, onBackend()...)
	want := `whsem: open "` + name + `": max count mismatch: 'Global\` + name + `' is open with max count 2, not 3`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
}

func TestErrorsOfOpen(t *testing.T) {
	name := uniqueName(t, "errors")
	sem, err := Open(name, 2, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	if _, err := Open(name, 3, onBackend()...); !errors.Is(err, ErrMaxCountMismatch) {
		t.Errorf("Open with another max count = %v, want ErrMaxCountMismatch", err)
	}
	for _, max := range []int{0, -1, math.MaxInt32 + 1} {
		if _, err := Open(uniqueName(t, "max"), max, onBackend()...); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Open with max %d = %v, want ErrInvalidArgument", max, err)
		}
	}
	for _, bad := range []string{"\xff\xfe", "a\x00b"} {
		if _, err := Open(bad, 1, onBackend()...); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Open(%q) = %v, want ErrInvalidName", bad, err)
		}
		if _, err := SafeName(bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("SafeName(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	if _, err := Open("not-finalized", 1, onBackend(WithExactName())...); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Open of an unfinalized exact name = %v, want ErrInvalidName", err)
	}
	missing := uniqueName(t, "missing")
	if _, err := OpenExisting(missing, onBackend()...); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenExisting of a missing name = %v, want ErrNotFound", err)
	}
	if err := Remove(missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove of a missing name = %v, want ErrNotFound", err)
	}
}

// makeSegment creates a semaphore and closes it, leaving its file behind
// to be damaged.
func makeSegment(t *testing.T) (name, path string) {
	name = uniqueName(t, "segment")
	sem, err := Open(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	sem.Close()
	return name, "/dev/shm/whsem." + name // the file of a plain ASCII name
}

func poke(t *testing.T, path string, off int64, b []byte) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestErrCorrupt(t *testing.T) {
	name, path := makeSegment(t)
	poke(t, path, 0, []byte("JUNKJUNK")) // the magic number
	if _, err := Open(name, 1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open of a garbled segment = %v, want ErrCorrupt", err)
	}
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(name, 1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open of a truncated segment = %v, want ErrCorrupt", err)
	}
}

// An Acquire that waits ends with the error the library's dispatcher thread
// found (here: the segment truncated under it), and with that error's own
// message, which the binding reads inside the cgo call that reports the
// operation's end: not a message some earlier call left on that thread.
func TestWaitingAcquireEndsWithItsOwnErrorMessage(t *testing.T) {
	name := uniqueName(t, "asyncerr")
	sem, err := Open(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	held, ok, err := sem.TryAcquire()
	if err != nil || !ok {
		t.Fatalf("TryAcquire = %v, %v", ok, err)
	}
	defer held.Release() // an error by then, or not, but no crash
	done := make(chan error, 1)
	go func() {
		tk, err := sem.Acquire(context.Background())
		if err == nil {
			tk.Release()
		}
		done <- err
	}()
	eventually(t, "the Acquire to wait", func() bool { return info(t, sem).Waiters == 1 })
	if err := os.Truncate("/dev/shm/whsem."+name, 0); err != nil { // the file of a plain ASCII name
		t.Fatal(err)
	}
	err = <-done
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Acquire of a truncated segment = %v, want ErrCorrupt", err)
	}
	if !strings.Contains(e.Detail, "truncated") {
		t.Errorf("Detail = %q, want the library's message about the truncation", e.Detail)
	}
}

func TestErrIncompatible(t *testing.T) {
	name, path := makeSegment(t)
	layout := make([]byte, 4)
	binary.NativeEndian.PutUint32(layout, 99)
	poke(t, path, 8, layout) // the layout version
	if _, err := Open(name, 1); !errors.Is(err, ErrIncompatible) {
		t.Errorf("Open of another layout = %v, want ErrIncompatible", err)
	}
}

func TestErrAccessDenied(t *testing.T) {
	name, path := makeSegment(t) // mode 0600, owned by us
	if os.Geteuid() == 0 {
		// Root passes every permission check: ask another user instead.
		_, line := startChild(t, "denied", name, nil)
		if want := strconv.Itoa(statusEAccessDenied); line != want {
			t.Fatalf("the child as nobody got %q, want status %s (access denied)", line, want)
		}
		return
	}
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(path, 0600)
	if _, err := Open(name, 1); !errors.Is(err, ErrAccessDenied) {
		t.Errorf("Open without permission = %v, want ErrAccessDenied", err)
	}
}

func TestErrBusy(t *testing.T) {
	name := uniqueName(t, "busy")
	if _, line := startChild(t, "open", name, nil); line != "open" {
		t.Fatalf("child said %q", line)
	}
	if err := Remove(name, onBackend()...); !errors.Is(err, ErrBusy) {
		t.Fatalf("Remove while another process has the name open = %v, want ErrBusy", err)
	}
	if err := Remove(name, onBackend(WithForce())...); err != nil {
		t.Fatalf("Remove with WithForce = %v", err)
	}
}
