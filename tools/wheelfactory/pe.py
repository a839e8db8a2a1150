"""The DLL names a Windows PE file (``.pyd``, ``.dll``) imports, read with the stdlib.

Only the import directory (data directory 1) is read: delay-loaded DLLs are left out on
purpose, because Windows loads those on first call, not at import. The CI smoke uses it to
tell a module that cannot load without the NVIDIA driver (it imports ``nvcuda.dll``) from
one that must import on a driver-less runner.
"""

from __future__ import annotations

import struct

_IMPORT_DIRECTORY = 1


class PEFormatError(ValueError):
    """Not a PE file this reader understands."""


def _u16(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<H", data, at)[0])


def _u32(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<I", data, at)[0])


def dll_imports(data: bytes) -> tuple[str, ...]:
    """The DLLs ``data`` (a whole PE file) imports, as written there (``KERNEL32.dll``)."""
    try:
        if data[:2] != b"MZ":
            raise PEFormatError("no MZ header")
        pe = _u32(data, 0x3C)
        if data[pe : pe + 4] != b"PE\0\0":
            raise PEFormatError("no PE signature")
        coff = pe + 4
        sections, optional_size = _u16(data, coff + 2), _u16(data, coff + 16)
        optional = coff + 20
        magic = _u16(data, optional)
        directories = {0x10B: optional + 96, 0x20B: optional + 112}.get(magic)  # PE32, PE32+
        if directories is None:
            raise PEFormatError(f"unknown optional header magic {magic:#x}")
        import_rva = _u32(data, directories + 8 * _IMPORT_DIRECTORY)
        table = [
            (_u32(data, at + 12), max(_u32(data, at + 8), _u32(data, at + 16)), _u32(data, at + 20))
            for at in range(optional + optional_size, optional + optional_size + 40 * sections, 40)
        ]  # (virtual address, size, file offset) per section

        def offset(rva: int) -> int:
            for start, size, raw in table:
                if start <= rva < start + size:
                    return raw + rva - start
            raise PEFormatError(f"RVA {rva:#x} is in no section")

        names = []
        if import_rva:
            at = offset(import_rva)
            while any(data[at : at + 20]):  # a zeroed descriptor ends the table
                name_at = offset(_u32(data, at + 12))
                names.append(data[name_at : data.index(b"\0", name_at)].decode("ascii"))
                at += 20
        return tuple(names)
    except (struct.error, ValueError, UnicodeDecodeError) as e:
        if isinstance(e, PEFormatError):
            raise
        raise PEFormatError(f"truncated or malformed ({e})") from e
