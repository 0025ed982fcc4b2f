#!/usr/bin/env python3
"""The library exports exactly the functions of the ABI description, each at
its version node, and nothing else (no data, no leaked internal symbol)."""
import json
import subprocess
import sys

lib, description = sys.argv[1], sys.argv[2]
abi = json.load(open(description, encoding="utf-8"))
node = {v["version"]: v["name"] for v in abi["version_nodes"]}
want = {f["name"]: node[f["since"]] for f in abi["functions"]}

out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True, text=True).stdout
exported = {}
for line in out.splitlines():
    parts = line.split()
    if len(parts) < 3:
        continue
    kind, sym = parts[1], parts[2]
    if kind == "A":  # the version node itself
        continue
    name, _, version = sym.partition("@@")
    if not version:
        name, _, version = sym.partition("@")
    exported[name] = (kind, version)

problems = []
for name, (kind, version) in sorted(exported.items()):
    if name not in want:
        problems.append(f"exports {name} ({kind}), which is not in the ABI description")
    elif kind != "T":
        problems.append(f"{name} is exported as {kind}, not as a function")
    elif version != want[name]:
        problems.append(f"{name} is at version {version or '(none)'}, not {want[name]}")
for name in sorted(set(want) - set(exported)):
    problems.append(f"does not export {name}")
for p in problems:
    print(f"{lib}: {p}", file=sys.stderr)
print(f"{len(exported)} exported functions checked against {len(want)} described")
sys.exit(1 if problems else 0)
