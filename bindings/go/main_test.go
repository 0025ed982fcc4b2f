// SPDX-License-Identifier: MIT

package whsem

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the child process of the cross-process tests:
// with WHSEM_GO_CHILD set it does that job instead of running tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("WHSEM_GO_CHILD"); mode != "" {
		os.Exit(child(mode, os.Getenv("WHSEM_GO_CHILD_NAME")))
	}
	os.Exit(m.Run())
}

// child runs one child job and returns its exit status. It reports
// progress on stdout, one line per step, for the parent to wait on.
func child(mode, name string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	switch mode {
	case "hold": // take a ticket, say so, and release it on SIGUSR1
		sem, err := Open(name, 1, onBackend()...)
		if err != nil {
			return fail(err)
		}
		release := make(chan os.Signal, 1)
		signal.Notify(release, syscall.SIGUSR1)
		tk, err := sem.Acquire(context.Background())
		if err != nil {
			return fail(err)
		}
		fmt.Println("held")
		<-release
		if err := tk.Release(); err != nil {
			return fail(err)
		}
		return 0
	case "open": // only have the name open, until killed
		if _, err := Open(name, 1, onBackend()...); err != nil {
			return fail(err)
		}
		fmt.Println("open")
		select {}
	case "denied": // as another user, opening must be refused
		if err := becomeNobody(); err != nil {
			return fail(err)
		}
		_, err := Open(name, 1)
		fmt.Println(errorKind(err))
		return 0
	case "open-report": // open on the backend under test, say how it went
		_, err := Open(name, 1, onBackend()...)
		var e *Error
		detail := ""
		if errors.As(err, &e) {
			detail = e.Detail
		}
		fmt.Println(errorKind(err), detail)
		return 0
	case "waiters", "blocking":
		if err := waitersChild(mode, name); err != nil {
			return fail(err)
		}
		return 0
	}
	return fail(fmt.Errorf("unknown child mode %q", mode))
}

func becomeNobody() error {
	// Go applies these to every thread of the process.
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(65534); err != nil {
		return err
	}
	return syscall.Setuid(65534)
}

// testBackend is the backend the suite runs on: "" for this machine, or
// the PostgreSQL database named by WHSEM_GO_TEST_BACKEND, which CTest's
// go_test_pg sets to the "pg" fixture's cluster. Every test that applies
// to both backends opens its semaphores through onBackend (the children
// inherit the variable); the ones that do not are listed, with why, in
// CMakeLists.txt.
var testBackend = os.Getenv("WHSEM_GO_TEST_BACKEND")

// onBackend adds the backend under test to opts.
func onBackend(opts ...Option) []Option {
	if testBackend == "" {
		return opts
	}
	return append([]Option{WithBackend(testBackend)}, opts...)
}

var nameCounter atomic.Int64

// uniqueName gives every test its own semaphore (tests of other processes
// and earlier runs must not meet it) and removes it from the backend under
// test when the test ends.
func uniqueName(t testing.TB, what string) string {
	name := fmt.Sprintf("whsem-go-%s-%d-%d-%d", what, os.Getpid(), nameCounter.Add(1), time.Now().UnixNano()%1000000)
	t.Cleanup(func() {
		if err := Remove(name, onBackend(WithForce())...); err != nil && !isNotFound(err) {
			t.Errorf("removing %s: %v", name, err)
		}
	})
	return name
}

func isNotFound(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Err == ErrNotFound
}

func openT(t testing.TB, what string, max int, opts ...Option) *Semaphore {
	t.Helper()
	sem, err := Open(uniqueName(t, what), max, onBackend(opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { sem.Close() })
	return sem
}

// eventually polls cond every few milliseconds for up to 20 s: generous,
// because the machine may be slow and busy.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func info(t testing.TB, sem *Semaphore) Info {
	t.Helper()
	in, err := sem.Info()
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	return in
}

// startChild runs this test binary as a child doing mode on name, and waits
// for its first line of output. The child is killed when the test ends.
func startChild(t *testing.T, mode, name string, attr *syscall.SysProcAttr, extraEnv ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WHSEM_GO_CHILD="+mode, "WHSEM_GO_CHILD_NAME="+name)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = attr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- strings.TrimSpace(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case line := <-lines:
		return cmd, line
	case <-time.After(20 * time.Second):
		t.Fatalf("child %s said nothing within 20 s", mode)
	}
	return nil, ""
}

// errorKind names the sentinel an error wraps, for messages between processes.
func errorKind(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := err.(*Error); ok {
		if k, ok := e.Err.(*kind); ok {
			return strconv.Itoa(int(k.status))
		}
	}
	return err.Error()
}
