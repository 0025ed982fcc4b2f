#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Per-call cost of the C# binding's TryAcquire(TimeSpan.Zero) + Dispose next
# to the C figure of the same run (whsem_bench a_uncontended/whsem: the same
# pair through the C ABI directly), and the ratio (target: at most 1.5x).
#
#   bindings/csharp/bench.sh            configures/builds <repo>/build-bench if needed
#   BUILD_DIR=build-csharp bindings/csharp/bench.sh
#
# Knobs: BUILD_DIR (a Release build tree with benchmarks), C_REPS (5, run
# twice: before and after the C# run, so that drift shows), CS_REPS (15),
# CS_PAIRS (2000000 per repetition).
#
#   BACKEND=pg bindings/csharp/bench.sh
#
# measures instead, on a PostgreSQL cluster of its own (tests/pg/cluster.py,
# unix socket), PostgresDistributedSemaphore's TryAcquire(TimeSpan.Zero) +
# Dispose against the C pair on the same cluster (whsem_bench_pg --parts a,
# figure (a)): PG_REPS (7) repetitions of each, alternating which goes
# first, each the median of PG_ITERATIONS (2000) pairs; prints the medians
# of the repetitions and the ratio (target: at most 1.2x).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${BUILD_DIR:-$repo/build-bench}"
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
c_reps="${C_REPS:-5}"
cs_reps="${CS_REPS:-15}"
cs_pairs="${CS_PAIRS:-2000000}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 \
       DOTNET_CLI_USE_MSBUILD_SERVER=0 MSBUILDDISABLENODEREUSE=1

if [ ! -e "$build/CMakeCache.txt" ] || [ ! -e "$build/libwhsem.so.1" ]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWHSEM_BUILD_TESTS=ON -DWHSEM_BUILD_BENCHMARKS=ON >/dev/null
fi
if [ "${BACKEND:-}" = pg ]; then
    cmake --build "$build" -j2 --target whsem whsem_bench_pg >/dev/null
else
    cmake --build "$build" -j2 --target whsem whsem_bench >/dev/null
fi

artifacts="$build/bindings/csharp/artifacts-bench"
dotnet build "$here/bench/LibWhsem.Bench/LibWhsem.Bench.csproj" -c Release --nologo --disable-build-servers \
    -p:UseSharedCompilation=false -p:WhsemBuildDir="$artifacts" >/dev/null
export WHSEM_LIBRARY="$build/libwhsem.so.1"
cs_bench=(dotnet "$artifacts/bin/LibWhsem.Bench/release/LibWhsem.Bench.dll")

if [ "${BACKEND:-}" = pg ]; then
    pg_reps="${PG_REPS:-7}"
    pg_iterations="${PG_ITERATIONS:-2000}"
    tmp="$(mktemp -d /tmp/whsem-cs-bench-pg.XXXXXX)"
    trap 'python3 "$repo/tests/pg/cluster.py" stop "$tmp/cluster.json" || true; rm -rf "$tmp"' EXIT
    python3 "$repo/tests/pg/cluster.py" start "$tmp/cluster.json" >/dev/null
    eval "$(python3 "$repo/tests/pg/cluster.py" env "$tmp/cluster.json")"
    echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "PostgreSQL on a unix socket ($WHSEM_PG_SOCKET); $pg_reps repetitions of $pg_iterations pairs each"
    c_run() { "$build/tests/bench/whsem_bench_pg" --results c --parts a --iterations "$pg_iterations" "$WHSEM_PG_SOCKET" >>"$tmp/results"; }
    cs_run() { "${cs_bench[@]}" --backend="$WHSEM_PG_SOCKET" --iterations="$pg_iterations" >>"$tmp/results"; }
    for r in $(seq "$pg_reps"); do
        if [ $((r % 2)) = 1 ]; then c_run; cs_run; else cs_run; c_run; fi
    done
    python3 - "$tmp/results" <<'PY'
import statistics, sys
runs = {"c": [], "csharp": []}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) == 4 and f[0] == "RESULT" and f[2] == "a_median_us":
        runs[f[1]].append(float(f[3]))
c, cs = statistics.median(runs["c"]), statistics.median(runs["csharp"])
print(f"C pair (whsem_bench_pg (a)): median {c:.1f} us/pair ({min(runs['c']):.1f} ... {max(runs['c']):.1f})")
print(f"C# PostgresDistributedSemaphore TryAcquire(TimeSpan.Zero)+Dispose: median {cs:.1f} us/pair ({min(runs['csharp']):.1f} ... {max(runs['csharp']):.1f})")
ratio = cs / c
print(f"C# / C on PostgreSQL: {cs:.1f} / {c:.1f} = {ratio:.2f}x (target <= 1.2x: {'PASS' if ratio <= 1.2 else 'MISS'})")
PY
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
c_bench() {
    "$build/tests/bench/whsem_bench" --benchmark_filter='^a_uncontended/whsem$' \
        --benchmark_repetitions="$c_reps" --benchmark_out="$tmp/$1.json" --benchmark_out_format=json >/dev/null 2>&1
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
c_bench before
c_ns="$(python3 - "$tmp/before.json" <<'PY'
import json, statistics, sys
runs = [b["real_time"] for b in json.load(open(sys.argv[1]))["benchmarks"] if b.get("run_type") == "iteration"]
print(f"{statistics.median(runs):.3f}")
PY
)"
"${cs_bench[@]}" --reps="$cs_reps" --pairs="$cs_pairs" --c-ns="$c_ns" | tee "$tmp/cs.txt"
c_bench after
python3 - "$tmp/before.json" "$tmp/after.json" "$tmp/cs.txt" <<'PY'
import json, re, statistics, sys
def runs(path):
    return [b["real_time"] for b in json.load(open(path))["benchmarks"] if b.get("run_type") == "iteration"]
before, after = runs(sys.argv[1]), runs(sys.argv[2])
both = before + after
cs = float(re.search(r"TryAcquire\(TimeSpan.Zero\)\+Dispose \(binding\)\s+ns/pair:\s+([\d.]+)", open(sys.argv[3]).read()).group(1))
c = statistics.median(both)
print(f"C (whsem_bench a_uncontended/whsem), before and after the C# run: median {c:.2f} ns/pair "
      f"(before {statistics.median(before):.2f}, after {statistics.median(after):.2f}; {min(both):.2f} ... {max(both):.2f})")
ratio = cs / c
print(f"C# TryAcquire(TimeSpan.Zero)+Dispose / C: {cs:.2f} / {c:.2f} = {ratio:.2f}x (target <= 1.5x: {'PASS' if ratio <= 1.5 else 'MISS'})")
PY
