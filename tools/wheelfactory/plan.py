"""Which wheels must exist: ``plan(recipes, releases, published) -> Plan``, a pure function.

A cell is one wheel: (recipe, version, torch minor, CUDA, CPython, OS, machine) plus the
GPU targets it is compiled for. Cells come from the torch release table (the newest patch
of each torch minor: wheels are per minor), narrowed by each recipe's [matrix] and the
caller's selection. Every combination left out is recorded with its reason
(``Plan.excluded``; ``wheelfactory plan --explain`` prints them).

Rules:
- a GPU target the cell's CUDA cannot compile (arch.why_not_buildable: sm_100/sm_120 need
  12.8, sm_103/sm_121 need 12.9, CUDA 13 builds nothing below sm_75) is dropped from that
  cell with a note; a cell with no targets left is excluded;
- ``matrix.abi3``: one ``cp3X-abi3`` cell (X = the lowest CPython the recipe admits for
  that torch/CUDA/platform) replaces the per-Python cells; free-threaded CPython cannot
  load abi3 wheels, so its cells stay;
- ``matrix.stable-abi-floor``: one cell labelled torch "abi" per (CUDA, platform, Python)
  replaces the per-torch cells of every torch >= floor; it is built against the oldest of
  those torch releases that ships that CUDA/platform/Python;
- with ``published`` (a manifest), cells already in the index (not yanked, not held for a
  GPU check) are excluded; a cell whose wheel is held stays, with a note saying so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from wheelfactory import arch, jobbudget, naming, platforms
from wheelfactory.errors import ConfigError, RecipeError
from wheelfactory.manifest import Manifest, entry_field
from wheelfactory.recipe import Recipe
from wheelfactory.releases import (
    ReleaseTable,
    TorchRelease,
    base_python,
    cuda_key,
    is_free_threaded,
    platform_key,
    python_key,
)

PLAN_VERSION = 1
GITHUB_MAX_JOBS = 256  # GitHub's limit of jobs per matrix



@dataclass(frozen=True, kw_only=True)
class Selection:
    """The caller's narrowing (CLI --torch/--cuda/--python/--os); empty = everything."""

    torch: SpecifierSet = field(default_factory=SpecifierSet)
    cuda: SpecifierSet = field(default_factory=SpecifierSet)
    python: SpecifierSet = field(default_factory=SpecifierSet)
    oses: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One wheel that must exist."""

    recipe: str  # normalized distribution name
    recipe_path: str  # the recipe file, relative to the repo root where possible
    version: str  # upstream public version ("" when the recipe pins none)
    torch: str  # the torch release built against: "2.8.0"
    cuda: str  # "12.8"
    python: str  # "3.12", "3.13t", or "cp39-abi3"
    platform: str  # "linux-x86_64"
    targets: tuple[str, ...]  # ("9.0a", "12.0a")
    notes: tuple[str, ...] = ()
    covers: tuple[str, ...] = ()  # abi3: CPythons covered; stable ABI: torch minors covered
    build_python: str = ""  # abi3: the CPython that builds it ("": the one its tag names)
    stable_abi_floor: str | None = None  # a stable-ABI wheel: the recipe's floor

    @property
    def pin(self) -> naming.TorchPin:
        return naming.TorchPin(self.torch, floor=self.stable_abi_floor)

    @property
    def torch_label(self) -> str:
        """ "2.8", or "abi" for a stable-ABI wheel."""
        return self.pin.label

    @property
    def os(self) -> str:
        return platforms.get(self.platform).os

    @property
    def machine(self) -> str:
        return platforms.get(self.platform).machine

    @property
    def abi3(self) -> bool:
        return self.python.endswith("-abi3")

    @property
    def python_tag(self) -> str:
        """ "cp312", "cp313t" or "cp39-abi3"."""
        if self.abi3:
            return self.python
        return "cp" + self.python.replace(".", "")

    @property
    def wheel_tags(self) -> tuple[str, str]:
        """(interpreter, abi) tags of the wheel: ("cp313", "cp313t"), ("cp39", "abi3")."""
        if self.abi3:
            interp, _, abi = self.python.partition("-")
            return interp, abi
        tag = self.python_tag
        return tag.rstrip("t"), tag

    @property
    def id(self) -> str:
        cu = naming.cuda_tag(self.cuda)
        version = f"-{self.version}" if self.version else ""
        return f"{self.recipe}{version}-{cu}-torch{self.torch_label}-{self.python_tag}-{self.os}_{self.machine}"

    @property
    def torch_requirement(self) -> str:
        return self.pin.requirement

    def key(self) -> tuple[str, str, str, str, str, str, str, str]:
        """What identifies the cell's wheel in an index (see ``wheel_key``)."""
        interp, abi = self.wheel_tags
        return (
            self.recipe,
            self.version,
            self.cuda,
            self.torch_label,
            interp,
            abi,
            self.os,
            self.machine,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recipe": self.recipe,
            "recipe_path": self.recipe_path,
            "version": self.version,
            "torch": self.torch,
            "torch_label": self.torch_label,
            "torch_requirement": self.torch_requirement,
            "cuda": self.cuda,
            "python": self.python,
            "os": self.os,
            "machine": self.machine,
            "platform": self.platform,
            "targets": list(self.targets),
            "arch_list": arch.torch_arch_list(arch.parse_targets(list(self.targets))),
            "covers": list(self.covers),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, kw_only=True)
