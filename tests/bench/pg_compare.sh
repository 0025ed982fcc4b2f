#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 15's side-by-side figures: libwhsem on PostgreSQL (whsem_bench_pg)
# against DistributedLock's PostgresDistributedLock and
# RedisDistributedSemaphore (dl_compare/), in one run, against a throw-away
# PostgreSQL cluster and a redis-server of its own (127.0.0.1, free ports,
# no persistence), both stopped on exit. Prints one table with the ratios
# libwhsem / DistributedLock (the raw RESULT lines are left in
# BUILD/tests/bench/pg_compare.results). Not a test of figures: it fails
# only when a program failed or a row of the table could not be filled.
#
#   tests/bench/pg_compare.sh [--build DIR] [--smoke] [--reps N] [--iterations N]
#       [--seconds S] [--b-reps N] [--kills K] [--redis-default-kills K] [--cap S]
#
#   --build DIR              a configured build tree (default <repo>/build);
#                            whsem_bench_pg is built there, dl_compare into
#                            DIR/tests/bench/dl_compare
#   --reps N                 (a): repetitions, each contender in turn (5)
#   --iterations N           (a): timed pairs per repetition (2000)
#   --seconds S              (b): seconds per repetition (5)
#   --b-reps N               (b): repetitions (3)
#   --kills K                (c): kills per contender (20)
#   --redis-default-kills K  (c): kills with Redis's default 30 s lease, each
#                            taking about 30 s (3; 0 leaves the row empty)
#   --cap S                  (d): seconds to watch after a restart (30)
#   --no-cmake               whsem_bench_pg is built already (CTest); only
#                            dl_compare is built (incrementally)
#   --smoke                  a quick run: 1 repetition of 300 pairs, 1 s,
#                            3 kills, no default-lease kill, a 12 s cap
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="$repo/build"
reps=5 iterations=2000 seconds=5 b_reps=3 kills=20 redis_default_kills=3 cap=30 cmake_build=1
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build="$2"; shift ;;
    --reps) reps="$2"; shift ;;
    --iterations) iterations="$2"; shift ;;
    --seconds) seconds="$2"; shift ;;
    --b-reps) b_reps="$2"; shift ;;
    --kills) kills="$2"; shift ;;
    --redis-default-kills) redis_default_kills="$2"; shift ;;
    --cap) cap="$2"; shift ;;
    --no-cmake) cmake_build=0 ;;
    --smoke) reps=1 iterations=300 seconds=1 b_reps=1 kills=3 redis_default_kills=0 cap=12 ;;
    *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    esac
    shift
done
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 \
       DOTNET_CLI_USE_MSBUILD_SERVER=0 MSBUILDDISABLENODEREUSE=1
for tool in redis-server redis-cli dotnet python3; do
    command -v "$tool" >/dev/null || { echo "pg_compare.sh: $tool not found; run .ci/setup all" >&2; exit 1; }
done

artifacts="$build/tests/bench/dl_compare"
if [ "$cmake_build" = 1 ]; then
    cmake --build "$build" -j2 --target whsem_bench_pg >/dev/null
fi
mkdir -p "$artifacts"
dotnet build "$here/dl_compare/DlCompare.csproj" -c Release --nologo --disable-build-servers \
    -p:UseSharedCompilation=false --artifacts-path "$artifacts" >"$artifacts/build.log" 2>&1 ||
    { cat "$artifacts/build.log" >&2; exit 1; }
bench_pg="$build/tests/bench/whsem_bench_pg"
dl=(dotnet "$artifacts/bin/DlCompare/release/whsem-dl-compare.dll")

tmp="$(mktemp -d /tmp/whsem-pg-compare.XXXXXX)"
state="$tmp/cluster.json"
redis_port=""
cleanup() {
    [ -n "$redis_port" ] && redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    python3 "$here/../pg/cluster.py" stop "$state" || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 "$here/../pg/cluster.py" start "$state" >/dev/null
eval "$(python3 "$here/../pg/cluster.py" env "$state")"
pg_port="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$state")"
pg_super="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["super"])' "$state")"
# Both sides over TCP to 127.0.0.1, as a client on another machine would be.
npgsql="Host=127.0.0.1;Port=$pg_port;Database=postgres;Username=$pg_super"
pg_restart="python3 '$here/../pg/cluster.py' restart '$state'"

# The restart of (d) for Redis: the server goes and comes back empty, as a
# server without persistence does after a crash or a failover.
redis_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir "$tmp/redis"
cat >"$tmp/redis-start" <<EOF
#!/bin/sh
redis-server --port $redis_port --bind 127.0.0.1 --save '' --appendonly no --dir '$tmp/redis' \\
    --daemonize yes --pidfile '$tmp/redis/pid' --logfile '$tmp/redis/log'
i=0
until redis-cli -p $redis_port ping >/dev/null 2>&1; do
    i=\$((i + 1)); [ \$i -lt 1000 ] || { echo "redis-server did not start" >&2; exit 1; }
    sleep 0.01
done
EOF
cat >"$tmp/redis-restart" <<EOF
#!/bin/sh
redis-cli -p $redis_port shutdown nosave >/dev/null 2>&1
while redis-cli -p $redis_port ping >/dev/null 2>&1; do sleep 0.01; done
exec '$tmp/redis-start'
EOF
chmod +x "$tmp/redis-start" "$tmp/redis-restart"
"$tmp/redis-start"
redis="127.0.0.1:$redis_port"

out="$tmp/results"
: >"$out"
failed=0
run() { # LABEL-FOR-ERRORS CMD...: RESULT lines to $out, the rest to stderr
    local what="$1"; shift
    if ! "$@" >>"$out"; then
        echo "pg_compare.sh: $what failed" >&2
        failed=1
    fi
}
whsem() { run "whsem_bench_pg $1" "$bench_pg" --results whsem --parts "$@" "$WHSEM_PG_TCP"; }
pglock() { run "dl_compare $1 pglock" "${dl[@]}" "$@" --contender pglock --pg "$npgsql"; }
redis() { run "dl_compare $1 redis" "${dl[@]}" "$@" --contender redis --redis "$redis"; }

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "PostgreSQL $(basename "$(dirname "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bin"])' "$state")")"), $(redis-server --version | cut -d' ' -f1-3), .NET $(dotnet --version)" >&2

for _ in $(seq "$reps"); do
    whsem a --iterations "$iterations"
    run "dl_compare a npgsql" "${dl[@]}" a --contender npgsql --pg "$npgsql" --iterations "$iterations"
    pglock a --iterations "$iterations"
    redis a --max 2 --iterations "$iterations"
done
for _ in $(seq "$b_reps"); do
    whsem b --seconds "$seconds"
    pglock b --seconds "$seconds"
    redis b --max 2 --seconds "$seconds"
    redis b --max 2 --seconds "$seconds" --busy-wait 1:10 --label redis_fastwait
done
whsem c --kills "$kills"
pglock c --kills "$kills"
redis c --max 1 --kills "$kills" --expiry 0.1 --label redis_shortlease
if [ "$redis_default_kills" -gt 0 ]; then
    redis c --max 1 --kills "$redis_default_kills" --cap 60
fi
whsem d --restart "$pg_restart" --cap "$cap"
pglock d --restart "$pg_restart" --cap "$cap"
redis d --max 2 --restart "$tmp/redis-restart" --cap "$cap"
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

cp "$out" "$build/tests/bench/pg_compare.results" # the raw lines, for a second look
python3 "$here/pg_compare_table.py" "$out" --redis-default-kills "$redis_default_kills" || failed=1
exit "$failed"
