"""Planned vs served, counted in user environments: ``coverage(cells, manifest) -> CoverageReport``,
a pure function.

An environment is what a user installs into: (package, torch minor, CUDA, CPython, OS and
machine). The plan promises environments, not wheels: a per-torch cell promises its own
torch and CPython; an abi3 cell every CPython it covers; a stable-ABI cell every torch minor
it covers (each as the release table ships it for that CUDA and platform; free-threaded
CPythons only where a cell plans them).

A promised environment is served when the command its user runs,
``pip install <package> --extra-index-url <root>/cu130/torch2.11/simple/``, resolves to a
wheel: the strict view lists the wheel (``index.views_of``: so a wheel held for a GPU check
is in none), it is not yanked, pip's tags for that CPython and platform accept it
(``packaging.tags``) and its Requires-Python admits that CPython. ``environments_of(file)``
is that rule for one file; this report, the landing page's matrix and
bench/plan_figures.py all count with it. Each gap is named with why (no wheel in the view,
only a held one, tags, Requires-Python). Rendering: markdown for the Actions job summary,
JSON (versioned) for machines.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from wheelfactory import naming, platforms, releases
from wheelfactory.errors import ConfigError
from wheelfactory.index import views_of
from wheelfactory.manifest import Manifest, PublishedFile
from wheelfactory.plan import Cell
from wheelfactory.releases import ReleaseTable, base_python, is_free_threaded, python_key

COVERAGE_VERSION = 2  # 2: one row per environment (1: per compiled cell)

# The glibc a Linux user of torch has at least: PyTorch's own Linux wheels are
# manylinux_2_28, and ours are built in the same manylinux_2_28 images (ci-images.toml).
USER_GLIBC_MINOR = 28
# The old manylinux names and the glibc (2, minor) each stands for (PEP 600).
_LEGACY_MANYLINUX = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}


@dataclass(frozen=True, kw_only=True, order=True)
class Environment:
    """Where a user runs ``pip install <package>``: torch minor, CUDA, CPython, platform."""

    package: str  # normalized distribution name
    torch: str  # "2.11" (a torch release minor, never "abi")
    cuda: str  # "13.0"
    python: str  # "3.12", "3.13t"
    platform: str  # "linux-x86_64"

    @property
    def view(self) -> str:
        """The strict view its user's command names: "cu130/torch2.11"."""
        return naming.view_path(self.cuda, self.torch)

    @property
    def where(self) -> str:
        """"torch 2.11, CUDA 13.0, Python 3.12, linux-x86_64" """
        return f"torch {self.torch}, CUDA {self.cuda}, Python {self.python}, {self.platform}"


# --------------------------------------------------------------------------- pip's rules


def user_glibc_minor() -> int:
    """USER_GLIBC_MINOR, or the minor of WHEELFACTORY_USER_GLIBC ("2.36"): a release
    rehearsal on a machine whose toolchain tags wheels for a newer glibc than the CI image
    (scripts/rehearse_release.py) counts users of that glibc, and says so."""
    raw = os.environ.get("WHEELFACTORY_USER_GLIBC", "")
    if not raw:
        return USER_GLIBC_MINOR
    major, _, minor = raw.partition(".")
    if major != "2" or not minor.isdigit():
        raise ConfigError(f"WHEELFACTORY_USER_GLIBC={raw!r} is not a glibc version like 2.28; fix or unset it")
    return int(minor)


def platform_tags(platform: str) -> tuple[str, ...]:
    """The platform tags pip accepts on ``platform`` for a user of torch, best first: on
    Linux manylinux_2_28 and older (the names the platform table gives its wheels) and the
    plain linux_<machine>; on Windows win_amd64."""
    return _platform_tags(platform, user_glibc_minor())


@cache
def _platform_tags(platform: str, glibc_minor: int) -> tuple[str, ...]:
    p = platforms.get(platform)
    if p.os != "linux":
        return (p.plain_tag,)
    tags = [f"manylinux_2_{n}_{p.machine}" for n in range(glibc_minor, 4, -1)]
    tags += [f"{name}_{p.machine}" for name in _LEGACY_MANYLINUX]
    return (*(t for t in tags if p.matches_tag(t)), p.plain_tag)


