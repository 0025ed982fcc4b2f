#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks the Debian packages that `cpack -G DEB` made in BUILD_DIR, as
# someone who installs them would use them:
#   - every file the build installs is in one of the packages;
#   - their control data: sections, dependencies, libwhsem1's symbols,
#     shlibs and ldconfig trigger; the symbols file matches the library
#     (dpkg-gensymbols -c4) and the whsem package depends on what
#     dpkg-shlibdeps computes from it;
#   - installed into a scratch root (dpkg-deb -x), a C program builds
#     through pkg-config and through find_package(whsem CONFIG) (with the
#     static library too) and runs, and the packaged whsem runs on the
#     packaged library, which it links instead of carrying a copy;
#   - lintian reports no error.
#
#   check_debs.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=$(mktemp -d)
name="whsem-packaging-test-$$"
root="$work/root"
libdir=""
cleanup() {
    if [ -x "$root/usr/bin/whsem" ]; then
        LD_LIBRARY_PATH="$libdir" "$root/usr/bin/whsem" rm --force "$name" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { echo "== $*"; }
# grep -q for the end of a pipeline: it reads all its input, so that the
# command before it never dies of SIGPIPE (which pipefail would report).
has() { grep "$@" >/dev/null; }

# ---- the three packages ----------------------------------------------------------
one_deb() {
    local found=("$build"/"$1"_*.deb)
    [ ${#found[@]} -eq 1 ] && [ -f "${found[0]}" ] || fail "expected one $1_*.deb in $build, found: ${found[*]}"
    echo "${found[0]}"
}
lib_deb=$(one_deb libwhsem1)
dev_deb=$(one_deb libwhsem-dev)
cli_deb=$(one_deb whsem)
field() { dpkg-deb -f "$1" "$2"; }
version=$(field "$lib_deb" Version)
upstream=${version%-*}
echo "packages of version $version: $(basename "$lib_deb") $(basename "$dev_deb") $(basename "$cli_deb")"

step "every installed file is packaged"
cmake --install "$build" --prefix "$work/full" >/dev/null
(cd "$work/full" && find . ! -type d | sed 's|^\./|usr/|' | sort) >"$work/installed"
for deb in "$lib_deb" "$dev_deb" "$cli_deb"; do
    dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's|^\./||' | grep -v '/$'
done | sort >"$work/packaged"
missing=$(comm -23 "$work/installed" "$work/packaged")
[ -z "$missing" ] || fail "installed but in no package (install() without COMPONENT Runtime, Development or CLI?):
$missing"

step "control data"
for deb in "$lib_deb" "$dev_deb" "$cli_deb"; do
    for f in Package Version Architecture Maintainer Section Priority Source Description; do
        [ -n "$(field "$deb" $f)" ] || fail "$(basename "$deb") has no $f field"
    done
done
[ "$(field "$lib_deb" Section)" = libs ] || fail "libwhsem1 is not in Section libs"
[ "$(field "$dev_deb" Section)" = libdevel ] || fail "libwhsem-dev is not in Section libdevel"
[ "$(field "$cli_deb" Section)" = utils ] || fail "whsem is not in Section utils"
[ "$(field "$dev_deb" Depends)" = "libwhsem1 (= $version)" ] ||
    fail "libwhsem-dev must depend on exactly its libwhsem1, not: $(field "$dev_deb" Depends)"
mkdir -p "$work/debian"
touch "$work/debian/control" # dpkg-shlibdeps and dpkg-gensymbols want one
dpkg-deb -R "$lib_deb" "$work/debian/libwhsem1"
ctl="$work/debian/libwhsem1/DEBIAN"
for f in symbols shlibs triggers; do [ -f "$ctl/$f" ] || fail "libwhsem1 has no $f control file"; done
grep -qx 'activate-noawait ldconfig' "$ctl/triggers" || fail "libwhsem1 does not trigger ldconfig"
grep -q '^libwhsem 1 libwhsem1 ' "$ctl/shlibs" || fail "libwhsem1's shlibs: $(cat "$ctl/shlibs")"

step "the symbols file matches the library (dpkg-gensymbols -c4)"
so=$(cd "$work/debian/libwhsem1" && find . -name 'libwhsem.so.1.*' -type f | sed 's|^\./||')
[ -n "$so" ] || fail "libwhsem1 has no libwhsem.so.1.*"
(cd "$work" && dpkg-gensymbols -plibwhsem1 -v"$version" -Pdebian/libwhsem1 -e"debian/libwhsem1/$so" \
    -I"debian/libwhsem1/DEBIAN/symbols" -O"$work/generated.symbols" -c4) ||
    fail "the symbols file and the library's symbols differ (see above)"

step "whsem depends on what dpkg-shlibdeps computes"
dpkg-deb -x "$cli_deb" "$work/debian/whsem"
mkdir -p "$work/debian/whsem/DEBIAN"
deps=$(cd "$work" && dpkg-shlibdeps -O debian/whsem/usr/bin/whsem 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
echo "dpkg-shlibdeps: $deps; the package: $(field "$cli_deb" Depends)"
IFS=',' read -r -a clauses <<<"$deps"
for c in "${clauses[@]}"; do
    c=$(echo "$c" | sed 's/^ *//; s/ *$//')
    case ", $(field "$cli_deb" Depends), " in
    *", $c, "*) ;;
    *) fail "whsem's Depends lacks '$c' (update CPACK_DEBIAN_CLI_PACKAGE_DEPENDS in src/packaging/debian.cmake)" ;;
    esac
done
case "$deps" in *libwhsem1*) ;; *) fail "dpkg-shlibdeps found no libwhsem1 dependency of whsem" ;; esac

