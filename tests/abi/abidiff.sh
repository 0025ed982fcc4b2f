#!/bin/sh
# SPDX-License-Identifier: MIT
# Compares the built library's ABI with the committed baseline (abidw).
# Fails on any change: an incompatible one must not happen at all; a
# compatible one (an added function) must be blessed into the baseline:
#     cmake --build build --target abi-bless
set -u
lib="$1"
baseline="$2"
current="$(mktemp)"
trap 'rm -f "$current"' EXIT
# Without source locations the baseline does not depend on where the tree
# was checked out; every type reachable from an exported function counts
# (internal types never are: exported functions take only public ones).
abidw --no-corpus-path --no-show-locs --out-file "$current" "$lib" || { echo "abidw failed"; exit 1; }
abidiff --no-show-locs "$baseline" "$current"
rc=$?
if [ $((rc & 8)) -ne 0 ]; then
    echo "INCOMPATIBLE ABI change against $baseline: append, never change or remove"
    exit 1
elif [ $((rc & 4)) -ne 0 ]; then
    echo "The ABI changed compatibly; if that was intended, bless the baseline:"
    echo "    cmake --build <build dir> --target abi-bless"
    exit 1
elif [ "$rc" -ne 0 ]; then
    echo "abidiff failed ($rc)"
    exit 1
fi
echo "ABI identical to $baseline"
