#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A holder killed with kill -9 of its Wine process (the Linux process that
# runs it, as a crash or the OOM killer would): its tickets return to a
# waiter in another Wine process, and the recovery is counted.
#   kill9.sh WINE_WRAPPER HELPER_EXE
set -euo pipefail
wrap=$1 helper=$2
name="whsem-test-kill9-$$-$RANDOM"
work=$(mktemp -d)
trap 'kill -9 ${holder:-} ${waiter:-} ${keeper:-} 2>/dev/null || true; rm -rf "$work"' EXIT

fail() { echo "kill9: $*" >&2; exit 1; }
ready() { for _ in $(seq 600); do grep -q ready "$1" && return 0; sleep 0.1; done; fail "$2 never became ready"; }

# A keeper holds the name open throughout (a semaphore nobody has open is
# gone on Windows), so that the last look sees the state the others left.
"$wrap" "$helper" open "$name" 2 >"$work/keeper.out" &
keeper=$!
ready "$work/keeper.out" "the keeper"

# Not a subshell: $! must be the process that becomes the Windows program
# (the wrapper and wine exec into it).
"$wrap" "$helper" hold "$name" 2 2 >"$work/holder.out" &
holder=$!
ready "$work/holder.out" "the holder"
[ "$(readlink "/proc/$holder/exe")" != "" ] || fail "no Linux process $holder"
echo "holder: Linux pid $holder ($(tr '\0' ' ' <"/proc/$holder/cmdline"))"

# Both tickets are held: a try-once in another process finds none.
"$wrap" "$helper" try "$name" 2 || fail "a ticket was free while the holder held both (exit $?)"

"$wrap" "$helper" wait "$name" 2 60000 >"$work/waiter.out" &
waiter=$!
for _ in $(seq 600); do
    "$wrap" "$helper" query "$name" >"$work/query.out" 2>&1 || true
    grep -q "waiters=1" "$work/query.out" && break
    sleep 0.1
done
grep -q "waiters=1" "$work/query.out" || fail "the waiter never waited: $(cat "$work/query.out")"

start=$(date +%s%N)
kill -9 "$holder"
wait "$holder" && fail "the holder survived kill -9"
holder=
wait "$waiter" || fail "the waiter did not get the dead holder's ticket (exit $?)"
waiter=
echo "waiter: $(cat "$work/waiter.out"), $(( ($(date +%s%N) - start) / 1000000 )) ms after kill -9"

# All tickets are back, and the recovery is on record.
"$wrap" "$helper" query "$name" >"$work/query.out" || fail "query failed"
cat "$work/query.out"
grep -q "free=2 " "$work/query.out" || fail "not every ticket came back"
grep -Eq "recoveries=[1-9]" "$work/query.out" || fail "the recovery was not counted"
echo "kill9: OK"
