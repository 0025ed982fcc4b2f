#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Packs LibWhsem with libwhsem inside, and builds and runs the README's
# example from a separate project that references only that package, with
# neither WHSEM_LIBRARY nor LD_LIBRARY_PATH set: what a user who installs
# the package gets.
#
#   tests/package-test.sh WORK_DIR     (WHSEM_LIBRARY: the libwhsem to pack)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
work="$1"
lib="${WHSEM_LIBRARY:?WHSEM_LIBRARY must name the libwhsem.so.1 to pack}"
cli="${WHSEM_CLI:-}"
version="1.0.0-local.$(date +%s).$$"
name="whsem-cs-package-$$"
build_flags=(-c Release --nologo --disable-build-servers -p:UseSharedCompilation=false)

rm -rf "$work"
mkdir -p "$work/feed" "$work/app"
dotnet pack "$here/LibWhsem/LibWhsem.csproj" "${build_flags[@]}" -o "$work/feed" \
    -p:WhsemBuildDir="$work/pack-artifacts" -p:Version="$version" -p:WhsemNativeLibrary="$lib" >/dev/null

cat > "$work/app/NuGet.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="local-feed" value="$work/feed" />
    <add key="machine-folder" value="/opt/nuget/packages" />
  </packageSources>
  <config>
    <add key="globalPackagesFolder" value="$work/packages" />
  </config>
</configuration>
XML
cat > "$work/app/App.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="LibWhsem" Version="$version" />
  </ItemGroup>
</Project>
XML
# The first C# block of the README, on a name of its own, and a line that
# proves it ran.
python3 - "$here/README.md" "$name" > "$work/app/Program.cs" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
example = re.search(r"```csharp\n(.*?)```", text, re.S).group(1)
assert '"MySemaphoreName"' in example, "the README example changed: update tests/package-test.sh"
print(example.replace('"MySemaphoreName"', '"' + sys.argv[2] + '"'))
print('Console.WriteLine($"example ran: {semaphore.Name} (max {semaphore.MaxCount})");')
PY

cleanup() {
    if [ -n "$cli" ]; then "$cli" rm --force "$name" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
out="$(cd "$work/app" && env -u WHSEM_LIBRARY -u LD_LIBRARY_PATH dotnet run "${build_flags[@]}" 2>&1)" || {
    echo "$out"
    echo "FAIL: the README example did not run from the package" >&2
    exit 1
}
echo "$out"
grep -qF "example ran: Global\\$name (max 3)" <<<"$out" || { echo "FAIL: unexpected output" >&2; exit 1; }
echo "PASS: the README example ran from the LibWhsem $version package, with libwhsem loaded from the package"
