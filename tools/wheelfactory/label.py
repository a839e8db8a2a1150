"""Label a wheel: unpack -> apply a list of edits to the unpacked tree -> repack.

An edit is any ``Callable[[Path], None]`` that changes the unpacked tree in place (the
root holds the package files and ``<name>-<version>.dist-info``). Repacking reads the
name and version from METADATA and the tags from WHEEL, so an edit that changes the
version (``set_version``) also changes the file name; RECORD is computed afresh.

Edits here: ``set_version`` (local label ``+cu130torch2.14``), ``require`` (Requires-Dist
``torch==2.14.*``), ``strip_debug``, ``write_build_record`` (``<dist-info>/wheelfactory-build.json``).
The import-time guard (guard.py) is one more edit; finish.py puts them in order.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from wheelfactory import _proc, atomicfile, wheelfile
from wheelfactory.errors import BuildError
from wheelfactory.record import RECORD_NAME, BuildRecord
from wheelfactory.wheelfile import parse_headers, record_hash

Edit = Callable[[Path], None]
# Zip timestamps: SOURCE_DATE_EPOCH when set, else 1980-01-01 (reproducible archives).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def find_dist_info(root: Path) -> Path:
    found = [p for p in root.iterdir() if p.is_dir() and p.name.endswith(".dist-info")]
    if len(found) != 1:
        raise BuildError(
            f"{root} holds {len(found)} .dist-info folders, not 1: the wheel is malformed; rebuild it"
        )
    return found[0]


def _rewrite_header(
    text: str, name: str, values: Sequence[str], *, after: str | None = None
) -> str:
    """Replace every ``name:`` header line of a METADATA/WHEEL text with ``values``.

    Only the header block (before the first blank line) is touched; the body stays as is.
    """
    head, sep, body = text.partition("\n\n")
    if not sep:  # headers only
        head, sep, body = head.rstrip("\n"), "\n", ""
    lines = head.split("\n")
    kept: list[str] = []
    insert_at = None
    for line in lines:
        key = line.split(":", 1)[0]
        if key.lower() == name.lower():
            if insert_at is None:
                insert_at = len(kept)
            continue
        kept.append(line)
        if after and key.lower() == after.lower():
            insert_at = len(kept) if insert_at is None else insert_at
    new = [f"{name}: {v}" for v in values]
    if insert_at is None:
        insert_at = len(kept)
    kept[insert_at:insert_at] = new
    return "\n".join(kept) + sep + body


def unpack(wheel: Path, dest: Path) -> Path:
    """Unpack ``wheel`` into ``dest`` (a new folder); return it. The wheel is opened through
    the one validator's archive check (wheelfile.open_archive), so a member that would land
    outside ``dest`` or a zip bomb is refused before anything is written."""
    with wheelfile.open_archive(wheel) as (z, _files):
        dest.mkdir(parents=True, exist_ok=False)
        for info in z.infolist():
            target = dest / info.filename
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode)
    return dest


# ------------------------------------------------------------------------------ edits


def set_version(version: str) -> Edit:
    """Edit: set METADATA's Version and rename the .dist-info folder to match."""

    def edit(root: Path) -> None:
        dist_info = find_dist_info(root)
        meta = dist_info / "METADATA"
        meta.write_text(
            _rewrite_header(meta.read_text(encoding="utf-8"), "Version", [version], after="Name"),
            encoding="utf-8",
        )
        name = dist_info.name[: -len(".dist-info")].rsplit("-", 1)[0]
        new = root / f"{name}-{version}.dist-info"
        if new != dist_info:
            dist_info.rename(new)

    return edit


