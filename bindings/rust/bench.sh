#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Rust binding's cost over direct C calls: uncontended try-acquire +
# release per pair, safe API vs the same calls through whsem::sys, measured
# in one process with interleaved repetitions; then, for reference, the
# core C benchmark's figure (a) for libwhsem from the same build.
#
#   bindings/rust/bench.sh [--pairs N] [--reps R]
#
# With BACKEND=pg it measures the same pair on a PostgreSQL-backed name
# instead, against a throw-away cluster started here (tests/pg/cluster.py,
# unix socket): the example's --backend mode and the C benchmark's figure
# (a) (whsem_bench_pg --parts a), one process each, in turns (which goes
# first alternates), PG_REPS times (default 7) with PG_ITERATIONS timed
# pairs each (default 2000, after 200 warm-up), after one round of each
# that is not counted; then the medians and the ratio Rust/C:
#
#   BACKEND=pg bindings/rust/bench.sh
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

if [ "${BACKEND:-}" = pg ]; then
    cmake --build "$build" -j2 --target whsem_bench_pg >/dev/null
    cargo build --offline --release --quiet --example bench
    rust_bench="$CARGO_TARGET_DIR/release/examples/bench"
    c_bench="$build/tests/bench/whsem_bench_pg"
    iterations="${PG_ITERATIONS:-2000}"
    reps="${PG_REPS:-7}"
    state="$(mktemp -u /tmp/whsem-bench-rust-pg.XXXXXX).json"
    python3 "$root/tests/pg/cluster.py" start "$state" >/dev/null
    trap 'python3 "$root/tests/pg/cluster.py" stop "$state"' EXIT
    eval "$(python3 "$root/tests/pg/cluster.py" env "$state")"
    # One figure: the median in microseconds from a RESULT line.
    rust() { "$rust_bench" --backend "$WHSEM_PG_SOCKET" --iterations "$iterations" 2>/dev/null |
             awk '$1 == "RESULT" && $3 == "a_median_us" { print $4 }'; }
    c() { "$c_bench" --parts a --iterations "$iterations" --results c "$WHSEM_PG_SOCKET" 2>/dev/null |
          awk '$1 == "RESULT" && $3 == "a_median_us" { print $4 }'; }
    # A fresh cluster's first connections are slower: one round of each,
    # not counted, warms it.
    rust >/dev/null
    c >/dev/null
    echo "PostgreSQL (unix socket), uncontended try-acquire + release, median of $iterations pairs per run:"
    results=""
    for rep in $(seq 1 "$reps"); do
        if [ $((rep % 2)) -eq 1 ]; then r="$(rust)"; cu="$(c)"; else cu="$(c)"; r="$(rust)"; fi
        printf '  run %d: Rust %s us, C %s us, ratio %s\n' "$rep" "$r" "$cu" "$(awk -v r="$r" -v c="$cu" 'BEGIN { printf "%.3f", r / c }')"
        results="$results$r $cu"$'\n'
    done
    printf '%s' "$results" | awk -v reps="$reps" '
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        { rust[NR] = $1; c[NR] = $2; ratio[NR] = $1 / $2 }
        END {
            m = median(ratio, NR)
            printf "medians over %d runs: Rust %.1f us, C %.1f us; ratio Rust/C %.3fx (median of the runs'"'"' ratios)\n", NR, median(rust, NR), median(c, NR), m
            printf "target <= 1.1x: %s\n", (m <= 1.1 ? "PASS" : "MISS")
        }'
    exit 0
fi

cargo run --offline --release --quiet --example bench -- "$@"

bench="$build/tests/bench/whsem_bench"
if [ -x "$bench" ]; then
    echo
    echo "core C benchmark ($bench, figure (a), libwhsem only):"
    "$bench" --benchmark_filter='a_uncontended/whsem$' --benchmark_repetitions=5 2>/dev/null |
        grep -E '^a_uncontended/whsem.*(median|mean)|^\| \(a\) ns/pair' || true
fi
