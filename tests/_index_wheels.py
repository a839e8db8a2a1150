"""Small labelled wheels for the index tests, written directly as zip files.

They look like the factory's wheels (``demo-ext-1.0.0+cu130torch2.14-...whl``,
``Requires-Dist: torch==2.14.*``) and import: ``import demo_ext`` gives ``BUILT_FOR``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path

from _records import record_json


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    out_dir: Path,
    *,
    name: str = "demo_ext",
    version: str = "1.0.0",
    cuda: str = "130",
    torch: str = "2.14",
    python_tag: str = "py3",
    abi_tag: str = "none",
    platform_tag: str = "any",
    requires_python: str | None = ">=3.10",
    requires_torch: str | None = None,
    build_record: Mapping[str, object] | None = None,
    extra_files: Mapping[str, bytes] | None = None,
    filename: str | None = None,
    tamper: bool = False,
) -> Path:
    """Write a wheel into ``out_dir`` and return its path.

    ``tamper`` changes a file after RECORD was written (its hash then does not match).
    """
    full_version = f"{version}+cu{cuda}torch{torch}" if cuda else version
    dist_info = f"{name}-{full_version}.dist-info"
    module = name.replace("-", "_").lower()
    meta = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {full_version}",
        "Summary: A labelled test wheel",
    ]
    if requires_python:
        meta.append(f"Requires-Python: {requires_python}")
    torch_req = requires_torch if requires_torch is not None else f"torch=={torch}.*"
    if torch_req:
        meta.append(f"Requires-Dist: {torch_req}")
    meta += ["Description-Content-Type: text/plain", "", f"{name} test wheel.", ""]
    files: dict[str, bytes] = {
        f"{module}/__init__.py": (
            f"BUILT_FOR = {torch!r}\nVERSION = {full_version!r}\n".encode()
        ),
        f"{dist_info}/METADATA": "\n".join(meta).encode(),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: wheelfactory-tests\nRoot-Is-Purelib: true\n"
            f"Tag: {python_tag}-{abi_tag}-{platform_tag}\n"
        ).encode(),
    }
    if build_record is not None:
        files[f"{dist_info}/wheelfactory-build.json"] = json.dumps(dict(build_record)).encode()
    for path, data in (extra_files or {}).items():
        files[path] = data
    record_lines = [f"{p},{_record_hash(d)},{len(d)}" for p, d in files.items()]
    record_lines.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    if tamper:
        files[f"{module}/__init__.py"] += b"# changed after RECORD was written\n"
    wheel_name = filename or (
        f"{name}-{full_version}-{python_tag}-{abi_tag}-{platform_tag}.whl"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / wheel_name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, d in files.items():
            info = zipfile.ZipInfo(p, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, d, zipfile.ZIP_DEFLATED)
    return path


def make_stable_abi_wheel(out_dir: Path) -> Path:
    """A stable-ABI (cp310-abi3) demo wheel with its build record: floor torch 2.10."""
    return make_wheel(
        out_dir, torch="abi", requires_torch="torch>=2.10", python_tag="cp310", abi_tag="abi3",
        build_record=record_json(package_version="1.0.0+cu130torchabi", stable_abi_floor="2.10",
                                 torch_requirement="torch>=2.10", python_tag="cp310-abi3"),
    )  # fmt: skip


def index_tree(folder: Path) -> dict[str, bytes]:
    """Every file of an index folder (relative path -> bytes), less its lock file: what
    tests compare to prove an index unchanged or two runs identical."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".wheelfactory.lock"
    }