def accepted_tags(python: str, platform: str) -> dict[Tag, int]:
    """Tag -> pip's preference (0 best) for this CPython on this platform: packaging.tags,
    the same list pip builds (cp3X, abi3 from older cp3Y, py3-none, any)."""
    return _accepted_tags(python, platform, user_glibc_minor())


@cache
def _accepted_tags(python: str, platform: str, glibc_minor: int) -> dict[Tag, int]:
    minor = python_key(python)[1]
    interpreter = f"cp3{minor}"
    abi = interpreter + ("t" if is_free_threaded(python) else "")
    plats = list(_platform_tags(platform, glibc_minor))
    tags = [*cpython_tags((3, minor), [abi], plats), *compatible_tags((3, minor), interpreter, plats)]
    return {t: i for i, t in reversed(list(enumerate(tags)))}


@cache
def _file_tags(filename: str) -> frozenset[Tag]:
    return parse_wheel_filename(filename)[3]


def _why_not(tags: frozenset[Tag], requires_python: str | None, python: str, platform: str,
             filename: str) -> str | None:
    if not tags & accepted_tags(python, platform).keys():
        return f"tags of {filename} do not install on CPython {python} {platform}"
    if requires_python:
        try:
            refused = not SpecifierSet(requires_python).contains(base_python(python), prereleases=True)
        except InvalidSpecifier:
            refused = True  # pip skips a file whose Requires-Python it cannot read
        if refused:
            return f"Requires-Python {requires_python} of {filename}"
    return None


def why_not_installed(file: PublishedFile, python: str, platform: str) -> str | None:
    """None when pip would install ``file`` (found in its view) into this CPython on this
    platform, else why not, in a few words: yanked, its tags, its Requires-Python."""
    if file.yanked:
        return f"only yanked wheel {file.filename}"
    return _why_not(_file_tags(file.filename), file.requires_python, python, platform, file.filename)


@lru_cache(maxsize=4096)
def _setups(tags: frozenset[Tag], requires_python: str | None, pythons: tuple[str, ...],
            names: tuple[str, ...], glibc_minor: int) -> tuple[tuple[str, str], ...]:
    """(CPython, platform) pairs a file of these tags and Requires-Python installs on; the
    tags alone decide, so the thousands of files of an index share a few answers (per
    user glibc: ``glibc_minor`` is part of the cache key)."""
    return tuple((python, platform) for platform in names for python in pythons
                 if _why_not(tags, requires_python, python, platform, "") is None)  # fmt: skip


def _strict_minors(views: Iterable[str]) -> Iterator[str]:
    """The torch minors of the strict views among ``views`` ("cu130/torch2.11" -> "2.11")."""
    for view in views:
        _, _, torch = view.partition("/torch")
        if torch and torch != naming.STABLE_ABI:
            yield torch


def environments_of(
    file: PublishedFile, pythons: Iterable[str], platform_names: Iterable[str] | None = None
) -> Iterator[Environment]:
    """The environments (of ``pythons`` and the platforms) whose user command installs
    ``file``: each strict torch view that lists it (index.views_of), times each CPython and
    platform pip accepts it on. The one count of what an index serves."""
    if file.yanked:
        return
    names = tuple(platform_names) if platform_names is not None else platforms.names()
    setups = _setups(_file_tags(file.filename), file.requires_python, tuple(pythons), names, user_glibc_minor())
    for torch in _strict_minors(views_of(file)):
        for python, platform in setups:
            yield Environment(package=file.project, torch=torch, cuda=file.cuda, python=python,
                              platform=platform)  # fmt: skip


# --------------------------------------------------------------------------- the plan


def _promised(cell: Cell) -> tuple[set[str], set[str]]:
    """(CPythons, torch minors) a cell's wheel is planned to serve."""
    pythons, minors = {cell.python}, {naming.torch_minor(cell.torch)}
    if cell.abi3:  # covers: the CPythons (and "torch2.10"... when also stable-ABI)
        pythons = {c for c in cell.covers if not c.startswith("torch")}
        if cell.stable_abi_floor:
            minors = {c[len("torch"):] for c in cell.covers if c.startswith("torch")}
    elif cell.stable_abi_floor:  # covers: the torch minors
        minors = set(cell.covers)
    return pythons, minors


