# SPDX-License-Identifier: MIT
"""What a LibWhsem .nupkg must hold (run by tests/package-test.sh):

  - lib/net10.0 and lib/net8.0 LibWhsem.dll, each with its PDB embedded;
  - README.md as the package's readme, the licence expression MIT, the
    repository's URL, the dependency on DistributedLock.Core;
  - runtimes/linux-x64/native/libwhsem.so.1: stripped, SONAME libwhsem.so.1,
    no glibc symbol version newer than 2.28 (objdump -T), and glibc's own
    libraries only among its DT_NEEDED;
  - runtimes/win-x64/native/whsem.dll: stripped, with the version resource
    of the native library's version (tests/windows/peinfo.py);
  - both libraries exporting exactly the ABI (tests/abi/check_exports.py).

  check_package.py NUPKG --source SOURCE_DIR --native-version X.Y.Z --work DIR
                   [--mingw-objdump OBJDUMP]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile

GLIBC_BASELINE = (2, 28)
# What a library built against glibc may need; anything else (libpq, a
# libstdc++) would be a dependency the package does not bring.
GLIBC_LIBRARIES = {"libc.so.6", "libpthread.so.0", "libdl.so.2", "libm.so.6", "librt.so.1",
                   "ld-linux-x86-64.so.2"}
LINUX = "runtimes/linux-x64/native/libwhsem.so.1"
WINDOWS = "runtimes/win-x64/native/whsem.dll"
ASSEMBLIES = ["lib/net10.0/LibWhsem.dll", "lib/net8.0/LibWhsem.dll"]
EMBEDDED_PORTABLE_PDB = 17


def tool(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def check_nuspec(text, problems):
    root = ET.fromstring(text)
    ns = {"n": root.tag[1:root.tag.index("}")]} if root.tag.startswith("{") else {"n": ""}
    meta = root.find("n:metadata", ns)

    def field(name):
        return meta.find(f"n:{name}", ns)

    lic = field("license")
    if lic is None or lic.get("type") != "expression" or lic.text != "MIT":
        problems.append("nuspec: no <license type=\"expression\">MIT</license>")
    repo = field("repository")
    if repo is None or not (repo.get("url") or "").startswith("https://"):
        problems.append("nuspec: no <repository url=\"https://...\">")
    readme = field("readme")
    if readme is None or readme.text != "README.md":
        problems.append("nuspec: no <readme>README.md</readme>")
    deps = {d.get("id") for d in meta.iter() if d.tag.rsplit("}", 1)[-1] == "dependency"}
    if "DistributedLock.Core" not in deps:
        problems.append(f"nuspec: no dependency on DistributedLock.Core (has {sorted(deps)})")
    return {"version": field("version").text, "repository": repo.get("url") if repo is not None else None}


def check_linux_library(path, problems):
    sections = tool("readelf", "-SW", path)
    debug = sorted(set(re.findall(r"\s(\.(?:z?debug_\w+|symtab))\s", sections)))
    if debug:
        problems.append(f"{LINUX}: not stripped: {' '.join(debug)}")
    dynamic = tool("readelf", "-dW", path)
    soname = re.findall(r"\(SONAME\).*\[(.*)\]", dynamic)
    if soname != ["libwhsem.so.1"]:
        problems.append(f"{LINUX}: SONAME {soname}, not libwhsem.so.1")
    needed = set(re.findall(r"\(NEEDED\).*\[(.*)\]", dynamic))
    if needed - GLIBC_LIBRARIES:
        problems.append(f"{LINUX}: needs {sorted(needed - GLIBC_LIBRARIES)}, which are not glibc's")
    versions = set()
    for line in tool("objdump", "-T", path).splitlines():
        versions.update(re.findall(r"\bGLIBC_(\d+)\.(\d+)(?:\.\d+)?\b", line))
    newest = max((int(a), int(b)) for a, b in versions)
    too_new = sorted({v for v in versions if (int(v[0]), int(v[1])) > GLIBC_BASELINE})
    if too_new:
        users = [l.split()[-1] for l in tool("objdump", "-T", path).splitlines()
                 if any(f"GLIBC_{a}.{b}" in l for a, b in too_new)]
        problems.append(f"{LINUX}: needs glibc {'/'.join('.'.join(v) for v in too_new)} for {users}: "
                        f"pin them in src/linux/glibc_2_28.h")
    return "%d.%d" % newest, sorted(needed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("nupkg")
    ap.add_argument("--source", required=True)
    ap.add_argument("--native-version", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mingw-objdump", default="x86_64-w64-mingw32-objdump")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.source, "tests", "windows"))
    import peinfo

    shutil.rmtree(args.work, ignore_errors=True)
    problems = []
    with zipfile.ZipFile(args.nupkg) as z:
        names = set(z.namelist())
        print(f"{os.path.basename(args.nupkg)}:\n  " + "\n  ".join(sorted(names)))
        missing = [n for n in ASSEMBLIES + ["README.md", "LibWhsem.nuspec", LINUX, WINDOWS] if n not in names]
        if missing:
            sys.exit(f"FAIL: the package lacks {missing}")
        z.extractall(args.work)
        meta = check_nuspec(z.read("LibWhsem.nuspec").decode("utf-8-sig"), problems)

    for assembly in ASSEMBLIES:
        pe = peinfo.PE.from_file(os.path.join(args.work, assembly))
        if EMBEDDED_PORTABLE_PDB not in pe.debug_types():
            problems.append(f"{assembly}: no embedded portable PDB")

    linux = os.path.join(args.work, LINUX)
    glibc, needed = check_linux_library(linux, problems)
    windows = os.path.join(args.work, WINDOWS)
    dll = peinfo.PE.from_file(windows)
    problems += peinfo.release_dll_problems(dll, args.native_version)

    abi = os.path.join(args.source, "abi", "whsem.abi.json")
    exports = os.path.join(args.source, "tests", "abi", "check_exports.py")
    for lib, extra in ((linux, []), (windows, ["--objdump", args.mingw_objdump])):
        run = subprocess.run([sys.executable, exports, abi, lib] + extra, capture_output=True, text=True)
        if run.returncode != 0:
            problems.append(f"{os.path.relpath(lib, args.work)}: exports: {run.stdout}{run.stderr}".strip())

    for p in problems:
        print(f"FAIL: {p}")
    if problems:
        sys.exit(1)
    print(f"PASS: LibWhsem {meta['version']} (MIT, {meta['repository']}, readme, embedded PDBs): "
          f"libwhsem.so.1 stripped, glibc {glibc} at most, needs {', '.join(needed)}; "
          f"whsem.dll {args.native_version}, stripped, with its version resource; both export the ABI")


if __name__ == "__main__":
    main()
