#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 16's per-call figure in C#: LibWhsem's PostgresDistributedSemaphore
# (max 1) and DistributedLock's PostgresDistributedLock in ONE process
# (dl_compare's "side" part), against one throw-away PostgreSQL cluster,
# both from the same Npgsql connection string over TCP (127.0.0.1), as
# pg_compare.sh's contenders. Repetitions alternate the order; medians of
# per-call try-acquire + release, sync and async, and the ratio. Not a test
# of figures: it fails only when the program failed or a figure is missing.
#
#   tests/bench/pg_side_by_side.sh [--build DIR] [--reps N] [--iterations N] [--smoke]
#
#   --build DIR      a configured and built tree (default <repo>/build): its
#                    libwhsem.so.1 is used, dl_compare is built into
#                    DIR/tests/bench/dl_compare-side
#   --reps N         repetitions (7)
#   --iterations N   timed pairs per contender and repetition (1000)
#   --smoke          1 repetition of 50 pairs (CTest's pg_side_by_side_smoke)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="$repo/build"
reps=7 iterations=1000 warmup=200
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build="$2"; shift ;;
    --reps) reps="$2"; shift ;;
    --iterations) iterations="$2"; shift ;;
    --smoke) reps=1 iterations=50 warmup=20 ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    esac
    shift
done
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac
[ -e "$build/libwhsem.so.1" ] || { echo "pg_side_by_side.sh: no libwhsem.so.1 in $build; build it first" >&2; exit 1; }

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 \
       DOTNET_CLI_USE_MSBUILD_SERVER=0 MSBUILDDISABLENODEREUSE=1
export WHSEM_LIBRARY="$build/libwhsem.so.1"
# Its own folder: pg_compare.sh builds the same project into dl_compare/.
artifacts="$build/tests/bench/dl_compare-side"
mkdir -p "$artifacts"
dotnet build "$here/dl_compare/DlCompare.csproj" -c Release --nologo --disable-build-servers \
    -p:UseSharedCompilation=false --artifacts-path "$artifacts" >"$artifacts/build.log" 2>&1 ||
    { cat "$artifacts/build.log" >&2; exit 1; }

tmp="$(mktemp -d /tmp/whsem-pg-side.XXXXXX)"
state="$tmp/cluster.json"
trap 'python3 "$here/../pg/cluster.py" stop "$state" || true; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
python3 "$here/../pg/cluster.py" start "$state" >/dev/null
read -r pg_port pg_super < <(python3 -c 'import json,sys; s = json.load(open(sys.argv[1])); print(s["port"], s["super"])' "$state")
npgsql="Host=127.0.0.1;Port=$pg_port;Database=postgres;Username=$pg_super"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); .NET $(dotnet --version)" >&2
dotnet "$artifacts/bin/DlCompare/release/whsem-dl-compare.dll" side --pg "$npgsql" \
    --reps "$reps" --iterations "$iterations" --warmup "$warmup" | tee "$tmp/results"
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for key in side_sync_whsem_median_us side_sync_pglock_median_us side_sync_ratio \
           side_async_whsem_median_us side_async_pglock_median_us side_async_ratio; do
    grep -q "^RESULT side $key " "$tmp/results" || { echo "pg_side_by_side.sh: no $key" >&2; exit 1; }
done
