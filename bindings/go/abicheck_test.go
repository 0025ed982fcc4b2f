// SPDX-License-Identifier: MIT

package whsem

import (
	"errors"
	"go/format"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTheLoadedLibraryMatches(t *testing.T) {
	if err := checkLibrary(); err != nil {
		t.Fatal(err)
	}
}

// The comparison itself, against a library simulated by a lookup table.
func TestCompareABI(t *testing.T) {
	table := abiChecksums
	library := func(edit func(map[string]uint32)) func(string) uint32 {
		m := map[string]uint32{}
		for _, e := range table {
			m[e.item] = e.checksum
		}
		edit(m)
		return func(item string) uint32 { return m[item] }
	}
	same := library(func(map[string]uint32) {})
	if err := compareABI(table, same); err != nil {
		t.Errorf("identical library: %v", err)
	}
	newer := library(func(m map[string]uint32) { m["whsem_acquire_batch"] = 0x1234 })
	if err := compareABI(table, newer); err != nil {
		t.Errorf("a library with an added function must load: %v", err)
	}
	older := library(func(m map[string]uint32) { delete(m, "whsem_queue_pop") })
	err := compareABI(table, older)
	if !errors.Is(err, ErrUnsupportedLibrary) || !strings.Contains(err.Error(), "lacks whsem_queue_pop") {
		t.Errorf("a library without whsem_queue_pop: %v", err)
	}
	changed := library(func(m map[string]uint32) { m["struct whsem_info"] ^= 1 })
	err = compareABI(table, changed)
	if !errors.Is(err, ErrUnsupportedLibrary) || !strings.Contains(err.Error(), "differs for struct whsem_info") {
		t.Errorf("a library with another whsem_info: %v", err)
	}
	if strings.Contains(err.Error(), "lacks") {
		t.Errorf("a changed item reported as missing: %v", err)
	}
}

// Every Go file, the generated one included, is formatted as gofmt would.
func TestSourcesAreGofmtClean(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	more, _ := filepath.Glob("*/*/*.go")
	files = append(files, more...)
	if len(files) < 10 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		formatted, err := format.Source(src)
		if err != nil {
			t.Errorf("%s: %v", f, err)
		} else if string(formatted) != string(src) {
			t.Errorf("%s is not gofmt-clean", f)
		}
	}
}
