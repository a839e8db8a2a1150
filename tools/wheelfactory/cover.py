"""Stable-ABI wheels, listed in the view of every torch they load on: no compile.

``cover(index, table=...)`` is the release path's step after ``publish`` (and after
``watch`` adds a torch): every stable-ABI wheel of the index is tried against each torch
minor of the release table at or above its floor that ships its CUDA and platform (the
newest patch release of that minor), unless that minor is already decided for it. With
``torches`` it tries those releases instead.

The check that proves a wheel loads, sized for a hosted runner (docs/ci.md has the cost):

1. a symbol audit, per torch minor, of each extension module's C-shim imports against
   resources/torch-stable-abi.json (read from torch's own libraries): a wheel that needs
   a symbol that torch lacks stops here, with no install;
2. one real import per torch minor: torch is installed once into a build env (buildenv),
   every wheel of that CUDA is installed beside it in a fresh venv and its modules are
   imported (verify.check_imports, the check a build ends with). An env this run created
   is removed once its torch is done, so the disk holds one torch at a time.

A wheel that passes is listed in that torch's strict view (publish.add_covers: its pages
only). One that fails stays out of it, its entry records why in one line
(publish.add_gap: ``not_covered``), and `coverage` shows the gap; nothing else published
changes.
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
from wheelfactory import buildenv, cudastub, label, naming, platforms, publish, verify, wheelfile
from wheelfactory.confine import confine
from wheelfactory.errors import NetworkError, PublishError, ToolMissingError
from wheelfactory.hashing import sha256_hex
from wheelfactory.manifest import PublishedFile, load_manifest
from wheelfactory.releases import ReleaseTable

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class CoverResult:
    filename: str
    torch: str  # the torch release checked: "2.15.0"
    ok: bool
    detail: str  # "imports with torch 2.15.0" or why not, in one line


def candidates(
    files: Sequence[PublishedFile], torch: str, cudas: Sequence[str] | None = None, *, retry_gaps: bool = True
) -> list[PublishedFile]:
    """Stable-ABI files that could serve ``torch`` and do not list it yet. ``retry_gaps``
    False: also leave out those already found not to load on it (``not_covered``)."""
    minor = naming.torch_minor(torch)
    out = []
    for f in files:
        if f.torch != naming.STABLE_ABI or f.yanked or minor in f.covers:
            continue
        if not retry_gaps and minor in f.not_covered:
            continue
        if Version(minor) < Version(f.stable_abi_floor or "999.0"):
            continue
        if cudas is not None and f.cuda not in cudas:
            continue
        out.append(f)
    return out


def planned(
    files: Sequence[PublishedFile], table: ReleaseTable, cudas: Sequence[str] | None = None
) -> list[tuple[str, PublishedFile]]:
    """(torch release, file) pairs to check: each minor of the table (its newest patch) at
    or above a wheel's floor that PyTorch ships for the wheel's CUDA and platform, and not
    decided for it yet (covered, or a gap recorded)."""
    pairs = []
    for release in table.planning_releases():
        for f in candidates(files, release.version, cudas, retry_gaps=False):
            wheel_platforms = {p.name for t in f.label.platform_tags if (p := platforms.of_tag(t))}
            if any(  # a pure-"any" tag (tests' stand-ins) runs wherever torch does
                v.cuda == f.cuda and (not wheel_platforms or wheel_platforms & set(v.platforms))
                for v in release.variants
            ):
                pairs.append((release.version, f))
    return pairs


def _local_copy(index: Path, f: PublishedFile, work: Path, wheels: Path | None) -> Path:
    """The published file's bytes on disk: from ``wheels`` (the publish job's dist/: a new
    release's assets may not be downloadable yet), the local store, or its URL; checked
    against the manifest's sha256 either way."""
    if wheels is not None and (wheels / f.filename).is_file():
        path = wheels / f.filename
    elif not urlsplit(f.url).scheme:
        path = confine(index, f.url, what=f"the URL of {f.filename} in manifest.json")
    else:
        path = work / f.filename
        try:
            with urllib.request.urlopen(f.url, timeout=120) as resp, path.open("wb") as out:  # noqa: S310
                shutil.copyfileobj(resp, out)
        except OSError as e:
            raise NetworkError(f"GET {f.url} failed ({e}); check the store or the network") from e
    got = sha256_hex(path)
    if got != f.sha256:
        msg = f"{path} has sha256 {got[:12]}..., the index published {f.sha256[:12]}... under that name"
        raise PublishError(f"{msg}; pass the published file (or no --wheels folder)")
    return path


def audit_problem(binaries: Sequence[Path], torch: str) -> str | None:
    """The symbol audit: the first extension module that imports a C-shim symbol torch's
    minor does not export, in one line; None when all of them link (or the table does not
    know that minor yet: the import decides)."""
    minor = naming.torch_minor(torch)
    for so in binaries:
        problem = verify.torch_minor_problem(so, minor)
        if problem:
            return f"symbol audit against torch {minor}: {problem}"
    return None


@dataclass(frozen=True, kw_only=True)
class _Wheel:
    """A published wheel, fetched and unpacked once for every torch it is checked against."""

    file: PublishedFile
    path: Path
    modules: tuple[str, ...]
    binaries: tuple[Path, ...]