def planned_environments(
    cells: Iterable[Cell], table: ReleaseTable
) -> dict[tuple[str, Environment], Cell]:
    """(planned version, environment) -> the cell whose wheel must serve it. A cell's
    CPythons and torch minors are crossed only where the release table ships that CPython
    for that torch minor, CUDA and platform."""
    releases_by_minor = {r.minor: r for r in table.planning_releases()}
    out: dict[tuple[str, Environment], Cell] = {}
    for cell in cells:
        pythons, minors = _promised(cell)
        for minor in sorted(minors, key=Version):
            release = releases_by_minor.get(minor)
            if release is None:
                continue
            for variant in release.variants:
                if variant.cuda != cell.cuda or cell.platform not in variant.platforms:
                    continue
                for python in release.pythons_of(variant):
                    if python in pythons:
                        env = Environment(package=cell.recipe, torch=minor, cuda=cell.cuda,
                                          python=python, platform=cell.platform)  # fmt: skip
                        out.setdefault((cell.version, env), cell)
    return dict(sorted(out.items(), key=lambda kv: _env_order(kv[0][1], kv[0][0])))


def _env_order(env: Environment, version: str) -> tuple[Any, ...]:
    return (env.package, version, Version(env.torch), releases.cuda_key(env.cuda),
            releases.platform_key(env.platform), python_key(env.python))  # fmt: skip


def served_environments(
    files: Iterable[PublishedFile], pythons: Iterable[str]
) -> dict[Environment, list[PublishedFile]]:
    """Environment -> the files its user command may install (environments_of, by file)."""
    pythons = tuple(pythons)
    out: dict[Environment, list[PublishedFile]] = defaultdict(list)
    for f in files:
        for env in environments_of(f, pythons):
            out[env].append(f)
    return out


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True, kw_only=True)
class CoverageRow:
    """One planned environment: the wheel pip installs there, or why none."""

    environment: Environment
    version: str  # the planned upstream version ("" when the recipe pins none)
    cell: Cell  # the planned wheel that must serve it
    file: PublishedFile | None = None  # what pip installs there
    held: str | None = None  # a wheel would serve it, but is held for a GPU check: why
    held_file: str | None = None
    why: str | None = None  # why nothing is installed ("no wheel in cu130/torch2.11 view")

    @property
    def published(self) -> bool:
        """Served: the user's command installs a wheel."""
        return self.file is not None

    @property
    def status(self) -> str:
        return "published" if self.published else "held" if self.held else "missing"

    @property
    def filename(self) -> str | None:
        return self.file.filename if self.file else self.held_file

    @property
    def size(self) -> int | None:
        return self.file.size if self.file else None

    @property
    def upload_time(self) -> str | None:
        return self.file.upload_time if self.file else None

    @property
    def id(self) -> str:
        e = self.environment
        version = f"-{self.version}" if self.version else ""
        py = "cp" + e.python.replace(".", "")
        return f"{e.package}{version}-{naming.cuda_tag(e.cuda)}-torch{e.torch}-{py}-{e.platform}"

    @property
    def gap(self) -> str:
        """One line naming the gap: package, torch, CUDA, Python, platform: why."""
        version = f" {self.version}" if self.version else ""
        return f"{self.environment.package}{version}: {self.environment.where}: {self.why}"

    def to_json(self) -> dict[str, Any]:
        e = self.environment
        p = platforms.get(e.platform)
        return {
            "id": self.id,
            "package": e.package,
            "version": self.version,
            "torch": e.torch,
            "cuda": e.cuda,
            "python": e.python,
            "platform": e.platform,
            "os": p.os,
            "machine": p.machine,
            "view": e.view,
            "cell": self.cell.id,
            "status": self.status,
            "why": self.why,
            "held": self.held,
            "filename": self.filename,
            "size": self.size,
            "upload_time": self.upload_time,
        }


