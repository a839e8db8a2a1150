"""A new torch release, served by the stable-ABI wheels already published: no compile.

``cover(index, torch)``: for every stable-ABI wheel of the index whose floor the new torch
meets and whose CUDA that torch ships, install the published file into a fresh venv that
sees that torch and import each of its extension modules (verify.check_imports, the same
check a build ends with); a wheel that imports is then listed in the new torch's strict
view (publish.add_covers: its pages only). A wheel that does not import stays out of it,
and the run says which symbol or module failed.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from packaging.version import Version

from wheelfactory import build as build_stage
from wheelfactory import buildenv, cudastub, naming, publish, verify, wheelfile
from wheelfactory.confine import confine
from wheelfactory.errors import NetworkError, ToolMissingError
from wheelfactory.manifest import PublishedFile, load_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class CoverResult:
    filename: str
    ok: bool
    detail: str  # "imports with torch 2.15.0" or the first import error


def candidates(files: Sequence[PublishedFile], torch: str, cudas: Sequence[str] | None = None) -> list[PublishedFile]:
    """Stable-ABI files that could serve ``torch`` and do not list it yet."""
    minor = naming.torch_minor(torch)
    out = []
    for f in files:
        if f.torch != naming.STABLE_ABI or f.yanked or minor in f.covers:
            continue
        if Version(minor) < Version(f.stable_abi_floor or "999.0"):
            continue
        if cudas is not None and f.cuda not in cudas:
            continue
        out.append(f)
    return out


def _local_copy(index: Path, f: PublishedFile, work: Path) -> Path:
    if not urlsplit(f.url).scheme:
        return confine(index, f.url, what=f"the URL of {f.filename} in manifest.json")
    dest = work / f.filename
    try:
        with urllib.request.urlopen(f.url, timeout=120) as resp, dest.open("wb") as out:  # noqa: S310
            shutil.copyfileobj(resp, out)
    except OSError as e:
        raise NetworkError(f"GET {f.url} failed ({e}); check the store or the network") from e
    return dest


def cover(
    index: str | Path,
    torch: str,
    *,
    python: Path,
    torch_index_url: str | None,  # the --torch-index-url option (None: default per CUDA)
    cache: Path,
    cudas: Sequence[str] | None = None,
) -> list[CoverResult]:
    """Import-check the index's stable-ABI wheels against ``torch``; list those that pass
    in its strict views. Returns one result per wheel tried."""
    index = Path(index)
    files = candidates(load_manifest(index).files, torch, cudas)
    try:
        stub_dir: Path | None = cudastub.make_stub(build_stage.find_toolchain().cuda_home, cache / "stubs")
    except ToolMissingError:
        stub_dir = None  # no toolkit: modules that need libcuda.so.1 import only with a driver
    results = []
    with tempfile.TemporaryDirectory(prefix="wf-cover-") as tmp:
        work = Path(tmp)
        for f in files:
            env = buildenv.prepare_env(
                python=python, torch=torch, cuda=f.cuda, cache=cache,
                index_url=buildenv.resolve_torch_index_url(torch_index_url, f.cuda),
            )  # fmt: skip
            wheel = _local_copy(index, f, work)
            modules = wheelfile.read_wheel(wheel).extension_modules()
            imports = verify.check_imports(wheel, modules, build_env=env, stub_dir=stub_dir, work=work / f.filename)
            bad = [r for r in imports if not r.ok]
            if bad:
                detail = f"import {bad[0].module} failed with torch {torch}: {bad[0].error}"
                results.append(CoverResult(filename=f.filename, ok=False, detail=detail))
                continue
            publish.add_covers(index, f.filename, naming.torch_minor(torch))
            results.append(CoverResult(filename=f.filename, ok=True, detail=f"imports with torch {env.torch}"))
    for r in results:
        log.info("%s: %s", r.filename, r.detail)
    return results
