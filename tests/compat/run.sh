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

pair "$old" "$new" "1.0 holds, 1.1 shares and recovers"
pair "$new" "$old" "1.1 holds, 1.0 shares and recovers"
echo "2 passed, 0 failed"