@dataclass(frozen=True, kw_only=True)
class CoverageReport:
    rows: tuple[CoverageRow, ...]  # one per planned environment
    unplanned: tuple[str, ...] = ()  # installable wheels that serve no planned environment

    @property
    def missing(self) -> tuple[CoverageRow, ...]:
        """Environments nothing serves (held ones are not here: see ``held``)."""
        return tuple(r for r in self.rows if r.status == "missing")

    @property
    def held(self) -> tuple[CoverageRow, ...]:
        return tuple(r for r in self.rows if r.status == "held")

    @property
    def unpublished(self) -> tuple[CoverageRow, ...]:
        return tuple(r for r in self.rows if not r.published)

    @property
    def complete(self) -> bool:
        return not self.unpublished

    def gap_torches(self) -> list[str]:
        """The torch minors with a gap, oldest first."""
        return sorted({r.environment.torch for r in self.unpublished}, key=Version)

    def to_json(self) -> dict[str, Any]:
        cells: dict[str, list[CoverageRow]] = {}
        for r in self.rows:
            cells.setdefault(r.cell.id, []).append(r)
        return {
            "version": COVERAGE_VERSION,
            "expected": len(self.rows),
            "published": len(self.rows) - len(self.unpublished),
            "held": len(self.held),
            "missing": len(self.missing),
            "gaps": [r.gap for r in self.unpublished],  # one line each
            "environments": [r.to_json() for r in self.rows],
            # each planned wheel with how many of its environments are served
            "cells": [
                {"id": cid, "environments": len(rows),
                 "served": sum(r.published for r in rows),
                 "status": "published" if all(r.published for r in rows)
                 else "held" if all(r.published or r.held for r in rows) else "missing"}
                for cid, rows in cells.items()
            ],  # fmt: skip
            "unplanned": list(self.unplanned),
        }


def _version_fits(file: PublishedFile, version: str) -> bool:
    return not version or file.label.public_version == version


def _pip_choice(files: list[PublishedFile], env: Environment) -> PublishedFile:
    """The file pip takes among installable ones: highest version, then best tag."""
    tags = accepted_tags(env.python, env.platform)
    return max(files, key=lambda f: (Version(f.version),
                                     -min(tags.get(t, len(tags)) for t in _file_tags(f.filename))))  # fmt: skip


def _diagnose(row: CoverageRow, files: list[PublishedFile], torch_release: str) -> CoverageRow:
    """Why nothing serves ``row``'s environment: the nearest miss among ``files`` (its
    package's, of its version and CUDA). ``torch_release``: the newest release of its torch
    minor, for the cover command a stable-ABI gap needs."""
    env = row.environment
    accepted = accepted_tags(env.python, env.platform).keys()
    fit = [f for f in files if _file_tags(f.filename) & accepted]  # this CPython/platform
    listed = [f for f in fit if env.view in views_of(f)]
    if listed:  # yanked, or Requires-Python excludes this CPython
        reasons = [why_not_installed(f, env.python, env.platform) or "" for f in listed]
        return replace(row, why=min(reasons, key=lambda r: "Requires-Python" not in r))
    held = [f for f in fit if f.held and env.view in views_of(replace(f, held=None))]
    if held:
        why = f"only held wheel {held[0].filename} ({' '.join(str(held[0].held).split())[:160]})"
        return replace(row, held=held[0].held, held_file=held[0].filename, why=why)
    why = f"no wheel in {env.view} view"
    here = platforms.get(env.platform)
    there = sorted((f for f in files if env.view in views_of(f)),  # this platform's first
                   key=lambda f: not any(here.matches_tag(t.platform) for t in _file_tags(f.filename)))
    other = there[0] if there else None
    if other is not None:  # there, but for another CPython, platform or glibc
        why += f" installs on CPython {env.python} {env.platform} (it has {other.filename})"
    stable = [f for f in fit if f.torch == naming.STABLE_ABI and f.stable_abi_floor
              and Version(env.torch) >= Version(f.stable_abi_floor) and not f.held]  # fmt: skip
    refused = [f for f in stable if env.torch in f.not_covered]
    if refused:  # cover checked it against this torch and it failed: say why, not "run cover"
        f = refused[0]
        why += f" (stable-ABI {f.filename} does not load on torch {env.torch}: {_one_line(f.not_covered[env.torch])})"
    elif stable:
        minors = ", ".join(stable[0].covers) or "none"
        why += (f" (stable-ABI {stable[0].filename} is listed for torch {minors} only:"
                f" wheelfactory cover --torch {torch_release})")
    return replace(row, why=why)


