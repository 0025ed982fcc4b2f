#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that what each ecosystem reads about a release says the same thing.

    python3 tests/release/release_metadata.py          check (CTest: release_metadata)
    python3 tests/release/release_metadata.py --sync   write what cargo and Go read

The version is written once, in abi/whsem.h (WHSEM_VERSION_MAJOR/MINOR/
PATCH), and the canonical repository once, in CMakeLists.txt's project()
HOMEPAGE_URL. CMake, whsem.pc and the C# package read them from there
themselves. Cargo.toml and Cargo.lock cannot, and a Go module (or a crate)
must carry its own LICENSE: --sync writes those copies, and the check fails
until they agree. It also checks the licence declared to each ecosystem,
that the ABI description introduces nothing after the header's version,
and that CHANGELOG.md's newest section is that version's or Unreleased.
See RELEASING.md.

Standard library only.
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LICENSE_COPIES = ["bindings/go/LICENSE", "bindings/rust/LICENSE"]
CSPROJ = "bindings/csharp/LibWhsem/LibWhsem.csproj"
# The crate's own [package] table: the first version after its name.
CARGO_VERSION = re.compile(r'(\[package\]\nname = "whsem"\n(?:[^\[]*?\n)?version = ")([^"]*)(")')
CARGO_LOCK_VERSION = re.compile(r'(\[\[package\]\]\nname = "whsem"\nversion = ")([^"]*)(")')
SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def write(path, text):
    with open(os.path.join(ROOT, path), "w", encoding="utf-8") as f:
        f.write(text)


def header_version():
    text = read("abi/whsem.h")
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        found = re.findall(rf"^#define WHSEM_VERSION_{part} +(\d+)$", text, re.M)
        if len(found) != 1:
            sys.exit(f"abi/whsem.h must define WHSEM_VERSION_{part} once, as a plain number")
        parts.append(found[0])
    return ".".join(parts)


def repository_url():
    found = re.findall(r'^\s*HOMEPAGE_URL "([^"]+)"', read("CMakeLists.txt"), re.M)
    if len(found) != 1:
        sys.exit("CMakeLists.txt's project() must name the repository once, as HOMEPAGE_URL \"...\"")
    return found[0]


def key(version):
    return tuple(int(x) for x in version.split("."))


def cargo_field(toml, name):
    m = re.search(rf'^{name} = "([^"]*)"$', toml, re.M)
    return m.group(1) if m else None


def sync(version):
    for path, pattern in (("bindings/rust/Cargo.toml", CARGO_VERSION),
                          ("bindings/rust/Cargo.lock", CARGO_LOCK_VERSION)):
        text, n = pattern.subn(lambda m: m.group(1) + version + m.group(3), read(path), count=1)
        if n != 1:
            sys.exit(f"{path}: the whsem package's version was not found")
        write(path, text)
    for copy in LICENSE_COPIES:
        write(copy, read("LICENSE"))
    print(f"Cargo.toml, Cargo.lock: {version}; {', '.join(LICENSE_COPIES)}: copied from LICENSE")


def check(version, url):
    problems = []

    def expect(what, got, want):
        if got != want:
            problems.append(f"{what} is {got!r}, not {want!r}")

    cmake = read("CMakeLists.txt")
    if not re.search(r"project\(libwhsem VERSION \$\{WHSEM_VERSION\}", cmake):
        problems.append("CMakeLists.txt: project() must take VERSION ${WHSEM_VERSION} (src/version.cmake)")

    toml = read("bindings/rust/Cargo.toml")
    m = CARGO_VERSION.search(toml)
    expect("bindings/rust/Cargo.toml's version", m and m.group(2), version)
    expect("bindings/rust/Cargo.toml's license", cargo_field(toml, "license"), "MIT")
    expect("bindings/rust/Cargo.toml's repository", cargo_field(toml, "repository"), url)
    m = CARGO_LOCK_VERSION.search(read("bindings/rust/Cargo.lock"))
    expect("bindings/rust/Cargo.lock's version of whsem", m and m.group(2), version)

    csproj = read(CSPROJ)
    for element, want in (("Version", "$(WhsemVersion)"), ("PackageLicenseExpression", "MIT"),
                          ("RepositoryUrl", "$(WhsemRepositoryUrl)"),
                          ("PackageProjectUrl", "$(WhsemRepositoryUrl)")):
        found = re.findall(rf"<{element}>([^<]*)</{element}>", csproj)
        expect(f"{CSPROJ}'s {element}", found, [want])

    # The Go module is fetched from the repository: its path is the
    # repository's, then the subdirectory (tags bindings/go/vX.Y.Z).
    gomod = re.search(r"^module (\S+)$", read("bindings/go/go.mod"), re.M)
    expect("bindings/go/go.mod's module path", gomod and gomod.group(1),
           re.sub(r"^https://", "", url) + "/bindings/go")

    licence = read("LICENSE")
    if not licence.startswith("MIT License\n"):
        problems.append("LICENSE is not the MIT licence")
    for copy in LICENSE_COPIES:
        if not os.path.exists(os.path.join(ROOT, copy)) or read(copy) != licence:
            problems.append(f"{copy} is not a copy of LICENSE")

    # A function, status or field that a later version introduces needs that
    # version in the header first (README, "Adding a function").
    abi = json.loads(read("abi/whsem.abi.json"))
    since = {n["version"] for n in abi["version_nodes"]}
    for group in ("statuses", "structs", "callbacks", "functions"):
        for item in abi[group]:
            since.add(item["since"])
            since.update(f["since"] for f in item.get("fields", []))
    newest = max(since, key=key)
    if key(newest) > key(version)[:2]:
        problems.append(f"abi/whsem.abi.json introduces items since {newest}, after abi/whsem.h's {version}")
    if {key(v)[0] for v in since} != {key(version)[0]}:
        problems.append(f"abi/whsem.abi.json has versions outside major {key(version)[0]}: {sorted(since)}")

    changelog = read("CHANGELOG.md")
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", changelog, re.M)
    if not headings or headings[0][0] not in ("Unreleased", version):
        problems.append(f"CHANGELOG.md: the first section must be [Unreleased] or [{version}]")
    for name, rest in headings:
        if name == "Unreleased":
            continue
        if not SEMVER.match(name) or not re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest):
            problems.append(f"CHANGELOG.md: '## [{name}]{rest}' is not '## [X.Y.Z] - YYYY-MM-DD'")
        elif key(name) > key(version):
            problems.append(f"CHANGELOG.md: {name} is released, but abi/whsem.h says {version}")
        if not re.search(rf"^\[{re.escape(name)}\]: {re.escape(url)}/", changelog, re.M):
            problems.append(f"CHANGELOG.md: no link [{name}]: {url}/...")

    return problems


def main():
    args = sys.argv[1:]
    if args not in ([], ["--sync"]):
        sys.exit(__doc__)
    version, url = header_version(), repository_url()
    if args == ["--sync"]:
        sync(version)
    problems = check(version, url)
    for p in problems:
        print(f"release metadata: {p}", file=sys.stderr)
    if problems:
        print("(python3 tests/release/release_metadata.py --sync writes the copies; RELEASING.md)",
              file=sys.stderr)
        return 1
    print(f"release metadata: {version}, {url}, MIT: every ecosystem's file agrees")
    return 0


if __name__ == "__main__":
    sys.exit(main())
