#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The per-call cost of the Go binding next to the C figure, with ratios.
# A benchmark, not a test: the exit code is non-zero only if something
# fails to build or run.
#
#   bindings/go/bench.sh
#   REPS=10 BENCHTIME=2s bindings/go/bench.sh
#   BACKEND=pg bindings/go/bench.sh
#
# It measures, in one run, an uncontended acquire + release pair made
#   - through the Go API (TryAcquire + Ticket.Release, and Acquire(ctx) +
#     Release, whose fast path is the same try),
#   - through the raw cgo layer (two cgo calls, nothing else),
#   - in C, by a loop that makes all the pairs inside one cgo call (so
#     cgo costs nothing there), and by the core benchmark binary
#     whsem_bench (figure a_uncontended/whsem), if it is built,
# plus the bare cost of one cgo call. Raw cgo minus C is what crossing
# into C costs per pair (two crossings).
#
# With BACKEND=pg it measures the same pair on a PostgreSQL-backed name
# instead, on a throw-away cluster it starts (tests/pg/cluster.py, over
# the unix socket) and stops: through the Go API (TryAcquire + Release,
# Acquire(ctx) + Release) and in C (whsem_bench_pg --parts a, figure (a)),
# REPS times each, interleaved (the order alternates, so that a drift of
# the machine weighs on both), and prints the medians and the ratio Go/C.
# Both time every pair and take the median of ITERATIONS (default 2000)
# pairs after 200 of warm-up.
#
# Environment: BUILD_DIR (default <repo>/build-bench, the Release tree of
# tests/bench/run.sh; configured and built here if needed), REPS (default
# 5: medians over that many runs), BENCHTIME (default 1s), GO (default
# /usr/lib/go-1.23/bin/go, else go from PATH), BACKEND ("" = this machine,
# or pg), ITERATIONS (BACKEND=pg: pairs per run, default 2000).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
reps=${REPS:-5}
benchtime=${BENCHTIME:-1s}
backend=${BACKEND:-}
iterations=${ITERATIONS:-2000}
case "$backend" in
    "") targets=(whsem whsem_bench) ;;
    pg) targets=(whsem whsem_bench_pg) ;;
    *) echo "bench.sh: BACKEND is \"\" (this machine) or pg, not $backend" >&2; exit 2 ;;
esac
go=${GO:-/usr/lib/go-1.23/bin/go}
[ -x "$go" ] || go=$(command -v go) || { echo "bench.sh: no Go toolchain (set GO)" >&2; exit 1; }

say() { printf '+ %s\n' "$*" >&2; }

if ! grep -qs '^CMAKE_BUILD_TYPE:STRING=Release$' "$build/CMakeCache.txt"; then
    say cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWHSEM_BUILD_TESTS=ON -DWHSEM_BUILD_BENCHMARKS=ON -DWHSEM_SANITIZE=
    mkdir -p "$build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWHSEM_BUILD_TESTS=ON \
        -DWHSEM_BUILD_BENCHMARKS=ON -DWHSEM_SANITIZE= >"$build/go-bench-configure.log" 2>&1 ||
        { cat "$build/go-bench-configure.log"; exit 1; }
fi
say cmake --build "$build" --target "${targets[@]}"
cmake --build "$build" --target "${targets[@]}" -j"$(nproc)" >"$build/go-bench-build.log" 2>&1 ||
    { cat "$build/go-bench-build.log"; exit 1; }

