#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every source file of the project says its licence: an SPDX line in its
first five lines. Formats that cannot carry a comment (JSON, lock files,
abidw's baseline) and prose (Markdown, the licence itself) are exempt.

    check_spdx.py SOURCE_DIR

Lists the files of the git checkout (git ls-files), or, outside one, every
file below SOURCE_DIR but build trees and dot-directories.
"""
import os
import subprocess
import sys

EXEMPT_SUFFIXES = (".md", ".json", ".lock", ".abixml", ".svg", ".png", ".ico", ".snk")
EXEMPT_NAMES = {"LICENSE", ".gitignore", ".gitattributes"}
MARK = "SPDX-License-Identifier: MIT"


def project_files(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z"], capture_output=True, check=True)
        return [f for f in out.stdout.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        found = []
        for d, dirs, names in os.walk(root):
            dirs[:] = [x for x in dirs if not x.startswith(".") and not x.startswith("build")]
            found += [os.path.relpath(os.path.join(d, n), root) for n in names]
        return found


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    missing = []
    files = project_files(root)
    for rel in files:
        name = os.path.basename(rel)
        if name in EXEMPT_NAMES or rel.endswith(EXEMPT_SUFFIXES):
            continue
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            head = b"".join(f.readline() for _ in range(5))
        if MARK.encode() not in head:
            missing.append(rel)
    for rel in missing:
        print(f"{rel}: no '{MARK}' line in its first five lines", file=sys.stderr)
    print(f"{len(files)} files, {len(missing)} without an SPDX line")
    return 1 if missing or not files else 0


if __name__ == "__main__":
    sys.exit(main())