class Exclusion:
    """A combination left out, and why. "*" stands for every value of that field."""

    recipe: str
    torch: str
    cuda: str = "*"
    python: str = "*"
    platform: str = "*"
    reason: str

    def to_json(self) -> dict[str, str]:
        return {
            "recipe": self.recipe,
            "torch": self.torch,
            "cuda": self.cuda,
            "python": self.python,
            "platform": self.platform,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        return f"{self.recipe} torch {self.torch} cuda {self.cuda} python {self.python} {self.platform}: {self.reason}"


@dataclass(frozen=True, kw_only=True)
class Plan:
    cells: tuple[Cell, ...]
    excluded: tuple[Exclusion, ...] = ()

    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.cells)

    def to_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.cells]

    def jobs(self) -> list[dict[str, Any]]:
        return github_jobs(self.cells)

    def github_matrices(self, max_jobs: int = GITHUB_MAX_JOBS) -> dict[str, Any]:
        jobs = self.jobs()
        chunks = [jobs[i : i + max_jobs] for i in range(0, len(jobs), max_jobs)]
        return {"version": PLAN_VERSION, "matrices": [{"include": chunk} for chunk in chunks]}


# --------------------------------------------------------------------------- matching


def wheel_keys(filename: str) -> set[tuple[str, str, str, str, str, str, str, str]]:
    """The cell keys a wheel filename satisfies (empty for a wheel without our label)."""
    label = naming.parse_wheel(filename)
    if not label.is_labelled:
        return set()
    assert label.cuda is not None and label.torch is not None
    keys = set()
    for interp in label.python_tags:
        for abi in label.abi_tags:
            for plat in label.platform_tags:
                where = platforms.of_tag(plat)
                if where is None:
                    continue
                keys.add(
                    (
                        label.project,
                        label.public_version,
                        label.cuda,
                        label.torch,
                        interp,
                        abi,
                        where.os,
                        where.machine,
                    )
                )
    return keys


def published_keys(published: Manifest | Iterable[str] | None) -> dict[tuple[str, ...], str]:
    """Cell key -> the filename that satisfies it, from a manifest (yanked files and files
    held for a GPU check do not count: users cannot install them) or from plain filenames."""
    if published is None:
        return {}
    if hasattr(published, "files"):
        names = [
            f.filename for f in published.files  # type: ignore[union-attr]
            if not f.yanked and not entry_field(f, "held")
        ]  # fmt: skip
    else:
        names = list(published)  # type: ignore[arg-type]
    out: dict[tuple[str, ...], str] = {}
    for name in sorted(names):
        for key in wheel_keys(name):
            out.setdefault(key, name)
    return out


def held_keys(published: Manifest | Iterable[str] | None) -> dict[tuple[str, ...], str]:
    """Cell key -> "<filename> (<why it is held>)" for the manifest's held, unyanked files."""
    out: dict[tuple[str, ...], str] = {}
    for f in sorted(getattr(published, "files", ()), key=lambda f: f.filename):
        held = entry_field(f, "held")
        if held and not f.yanked:
            for key in wheel_keys(f.filename):
                out.setdefault(key, f"{f.filename} ({' '.join(str(held).split())})")
    return out


