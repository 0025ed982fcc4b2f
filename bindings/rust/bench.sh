#!/usr/bin/env bash
# The Rust binding's cost over direct C calls: uncontended try-acquire +
# release per pair, safe API vs the same calls through whsem::sys, measured
# in one process with interleaved repetitions; then, for reference, the
# core C benchmark's figure (a) for libwhsem from the same build.
#
#   bindings/rust/bench.sh [--pairs N] [--reps R]
#
# BUILD_DIR (default <repo>/build-bench, a Release tree as tests/bench/run.sh
# uses) is configured and built if needed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"

if [ ! -f "$build/pkgconfig-uninstalled/whsem-uninstalled.pc" ] || [ ! -e "$build/libwhsem.so" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j2 --target whsem >/dev/null
cmake --build "$build" -j2 --target whsem_bench >/dev/null 2>&1 || true

export PKG_CONFIG_PATH="$build/pkgconfig-uninstalled"
export LD_LIBRARY_PATH="$build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CARGO_TARGET_DIR="$build/bindings/rust/target"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
cd "$here"
cargo run --offline --release --quiet --example bench -- "$@"

bench="$build/tests/bench/whsem_bench"
if [ -x "$bench" ]; then
    echo
    echo "core C benchmark ($bench, figure (a), libwhsem only):"
    "$bench" --benchmark_filter='a_uncontended/whsem$' --benchmark_repetitions=5 2>/dev/null |
        grep -E '^a_uncontended/whsem.*(median|mean)|^\| \(a\) ns/pair' || true
fi
