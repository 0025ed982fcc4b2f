// SPDX-License-Identifier: MIT

package whsem

/*
#include <whsem.h>
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// The header this package was compiled against; the library must have the
// same major version.
const headerMajor = C.WHSEM_VERSION_MAJOR

var (
	libraryOnce sync.Once
	libraryErr  error
)

// checkLibrary verifies, once per process, that the loaded libwhsem
// implements every item of the ABI this package was generated from, so that
// an old or different library is a clear error instead of misbehaviour.
func checkLibrary() error {
	libraryOnce.Do(func() {
		if major := uint32(rawVersion()) >> 16; major != headerMajor {
			libraryErr = fmt.Errorf("%w: libwhsem %s is major version %d, this package needs %d",
				ErrUnsupportedLibrary, C.GoString(rawVersionString()), major, headerMajor)
			return
		}
		libraryErr = compareABI(abiChecksums, libraryChecksum)
	})
	return libraryErr
}

func libraryChecksum(item string) uint32 {
	c := C.CString(item)
	defer C.free(unsafe.Pointer(c))
	return uint32(rawAbiChecksum(c))
}

// compareABI checks every item the binding was generated from against the
// library's checksums (lookup). Items the library has beyond these (a newer
// library) are not looked at, so they cannot make it fail.
func compareABI(table []struct {
	item     string
	checksum uint32
}, lookup func(item string) uint32) error {
	var missing, differ []string
	for _, e := range table {
		switch got := lookup(e.item); got {
		case e.checksum:
		case 0:
			missing = append(missing, e.item)
		default:
			differ = append(differ, e.item)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "the library lacks "+strings.Join(missing, ", ")+" (it is older than this package)")
	}
	if len(differ) > 0 {
		parts = append(parts, "the library's signature differs for "+strings.Join(differ, ", "))
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnsupportedLibrary, strings.Join(parts, "; "))
}