def match_key(cell: Cell, keys: Mapping[tuple[str, ...], Any]) -> Any:
    """The entry of ``keys`` for ``cell``; a recipe without a version matches any version."""
    key = cell.key()
    if key in keys:
        return keys[key]
    if not cell.version:
        for k, v in keys.items():
            if k[0] == key[0] and k[2:] == key[2:]:
                return v
    return None


# --------------------------------------------------------------------------- planning


def _contains(spec: SpecifierSet, version: str) -> bool:
    return spec.contains(version, prereleases=True)


def _recipe_path(recipe: Recipe, root: Path | None) -> str:
    if recipe.path is None:
        return ""
    path = Path(recipe.path)
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


@dataclass
class _Candidate:
    release: TorchRelease
    cuda: str
    platform: str
    python: str
    targets: tuple[str, ...]
    notes: tuple[str, ...]


def _targets(recipe: Recipe, cuda: str) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """(targets kept, notes on dropped ones, reason to exclude or None)."""
    try:
        wanted = recipe.targets_for(cuda)
    except RecipeError as e:
        return (), (), str(e)
    kept, notes = [], []
    for target in wanted:
        why = arch.why_not_buildable(target, cuda)
        if why is None:
            kept.append(str(target))
        else:
            notes.append(f"dropped {target}: {why}")
    if not kept:
        return (), tuple(notes), "no GPU target left: " + "; ".join(notes)
    return tuple(kept), tuple(notes), None


def _first_reason(*checks: tuple[bool, str]) -> str | None:
    """The reason of the first check that excludes (``(True, reason)``), else None."""
    return next((reason for excludes, reason in checks if excludes), None)


def _plan_recipe(
    recipe: Recipe, releases: ReleaseTable, select: Selection, excluded: list[Exclusion]
) -> list[_Candidate]:
    mx = recipe.matrix
    out: list[_Candidate] = []
    target_cache: dict[str, tuple[tuple[str, ...], tuple[str, ...], str | None]] = {}
    for release in releases.planning_releases():
        at: dict[str, str] = {"recipe": recipe.name, "torch": release.minor}
        why = _first_reason(
            (
                not _contains(mx.torch, release.version),
                f"recipe's matrix.torch {str(mx.torch)!r} excludes {release.version}",
            ),
            (
                not _contains(select.torch, release.version),
                f"not selected by --torch {str(select.torch)!r}",
            ),
        )
        if why:
            excluded.append(Exclusion(**at, reason=why))
            continue
        for cuda in release.cudas:
            why = _first_reason(
                (
                    not _contains(mx.cuda, cuda),
                    f"recipe's matrix.cuda {str(mx.cuda)!r} excludes it",
                ),
                (not _contains(select.cuda, cuda), f"not selected by --cuda {str(select.cuda)!r}"),
            )
            if not why:
                if cuda not in target_cache:
                    target_cache[cuda] = _targets(recipe, cuda)
                targets, notes, why = target_cache[cuda]
            if why:
                excluded.append(Exclusion(**at, cuda=cuda, reason=why))
                continue
            for variant in (v for v in release.variants if v.cuda == cuda):
                for platform in variant.platforms:
                    os_name = platforms.get(platform).os
                    why = _first_reason(
                        (
                            platform not in mx.platforms,
                            mx.platform_reasons.get(platform, "not in the recipe's matrix.platforms"),
                        ),
                        (
                            bool(select.oses) and os_name not in select.oses,
                            f"not selected by --os {' '.join(select.oses)}",
                        ),
                    )
                    if why:
                        excluded.append(Exclusion(**at, cuda=cuda, platform=platform, reason=why))
                        continue
                    for python in release.pythons_of(variant):
                        why = _first_reason(
                            (
                                is_free_threaded(python) and not mx.free_threaded,
                                "free-threaded CPython: the recipe's matrix.free-threaded is false",
                            ),
                            (
                                not _contains(mx.python, base_python(python)),
                                f"recipe's matrix.python {str(mx.python)!r} excludes it",
                            ),
                        )
                        where = {**at, "cuda": cuda, "python": python, "platform": platform}
                        if why:
                            excluded.append(Exclusion(**where, reason=why))
                            continue
                        out.append(_Candidate(release, cuda, platform, python, targets, notes))
    return out


def _python_selected(select: Selection, pythons: Iterable[str]) -> bool:
    return any(_contains(select.python, base_python(p)) for p in pythons)


