"""Write resources/torch-stable-abi.json: which torch minor first exports each symbol of
libtorch's C shim (aoti_torch_*, torch_*), the ABI that stable-ABI extensions link to.

    python scripts/update_stable_abi.py torch-2.10.0-...whl torch-2.11.0-...whl ... [--site DIR]

Each argument is a torch wheel (CUDA builds: the CUDA shim lives in libtorch_cuda.so) or,
with --site, an installed torch's site-packages folder. The libraries are read with
pyelftools; only exported (defined, global) C symbols with those prefixes are kept. verify
uses the table to refuse a stable-ABI wheel that imports a symbol its floor lacks; the
import check against real torch releases (wheelfactory cover) stays the final word.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import zipfile
from pathlib import Path

from elftools.elf.elffile import ELFFile

from wheelfactory import resources

LIBS = ("libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so", "libc10.so", "libc10_cuda.so")
SHIM = re.compile(r"^(aoti_torch_|torch_)\w+$")


def exported(path: Path) -> set[str]:
    with path.open("rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        return {
            s.name for s in dynsym.iter_symbols()
            if s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
            and SHIM.match(s.name)
        }  # fmt: skip


def from_wheel(wheel: Path) -> tuple[str, set[str]]:
    version = wheel.name.split("-")[1].split("+")[0]
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory() as tmp:
        for member in z.namelist():
            if member.startswith("torch/lib/") and Path(member).name in LIBS:
                target = Path(tmp) / Path(member).name
                with z.open(member) as src, target.open("wb") as out:
                    while block := src.read(1 << 24):
                        out.write(block)
                names |= exported(target)
                target.unlink()
    return version, names


def from_site(site: Path) -> tuple[str, set[str]]:
    text = (site / "torch" / "version.py").read_text()
    version = re.search(r"__version__\s*=\s*['\"]([\d.]+)", text).group(1)  # type: ignore[union-attr]
    names: set[str] = set()
    for lib in LIBS:
        if (site / "torch" / "lib" / lib).exists():
            names |= exported(site / "torch" / "lib" / lib)
    return version, names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheels", nargs="*", type=Path)
    ap.add_argument("--site", action="append", type=Path, default=[])
    args = ap.parse_args()
    seen = [from_wheel(w) for w in args.wheels] + [from_site(s) for s in args.site]
    by_minor = {".".join(v.split(".")[:2]): names for v, names in seen}
    minors = sorted(by_minor, key=lambda m: tuple(map(int, m.split("."))))
    first: dict[str, str] = {}
    for minor in minors:
        for name in sorted(by_minor[minor]):
            first.setdefault(name, minor)
    removed = {m: sorted(set().union(*(by_minor[p] for p in minors[:i])) - by_minor[m])
               for i, m in enumerate(minors) if i}  # fmt: skip
    data = {
        "version": 1,
        "note": "written by scripts/update_stable_abi.py from torch's own libraries; do not edit",
        "minors": minors,
        "first_exported_in": dict(sorted(first.items())),
        "removed_in": {m: names for m, names in removed.items() if names},
    }
    path = resources.RESOURCES / "torch-stable-abi.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}: {len(first)} symbols over torch {', '.join(minors)}")
    for m in minors:
        print(f"  {m}: {len(by_minor[m])} exported")


if __name__ == "__main__":
    main()
