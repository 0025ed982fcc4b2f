# SPDX-License-Identifier: MIT
"""The Windows ZIP, as a user unpacks it: runs `cpack -G ZIP` in the cross
build and checks the archive (test win_artifact_zip).

  - one top directory, libwhsem-X.Y.Z-win64/, holding bin/whsem.dll,
    include/whsem.h, lib/libwhsem.dll.a, lib/whsem.lib, lib/whsem.def and
    LICENSE;
  - whsem.dll stripped, with the version resource and PE versions of the
    project version (peinfo.release_dll_problems);
  - the header, the .def file and LICENSE identical to the sources;
  - both import libraries naming every function of abi/whsem.abi.json.

  check_artifact.py --cpack CPACK --config CPackConfig.cmake --work DIR
                    --source SOURCE_DIR --version X.Y.Z
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peinfo  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpack", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--version", required=True)
    args = ap.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    run = subprocess.run([args.cpack, "-G", "ZIP", "--config", args.config, "-B", args.work],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(run.stdout, end="")
    if run.returncode != 0:
        sys.exit(f"FAIL: cpack -G ZIP exited with {run.returncode}")

    top = f"libwhsem-{args.version}-win64/"
    archive = os.path.join(args.work, f"libwhsem-{args.version}-win64.zip")
    if not os.path.exists(archive):
        sys.exit(f"FAIL: cpack made no {archive} (it made: {sorted(os.listdir(args.work))})")
    problems = []
    with zipfile.ZipFile(archive) as z:
        names = [n for n in z.namelist() if not n.endswith("/")]
        print(f"{os.path.basename(archive)}:\n  " + "\n  ".join(names))
        outside = [n for n in names if not n.startswith(top)]
        if outside:
            problems.append(f"entries outside {top}: {outside}")
        files = {n[len(top):]: z.read(n) for n in names if n.startswith(top)}

    wanted = ["bin/whsem.dll", "include/whsem.h", "lib/libwhsem.dll.a", "lib/whsem.lib", "lib/whsem.def", "LICENSE"]
    missing = [w for w in wanted if w not in files]
    if missing:
        problems.append(f"missing from {top}: {missing}")

    if "bin/whsem.dll" in files:
        dll = peinfo.PE(files["bin/whsem.dll"], "bin/whsem.dll")
        problems += peinfo.release_dll_problems(dll, args.version)
        print(peinfo.describe(dll))

    for entry, source in (("include/whsem.h", "abi/whsem.h"), ("lib/whsem.def", "abi/whsem.def"),
                          ("LICENSE", "LICENSE")):
        with open(os.path.join(args.source, source), "rb") as f:
            if entry in files and files[entry] != f.read():
                problems.append(f"{entry} differs from {source}")

    with open(os.path.join(args.source, "abi", "whsem.abi.json"), encoding="utf-8") as f:
        functions = [fn["name"] for fn in json.load(f)["functions"]]
    for lib in ("lib/libwhsem.dll.a", "lib/whsem.lib"):
        if lib not in files:
            continue
        if not files[lib].startswith(b"!<arch>\n"):
            problems.append(f"{lib} is not an archive")
        if b"whsem.dll" not in files[lib]:
            problems.append(f"{lib} does not name whsem.dll")
        absent = [fn for fn in functions if b"__imp_" + fn.encode() + b"\0" not in files[lib]]
        if absent:
            problems.append(f"{lib} lacks the import symbols of {absent}")

    for p in problems:
        print(f"FAIL: {p}")
    if problems:
        sys.exit(1)
    print(f"PASS: {os.path.basename(archive)} has {', '.join(wanted)}; whsem.dll {args.version}, stripped; "
          f"both import libraries name all {len(functions)} functions")


if __name__ == "__main__":
    main()
