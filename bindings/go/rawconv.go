// SPDX-License-Identifier: MIT

package whsem

/*
#include <whsem.h>
*/
import "C"

// Test files cannot use cgo, so they cannot name C types; the tests and
// benchmarks that drive the raw layer directly convert handles with these.

func ticketHandle(v uint64) C.whsem_ticket { return C.whsem_ticket(v) }
func cancelHandle(v uint64) C.whsem_cancel { return C.whsem_cancel(v) }
func semHandle(s *Semaphore) uint64        { return uint64(s.h) }
