// SPDX-License-Identifier: MIT

package whsem

import (
	"context"
	"testing"

	"libwhsem/go/whsem/internal/cbench"
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
