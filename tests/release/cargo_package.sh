#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The crate as `cargo package` lists and packs it: no warning (cargo warns
# when the manifest lacks a licence or a repository), and the licence
# inside, for a crate that leaves the repository.
#   cargo_package.sh CARGO CRATE_DIR TARGET_DIR VERSION
set -euo pipefail
cargo=$1 crate=$2 target=$3 version=$4
fail() { echo "FAIL: $*" >&2; exit 1; }

cd "$crate"
export CARGO_TARGET_DIR=$target
# --allow-dirty: a working tree in the middle of a change is packed as it is.
pack() {
    local out
    out=$("$cargo" package "$@" --offline --allow-dirty 2>&1) || { echo "$out" >&2; fail "cargo package $*"; }
    if grep -i 'warning' <<<"$out" >&2; then fail "cargo package $* warns"; fi
    echo "ok: cargo package $* --offline: no warning" >&2
    echo "$out"
}
listed=$(pack --list)
grep -qx LICENSE <<<"$listed" || fail "the crate leaves LICENSE out"
pack --no-verify >/dev/null
packed=$target/package/whsem-$version.crate
manifest=$(tar -xzOf "$packed" "whsem-$version/Cargo.toml") || fail "$packed has no whsem-$version/Cargo.toml"
grep -qx 'license = "MIT"' <<<"$manifest" || fail "$packed does not declare license = \"MIT\""
contents=$(tar -tzf "$packed")
grep -qx "whsem-$version/LICENSE" <<<"$contents" || fail "$packed has no LICENSE"
echo "ok: whsem-$version.crate declares MIT and carries LICENSE"
