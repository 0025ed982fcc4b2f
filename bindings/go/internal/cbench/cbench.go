// SPDX-License-Identifier: MIT

// Package cbench runs libwhsem's uncontended acquire + release loop inside
// one C call, so that the benchmarks of package whsem can put the cost of a
// pair in C next to the cost of the same pair made from Go through cgo: the
// difference is what crossing between Go and C costs.
package cbench

/*
#cgo pkg-config: whsem
#include <whsem.h>

static whsem_status cbench_pairs(whsem_sem sem, long n)
{
    for (long i = 0; i < n; i++) {
        whsem_ticket t;
        whsem_status st = whsem_acquire(sem, 0, 0, &t);
        if (st != WHSEM_OK) return st;
        st = whsem_release(t);
        if (st != WHSEM_OK) return st;
    }
    return WHSEM_OK;
}
*/
import "C"

import "fmt"

// AcquireReleasePairs makes n uncontended acquire + release pairs on the
// semaphore handle sem, all in C.
func AcquireReleasePairs(sem uint64, n int) error {
	if st := C.cbench_pairs(C.whsem_sem(sem), C.long(n)); st != C.WHSEM_OK {
		return fmt.Errorf("cbench: status %d", int(st))
	}
	return nil
}

// Noop crosses from Go to C and back doing nothing: the bare cost of a
// cgo call on this machine.
func Noop() { C.whsem_version() }