def _fetch(index: Path, f: PublishedFile, work: Path, wheels: Path | None) -> _Wheel:
    folder = work / f.filename
    folder.mkdir(parents=True)
    path = _local_copy(index, f, folder, wheels)
    modules = wheelfile.read_wheel(path).extension_modules()
    unpacked = label.unpack(path, folder / "unpacked")
    return _Wheel(file=f, path=path, modules=modules, binaries=tuple(verify.elf_modules(unpacked, modules)))


def driver_stub(env: buildenv.BuildEnv, stubs: Path) -> Path | None:
    """A libcuda.so.1 stub for importing modules that link the driver on a machine without
    one (a hosted runner): made from the cuda.h that torch's own CUDA wheels brought, so it
    needs no toolkit and matches torch's CUDA; else from the toolkit; else None (such a
    module then imports only where a driver is)."""
    include = env.nvidia_include()
    if include is not None and (include / "cuda.h").is_file():
        return cudastub.make_stub(include.parent, stubs)
    try:
        return cudastub.make_stub(build_stage.find_toolchain().cuda_home, stubs)
    except ToolMissingError:
        return None


def _import_check(
    torch: str, wheels: Sequence[_Wheel], *, python: Path, torch_index_url: str | None, cache: Path, work: Path
) -> list[CoverResult]:
    """Install ``torch`` once per CUDA and import every wheel's modules with it; an env this
    run created is removed afterwards (one found in the cache stays)."""
    results = []
    for cuda in sorted({w.file.cuda for w in wheels}):
        envs = cache / "envs"
        before = set(envs.iterdir()) if envs.is_dir() else set()
        env = buildenv.prepare_env(
            python=python, torch=torch, cuda=cuda, cache=cache,
            index_url=buildenv.resolve_torch_index_url(torch_index_url, cuda),
        )  # fmt: skip
        try:
            stub_dir = driver_stub(env, cache / "stubs")
            for w in (w for w in wheels if w.file.cuda == cuda):
                where = work / f"import-{torch}-{w.file.filename}"
                imports = verify.check_imports(w.path, w.modules, build_env=env, stub_dir=stub_dir, work=where)
                shutil.rmtree(where, ignore_errors=True)
                bad = next((r for r in imports if not r.ok), None)
                detail = (
                    f"import {bad.module} failed with torch {env.torch}: {bad.error}" if bad
                    else f"imports with torch {env.torch}"
                )  # fmt: skip
                results.append(CoverResult(filename=w.file.filename, torch=torch, ok=bad is None, detail=detail))
        finally:
            if env.kind == "cached" and env.root not in before:
                log.info("removing %s (made for this check only: the disk holds one torch at a time)", env.root)
                shutil.rmtree(env.root, ignore_errors=True)
    return results


def cover(
    index: str | Path,
    torches: Sequence[str] | None = None,
    *,
    table: ReleaseTable,
    python: Path,
    torch_index_url: str | None,  # the --torch-index-url option (None: default per CUDA)
    cache: Path,
    cudas: Sequence[str] | None = None,
    wheels: Path | None = None,
) -> list[CoverResult]:
    """Check the index's stable-ABI wheels against ``torches`` (None: every torch of
    ``table`` not decided yet for them); list those that load in that torch's strict view
    and record why the others do not. Returns one result per (wheel, torch) tried.
    ``wheels``: a folder of local copies of published files, used where one is there."""
    index = Path(index)
    files = load_manifest(index).files
    if torches is None:
        pairs = planned(files, table, cudas)
    else:
        pairs = [(t, f) for t in torches for f in candidates(files, t, cudas)]
    results: list[CoverResult] = []
    with tempfile.TemporaryDirectory(prefix="wf-cover-") as tmp:
        work = Path(tmp)
        fetched: dict[str, _Wheel] = {}
        for torch in sorted({t for t, _ in pairs}, key=Version):
            to_import = []
            for _, f in (p for p in pairs if p[0] == torch):
                if f.filename not in fetched:
                    fetched[f.filename] = _fetch(index, f, work, wheels)
                wheel = fetched[f.filename]
                problem = audit_problem(wheel.binaries, torch)
                if problem:
                    _record(index, CoverResult(filename=f.filename, torch=torch, ok=False, detail=problem), results)
                else:
                    to_import.append(wheel)
            if to_import:
                checked = _import_check(
                    torch, to_import, python=python, torch_index_url=torch_index_url, cache=cache, work=work
                )
                for r in checked:
                    _record(index, r, results)
    return results


def _record(index: Path, result: CoverResult, results: list[CoverResult]) -> None:
    """Write one verdict to the index as it comes: a run cut short keeps what it proved."""
    minor = naming.torch_minor(result.torch)
    if result.ok:
        publish.add_covers(index, result.filename, minor)
        log.debug("covered %s for torch %s", result.filename, minor)
    else:
        publish.add_gap(index, result.filename, minor, result.detail)
        log.debug("recorded torch %s as a gap of %s", minor, result.filename)
    results.append(result)