def coverage(
    cells: Iterable[Cell], manifest: Manifest | None, table: ReleaseTable | None = None
) -> CoverageReport:
    """Every environment ``cells`` promise (over ``table``, default the shipped one), and
    the wheel of ``manifest`` its user's command installs, or why none does."""
    table = table if table is not None else releases.load()
    planned = planned_environments(cells, table)
    newest = {r.minor: r.version for r in table.planning_releases()}
    files = tuple(manifest.files) if manifest is not None else ()
    served = served_environments(files, sorted({e.python for _, e in planned}, key=python_key))
    by_package: dict[tuple[str, str], list[PublishedFile]] = defaultdict(list)
    for f in files:
        by_package[(f.project, f.cuda)].append(f)
    rows, used = [], set()
    for (version, env), cell in planned.items():
        row = CoverageRow(environment=env, version=version, cell=cell)
        fits = [f for f in served.get(env, ()) if _version_fits(f, version)]
        if fits:
            row = replace(row, file=_pip_choice(fits, env))
        else:
            mine = [f for f in by_package[(env.package, env.cuda)] if _version_fits(f, version)]
            row = _diagnose(row, mine, newest[env.torch])
        used.add(row.filename)
        rows.append(row)
    unplanned = tuple(sorted(f.filename for f in files
                             if f.filename not in used and not f.yanked and not f.held))  # fmt: skip
    return CoverageReport(rows=tuple(rows), unplanned=unplanned)


# --------------------------------------------------------------------------- rendering


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return ""  # pragma: no cover


def to_markdown(report: CoverageReport) -> str:
    """A summary table per package (torch x CUDA, served/planned environments per
    platform), one line per gap, then every environment with its file or why none."""
    out = ["## Wheel coverage", ""]
    total, missing, held = len(report.rows), len(report.missing), len(report.held)
    marks = [f"**{n} {what}**" for n, what in ((missing, "missing"), (held, "held")) if n]
    mark = ", ".join(marks) or "complete"
    served = total - len(report.unpublished)
    out += [f"{served} of {total} planned environments are served ({mark}): each counts"
            " `pip install <package> --extra-index-url <root>/cuXYZ/torchX.Y/simple/`"
            " for one torch, CUDA, Python and platform.", ""]
    packages: dict[tuple[str, str], list[CoverageRow]] = {}
    for r in report.rows:
        packages.setdefault((r.environment.package, r.version), []).append(r)
    for (name, version), rows in packages.items():
        out += [f"### {name} {version}".rstrip(), ""]
        names = sorted({r.environment.platform for r in rows})
        out.append("| torch | CUDA | " + " | ".join(names) + " |")
        out.append("|---|---|" + "---|" * len(names))
        grid: dict[tuple[str, str], dict[str, list[int]]] = {}
        for r in rows:
            e = r.environment
            counts = grid.setdefault((e.torch, e.cuda), {}).setdefault(e.platform, [0, 0])
            counts[0] += r.published
            counts[1] += 1
        for (torch, cuda), per in grid.items():
            cells = []
            for p in names:
                done, want = per.get(p, [0, 0])
                cells.append(
                    "" if not want else f"{done}/{want}" + (" ✅" if done == want else " ❌")
                )
            out.append(f"| {torch} | {cuda} | " + " | ".join(cells) + " |")
        gaps = [r for r in rows if not r.published]
        if gaps:
            out += ["", f"Gaps ({len(gaps)}):", ""]
            out += [f"- {_one_line(r.gap)}" for r in gaps]
        out += ["", "<details><summary>Every environment</summary>", ""]
        out += ["| environment | file | size | uploaded |", "|---|---|---|---|"]
        for r in rows:
            if r.published:
                out.append(
                    f"| `{r.id}` | `{r.filename}` | {_size(r.size)} | {r.upload_time or ''} |"
                )
            elif r.held:
                out.append(f"| `{r.id}` | `{r.filename}` **HELD**: {_one_line(r.held)} | | |")
            else:
                out.append(f"| `{r.id}` | **MISSING**: {_one_line(r.why or '')} | | |")
        out += ["", "</details>", ""]
    if report.unplanned:
        out += [
            f"{len(report.unplanned)} published wheel(s) serve no planned environment (older torch or versions).",
            "",
        ]
    return "\n".join(out)


def _one_line(text: str) -> str:
    """Text from the manifest, safe in one Markdown table cell."""
    return " ".join(text.split()).replace("|", "/")[:300]


def to_json_text(report: CoverageReport) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"


__all__ = [
    "CoverageReport",
    "CoverageRow",
    "Environment",
    "coverage",
    "environments_of",
    "planned_environments",
    "served_environments",
    "to_json_text",
    "to_markdown",
    "why_not_installed",
]