def _unselected(
    select: Selection, pythons: list[str], *, shown: str, **where: str
) -> Exclusion | None:
    """The exclusion for a wheel of ``pythons`` that --python leaves out, else None."""
    if _python_selected(select, pythons):
        return None
    reason = f"not selected by --python {str(select.python)!r}"
    return Exclusion(python=shown, reason=reason, **where)


def plan(
    recipes: Sequence[Recipe],
    releases: ReleaseTable,
    published: Manifest | Iterable[str] | None = None,
    *,
    select: Selection | None = None,
    root: Path | None = None,
) -> Plan:
    """The cells that must exist for ``recipes`` over ``releases``; with ``published``,
    only those not yet published. Pure: same inputs, same Plan (sorted, stable IDs)."""
    select = select or Selection()
    excluded: list[Exclusion] = []
    cells: list[Cell] = []
    for recipe in sorted(recipes, key=lambda r: r.name):
        candidates = _plan_recipe(recipe, releases, select, excluded)
        mx = recipe.matrix
        floor = Version(mx.stable_abi_floor) if mx.stable_abi_floor else None

        # Group by (torch label, cuda, platform); the build torch is the oldest release
        # of the group (stable ABI: oldest >= floor that ships the combination).
        groups: dict[tuple[str, str, str], list[_Candidate]] = {}
        for c in candidates:
            stable = floor is not None and Version(c.release.minor) >= floor
            label = naming.STABLE_ABI if stable else c.release.minor
            groups.setdefault((label, c.cuda, c.platform), []).append(c)

        base = {
            "recipe": recipe.name,
            "recipe_path": _recipe_path(recipe, root),
            "version": recipe.version or "",
        }
        for (label, cuda, platform), group in groups.items():
            targets, notes = group[0].targets, group[0].notes
            by_python: dict[str, list[_Candidate]] = {}
            for c in group:
                by_python.setdefault(c.python, []).append(c)

            def build_release(cands: list[_Candidate]) -> TorchRelease:
                return min((c.release for c in cands), key=lambda r: r.parsed)

            def minors(cands: Iterable[_Candidate]) -> tuple[str, ...]:
                return tuple(sorted({c.release.minor for c in cands}, key=Version))

            regular = {
                p: cs for p, cs in by_python.items() if not (mx.abi3 and not is_free_threaded(p))
            }
            abi3 = {p: cs for p, cs in by_python.items() if p not in regular}
            where = dict(recipe=recipe.name, torch=label, cuda=cuda, platform=platform)
            for python, cs in regular.items():
                if skip := _unselected(select, [python], shown=python, **where):
                    excluded.append(skip)
                    continue
                covers = minors(cs) if label == naming.STABLE_ABI else ()
                cells.append(
                    Cell(
                        **base,
                        torch=build_release(cs).version,
                        cuda=cuda,
                        python=python,
                        platform=platform,
                        targets=targets,
                        notes=notes,
                        covers=covers,
                        stable_abi_floor=mx.stable_abi_floor if label == naming.STABLE_ABI else None,
                    )
                )
            if abi3:
                pys = sorted(abi3, key=python_key)
                # the tag the recipe's limited API gives the wheel, else the oldest CPython
                floor_py = (mx.abi3 if isinstance(mx.abi3, str) else "cp" + pys[0].replace(".", "")) + "-abi3"
                if skip := _unselected(select, pys, shown=floor_py, **where):
                    excluded.append(skip)
                    continue
                all_cs = [c for p in pys for c in abi3[p]]
                # Build with the oldest CPython on the oldest torch that has it.
                build = build_release(abi3[pys[0]])
                cells.append(
                    Cell(
                        **base,
                        torch=build.version,
                        cuda=cuda,
                        python=floor_py,
                        build_python=pys[0],
                        platform=platform,
                        targets=targets,
                        notes=notes + (f"one abi3 wheel for CPython {', '.join(pys)}",),
                        covers=tuple(pys)
                        if label != naming.STABLE_ABI
                        else tuple(pys) + tuple(f"torch{m}" for m in minors(all_cs)),
                        stable_abi_floor=mx.stable_abi_floor
                        if label == naming.STABLE_ABI
                        else None,
                    )
                )

    cells.sort(key=_cell_sort_key)
    _check_unique(cells)
    if published is not None:
        keys, held = published_keys(published), held_keys(published)
        kept = []
        for cell in cells:
            filename = match_key(cell, keys)
            if filename is None:
                waiting = match_key(cell, held)
                if waiting is not None:  # in the index, but not for users: still to do
                    note = (
                        f"held in the index: {waiting}; a rebuild under that name is refused:"
                        " release it with a GPU check, or publish a fixed build with a new"
                        " build tag or version"
                    )
                    cell = replace(cell, notes=(*cell.notes, note))
                kept.append(cell)
            else:
                excluded.append(
                    Exclusion(
                        recipe=cell.recipe,
                        torch=cell.torch_label,
                        cuda=cell.cuda,
                        python=cell.python,
                        platform=cell.platform,
                        reason=f"already published: {filename}",
                    )
                )
        cells = kept
    return Plan(cells=tuple(cells), excluded=tuple(excluded))