step "install into a scratch root"
for deb in "$lib_deb" "$dev_deb" "$cli_deb"; do dpkg-deb -x "$deb" "$root"; done
for pkg in libwhsem1 libwhsem-dev whsem; do
    doc="$root/usr/share/doc/$pkg"
    [ -f "$doc/copyright" ] && [ -f "$doc/changelog.Debian.gz" ] || fail "$pkg lacks copyright or changelog.Debian.gz"
    grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' "$doc/copyright" ||
        fail "$pkg's copyright is not machine-readable (DEP-5)"
done
# The licence the packages state is the project's.
if [ -f "$src/LICENSE" ]; then
    words() { tr -s ' \n.' '\n\n\n' | grep -v '^$'; }
    diff <(sed -n '/^Permission is hereby granted/,$p' "$src/LICENSE" | words) \
        <(sed -n '/^ Permission is hereby granted/,$p' "$root/usr/share/doc/whsem/copyright" | words) >/dev/null ||
        fail "src/packaging/copyright.in and LICENSE state different terms"
fi
pc=$(find "$root" -name whsem.pc)
[ -n "$pc" ] || fail "no whsem.pc in the packages"
libdir=$(dirname "$(dirname "$pc")")
[ -L "$libdir/libwhsem.so" ] && [ -L "$libdir/libwhsem.so.1" ] || fail "the library's links are missing from $libdir"

step "a C program built through pkg-config against the root"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
export PKG_CONFIG_LIBDIR="$libdir/pkgconfig"
# A .pc that names /usr itself (rather than its own place) is read
# through the sysroot.
case "$(pkg-config --variable=includedir whsem)" in
"$root"/*) ;;
*) export PKG_CONFIG_SYSROOT_DIR="$root" ;;
esac
flags=$(pkg-config --cflags --libs whsem)
echo "pkg-config --cflags --libs whsem: $flags"
# shellcheck disable=SC2086
cc -std=c99 -Wall -Wextra -Werror -o "$work/consumer" "$src/tests/install/consumer.c" $flags
LD_LIBRARY_PATH="$libdir" ldd "$work/consumer" | has "libwhsem.so.1 => $libdir/" ||
    fail "the consumer does not load the packaged library"
LD_LIBRARY_PATH="$libdir" "$work/consumer"

step "a CMake project through find_package(whsem CONFIG) against the root"
[ -f "$libdir/libwhsem.a" ] || fail "libwhsem-dev has no libwhsem.a"
[ -f "$libdir/cmake/whsem/whsemConfig.cmake" ] || fail "libwhsem-dev has no whsemConfig.cmake"
for target in whsem::whsem whsem::whsem_static; do
    dir="$work/cmake-consumer-${target#whsem::}"
    cmake -S "$src/tests/install/consumer" -B "$dir" -DCMAKE_PREFIX_PATH="$root/usr" \
        -DWHSEM_TARGET="$target" >"$dir.log" 2>&1 || { cat "$dir.log"; fail "configuring the consumer for $target"; }
    grep -q "found in $libdir/cmake/whsem" "$dir.log" || fail "find_package did not find the root's package: $(cat "$dir.log")"
    cmake --build "$dir" >"$dir.build.log" 2>&1 || { cat "$dir.build.log"; fail "building the consumer for $target"; }
    LD_LIBRARY_PATH="$libdir" "$dir/consumer"
done
! readelf -d "$work/cmake-consumer-whsem_static/consumer" | has 'NEEDED.*libwhsem' ||
    fail "the consumer of whsem::whsem_static needs a shared libwhsem"

step "the packaged whsem on the packaged library"
exe="$root/usr/bin/whsem"
readelf -d "$exe" | has 'NEEDED.*\[libwhsem\.so\.1\]' || fail "whsem does not link libwhsem.so.1"
! readelf -d "$exe" | has -E 'RPATH|RUNPATH' || fail "whsem carries a library search path"
# No copy of the library inside: its functions are imported, none defined.
nm -D --undefined-only "$exe" | has ' whsem_open@WHSEM_1.0' || fail "whsem does not import whsem_open"
! nm -D --defined-only "$exe" | has ' whsem_' || fail "whsem defines libwhsem functions itself"
! nm "$exe" 2>/dev/null | has 'whsem__' || fail "whsem contains libwhsem's internals"
run() { LD_LIBRARY_PATH="$libdir" "$exe" "$@"; }
LD_LIBRARY_PATH="$libdir" ldd "$exe" | has "libwhsem.so.1 => $libdir/" || fail "whsem does not load the packaged library"
run --version | has -x "whsem (libwhsem) $upstream" || fail "whsem --version: $(run --version)"
run run "$name" 1 -- true
run list | has -x "Global\\\\$name" || fail "whsem list does not show $name"
run status "$name" --json | has '"max":1' || fail "whsem status: $(run status "$name" --json)"
run rm "$name"
! run status "$name" 2>/dev/null || fail "whsem rm left $name"
MANWIDTH=80 man -l "$root/usr/share/man/man1/whsem.1.gz" | has 'whsem run' || fail "man -l whsem.1.gz shows nothing"
[ -f "$root/usr/share/bash-completion/completions/whsem" ] || fail "no bash completion"

step "lintian"
set +e
out=$(lintian --tag-display-limit 0 --fail-on error "$lib_deb" "$dev_deb" "$cli_deb" 2>&1)
rc=$?
set -e
echo "$out"
if echo "$out" | has '^E: '; then fail "lintian reports errors"; fi
[ $rc -eq 0 ] || fail "lintian failed (exit status $rc)"
echo "packaging checks passed"
