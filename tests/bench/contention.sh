#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The contended sweep of issue 14: libwhsem against POSIX named semaphores,
# many processes on one name, across critical-section lengths. A benchmark,
# not a test: it prints a Markdown table and never fails on a figure.
#
#   tests/bench/contention.sh                     # the full sweep (~4 min)
#   SECONDS_PER_RUN=1 REPS=1 tests/bench/contention.sh
#   CONFIGS="8:2" WORKS="0 1000" tests/bench/contention.sh
#
# For each configuration PROCS:MAX (CONFIGS, default "8:2 32:4 128:4") and
# critical section in ns (WORKS, default "0 50 200 1000 10000 100000"), it
# runs figure (c) of whsem_bench (tests/bench_throughput.cpp) for libwhsem
# and for POSIX, REPS times each (default 3), alternating, and reports the
# medians: acquisitions per second and their ratio, fairness (min / max of
# the per-process counts), sleeps per acquire+release pair (voluntary
# context switches), and, when `perf` can count the futex tracepoint,
# futex system calls per pair.
#
# Environment: BUILD_DIR (default <repo>/build-bench, a Release build as
# tests/bench/run.sh makes it), SECONDS_PER_RUN (default 2).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
configs=${CONFIGS:-"8:2 32:4 128:4"}
works=${WORKS:-"0 50 200 1000 10000 100000"}
reps=${REPS:-3}
seconds=${SECONDS_PER_RUN:-2}

if ! grep -qs '^CMAKE_BUILD_TYPE:STRING=Release$' "$build/CMakeCache.txt"; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWHSEM_BUILD_TESTS=ON \
        -DWHSEM_BUILD_BENCHMARKS=ON -DWHSEM_SANITIZE= >/dev/null
fi
cmake --build "$build" --target whsem_bench -j"$(nproc)" >/dev/null
bench=$build/tests/bench/whsem_bench

perf_ok=0
if command -v perf >/dev/null &&
   perf stat -x, -e syscalls:sys_enter_futex -- true >/dev/null 2>&1; then
    perf_ok=1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One run of one primitive: prints "acq_per_s fairness sleeps_per_acq
# futex_per_pair" (futex "-" without perf).
run_one() {
    local prim=$1 procs=$2 max=$3 work=$4
    local args=("$bench" "--benchmark_filter=^c_throughput/$prim/" --slow_repetitions=1
                "--throughput_procs=$procs" "--throughput_max_count=$max" "--work_ns=$work"
                "--throughput_seconds=$seconds" --benchmark_format=json
                "--benchmark_out=$tmp/out.json" --benchmark_out_format=json)
    if [ "$perf_ok" = 1 ]; then
        perf stat -x, -o "$tmp/perf.txt" -e syscalls:sys_enter_futex -- "${args[@]}" \
            >"$tmp/bench.txt" 2>&1 || { cat "$tmp/bench.txt" >&2; return 1; }
    else
        "${args[@]}" >"$tmp/bench.txt" 2>&1 || { cat "$tmp/bench.txt" >&2; return 1; }
    fi
    python3 - "$tmp/out.json" "$tmp/perf.txt" "$perf_ok" "$seconds" <<'EOF'
import json, sys
out, perf, perf_ok, seconds = sys.argv[1], sys.argv[2], sys.argv[3] == "1", float(sys.argv[4])
b = [x for x in json.load(open(out))["benchmarks"] if "acq_per_s" in x][0]
pairs = b["acq_per_s"] * b["real_time"] / 1000.0  # real_time is in ms
futex = "-"
if perf_ok:
    for line in open(perf):
        f = line.strip().split(",")
        if len(f) > 2 and "sys_enter_futex" in line and f[0].strip().isdigit():
            futex = "%.3f" % (int(f[0]) / pairs if pairs else 0)
print(b["acq_per_s"], b["fairness"], b["sleeps_per_acq"], futex)
EOF
}

median() { python3 -c 'import sys, statistics; v=[float(x) for x in sys.argv[1:] if x != "-"]; print(statistics.median(v) if v else "-")' "$@"; }

echo "## Contended throughput: libwhsem vs POSIX named semaphores"
echo
echo "Machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r)  "
echo "Command: \`$0\` (CONFIGS=\"$configs\" WORKS=\"$works\" REPS=$reps SECONDS_PER_RUN=$seconds)  "
echo "Medians of $reps alternating runs per cell; futex calls counted with \`perf stat -e syscalls:sys_enter_futex\`$( [ "$perf_ok" = 1 ] || echo ' (perf unavailable: not counted)')."
echo
echo "| procs / max | work ns | whsem acq/s | POSIX acq/s | whsem / POSIX | fairness whsem | fairness POSIX | sleeps / pair whsem | POSIX | futex / pair whsem | POSIX |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for cfg in $configs; do
    procs=${cfg%%:*}
    max=${cfg##*:}
    for work in $works; do
        declare -A acc=()
        for ((r = 0; r < reps; r++)); do
            for prim in whsem posix; do
                line=$(run_one "$prim" "$procs" "$max" "$work") ||
                    { echo "contention.sh: $prim failed at $procs / $max, $work ns" >&2; exit 1; }
                read -r a f s x <<<"$line"
                acc[$prim.a]+=" $a"; acc[$prim.f]+=" $f"; acc[$prim.s]+=" $s"; acc[$prim.x]+=" $x"
            done
        done
        wa=$(median ${acc[whsem.a]}); pa=$(median ${acc[posix.a]})
        ratio=$(python3 -c "print('%.2f' % ($wa / $pa) if $pa else '-')")
        printf '| %s / %s | %s | %.0f | %.0f | %s | %.2f | %.2f | %.3f | %.3f | %s | %s |\n' \
            "$procs" "$max" "$work" "$wa" "$pa" "$ratio" \
            "$(median ${acc[whsem.f]})" "$(median ${acc[posix.f]})" \
            "$(median ${acc[whsem.s]})" "$(median ${acc[posix.s]})" \
            "$(median ${acc[whsem.x]})" "$(median ${acc[posix.x]})"
        unset acc
    done
done
echo
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
