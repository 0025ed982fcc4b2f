#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs tests/install/consumer, a project that uses libwhsem as
# its users do, against:
#   installed-shared  this build tree installed to a fresh prefix:
#                     find_package(whsem CONFIG REQUIRED), its version and
#                     components, and whsem.pc for a /usr install (DESTDIR)
#   installed-static  a tree of its own configured with BUILD_SHARED_LIBS=OFF
#                     for /usr and installed under DESTDIR: libwhsem.a alone
#   subproject        the sources through add_subdirectory, with the shared
#                     and with the static library, where GoogleTest, Python
#                     and pkg-config cannot be found: the subproject
#                     registers no test and looks for no tool of its tests
#
#   consume.sh MODE SOURCE_DIR BUILD_DIR WORK_DIR VERSION
set -euo pipefail
mode=$1 src=$2 build=$3 work=$4 version=$5
here=$(cd "$(dirname "$0")" && pwd)
major=${version%%.*}

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# configure DIR ARGS...: the consumer project in DIR; its output in DIR.log.
configure() {
    local dir=$1
    shift
    cmake -S "$here/consumer" -B "$dir" "$@" >"$dir.log" 2>&1
}

# build_and_run DIR: the consumer's build, then its one test, with no help
# from LD_LIBRARY_PATH (the build tree's RPATH finds an installed
# libwhsem.so.1).
build_and_run() {
    local dir=$1 total
    cmake --build "$dir" --target consumer -j2 >"$dir.build.log" 2>&1 || {
        cat "$dir.build.log"
        fail "building the consumer in $dir"
    }
    total=$(ctest --test-dir "$dir" -N | sed -n 's/^Total Tests: //p')
    [ "$total" = 1 ] || fail "$dir registers $total tests, not the consumer's one alone"
    env -u LD_LIBRARY_PATH ctest --test-dir "$dir" -V >"$dir.test.log" 2>&1 || {
        cat "$dir.test.log"
        fail "the consumer built in $dir does not run"
    }
    grep -q "libwhsem $version works" "$dir.test.log" || fail "the consumer in $dir did not say it worked"
}

# linked_to DIR shared|static: the consumer needs libwhsem.so.1 at run time, or not at all.
linked_to() {
    local needed
    needed=$(readelf -d "$1/consumer" | grep NEEDED || true)
    case "$2" in
    shared) grep -q 'libwhsem\.so\.1' <<<"$needed" || fail "$1/consumer does not need libwhsem.so.1: $needed" ;;
    static) ! grep -q libwhsem <<<"$needed" || fail "$1/consumer needs a shared libwhsem: $needed" ;;
    esac
}

# uses DIR shared|static WHAT ARGS...: the consumer, configured with ARGS,
# builds, runs, and links that kind of library.
uses() {
    local dir=$1 kind=$2 what=$3
    shift 3
    configure "$dir" "$@" || { cat "$dir.log"; fail "$what"; }
    build_and_run "$dir"
    linked_to "$dir" "$kind"
    pass "$what: the $kind library"
}

# refused DIR WHY ARGS...: find_package must fail, saying WHY.
refused() {
    local dir=$1 why=$2
    shift 2
    if configure "$dir" "$@"; then fail "find_package accepted $*"; fi
    grep -q "$why" "$dir.log" || { cat "$dir.log"; fail "find_package refused $* without saying '$why'"; }
}

# pc_says ROOT FLAGS WANT: pkg-config FLAGS whsem, with the whsem.pc under ROOT.
pc_says() {
    local pc got
    pc=$(find "$1" -name whsem.pc)
    [ -n "$pc" ] || fail "no whsem.pc under $1"
    got=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_LIBDIR=/nonexistent pkg-config $2 whsem)
    got=$(echo $got) # pkg-config pads with spaces
    [ "$got" = "$3" ] || fail "pkg-config $2 whsem of a /usr install says '$got', not '$3'"
    pass "pkg-config $2 whsem of a /usr install: '$got'"
}

# no_trace_of ROOT: nothing installed names the staging directory.
no_trace_of() {
    if grep -rlF "$1" "$1"; then fail "installed files name the staging directory $1"; fi
}

