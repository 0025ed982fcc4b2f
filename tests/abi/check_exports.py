#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The library exports exactly the functions of the ABI description and
nothing else, on every platform:
  - libwhsem.so (ELF): each function at its version node, as code, no data
    and no leaked internal symbol (read with nm -D);
  - whsem.dll (PE): the same names in the export table, and neither the DLL
    nor the programs built with it need a MinGW runtime DLL, which Wine or
    Windows would not find (read with the cross objdump -p).

    check_exports.py ABI_JSON LIB [--objdump OBJDUMP] [EXE...]"""
import json
import re
import subprocess
import sys

args = sys.argv[1:]
objdump = "objdump"
if "--objdump" in args:
    i = args.index("--objdump")
    objdump = args[i + 1]
    del args[i:i + 2]
description, lib, exes = args[0], args[1], args[2:]
abi = json.load(open(description, encoding="utf-8"))
node = {v["version"]: v["name"] for v in abi["version_nodes"]}
want = {f["name"]: node[f["since"]] for f in abi["functions"]}
with open(lib, "rb") as f:
    magic = f.read(4)
problems = []


def elf_exports():
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True,
                         text=True).stdout
    exported = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[1] == "A":  # "A": the version node itself
            continue
        kind, sym = parts[1], parts[2]
        name, _, version = sym.partition("@@")
        if not version:
            name, _, version = sym.partition("@")
        exported[name] = (kind, version)
    for name, (kind, version) in sorted(exported.items()):
        if name in want and kind != "T":
            problems.append(f"{lib}: {name} is exported as {kind}, not as a function")
        elif name in want and version != want[name]:
            problems.append(f"{lib}: {name} is at version {version or '(none)'}, not {want[name]}")
    return set(exported)


def pe_dump(path):
    return subprocess.run([objdump, "-p", path], check=True, capture_output=True, text=True).stdout


def pe_exports():
    table = pe_dump(lib).split("[Ordinal/Name Pointer] Table", 1)
    if len(table) != 2:
        problems.append(f"{lib}: no export name table")
        return set()
    runtime = re.compile(r"^(libgcc|libstdc\+\+|libwinpthread|libssp)", re.I)
    for path in [lib] + exes:
        for dep in re.findall(r"DLL Name: (\S+)", pe_dump(path)):
            if runtime.match(dep):
                problems.append(f"{path}: needs the MinGW runtime DLL {dep}")
    return set(re.findall(r"^\s*\[\s*\d+\]\s+(\S+)\s*$", table[1], re.M))


if magic == b"\x7fELF":
    exported = elf_exports()
elif magic[:2] == b"MZ":
    exported = pe_exports()
else:
    sys.exit(f"{lib}: neither ELF nor PE")
for name in sorted(exported - set(want)):
    problems.append(f"{lib}: exports {name}, which is not in the ABI description")
for name in sorted(set(want) - exported):
    problems.append(f"{lib}: does not export {name}")
for p in problems:
    print(p, file=sys.stderr)
print(f"{len(exported)} exported functions checked against {len(want)} described"
      + (f"; runtime dependencies of {1 + len(exes)} binaries checked" if magic[:2] == b"MZ" else ""))
sys.exit(1 if problems else 0)
