// SPDX-License-Identifier: MIT

package whsem

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libwhsem/libwhsem/bindings/go/internal/cbench"
)

// The uncontended per-call cost of the Go API, of the raw cgo layer under
// it, and of the same pairs made inside one C call; bench.sh prints them
// side by side with the ratios.

func BenchmarkTryAcquireRelease(b *testing.B) {
	sem := openT(b, "bench-api", 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tk, ok, err := sem.TryAcquire()
		if !ok || err != nil {
			b.Fatal(ok, err)
		}
		tk.Release()
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	sem := openT(b, "bench-ctx", 1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tk, err := sem.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		tk.Release()
	}
}

func BenchmarkRawAcquireRelease(b *testing.B) {
	sem := openT(b, "bench-raw", 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, st, _ := rawAcquire(sem.h, 0, 0)
		if st != statusOk {
			b.Fatal(st)
		}
		rawRelease(ticketHandle(v))
	}
}

func BenchmarkCAcquireRelease(b *testing.B) {
	sem := openT(b, "bench-c", 1)
	b.ResetTimer()
	if err := cbench.AcquireReleasePairs(semHandle(sem), b.N); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkCgoCall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		cbench.Noop()
	}
}

// On PostgreSQL (WHSEM_GO_TEST_BACKEND; bench.sh with BACKEND=pg), a pair
// costs a round trip to the server, so what matters is the binding's
// share of it. These time every pair and report the median and p99 in
// microseconds, defined as whsem_bench_pg's figure (a) defines them (200
// pairs of warm-up, nearest-rank percentiles), for bench.sh to put side
// by side with it.

func BenchmarkPgTryAcquireRelease(b *testing.B) {
	benchPgPairs(b, func(sem *Semaphore) (Ticket, error) {
		tk, ok, err := sem.TryAcquire()
		if !ok && err == nil {
			b.Fatal("no free ticket")
		}
		return tk, err
	})
}

func BenchmarkPgAcquireRelease(b *testing.B) {
	ctx := context.Background()
	benchPgPairs(b, func(sem *Semaphore) (Ticket, error) { return sem.Acquire(ctx) })
}

func benchPgPairs(b *testing.B, acquire func(*Semaphore) (Ticket, error)) {
	if testBackend == "" {
		b.Fatal("set WHSEM_GO_TEST_BACKEND to a PostgreSQL connection string (bench.sh does with BACKEND=pg)")
	}
	sem := openT(b, "bench-pg", 2)
	pair := func() {
		tk, err := acquire(sem)
		if err != nil {
			b.Fatal(err)
		}
		tk.Release()
	}
	for i := 0; i < 200; i++ {
		pair()
	}
	us := make([]float64, b.N)
	b.ResetTimer()
	for i := range us {
		t0 := time.Now()
		pair()
		us[i] = float64(time.Since(t0).Nanoseconds()) / 1e3
	}
	b.StopTimer()
	slices.Sort(us)
	b.ReportMetric(nearestRank(us, 50), "median-us/pair")
	b.ReportMetric(nearestRank(us, 99), "p99-us/pair")
}

func nearestRank(sorted []float64, p float64) float64 {
	i := int(p/100*float64(len(sorted))+0.999999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