rm -rf "$work"
mkdir -p "$work"
case "$mode" in
installed-shared)
    prefix=(-DCMAKE_PREFIX_PATH="$work/prefix")
    cmake --install "$build" --prefix "$work/prefix" >/dev/null
    uses "$work/default" shared "find_package(whsem $major.0 CONFIG REQUIRED), whsem::whsem" \
        "${prefix[@]}" "-DWHSEM_FIND_ARGS=$major.0"
    uses "$work/named" shared "COMPONENTS shared, whsem::whsem_shared" \
        "${prefix[@]}" -DWHSEM_TARGET=whsem::whsem_shared "-DWHSEM_FIND_ARGS=$version;COMPONENTS;shared"
    refused "$work/next-major" "considered but not accepted" "${prefix[@]}" "-DWHSEM_FIND_ARGS=$((major + 1))"
    pass "find_package(whsem $((major + 1))) is refused"
    if [ -n "$(find "$work/prefix" -name libwhsem.a)" ]; then
        configure "$work/static" "${prefix[@]}" "-DWHSEM_FIND_ARGS=COMPONENTS;static" ||
            { cat "$work/static.log"; fail "COMPONENTS static with libwhsem.a installed"; }
        pass "COMPONENTS static (this tree builds libwhsem.a too)"
    else
        refused "$work/static" "no static library in" "${prefix[@]}" "-DWHSEM_FIND_ARGS=COMPONENTS;static"
        pass "COMPONENTS static is refused (no libwhsem.a installed)"
    fi

    # A /usr install, as a distribution stages it.
    DESTDIR=$work/root cmake --install "$build" --prefix /usr >/dev/null
    pc_says "$work/root" --cflags ""
    pc_says "$work/root" --libs "-lwhsem"
    no_trace_of "$work/root"
    ;;
installed-static)
    cmake -S "$src" -B "$work/build" -DBUILD_SHARED_LIBS=OFF -DWHSEM_BUILD_TESTS=OFF \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr >"$work/build.log" 2>&1 ||
        { cat "$work/build.log"; fail "configuring with BUILD_SHARED_LIBS=OFF"; }
    cmake --build "$work/build" -j2 >>"$work/build.log" 2>&1 ||
        { cat "$work/build.log"; fail "building with BUILD_SHARED_LIBS=OFF"; }
    DESTDIR=$work/root cmake --install "$work/build" >/dev/null
    [ -n "$(find "$work/root" -name libwhsem.a)" ] || fail "BUILD_SHARED_LIBS=OFF installed no libwhsem.a"
    shared=$(find "$work/root" -name 'libwhsem.so*')
    [ -z "$shared" ] || fail "BUILD_SHARED_LIBS=OFF installed a shared library: $shared"
    pass "BUILD_SHARED_LIBS=OFF installs libwhsem.a and no libwhsem.so"
    pc_says "$work/root" --cflags ""
    pc_says "$work/root" --libs "-lwhsem"
    pc_says "$work/root" "--libs --static" "-lwhsem -lpthread -ldl"
    no_trace_of "$work/root"

    prefix=(-DCMAKE_PREFIX_PATH="$work/root/usr")
    uses "$work/default" static "find_package(whsem $version CONFIG REQUIRED), whsem::whsem" \
        "${prefix[@]}" "-DWHSEM_FIND_ARGS=$version"
    uses "$work/named" static "COMPONENTS static, whsem::whsem_static" \
        "${prefix[@]}" -DWHSEM_TARGET=whsem::whsem_static "-DWHSEM_FIND_ARGS=COMPONENTS;static"
    refused "$work/shared" "no shared library in" "${prefix[@]}" "-DWHSEM_FIND_ARGS=COMPONENTS;shared"
    pass "COMPONENTS shared is refused (no shared library installed)"
    ;;
subproject)
    for kind in shared static; do
        args=(-DWHSEM_SOURCE_DIR="$src"
            -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON
            -DCMAKE_DISABLE_FIND_PACKAGE_Python3=ON -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON)
        [ "$kind" = static ] && args+=(-DBUILD_SHARED_LIBS=OFF)
        uses "$work/$kind" "$kind" "add_subdirectory, whsem::whsem, no test of libwhsem's registered" "${args[@]}"
        cache=$work/$kind/CMakeCache.txt
        grep -qx 'WHSEM_BUILD_TESTS:BOOL=OFF' "$cache" || fail "a subproject's WHSEM_BUILD_TESTS is not OFF"
        grep -qx 'CMAKE_BUILD_TYPE:STRING=' "$cache" || fail "the subproject chose the parent's build type"
        if grep -E '^(WHSEM_(GO|CARGO|DOTNET|GIT)|FFI_LIBRARY|GTest_DIR)[:=]' "$cache"; then
            fail "the subproject looked for a tool of its tests"
        fi
        pass "the subproject ($kind) left WHSEM_BUILD_TESTS and the build type alone, and looked for no test tool"
    done
    ;;
*)
    fail "unknown mode $mode"
    ;;
esac