tmp=$(mktemp -d /tmp/whsem-go-bench.XXXXXX)
state=$tmp/cluster.json
cleanup() {
    if [ -e "$state" ]; then python3 "$root/tests/pg/cluster.py" stop "$state" || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

export PKG_CONFIG_PATH=$build/pkgconfig-uninstalled
export LD_LIBRARY_PATH=$build
export GOCACHE=$build/bindings/go/gocache GOPATH=$build/bindings/go/gopath
export GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GOENV=off GOWORK=off CGO_ENABLED=1

echo "machine: nproc $(nproc), $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -sr)"
echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$("$go" version), libwhsem from $build"

if [ "$backend" = pg ]; then
    say python3 "$root/tests/pg/cluster.py" start "$state"
    python3 "$root/tests/pg/cluster.py" start "$state" >&2
    eval "$(python3 "$root/tests/pg/cluster.py" env "$state")"
    conninfo=$WHSEM_PG_SOCKET
    say "(cd $here && $go test -c -o $tmp/whsem.test .)"
    (cd "$here" && "$go" test -c -o "$tmp/whsem.test" .)
    gocmd=("$tmp/whsem.test" -test.run '^$' -test.bench '^BenchmarkPg(TryAcquireRelease|AcquireRelease)$'
           -test.benchtime "${iterations}x")
    ccmd=("$build/tests/bench/whsem_bench_pg" --parts a --iterations "$iterations" --results c "$conninfo")
    say "WHSEM_GO_TEST_BACKEND='$conninfo' ${gocmd[*]}"
    say "${ccmd[*]}"
    run_go() {
        WHSEM_GO_TEST_BACKEND=$conninfo "${gocmd[@]}" >"$tmp/run.txt" 2>&1 || { cat "$tmp/run.txt"; exit 1; }
        cat "$tmp/run.txt" >>"$tmp/pg-go.txt"
    }
    run_c() { "${ccmd[@]}" >>"$tmp/pg-c.txt" 2>"$tmp/run.txt" || { cat "$tmp/run.txt"; exit 1; }; }
    for ((r = 1; r <= reps; r++)); do
        if ((r % 2)); then run_go; run_c; else run_c; run_go; fi
    done
    python3 - "$tmp/pg-go.txt" "$tmp/pg-c.txt" "$reps" "$iterations" <<'EOF'
import re, statistics, sys

go_txt, c_txt, reps, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
go = {}
for line in open(go_txt):
    m = re.match(r"BenchmarkPg(\w+?)(?:-\d+)?\s+\d+\s+[\d.]+ ns/op\s+([\d.]+) median-us/pair\s+([\d.]+) p99-us/pair", line)
    if m:
        go.setdefault(m.group(1), []).append((float(m.group(2)), float(m.group(3))))
c_med, c_p99 = [], []
for line in open(c_txt):
    f = line.split()
    if len(f) == 4 and f[0] == "RESULT" and f[2] == "a_median_us":
        c_med.append(float(f[3]))
    elif len(f) == 4 and f[0] == "RESULT" and f[2] == "a_p99_us":
        c_p99.append(float(f[3]))
if len(c_med) != reps or len(go) != 2 or any(len(v) != reps for v in go.values()):
    sys.exit(f"bench.sh: expected {reps} runs of each, got C {len(c_med)}, Go { {k: len(v) for k, v in go.items()} }")

print()
print("Uncontended acquire + release on PostgreSQL (unix socket), microseconds per pair:")
print(f"the median of {iterations} pairs in a run; the median over {reps} interleaved runs (min … max)")
print()
print("| | median µs/pair | min … max | p99 µs/pair | ratio to C |")
print("|---|---|---|---|---|")
def row(label, runs):
    meds = [m for m, _ in runs]
    ratios = [m / c for m, c in zip(meds, c_med)]
    print(f"| {label} | {statistics.median(meds):.1f} | {min(meds):.1f} … {max(meds):.1f} | "
          f"{statistics.median(p for _, p in runs):.0f} | {statistics.median(ratios):.2f}x |")
    return ratios
ratios = row("Go: TryAcquire + Release", go["TryAcquireRelease"])
row("Go: Acquire(ctx) + Release (free ticket)", go["AcquireRelease"])
row("C: whsem_bench_pg (a)", list(zip(c_med, c_p99)))
print()
print(f"Go / C: {statistics.median(ratios):.2f}x (the median of the per-run ratios, "
      f"{min(ratios):.2f} … {max(ratios):.2f}); issue 16's target: at most 1.2x")
EOF
    exit 0
fi

cmd=("$go" test -run '^$' -bench '^Benchmark(TryAcquireRelease|AcquireRelease|RawAcquireRelease|CAcquireRelease|CgoCall)$'
     -benchtime "$benchtime" -count "$reps" .)
say "(cd $here && ${cmd[*]})"
(cd "$here" && "${cmd[@]}") >"$tmp/go.txt" || { cat "$tmp/go.txt"; exit 1; }

c_bench=$build/tests/bench/whsem_bench
if [ -x "$c_bench" ]; then
    ccmd=("$c_bench" '--benchmark_filter=^a_uncontended/whsem$' --benchmark_repetitions="$reps"
          --benchmark_out="$tmp/c.json" --benchmark_out_format=json)
    say "${ccmd[*]}"
    "${ccmd[@]}" >"$tmp/c.txt" 2>&1 || { cat "$tmp/c.txt"; exit 1; }
fi

python3 - "$tmp/go.txt" "$tmp/c.json" "$reps" <<'EOF'
import json, os, re, statistics, sys

go_txt, c_json, reps = sys.argv[1], sys.argv[2], sys.argv[3]
runs = {}
for line in open(go_txt):
    m = re.match(r"Benchmark(\w+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op", line)
    if m:
        runs.setdefault(m.group(1), []).append(float(m.group(2)))
med = {k: statistics.median(v) for k, v in runs.items()}
spread = {k: (min(v), max(v)) for k, v in runs.items()}
c_core = None
if os.path.exists(c_json):
    rs = [b["real_time"] for b in json.load(open(c_json))["benchmarks"]
          if b.get("run_type") == "iteration" and b["name"] == "a_uncontended/whsem"]
    if rs:
        c_core = statistics.median(rs)

c = med["CAcquireRelease"]
rows = [
    ("Go API: TryAcquire + Release", "TryAcquireRelease"),
    ("Go API: Acquire(ctx) + Release (free ticket)", "AcquireRelease"),
    ("raw cgo: whsem_acquire + whsem_release, 2 cgo calls", "RawAcquireRelease"),
    ("C: the same pairs in one C call (cgo loop)", "CAcquireRelease"),
]
print()
print(f"Uncontended acquire + release, ns per pair (median of {reps}; min … max):")
print()
print("| | ns/pair | min … max | ratio to C |")
print("|---|---|---|---|")
for label, key in rows:
    lo, hi = spread[key]
    print(f"| {label} | {med[key]:.1f} | {lo:.1f} … {hi:.1f} | {med[key] / c:.2f}x |")
if c_core is not None:
    print(f"| C: whsem_bench a_uncontended/whsem (core benchmark) | {c_core:.1f} | | {c_core / c:.2f}x |")
print()
cgo_pair = med["RawAcquireRelease"] - c
print(f"cgo overhead per pair (raw cgo - C): {cgo_pair:.1f} ns, i.e. {cgo_pair / 2:.1f} ns per crossing; "
      f"a bare cgo call (whsem_version) costs {med['CgoCall']:.1f} ns")
print(f"Go API overhead over raw cgo: {med['TryAcquireRelease'] - med['RawAcquireRelease']:.1f} ns per pair")
print(f"Go API / C: {med['TryAcquireRelease'] / c:.2f}x"
      + (f" (against whsem_bench: {med['TryAcquireRelease'] / c_core:.2f}x)" if c_core else ""))
EOF
