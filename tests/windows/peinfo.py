# SPDX-License-Identifier: MIT
"""What the packaging tests read from a Windows PE file (a DLL or a .NET
assembly), with the Python standard library only: the header's versions,
the sections, whether a COFF symbol table is left, the version resource and
the kinds of debug directory entries.

    python3 peinfo.py FILE      prints all of it, for a look by hand
"""
import struct
import sys

RT_VERSION = 16
DEBUG_TYPE_NAMES = {2: "CodeView", 16: "PdbChecksum", 17: "EmbeddedPortablePdb"}
FIXED_FILE_INFO_SIGNATURE = 0xFEEF04BD


class PEError(ValueError):
    pass


def _align4(n):
    return (n + 3) & ~3


class PE:
    def __init__(self, data, name="PE file"):
        self.data = data
        self.name = name
        if data[:2] != b"MZ":
            raise PEError(f"{name}: no MZ header: not a PE file")
        (pe_offset,) = struct.unpack_from("<I", data, 0x3C)
        if data[pe_offset:pe_offset + 4] != b"PE\0\0":
            raise PEError(f"{name}: no PE signature at {pe_offset:#x}")
        coff = pe_offset + 4
        (self.machine, nsections, _, self.symbol_table, self.symbol_count,
         optional_size, _) = struct.unpack_from("<HHIIIHH", data, coff)
        opt = coff + 20
        (magic,) = struct.unpack_from("<H", data, opt)
        if magic not in (0x10B, 0x20B):
            raise PEError(f"{name}: unknown optional header magic {magic:#x}")
        self.pe32_plus = magic == 0x20B
        self.os_version = struct.unpack_from("<HH", data, opt + 40)
        self.image_version = struct.unpack_from("<HH", data, opt + 44)
        self.subsystem_version = struct.unpack_from("<HH", data, opt + 48)
        dirs = opt + (112 if self.pe32_plus else 96)
        (ndirs,) = struct.unpack_from("<I", data, dirs - 4)
        self.directories = [struct.unpack_from("<II", data, dirs + 8 * i) for i in range(ndirs)]
        self.sections = []
        table = opt + optional_size
        strings = self.symbol_table + 18 * self.symbol_count
        for i in range(nsections):
            raw_name, vsize, vaddr, rawsize, rawptr = struct.unpack_from("<8sIIII", data, table + 40 * i)
            section_name = raw_name.rstrip(b"\0").decode("ascii", "replace")
            # Names longer than 8 bytes live in the COFF string table ("/4").
            if section_name.startswith("/") and section_name[1:].isdigit() and self.symbol_table:
                start = strings + int(section_name[1:])
                section_name = data[start:data.index(b"\0", start)].decode("ascii", "replace")
            self.sections.append((section_name, vaddr, max(vsize, rawsize), rawptr, rawsize))

    @classmethod
    def from_file(cls, path):
        with open(path, "rb") as f:
            return cls(f.read(), path)

    def offset(self, rva):
        for _, vaddr, size, rawptr, rawsize in self.sections:
            if vaddr <= rva < vaddr + size:
                if rva - vaddr >= rawsize:
                    raise PEError(f"{self.name}: RVA {rva:#x} has no bytes in the file")
                return rawptr + rva - vaddr
        raise PEError(f"{self.name}: RVA {rva:#x} is in no section")

    def directory(self, index):
        if index >= len(self.directories):
            return None
        rva, size = self.directories[index]
        return (rva, size) if rva and size else None

    # ---- resources -----------------------------------------------------------

    def _resource_entries(self, base, offset):
        _, _, _, _, named, ids = struct.unpack_from("<IIHHHH", self.data, base + offset)
        for i in range(named + ids):
            name, target = struct.unpack_from("<II", self.data, base + offset + 16 + 8 * i)
            yield name, target

    def resource(self, type_id):
        """The bytes of the first resource of that type, or None."""
        found = self.directory(2)
        if not found:
            return None
        base = self.offset(found[0])
        offset = 0
        # Three levels: type, name, language; the first entry of each below the type.
        for level in range(3):
            entries = list(self._resource_entries(base, offset))
            if level == 0:
                entries = [e for e in entries if e[0] == type_id]
            if not entries:
                return None
            target = entries[0][1]
            if level < 2 and not target & 0x80000000:
                raise PEError(f"{self.name}: resource tree too shallow")
            offset = target & 0x7FFFFFFF
        data_rva, size, _, _ = struct.unpack_from("<IIII", self.data, base + offset)
        start = self.offset(data_rva)
        return self.data[start:start + size]

    def version_info(self):
        """{'file_version': (a, b, c, d), 'product_version': ..., 'strings': {...}} or None."""
        blob = self.resource(RT_VERSION)
        if blob is None:
            return None
        info = {"strings": {}}
        for key, _, value, children, end in _version_blocks(blob, 0, len(blob)):
            if key != "VS_VERSION_INFO":
                raise PEError(f"{self.name}: version resource starts with {key!r}")
            if len(value) < 52:
                raise PEError(f"{self.name}: version resource has no VS_FIXEDFILEINFO")
            sig, _, fms, fls, pms, pls = struct.unpack_from("<IIIIII", value, 0)
            if sig != FIXED_FILE_INFO_SIGNATURE:
                raise PEError(f"{self.name}: VS_FIXEDFILEINFO signature {sig:#x}")
            info["file_version"] = (fms >> 16, fms & 0xFFFF, fls >> 16, fls & 0xFFFF)
            info["product_version"] = (pms >> 16, pms & 0xFFFF, pls >> 16, pls & 0xFFFF)
            for child, _, _, grandchildren, child_end in _version_blocks(blob, children, end):
                if child != "StringFileInfo":
                    continue
                for _, _, _, strings, table_end in _version_blocks(blob, grandchildren, child_end):
                    for name, kind, text, _, _ in _version_blocks(blob, strings, table_end):
                        if kind == 1:
                            info["strings"][name] = text.decode("utf-16-le").rstrip("\0")
            return info
        return None

    # ---- debug directory -----------------------------------------------------

    def debug_types(self):
        found = self.directory(6)
        if not found:
            return []
        start = self.offset(found[0])
        return [struct.unpack_from("<I", self.data, start + 28 * i + 12)[0] for i in range(found[1] // 28)]

    def debug_sections(self):
        return [s[0] for s in self.sections if s[0].startswith((".debug", ".zdebug"))]


def _version_blocks(data, start, end):
    """The blocks (key, type, value, first child, end) of a version resource
    between start and end: each is a length, a value length (in characters
    for text), a type (1: text), a UTF-16 key, then the value and children,
    all aligned on 4 bytes."""
    offset = start
    while offset + 6 <= end:
        length, value_length, kind = struct.unpack_from("<HHH", data, offset)
        if length < 6 or offset + length > end:
            break
        key_end = offset + 6
        while key_end + 1 < offset + length and data[key_end:key_end + 2] != b"\0\0":
            key_end += 2
        key = data[offset + 6:key_end].decode("utf-16-le")
        value_start = _align4(key_end + 2)
        value_size = value_length * 2 if kind == 1 else value_length
        value = data[value_start:value_start + value_size]
        yield key, kind, value, _align4(value_start + value_size), offset + length
        offset = _align4(offset + length)


def release_dll_problems(pe, version, file_name="whsem.dll"):
    """What keeps a DLL from being the one shipped for project version
    X.Y.Z: its version resource, its header's versions (image X.Y; Windows
    6.2, the oldest it runs on) and any debug information left in it."""
    major, minor, patch = (int(p) for p in version.split("."))
    problems = []
    info = pe.version_info()
    if info is None:
        problems.append(f"{pe.name}: no version resource")
    else:
        for field in ("file_version", "product_version"):
            if info[field] != (major, minor, patch, 0):
                problems.append(f"{pe.name}: {field} is %d.%d.%d.%d, not {version}.0" % info[field])
        expected = {"FileVersion": version, "ProductVersion": version, "OriginalFilename": file_name,
                    "ProductName": "libwhsem"}
        for key, value in expected.items():
            if info["strings"].get(key) != value:
                problems.append(f"{pe.name}: version string {key} is {info['strings'].get(key)!r}, not {value!r}")
    if pe.image_version != (major, minor):
        problems.append(f"{pe.name}: image version %d.%d, not {major}.{minor}" % pe.image_version)
    for what, got in (("operating system", pe.os_version), ("subsystem", pe.subsystem_version)):
        if got != (6, 2):
            problems.append(f"{pe.name}: {what} version %d.%d, not 6.2 (Windows 8)" % got)
    if pe.debug_sections():
        problems.append(f"{pe.name}: not stripped: {' '.join(pe.debug_sections())}")
    if pe.symbol_count:
        problems.append(f"{pe.name}: not stripped: {pe.symbol_count} COFF symbols")
    return problems


def describe(pe):
    lines = [
        f"file: {pe.name}",
        f"format: {'PE32+' if pe.pe32_plus else 'PE32'}, machine {pe.machine:#x}",
        "os version: %d.%d" % pe.os_version,
        "image version: %d.%d" % pe.image_version,
        "subsystem version: %d.%d" % pe.subsystem_version,
        f"sections: {' '.join(s[0] for s in pe.sections)}",
        f"COFF symbols: {pe.symbol_count}",
        "debug directory: " + (", ".join(DEBUG_TYPE_NAMES.get(t, str(t)) for t in pe.debug_types()) or "none"),
    ]
    info = pe.version_info()
    if info is None:
        lines.append("version resource: none")
    else:
        lines.append("file version: %d.%d.%d.%d" % info["file_version"])
        lines.append("product version: %d.%d.%d.%d" % info["product_version"])
        lines.extend(f"  {k}: {v}" for k, v in sorted(info["strings"].items()))
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: peinfo.py FILE")
    try:
        print(describe(PE.from_file(sys.argv[1])))
    except (OSError, PEError) as e:
        sys.exit(f"peinfo: {e}")
