// SPDX-License-Identifier: MIT

package whsem

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// Every way an acquisition can end is counted once, in Info, in the
// histogram and in the history, on a name of its own.
func TestCountersCountEveryEnding(t *testing.T) {
	sem := openT(t, "counters", 1)
	start := time.Now()
	if in := info(t, sem); in.Acquisitions != 0 || in.Waits != 0 || in.Releases != 0 {
		t.Fatalf("a new name has counted already: %+v", in)
	} else if in.Created.Before(start.Add(-time.Minute)) || in.Created.After(time.Now().Add(time.Minute)) {
		t.Errorf("created %v: not about now (%v)", in.Created, start)
	}

	held, ok, err := sem.TryAcquire() // acquisition 1
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, ok, err := sem.TryAcquire(); ok || err != nil { // no wait, no timeout
		t.Fatalf("TryAcquire of a held ticket = %v, %v", ok, err)
	}

	// Wait 1 and timeout 1: the deadline's, counted as a timeout.
	const wait = 60 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := sem.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire past its deadline = %v", err)
	}

	// Wait 2: canceled.
	ctx, cancel = context.WithCancel(context.Background())
	canceled := make(chan error, 1)
	go func() {
		_, err := sem.Acquire(ctx)
		canceled <- err
	}()
	eventually(t, "the acquisition to wait", func() bool { return info(t, sem).Waiters == 1 })
	cancel()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Acquire = %v", err)
	}

	// Wait 3: granted by the release of the held ticket (release 1,
	// acquisition 2, release 2).
	granted := make(chan error, 1)
	go func() {
		tk, err := sem.Acquire(context.Background())
		if err == nil {
			err = tk.Release()
		}
		granted <- err
	}()
	eventually(t, "the acquisition to wait", func() bool { return info(t, sem).Waiters == 1 })
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	if err := <-granted; err != nil {
		t.Fatal(err)
	}
	heldFor := time.Since(start)

	in := info(t, sem)
	// The tries (TryAcquire's, and the one each Acquire makes before it
	// waits) are not timeouts.
	want := Info{Acquisitions: 2, Timeouts: 1, Cancellations: 1, Waits: 3, Releases: 2}
	if in.Acquisitions != want.Acquisitions || in.Timeouts != want.Timeouts ||
		in.Cancellations != want.Cancellations || in.Waits != want.Waits || in.Releases != want.Releases {
		t.Errorf("counters = %d acquisitions, %d timeouts, %d cancellations, %d waits, %d releases; want %d, %d, %d, %d, %d",
			in.Acquisitions, in.Timeouts, in.Cancellations, in.Waits, in.Releases,
			want.Acquisitions, want.Timeouts, want.Cancellations, want.Waits, want.Releases)
	}
	// Loose bounds: the deadline's wait lasted about its 60 ms (the
	// library may start timing it after its first look), the first ticket
	// was held through it (a coarse clock may miss a tick of it); upper
	// bounds, what the test's own clock saw.
	if in.WaitTime < wait*9/10 || in.WaitTime > 3*heldFor {
		t.Errorf("waited %v in all, want %v ... %v", in.WaitTime, wait*9/10, 3*heldFor)
	}
	if in.HoldTime < wait/2 || in.HoldTime > 2*heldFor {
		t.Errorf("held %v in all, want %v ... %v", in.HoldTime, wait/2, 2*heldFor)
	}

	h, err := sem.WaitHistogram()
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Buckets) != constWaitBuckets || h.Total() != in.Waits {
		t.Fatalf("histogram of %d buckets counting %d waits, want %d buckets counting %d", len(h.Buckets), h.Total(), constWaitBuckets, in.Waits)
	}
	// The deadline's wait sits in a bucket of waits of 32 ms or more.
	var long uint64
	for _, b := range h.Buckets {
		if b.Min >= 32*time.Millisecond {
			long += b.Count
		}
	}
	if p100, ok := h.Percentile(1); long < 1 || !ok || p100 < 32*time.Millisecond {
		t.Errorf("the %v wait is not in the histogram's long waits (%d there, slowest %v): %+v", wait, long, p100, h)
	}

	history, err := sem.WaitersHistory()
	if err != nil {
		t.Fatal(err)
	}
	most := 0
	for _, n := range history {
		most = max(most, n)
	}
	if len(history) < 60 || most != 1 {
		t.Errorf("history of %d seconds, most waiting %d; want 60 or more seconds, with 1 waiting: %v", len(history), most, history)
	}
}

func TestCountersOfAClosedSemaphore(t *testing.T) {
	sem := openT(t, "counters-closed", 1)
	sem.Close()
	if _, err := sem.WaitHistogram(); !errors.Is(err, ErrInvalidHandle) {
		t.Errorf("WaitHistogram of a closed semaphore = %v, want ErrInvalidHandle", err)
	}
	if _, err := sem.WaitersHistory(); !errors.Is(err, ErrInvalidHandle) {
		t.Errorf("WaitersHistory of a closed semaphore = %v, want ErrInvalidHandle", err)
	}
}

// The buckets' bounds follow WHSEM_WAIT_BUCKETS, and percentiles are
// interpolated inside a bucket on its scale.
func TestWaitHistogramBoundsAndPercentiles(t *testing.T) {
	counts := make([]uint64, constWaitBuckets)
	h := newWaitHistogram(counts)
	if b := h.Buckets[0]; b.Min != 0 || b.Max != 1024*time.Nanosecond {
		t.Errorf("first bucket %v ... %v, want 0 ... 1.024µs", b.Min, b.Max)
	}
	for i := 1; i < len(h.Buckets); i++ {
		if b := h.Buckets[i]; b.Min != h.Buckets[i-1].Max || (i < len(h.Buckets)-1 && b.Max != 2*b.Min) {
			t.Errorf("bucket %d: %v ... %v after one ending at %v", i, b.Min, b.Max, h.Buckets[i-1].Max)
		}
	}
	if b := h.Buckets[len(h.Buckets)-1]; b.Min != 1<<40 || b.Max != math.MaxInt64 {
		t.Errorf("last bucket %v ... %v, want 2^40 ns with no end", b.Min, b.Max)
	}
	if d, ok := h.Percentile(0.5); ok {
		t.Errorf("the median of no waits = %v", d)
	}

	counts[11] = 4 // four waits of 2^20 ... 2^21 ns
	counts[0] = 4  // four of under 1.024 µs
	h = newWaitHistogram(counts)
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{
		{0, 0},
		{0.25, 512},      // half-way through the first bucket, linearly
		{0.5, 1024},      // the first bucket's end
		{0.75, 1482910},  // 2^20 ns × √2: half-way on the log scale
		{1, 2 * 1048576}, // the last wait's bucket's end
		{0.625, 1246974}, // 2^20 ns × 2^0.25
	} {
		got, ok := h.Percentile(c.p)
		if !ok || math.Abs(float64(got-c.want)) > 1 {
			t.Errorf("Percentile(%v) = %v, %v; want %v", c.p, got, ok, c.want)
		}
	}
	for _, p := range []float64{-0.1, 1.01, math.NaN()} {
		if d, ok := h.Percentile(p); ok {
			t.Errorf("Percentile(%v) = %v, want not ok", p, d)
		}
	}
	counts[len(counts)-1] = 100
	if d, ok := newWaitHistogram(counts).Percentile(0.99); !ok || d != 1<<40 {
		t.Errorf("a percentile among the longest waits = %v, %v; want the last bucket's start, 2^40 ns", d, ok)
	}
}