def _check_unique(cells: Sequence[Cell]) -> None:
    """Two recipes planning the same wheel (same name and version) would build it twice and
    publish clashing files: refuse, naming both."""
    seen: dict[str, Cell] = {}
    for cell in cells:
        other = seen.setdefault(cell.id, cell)
        if other is not cell:
            a, b = other.recipe_path or other.recipe, cell.recipe_path or cell.recipe
            msg = (
                f"{cell.id} is planned by both {a} and {b} (same name and version);"
                f" plan one of them (wheelfactory plan {a}) or give them different versions"
            )
            raise ConfigError(msg)


def _cell_sort_key(c: Cell) -> tuple[Any, ...]:
    label = (
        (1, (0, 0))
        if c.torch_label == naming.STABLE_ABI
        else (0, tuple(int(x) for x in c.torch_label.split(".")))
    )
    py = (0, 0, 0) if c.abi3 else python_key(c.python)
    return (c.recipe, c.version, label, cuda_key(c.cuda), platform_key(c.platform), py)


# --------------------------------------------------------------------------- GitHub


def github_jobs(cells: Iterable[Cell]) -> list[dict[str, Any]]:
    """One job per cell (one wheel, one Python): a job then holds one torch install and
    its build stays far inside a hosted runner's time limit (ci-images.toml [budget]).
    Each job carries its estimate: "minutes" and "disk_gb"."""
    budget = jobbudget.load_budget()
    jobs = []
    for c in sorted(cells, key=_cell_sort_key):
        where = platforms.get(c.platform)
        python = c.build_python or c.python
        jobs.append(
            {
                "id": c.id,
                "recipe": c.recipe_path,
                "name": c.recipe,
                "version": c.version,
                "torch": c.torch,
                "torch_label": c.torch_label,
                "torch_requirement": c.torch_requirement,
                "cuda": c.cuda,
                "os": where.os,
                "machine": where.machine,
                "runner": where.runner,
                "pythons": [python],
                "abi3": c.abi3,
                "cibw_build": f"cp{python.replace('.', '')}-{where.cibw_suffix}",
                "targets": arch.torch_arch_list(arch.parse_targets(list(c.targets))),
                "cells": [c.id],
                "minutes": budget.minutes(platform=c.platform, targets=len(c.targets), wheels=1),
                "disk_gb": budget.disk(platform=c.platform, pythons=1),
            }
        )
    return jobs


def to_json_text(plan_: Plan) -> str:
    return json.dumps(plan_.to_json(), indent=2) + "\n"


def table_text(plan_: Plan) -> str:
    """A human table: one line per cell."""
    if not plan_.cells:
        return "(no cells)\n"
    rows = [("ID", "TORCH", "CUDA", "PYTHON", "PLATFORM", "TARGETS")]
    rows += [
        (c.id, c.torch, c.cuda, c.python, c.platform, ";".join(c.targets)) for c in plan_.cells
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append(f"{len(plan_.cells)} cells")
    held = [(c.id, n) for c in plan_.cells for n in c.notes if n.startswith("held in the index")]
    if held:
        lines.append(f"{len(held)} of them held in the index, not published:")
        lines += [f"  {cid}: {note}" for cid, note in held]
    return "\n".join(lines) + "\n"


__all__ = [
    "GITHUB_MAX_JOBS",
    "Cell",
    "Exclusion",
    "Plan",
    "Selection",
    "github_jobs",
    "held_keys",
    "match_key",
    "plan",
    "published_keys",
    "wheel_keys",
]
