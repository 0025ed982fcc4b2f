#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What a user of the package gets, following the README as written: the
# commands of its "From a package" block run one by one, with only ~/feed
# replaced by a folder of this test's own (and the build kept out of the
# source tree). So a plain `dotnet pack` must build libwhsem for Linux and
# Windows, and the feed, which `dotnet add package --source` restores from
# alone, must be complete. Then:
#   - tests/check_package.py checks what the package holds;
#   - "your project" is a fresh console project, its Program.cs the README's
#     first C# example on names of its own, run with neither WHSEM_LIBRARY
#     nor LD_LIBRARY_PATH set, and it must load libwhsem from the package.
#
#   tests/package-test.sh WORK_DIR NATIVE_VERSION
# NATIVE_VERSION: the project's version, which whsem.dll's version resource
# must carry; WHSEM_CLI (optional): the whsem CLI, to remove the semaphore.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${1:?usage: package-test.sh WORK_DIR NATIVE_VERSION}"
native_version="${2:?usage: package-test.sh WORK_DIR NATIVE_VERSION}"
cli="${WHSEM_CLI:-}"
name="whsem-cs-package-$$"
# No build server may outlive the test (CTest waits for whatever holds its output).
quiet_flags=(--disable-build-servers -p:UseSharedCompilation=false)

rm -rf "$work"
mkdir -p "$work"
feed="$work/feed"

# The README's block, one command a line.
mapfile -t commands < <(python3 - "$here/README.md" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
section = text[text.index("**From a package.**"):]
block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
for line in block.splitlines():
    if line.strip():
        print(line)
PY
)
expect=("dotnet pack " "cp " "cd path/to/your/project" "dotnet add package LibWhsem ")
for i in "${!expect[@]}"; do
    [[ "${commands[$i]:-}" == "${expect[$i]}"* ]] || {
        echo "FAIL: the README's install block changed (line $((i + 1)): '${commands[$i]:-}'): update tests/package-test.sh" >&2
        exit 1
    }
done
as_written() { local c="${1//\~\/feed/$feed}"; echo "${c//\~/$HOME}"; }

echo "== ${commands[0]}"
(cd "$root" && eval "$(as_written "${commands[0]}")" -p:WhsemBuildDir="$work/artifacts" "${quiet_flags[@]}")
echo "== ${commands[1]}"
(cd "$root" && eval "$(as_written "${commands[1]}")")
ls -l "$feed"

nupkg=("$feed"/LibWhsem.*.nupkg)
[ ${#nupkg[@]} -eq 1 ] && [ -f "${nupkg[0]}" ] || { echo "FAIL: the pack made no single LibWhsem package in $feed" >&2; exit 1; }
python3 "$here/tests/check_package.py" "${nupkg[0]}" --source "$root" --native-version "$native_version" \
    --work "$work/unpacked"

# "Your project": fresh, with a package folder of its own, so that the
# package is restored from the feed, never from an earlier run's copy.
export NUGET_PACKAGES="$work/packages"
dotnet new console --no-restore -o "$work/app" >/dev/null
echo "== ${commands[3]}"
(cd "$work/app" && eval "$(as_written "${commands[3]}")")

python3 - "$here/README.md" "$name" > "$work/app/Program.cs" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
example = re.search(r"```csharp\n(.*?)```", text, re.S).group(1)
for used in ('"video-encoder"', '"schema-migration"'):
    assert used in example, "the README example changed: update tests/package-test.sh"
example = example.replace('"video-encoder"', '"' + sys.argv[2] + '"')
example = example.replace('"schema-migration"', '"' + sys.argv[2] + '-lock"')
print(example)
print('Console.WriteLine($"example ran: {encoders.Name} (max {encoders.MaxCount}), {migration.Name}");')
# Which libwhsem the process mapped: the package's, not one found elsewhere.
print('foreach (var line in File.ReadLines("/proc/self/maps"))')
print('    if (line.EndsWith("/libwhsem.so.1")) { Console.WriteLine("loaded: " + line[line.IndexOf(\'/\')..]); break; }')
PY

cleanup() {
    if [ -n "$cli" ]; then
        "$cli" rm --force "$name" >/dev/null 2>&1 || true
        "$cli" rm --force "$name-lock" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
out="$(cd "$work/app" && env -u WHSEM_LIBRARY -u LD_LIBRARY_PATH dotnet run -c Release "${quiet_flags[@]}" 2>&1)" || {
    echo "$out"
    echo "FAIL: the README example did not run from the package" >&2
    exit 1
}
echo "$out"
grep -qF "example ran: Global\\$name (max 3), Global\\$name-lock" <<<"$out" || { echo "FAIL: unexpected output" >&2; exit 1; }
grep -qE "^loaded: .*/runtimes/linux-x64/native/libwhsem.so.1$" <<<"$out" || {
    echo "FAIL: libwhsem was not loaded from the package's runtimes/linux-x64/native/" >&2
    exit 1
}
echo "PASS: the README's install commands work as written, and its example ran with libwhsem from the package"
