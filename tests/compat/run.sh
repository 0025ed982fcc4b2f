#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 13's gate: a process of the 1.0 library and one of this tree share
# a name (same segment layout) without over-admitting, and each recovers a
# ticket of the other when it is SIGKILLed. The 1.0 library is built from
# the project's own history (the commit before 1.1 work began).
#   run.sh SOURCE_DIR WORK_DIR NEW_LIB PEER
# Exit 77 (CTest: skipped, with the reason) when that history is not in the
# checkout.
set -euo pipefail
src=$1 work=$2 new=$3 peer=$4
base=73117b4481e4cec985f2d85b86320d0f77dad2ee  # 1.0: "async: one path ends an operation and publishes its ticket"
if ! git -C "$src" rev-parse --verify -q "${base}^{commit}" >/dev/null; then
    echo "compat: the 1.0 commit is not in this checkout's history (shallow clone?)"
    exit 77
fi
old_src=$work/src-1.0
old_build=$work/build-1.0
if [ ! -f "$old_build/libwhsem.so.1" ]; then
    rm -rf "$old_src"
    git -C "$src" worktree prune
    git -C "$src" worktree add --detach "$old_src" "$base" >/dev/null
    cmake -S "$old_src" -B "$old_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWHSEM_BUILD_TESTS=OFF \
        -DWHSEM_BUILD_BENCHMARKS=OFF >/dev/null
    cmake --build "$old_build" --target whsem -j2 >/dev/null
    git -C "$src" worktree remove --force "$old_src"
fi
old=$old_build/libwhsem.so.1

pass() { echo "compat: $*"; }
fail() { echo "compat: FAILED: $*"; exit 1; }

# One holds, the other shares and then recovers the holder's ticket.
pair() {
    local holder=$1 other=$2 what=$3
    # Letters, digits and dashes only: the file name is then the name itself
    # (names.c escapes anything else), so that rm below finds it.
    local name="whsem-test-compat-$$-$(printf '%s' "$what" | tr -c 'A-Za-z0-9' '-')"
    coproc HOLD { exec "$peer" "$holder" "$name" hold; }
    local hold_pid=$HOLD_PID
    read -r -t 20 line <&"${HOLD[0]}" || fail "$what: the holder did not start"
    [ "$line" = ready ] || fail "$what: the holder said '$line'"
    "$peer" "$other" "$name" share || fail "$what: sharing the name failed ($?)"
    kill -9 "$hold_pid"
    wait "$hold_pid" 2>/dev/null || true
    "$peer" "$other" "$name" recover || fail "$what: the dead holder's ticket did not come back ($?)"
    rm -f "/dev/shm/whsem.$name"
    pass "$what"
}

# Both versions on one name at once, their slots interleaved: passers-by of
# both exit without closing (the slots they leave are reused: 1.0 takes any
# whose owner is dead, 1.1 probes for them before it raises the hwm), six
# hold a ticket each, the versions in turn; neither version over-admits,
# and each recovers tickets of killed holders of either version.
crowd() {
    local name="whsem-test-compat-$$-crowd" lib k
    pids=()
    trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -f "/dev/shm/whsem.'"$name"'" "$work"/crowd.*' EXIT
    for k in 0 1 2 3 4 5 6 7; do
        lib=$([ $((k % 2)) = 0 ] && echo "$old" || echo "$new")
        "$peer" "$lib" "$name" visit 6 || fail "crowd: passer-by $k failed ($?)"
    done
    for k in 0 1 2 3 4 5; do
        lib=$([ $((k % 2)) = 0 ] && echo "$old" || echo "$new")
        "$peer" "$lib" "$name" hold 6 >"$work/crowd.$k" &
        pids+=($!)
    done
    for k in 0 1 2 3 4 5; do
        for _ in $(seq 200); do grep -q ready "$work/crowd.$k" 2>/dev/null && break; sleep 0.1; done
        grep -q ready "$work/crowd.$k" || fail "crowd: holder $k did not start"
    done
    "$peer" "$new" "$name" take 6 0 || fail "crowd: 1.1 did not find the name full ($?)"
    "$peer" "$old" "$name" take 6 0 || fail "crowd: 1.0 did not find the name full ($?)"
    kill -9 "${pids[1]}" "${pids[4]}" # one of each version
    wait "${pids[1]}" "${pids[4]}" 2>/dev/null || true
    "$peer" "$new" "$name" take 6 2 || fail "crowd: 1.1 did not recover exactly 2 ($?)"
    "$peer" "$old" "$name" take 6 2 || fail "crowd: 1.0 did not recover exactly 2 ($?)"
    kill -9 "${pids[0]}" "${pids[2]}" "${pids[3]}" "${pids[5]}"
    wait "${pids[@]}" 2>/dev/null || true
    rm -f "/dev/shm/whsem.$name" "$work"/crowd.*
    trap - EXIT
    pass "both versions on one name, interleaved"
}

pair "$old" "$new" "1.0 holds, 1.1 shares and recovers"
pair "$new" "$old" "1.1 holds, 1.0 shares and recovers"
crowd
echo "3 passed, 0 failed"
