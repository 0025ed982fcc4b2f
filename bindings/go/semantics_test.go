// SPDX-License-Identifier: MIT

package whsem

import (
	"context"
	"errors"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOpenReportsFinalizedNameAndMaxCount(t *testing.T) {
	name := uniqueName(t, "names")
	sem, err := Open(name, 3, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	if got, want := sem.Name(), `Global\`+name; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	if sem.MaxCount() != 3 {
		t.Errorf("MaxCount() = %d, want 3", sem.MaxCount())
	}
	other, err := OpenExisting(name, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.MaxCount() != 3 || other.Name() != sem.Name() {
		t.Errorf("OpenExisting: %q max %d, want %q max 3", other.Name(), other.MaxCount(), sem.Name())
	}
	same, err := Open(`Global\`+name, 3, onBackend(WithExactName())...)
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	if same.Name() != sem.Name() {
		t.Errorf("exact name %q, want %q", same.Name(), sem.Name())
	}
}

func TestSafeName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"abc", `Global\abc`},
		{`Global\abc`, `Global\abc`},
		{"", `Global\EMPTYz4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==`},
		{"ünïcødé ✓", `Global\ünïcødé ✓`},
	} {
		got, err := SafeName(c.in)
		if err != nil || got != c.want {
			t.Errorf("SafeName(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	long := strings.Repeat("x", 300)
	got, err := SafeName(long)
	if err != nil || !strings.HasPrefix(got, `Global\`) || len(got) > 260 || got == `Global\`+long {
		t.Errorf("SafeName(300 x) = %q (%d), %v; want a hashed name of at most 260", got, len(got), err)
	}
	if hashed, _ := SafeName(`a\b`); hashed == `Global\a\b` || !strings.HasPrefix(hashed, `Global\`) {
		t.Errorf(`SafeName("a\\b") = %q, want it hashed`, hashed)
	}
}

func TestTryAcquireTakesUpToMaxCount(t *testing.T) {
	sem := openT(t, "try", 3)
	var held []Ticket
	for i := 0; i < 3; i++ {
		tk, ok, err := sem.TryAcquire()
		if err != nil || !ok || tk == (Ticket{}) {
			t.Fatalf("TryAcquire #%d = %v, %v, %v", i, tk, ok, err)
		}
		held = append(held, tk)
	}
	if tk, ok, err := sem.TryAcquire(); ok || tk != (Ticket{}) || err != nil {
		t.Fatalf("4th TryAcquire = %v, %v, %v; want nothing", tk, ok, err)
	}
	if in := info(t, sem); in.Free != 0 || in.MaxCount != 3 {
		t.Errorf("Info = %+v, want 0 free of 3", in)
	}
	if err := held[0].Release(); err != nil {
		t.Fatal(err)
	}
	tk, ok, err := sem.TryAcquire()
	if !ok || err != nil {
		t.Fatalf("TryAcquire after a release = %v, %v", ok, err)
	}
	held[0] = tk
	for _, tk := range held {
		if err := tk.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if in := info(t, sem); in.Free != 3 {
		t.Errorf("Free = %d after releasing all, want 3", in.Free)
	}
}

func TestReleaseIsIdempotentAndConcurrencySafe(t *testing.T) {
	sem := openT(t, "release", 2)
	other, _, _ := sem.TryAcquire()
	defer other.Release()
	tk, ok, err := sem.TryAcquire()
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- tk.Release()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Release: %v", err)
		}
	}
	// Exactly one ticket went back: the other one is still held.
	if in := info(t, sem); in.Free != 1 {
		t.Errorf("Free = %d, want 1", in.Free)
	}
	if err := tk.Release(); err != nil {
		t.Errorf("another Release = %v, want nil", err)
	}
	var none Ticket
	if err := none.Release(); err != nil {
		t.Errorf("zero Ticket Release = %v, want nil", err)
	}
}

func TestReleasingAStaleCopyLeavesTheNextTicketAlone(t *testing.T) {
	sem := openT(t, "stale", 1)
	for i := 0; i < 100; i++ {
		first, ok, err := sem.TryAcquire()
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		copied := first
		first.Release()
		next, ok, err := sem.TryAcquire()
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		if err := copied.Release(); err != nil {
			t.Fatal(err)
		}
		if in := info(t, sem); in.Free != 0 {
			t.Fatalf("releasing a copy of a released ticket freed the next one: %+v", in)
		}
		next.Release()
	}
}

func TestAcquireWaitsForARelease(t *testing.T) {
	sem := openT(t, "wait", 1)
	first, err := sem.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		tk, err := sem.Acquire(context.Background())
		if err == nil {
			err = tk.Release()
		}
		got <- err
	}()
	eventually(t, "the second Acquire to wait", func() bool { return info(t, sem).Waiters == 1 })
	select {
	case err := <-got:
		t.Fatalf("Acquire returned %v while the only ticket was held", err)
	default:
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting Acquire did not get the released ticket within 20 s")
	}
	if in := info(t, sem); in.Free != 1 || in.Waiters != 0 {
		t.Errorf("Info = %+v, want 1 free and no waiters", in)
	}
}

func TestTicketsOutliveClose(t *testing.T) {
	name := uniqueName(t, "outlive")
	sem, err := Open(name, 1, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	tk, _, err := sem.TryAcquire()
	if err != nil || tk == (Ticket{}) {
		t.Fatal(err)
	}
	if err := sem.Close(); err != nil {
		t.Fatal(err)
	}
	reopened, err := OpenExisting(name, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	if _, ok, _ := reopened.TryAcquire(); ok {
		t.Fatal("the ticket of a closed handle was lost")
	}
	if err := tk.Release(); err != nil {
		t.Fatal(err)
	}
	if tk2, ok, err := reopened.TryAcquire(); !ok || err != nil {
		t.Fatalf("TryAcquire after Release = %v, %v", ok, err)
	} else {
		tk2.Release()
	}
}

func TestClosedSemaphore(t *testing.T) {
	sem, err := Open(uniqueName(t, "closed"), 1, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := sem.Close(); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{"Close": sem.Close()}
	_, _, checks["TryAcquire"] = sem.TryAcquire()
	_, checks["Acquire"] = sem.Acquire(context.Background())
	_, checks["Info"] = sem.Info()
	for what, err := range checks {
		if !errors.Is(err, ErrInvalidHandle) {
			t.Errorf("%s on a closed semaphore = %v, want ErrInvalidHandle", what, err)
		}
	}
	if sem.Name() == "" || sem.MaxCount() != 1 {
		t.Errorf("Name and MaxCount must survive Close: %q %d", sem.Name(), sem.MaxCount())
	}
}

func TestCloseEndsWaits(t *testing.T) {
	name := uniqueName(t, "closewait")
	holder, err := Open(name, 1, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	tk, _, _ := holder.TryAcquire()
	defer tk.Release()
	sem, err := Open(name, 1, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := sem.Acquire(context.Background())
		got <- err
	}()
	eventually(t, "the Acquire to wait", func() bool { return info(t, holder).Waiters == 1 })
	if err := sem.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, ErrInvalidHandle) {
			t.Fatalf("Acquire ended by Close = %v, want ErrInvalidHandle", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not end the waiting Acquire within 20 s")
	}
}

func TestInfoListsHolders(t *testing.T) {
	sem := openT(t, "info", 4)
	a, _, _ := sem.TryAcquire()
	b, _, _ := sem.TryAcquire()
	defer a.Release()
	defer b.Release()
	in := info(t, sem)
	if in.MaxCount != 4 || in.Free != 2 || in.Processes != 1 || len(in.Holders) != 1 {
		t.Fatalf("Info = %+v, want max 4, 2 free, 1 process, 1 holder", in)
	}
	h := in.Holders[0]
	if h.PID != os.Getpid() || h.Tickets != 2 {
		t.Errorf("holder = %+v, want pid %d with 2 tickets", h, os.Getpid())
	}
	if h.Since.IsZero() || time.Since(h.Since) > time.Hour || time.Until(h.Since) > time.Minute {
		t.Errorf("holder since %v: not about now", h.Since)
	}
}

// On the backend under test: ListWith and Remove take WithBackend as Open
// does.
func TestListAndRemove(t *testing.T) {
	name := uniqueName(t, "list")
	sem, err := Open(name, 1, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	names, err := ListWith(onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, sem.Name()) {
		t.Fatalf("ListWith(%q) lacks %q", testBackend, sem.Name())
	}
	// List is this machine's: it has the name exactly when that is the
	// backend under test.
	if local, err := List(); err != nil || slices.Contains(local, sem.Name()) != (testBackend == "") {
		t.Fatalf("List() = %v, %v: having %q is not %v", local, err, sem.Name(), testBackend == "")
	}
	sem.Close()
	if err := Remove(name, onBackend()...); err != nil {
		t.Fatal(err)
	}
	if names, _ := ListWith(onBackend()...); slices.Contains(names, `Global\`+name) {
		t.Fatalf("ListWith(%q) still has %q after Remove", testBackend, name)
	}
	if _, err := OpenExisting(name, onBackend()...); !errors.Is(err, ErrNotFound) {
		t.Fatalf("OpenExisting after Remove = %v, want ErrNotFound", err)
	}
	if err := Remove(name, onBackend()...); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove of a removed name = %v, want ErrNotFound", err)
	}
	// Removing made room for a fresh semaphore with another max count.
	fresh, err := Open(name, 5, onBackend()...)
	if err != nil {
		t.Fatal(err)
	}
	fresh.Close()
	if err := Remove(`Global\`+name, onBackend(WithExactName())...); err != nil {
		t.Fatal(err)
	}
	// What does not apply to a list is refused, not ignored.
	for what, opt := range map[string]Option{
		"WithExactName": WithExactName(), "WithForce": WithForce(), "WithMode": WithMode(0600),
		"WithAbandonmentCheck": WithAbandonmentCheck(time.Second), "WithConnectionCheck": WithConnectionCheck(time.Second),
	} {
		if _, err := ListWith(onBackend(opt)...); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ListWith with %s = %v, want ErrInvalidArgument", what, err)
		}
	}
}

func TestOptions(t *testing.T) {
	name := uniqueName(t, "mode")
	sem, err := Open(name, 1, WithMode(0640), WithAbandonmentCheck(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Close()
	st, err := os.Stat("/dev/shm/whsem." + name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0640 {
		t.Errorf("segment mode %v, want 0640", st.Mode().Perm())
	}
	never, err := Open(name, 1, WithAbandonmentCheck(-1))
	if err != nil {
		t.Fatal(err)
	}
	never.Close()
	for what, opts := range map[string][]Option{
		"zero check period": {WithAbandonmentCheck(0)},
		"mode 0":            {WithMode(0)},
		"mode with type":    {WithMode(os.ModeDir | 0600)},
		"force on open":     {WithForce()},
	} {
		if _, err := Open(name, 1, opts...); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Open with %s = %v, want ErrInvalidArgument", what, err)
		}
	}
	if err := Remove(name, WithMode(0600)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Remove with a mode = %v, want ErrInvalidArgument", err)
	}
}

// The options of the PostgreSQL backend are checked before anything is
// opened: what does not apply is an error, never silently ignored, and
// nothing of a connection string ever shows in a message.
func TestBackendOptions(t *testing.T) {
	name := uniqueName(t, "backendopts")
	for what, opts := range map[string][]Option{
		"a mode on PostgreSQL":       {WithBackend("host=/nonexistent"), WithMode(0600)},
		"a NUL byte in the backend":  {WithBackend("host=x\x00password=hunter2")},
		"a zero connection check":    {WithConnectionCheck(0)},
		"a zero check on PostgreSQL": {WithBackend("host=/nonexistent"), WithConnectionCheck(0)},
	} {
		_, err := Open(name, 1, opts...)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Open with %s = %v, want ErrInvalidArgument", what, err)
		} else if msg := err.Error(); containsAny(msg, "hunter2", "nonexistent") {
			t.Errorf("Open with %s: the message shows the connection string: %s", what, msg)
		}
	}
	if err := Remove(name, WithConnectionCheck(time.Second)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Remove with a connection check = %v, want ErrInvalidArgument", err)
	}
	// List and Remove read the backend as Open does.
	nul := WithBackend("host=x\x00password=hunter2")
	if err := Remove(name, nul); !errors.Is(err, ErrInvalidArgument) || containsAny(err.Error(), "hunter2") {
		t.Errorf("Remove with a NUL byte in the backend = %v, want ErrInvalidArgument without the string", err)
	}
	if _, err := ListWith(nul); !errors.Is(err, ErrInvalidArgument) || containsAny(err.Error(), "hunter2") {
		t.Errorf("ListWith with a NUL byte in the backend = %v, want ErrInvalidArgument without the string", err)
	}
	unreachable := WithBackend("host=/nonexistent password=hunter2")
	if err := Remove(name, unreachable); !errors.Is(err, ErrUnavailable) || containsAny(err.Error(), "hunter2") {
		t.Errorf("Remove on an unreachable server = %v, want ErrUnavailable without the password", err)
	}
	if _, err := ListWith(unreachable); !errors.Is(err, ErrUnavailable) || containsAny(err.Error(), "hunter2") {
		t.Errorf("ListWith on an unreachable server = %v, want ErrUnavailable without the password", err)
	}
	// The empty backend is this machine, and a connection check does not
	// apply there, so configurations may set both whatever the backend.
	sem, err := Open(name, 1, WithBackend(""), WithConnectionCheck(time.Second), WithMode(0600))
	if err != nil {
		t.Fatalf("Open on this machine with a connection check = %v", err)
	}
	sem.Close()
	if sem, err = Open(name, 1, WithConnectionCheck(-1)); err != nil {
		t.Fatalf("Open with the connection check off = %v", err)
	}
	sem.Close()
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestFinalizerReleasesADroppedTicket(t *testing.T) {
	sem := openT(t, "finalizer", 1)
	func() {
		if _, ok, err := sem.TryAcquire(); !ok || err != nil {
			t.Fatal(ok, err)
		}
		// The ticket is dropped here without Release.
	}()
	eventually(t, "the finalizer to release the dropped ticket", func() bool {
		runtime.GC()
		tk, ok, _ := sem.TryAcquire()
		tk.Release()
		return ok
	})
}

func TestVersion(t *testing.T) {
	if v := Version(); !strings.HasPrefix(v, "1.") {
		t.Errorf("Version() = %q, want 1.x", v)
	}
}