def require(requirement: str) -> Edit:
    """Edit: make ``requirement`` the only Requires-Dist for its project (torch==2.14.*)."""
    req = Requirement(requirement)

    def edit(root: Path) -> None:
        meta = find_dist_info(root) / "METADATA"
        text = meta.read_text(encoding="utf-8")
        msg = parse_headers(meta.read_bytes())
        others = [
            r
            for r in (msg.get_all("Requires-Dist") or [])
            if canonicalize_name(Requirement(r).name) != canonicalize_name(req.name)
        ]
        meta.write_text(
            _rewrite_header(text, "Requires-Dist", [str(req), *others], after="Requires-Python"),
            encoding="utf-8",
        )

    return edit


def write_build_record(record: BuildRecord) -> Edit:
    """Edit: write ``<dist-info>/wheelfactory-build.json``."""

    def edit(root: Path) -> None:
        (find_dist_info(root) / RECORD_NAME).write_text(record.dumps(), encoding="utf-8")

    return edit


def strip_debug(strip: str = "strip") -> Edit:
    """Edit: ``strip --strip-debug`` every shared library (host -g info is most of a wheel's
    size; symbols, and the CUDA fatbin sections, stay)."""

    def edit(root: Path) -> None:
        for so in sorted(root.rglob("*.so*")):
            if so.is_file() and not so.is_symlink() and so.read_bytes()[:4] == b"\x7fELF":
                _proc.run([strip, "--strip-debug", so], echo=False)

    return edit


# ------------------------------------------------------------------------------ repack


def wheel_filename(root: Path) -> str:
    """``name-version-tags.whl`` from METADATA (name, version) and WHEEL (tags, build)."""
    dist_info = find_dist_info(root)
    meta = parse_headers((dist_info / "METADATA").read_bytes())
    wheel_meta = parse_headers((dist_info / "WHEEL").read_bytes())
    name = re.sub(r"[-_.]+", "_", str(canonicalize_name(meta["Name"])))
    version = str(Version(meta["Version"]))
    tags = wheel_meta.get_all("Tag") or []
    if not tags:
        raise BuildError(f"{dist_info}/WHEEL has no Tag lines: the wheel is malformed; rebuild it")
    interpreters, abis, platforms = (sorted({t.split("-")[i] for t in tags}) for i in range(3))
    build = wheel_meta.get("Build")
    parts = [
        name,
        version,
        *([build] if build else []),
        ".".join(interpreters),
        ".".join(abis),
        ".".join(platforms),
    ]
    return "-".join(parts) + ".whl"


def pack(root: Path, out_dir: Path) -> Path:
    """Zip ``root`` into ``out_dir/<filename>`` with a freshly computed RECORD."""
    dist_info = find_dist_info(root)
    record_name = f"{dist_info.name}/RECORD"
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() or p.is_symlink()),
        # dist-info last, as the wheel spec recommends; stable order otherwise
        key=lambda p: (
            p.relative_to(root).parts[0] == dist_info.name,
            p.relative_to(root).as_posix(),
        ),
    )
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    date_time = _ZIP_EPOCH
    if epoch:
        import time

        date_time = time.gmtime(max(int(epoch), 315532800))[:6]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / wheel_filename(root)
    rows: list[tuple[str, str, str]] = []
    with (
        atomicfile.replacing(target) as fh,
        zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as z,
    ):
        for path in files:
            arcname = path.relative_to(root).as_posix()
            if arcname == record_name:
                continue
            data = path.read_bytes()
            info = zipfile.ZipInfo(arcname, date_time=date_time)
            info.external_attr = ((path.stat().st_mode & 0o777) | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
            rows.append((arcname, record_hash(data), str(len(data))))
        rows.append((record_name, "", ""))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        info = zipfile.ZipInfo(record_name, date_time=date_time)
        info.external_attr = 0o100644 << 16
        z.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    return target


def relabel(wheel: Path, edits: Sequence[Edit], out_dir: Path, *, work: Path) -> Path:
    """Unpack ``wheel`` under ``work``, apply ``edits`` in order, repack into ``out_dir``."""
    root = unpack(wheel, work / "unpacked")
    try:
        for edit in edits:
            edit(root)
        return pack(root, out_dir)
    finally:
        shutil.rmtree(root, ignore_errors=True)
