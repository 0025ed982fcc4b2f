#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds (if needed) and runs the whole libwhsem comparison, then prints the
# Markdown table. A benchmark, not a test: PASS/MISS verdicts never change
# the exit code, which is non-zero only if the build or a program fails.
#
#   tests/bench/run.sh                 # the full comparison (~2-3 minutes)
#   REPS=3 SLOW_REPS=3 tests/bench/run.sh
#   THROUGHPUT_SECONDS=1 ROUND_TRIPS=10000 tests/bench/run.sh
#   tests/bench/run.sh --benchmark_filter=a_uncontended   # extra whsem_bench flags
#
# Environment: BUILD_DIR (default <repo>/build-bench), REPS (repetitions of
# figure (a), default 5), SLOW_REPS (repetitions of (b) and (c), default 3),
# ROUND_TRIPS (b, default 20000), THROUGHPUT_SECONDS (c, default 2),
# PROCS (c, default 8), WORK_NS (c, default 200).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
reps=${REPS:-5}
slow_reps=${SLOW_REPS:-3}
round_trips=${ROUND_TRIPS:-20000}
seconds=${THROUGHPUT_SECONDS:-2}
procs=${PROCS:-8}
work_ns=${WORK_NS:-200}

say() { printf '+ %s\n' "$*"; }

# Configure once; later runs only rebuild what changed. A cache from another
# build type would measure a debug or sanitizer build, so insist on Release.
if ! grep -qs '^CMAKE_BUILD_TYPE:STRING=Release$' "$build/CMakeCache.txt" ||
   ! grep -qs '^WHSEM_SANITIZE:STRING=$' "$build/CMakeCache.txt"; then
    say cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWHSEM_BUILD_TESTS=ON \
        -DWHSEM_BUILD_BENCHMARKS=ON -DWHSEM_SANITIZE=
    mkdir -p "$build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWHSEM_BUILD_TESTS=ON \
        -DWHSEM_BUILD_BENCHMARKS=ON -DWHSEM_SANITIZE= >"$build/bench-configure.log" 2>&1 ||
        { cat "$build/bench-configure.log"; exit 1; }
fi
say cmake --build "$build" --target whsem_bench whsem_bench_syscalls -j"$(nproc)"
cmake --build "$build" --target whsem_bench whsem_bench_syscalls -j"$(nproc)" >"$build/bench-build.log" 2>&1 ||
    { cat "$build/bench-build.log"; exit 1; }

bin=$build/tests/bench
tmp=$(mktemp -d /tmp/whsem-bench-run.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

echo
echo "== Machine"
echo "nproc: $(nproc)"
echo "CPU:   $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "kernel: $(uname -srm)"
echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== System calls per uncontended pair"
cmd=("$bin/whsem_bench_syscalls" --pairs=100000 --other_pairs=10000 --out="$tmp/syscalls.txt")
say "${cmd[*]}"
"${cmd[@]}"

echo
echo "== Figures (a), (b), (c)"
cmd=("$bin/whsem_bench"
     --benchmark_repetitions="$reps"
     --slow_repetitions="$slow_reps"
     --benchmark_enable_random_interleaving=true
     --handoff_round_trips="$round_trips"
     --throughput_seconds="$seconds"
     --throughput_procs="$procs"
     --work_ns="$work_ns"
     --syscalls_file="$tmp/syscalls.txt"
     "$@")
say "${cmd[*]}"
start=$(date +%s)
"${cmd[@]}"
echo
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg); whsem_bench took $(( $(date +%s) - start )) s"
echo "Reproduce: $0${*:+ $*}"
