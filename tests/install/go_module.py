#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Go module as a stranger fetches it: through a module proxy, and
through a module that itself requires it (the transitive case that a path
without a dot breaks: "malformed module path").

    go_module.py GO VERSION WORKDIR

Builds, in WORKDIR, a file:// module proxy (Go's GOPROXY protocol: list,
.info, .mod, .zip) serving this binding at vVERSION and a module
example.com/middle that requires it, then a fresh module example.com/app
that requires only example.com/middle: `go get`, `go build`, run. cgo finds
the library through the caller's environment (PKG_CONFIG_PATH,
LD_LIBRARY_PATH), as `go test` does.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "go")

MIDDLE = """package middle

import (
\t"context"

\twhsem "{path}"
)

// Once holds a ticket of name for a moment: the binding, used from a
// library module.
func Once(name string) error {{
\tsem, err := whsem.Open(name, 1)
\tif err != nil {{
\t\treturn err
\t}}
\tdefer sem.Close()
\tt, err := sem.Acquire(context.Background())
\tif err != nil {{
\t\treturn err
\t}}
\treturn t.Release()
}}
"""

APP = """package main

import (
\t"fmt"
\t"os"

\t"example.com/middle"
)

func main() {
\tif err := middle.Once(fmt.Sprintf("go-module-test-%d", os.Getpid())); err != nil {
\t\tfmt.Println(err)
\t\tos.Exit(1)
\t}
\tfmt.Println("acquired and released through example.com/middle")
}
"""


def publish(proxy, path, version, files):
    """Serves files {relative name: bytes} as module path@version."""
    d = os.path.join(proxy, path, "@v")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "list"), "a") as f:
        f.write(version + "\n")
    with open(os.path.join(d, version + ".info"), "w") as f:
        json.dump({"Version": version, "Time": "2026-12-01T00:00:00Z"}, f)
    with open(os.path.join(d, version + ".mod"), "wb") as f:
        f.write(files["go.mod"])
    with zipfile.ZipFile(os.path.join(d, version + ".zip"), "w") as z:
        for rel, data in sorted(files.items()):
            z.writestr(f"{path}@{version}/{rel}", data)


def binding_files():
    """The module's files as a fetch would see them: git's view of the
    directory, else the directory."""
    try:
        out = subprocess.run(["git", "-C", HERE, "ls-files", "-z", "."], capture_output=True, check=True)
        names = [n for n in out.stdout.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
        for d, _, fs in os.walk(HERE):
            names += [os.path.relpath(os.path.join(d, f), HERE) for f in fs]
    files = {}
    for rel in names:
        with open(os.path.join(HERE, rel), "rb") as f:
            files[rel] = f.read()
    return files


def main():
    go, version, work = sys.argv[1], "v" + sys.argv[2], sys.argv[3]
    shutil.rmtree(work, ignore_errors=True)
    proxy = os.path.join(work, "proxy")
    binding = binding_files()
    path = re.search(rb"^module (\S+)$", binding["go.mod"], re.M).group(1).decode()
    publish(proxy, path, version, binding)
    publish(proxy, "example.com/middle", "v0.1.0", {
        "go.mod": f"module example.com/middle\n\ngo 1.22\n\nrequire {path} {version}\n".encode(),
        "middle.go": MIDDLE.format(path=path).encode(),
    })
    app = os.path.join(work, "app")
    os.makedirs(app)
    with open(os.path.join(app, "go.mod"), "w") as f:
        f.write("module example.com/app\n\ngo 1.22\n")
    with open(os.path.join(app, "main.go"), "w") as f:
        f.write(APP)
    env = dict(os.environ, GOPROXY="file://" + proxy, GOSUMDB="off", GOFLAGS="-mod=mod",
               GOPATH=os.path.join(work, "gopath"), GOTOOLCHAIN="local", GOWORK="off",
               CGO_ENABLED="1")
    for step in (["get", "example.com/middle@v0.1.0"], ["build", "-o", "app", "."]):
        print("+ go " + " ".join(step), flush=True)
        r = subprocess.run([go] + step, cwd=app, env=env)
        if r.returncode != 0:
            return 1
    with open(os.path.join(app, "go.mod")) as f:
        mod = f.read()
    if path not in mod:
        print(f"go.mod of the app does not list {path} (indirect):\n{mod}")
        return 1
    r = subprocess.run([os.path.join(app, "app")], env=env, capture_output=True, text=True)
    print(r.stdout + r.stderr, end="")
    return 0 if r.returncode == 0 and "acquired and released" in r.stdout else 1


if __name__ == "__main__":
    sys.exit(main())
