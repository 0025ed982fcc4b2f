#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Packs LibWhsem and reads its manifest: the version, licence and
repository that NuGet shows must be the release's, read from abi/whsem.h
and CMakeLists.txt (RELEASING.md), and the README must be inside.

    nuget_metadata.py DOTNET CSPROJ WORK_DIR VERSION REPOSITORY_URL
"""
import glob
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile


def main():
    dotnet, csproj, work, version, url = sys.argv[1:]
    shutil.rmtree(work, ignore_errors=True)
    feed = os.path.join(work, "feed")
    subprocess.run([dotnet, "pack", csproj, "-c", "Release", "--nologo", "--disable-build-servers",
                    "-p:UseSharedCompilation=false", f"-p:WhsemBuildDir={work}/artifacts", "-o", feed],
                   check=True, stdout=subprocess.DEVNULL)
    packages = glob.glob(os.path.join(feed, "LibWhsem.*.nupkg"))
    if len(packages) != 1:
        sys.exit(f"FAIL: dotnet pack left {packages} in {feed}, not one LibWhsem package")
    with zipfile.ZipFile(packages[0]) as z:
        names = z.namelist()
        nuspec = ET.fromstring(z.read("LibWhsem.nuspec"))
    # The manifest's namespace changes with NuGet's schema version: match local names.
    meta = {el.tag.split("}")[-1]: el for el in next(e for e in nuspec if e.tag.endswith("metadata"))}
    problems = []

    def expect(what, got, want):
        print(f"{what}: {got!r}")
        if got != want:
            problems.append(f"{what} is {got!r}, not {want!r}")

    expect("version", meta["version"].text, version)
    expect("license", (meta["license"].get("type"), meta["license"].text), ("expression", "MIT"))
    expect("repository", (meta["repository"].get("type"), meta["repository"].get("url")), ("git", url))
    expect("projectUrl", meta["projectUrl"].text, url)
    expect("readme in the package", meta["readme"].text in names, True)
    for p in problems:
        print(f"FAIL: {os.path.basename(packages[0])}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
