// SPDX-License-Identifier: MIT

//go:build !cgo

package whsem

// The binding calls libwhsem, a C library, through cgo: without cgo there
// is nothing to build. Rather than leave the compiler to complain about
// names that only cgo defines, this constant fails the build with the
// reason in its message (kept short: the compiler shortens long strings).
const _ uint = "whsem needs cgo: CGO_ENABLED=1, a C compiler and libwhsem"
