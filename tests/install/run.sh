#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the build into a fresh prefix, then builds and runs a consumer
# with nothing but the installed files and pkg-config.
set -eu
build_dir="$1"
src="$2"
cc="${3:-cc}"
version="$4"
top="$(mktemp -d)"
trap 'rm -rf "$top"' EXIT
prefix="$top/usr"
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
pc_dir="$(dirname "$(find "$prefix" -name whsem.pc | head -n 1)")"
export PKG_CONFIG_PATH="$pc_dir"
flags="$(pkg-config --cflags --libs whsem)"
echo "pkg-config --cflags --libs whsem: $flags"
# The prefix as given, not spelled from where whsem.pc lies.
cflags="$(pkg-config --cflags whsem | sed 's/ *$//')"
[ "$cflags" = "-I$prefix/include" ] || { echo "FAIL: --cflags is '$cflags', not '-I$prefix/include'"; exit 1; }
# shellcheck disable=SC2086
"$cc" -std=c99 -Wall -Wextra -Werror -o "$top/consumer" "$src" $flags
libdir="$(pkg-config --variable=libdir whsem)"
test -L "$libdir/libwhsem.so" && test -L "$libdir/libwhsem.so.1" && test -f "$libdir/libwhsem.so.$version"
LD_LIBRARY_PATH="$libdir" "$top/consumer"
