#!/usr/bin/env python3
"""whsem.dll exports exactly the functions of the ABI description, and the
Windows binaries need no MinGW runtime DLL (Wine or Windows would not find
one): the Windows twin of tests/abi/check_symbols.py.
    check_exports.py OBJDUMP ABI_JSON DLL [EXE...]"""
import json
import re
import subprocess
import sys

objdump, description, dll, exes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
want = {f["name"] for f in json.load(open(description, encoding="utf-8"))["functions"]}


def dump(path):
    return subprocess.run([objdump, "-p", path], check=True, capture_output=True, text=True).stdout


problems = []
out = dump(dll)
table = out.split("[Ordinal/Name Pointer] Table", 1)
if len(table) != 2:
    problems.append(f"{dll}: no export name table")
exported = set(re.findall(r"^\s*\[\s*\d+\]\s+(\S+)\s*$", table[-1], re.M)) if len(table) == 2 else set()
for name in sorted(exported - want):
    problems.append(f"{dll}: exports {name}, which is not in the ABI description")
for name in sorted(want - exported):
    problems.append(f"{dll}: does not export {name}")

runtime = re.compile(r"^(libgcc|libstdc\+\+|libwinpthread|libssp)", re.I)
for path in [dll] + exes:
    for dep in re.findall(r"DLL Name: (\S+)", dump(path)):
        if runtime.match(dep):
            problems.append(f"{path}: needs the MinGW runtime DLL {dep}")

for p in problems:
    print(p, file=sys.stderr)
print(f"{len(exported)} exported functions checked against {len(want)} described; "
      f"runtime dependencies of {1 + len(exes)} binaries checked")
sys.exit(1 if problems else 0)
