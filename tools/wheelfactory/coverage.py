"""Expected vs published: ``coverage(cells, manifest) -> CoverageReport``, a pure function.

Every planned cell is required. A cell is covered by a published, not yanked wheel whose
filename carries the cell's project, version, CUDA/torch label, CPython/ABI and platform
(plan.wheel_keys). A wheel held out of the views for a GPU check (manifest ``held``) does
not cover its cell: users cannot install it; the cell shows as held, with the reason. Rendering: markdown for the Actions job summary and the landing page,
JSON (versioned) for machines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wheelfactory.manifest import Manifest, PublishedFile, entry_field
from wheelfactory.plan import Cell, match_key, wheel_keys

COVERAGE_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class CoverageRow:
    cell: Cell
    filename: str | None = None
    size: int | None = None
    upload_time: str | None = None
    held: str | None = None  # why its wheel is held out of every view (a GPU check)

    @property
    def published(self) -> bool:
        """Installable by users: a wheel is there and no GPU check holds it back."""
        return self.filename is not None and self.held is None

    @property
    def status(self) -> str:
        return "published" if self.published else "held" if self.held else "missing"

    def to_json(self) -> dict[str, Any]:
        c = self.cell
        return {
            "id": c.id,
            "recipe": c.recipe,
            "version": c.version,
            "torch": c.torch_label,
            "cuda": c.cuda,
            "python": c.python,
            "os": c.os,
            "machine": c.machine,
            "status": self.status,
            "held": self.held,
            "filename": self.filename,
            "size": self.size,
            "upload_time": self.upload_time,
        }


@dataclass(frozen=True, kw_only=True)
class CoverageReport:
    rows: tuple[CoverageRow, ...]
    unplanned: tuple[str, ...] = ()  # published wheels no planned cell asks for

    @property
    def missing(self) -> tuple[CoverageRow, ...]:
        """Rows no wheel covers (held ones are not here: see ``held``)."""
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

    def to_json(self) -> dict[str, Any]:
        return {
            "version": COVERAGE_VERSION,
            "expected": len(self.rows),
            "published": len(self.rows) - len(self.unpublished),
            "held": len(self.held),
            "missing": len(self.missing),
            "cells": [r.to_json() for r in self.rows],
            "unplanned": list(self.unplanned),
        }


def coverage(cells: Iterable[Cell], manifest: Manifest | None) -> CoverageReport:
    files = [f for f in (manifest.files if manifest is not None else ()) if not f.yanked]
    keys: dict[tuple[str, ...], PublishedFile] = {}
    # A listed wheel before a held one of the same cell (another build tag, say).
    for f in sorted(files, key=lambda f: (bool(entry_field(f, "held")), f.filename)):
        for key in wheel_keys(f.filename):
            keys.setdefault(key, f)
    rows, used = [], set()
    for cell in cells:
        f = match_key(cell, keys)
        if f is None:
            rows.append(CoverageRow(cell=cell))
        else:
            used.add(f.filename)
            rows.append(
                CoverageRow(
                    cell=cell,
                    filename=f.filename,
                    size=f.size,
                    upload_time=f.upload_time,
                    held=entry_field(f, "held") or None,
                )
            )
    unplanned = tuple(sorted(f.filename for f in files if f.filename not in used))
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
    """A summary table per recipe (torch x CUDA, published/expected per platform), then
    every cell with its file or MISSING."""
    out = ["## Wheel coverage", ""]
    total, missing, held = len(report.rows), len(report.missing), len(report.held)
    marks = [f"**{n} {what}**" for n, what in ((missing, "missing"), (held, "held")) if n]
    mark = ", ".join(marks) or "complete"
    published = total - len(report.unpublished)
    out += [f"{published} of {total} expected wheels are published ({mark}).", ""]
    recipes: dict[tuple[str, str], list[CoverageRow]] = {}
    for r in report.rows:
        recipes.setdefault((r.cell.recipe, r.cell.version), []).append(r)
    for (name, version), rows in recipes.items():
        out += [f"### {name} {version}".rstrip(), ""]
        platforms = sorted({r.cell.platform for r in rows})
        out.append("| torch | CUDA | " + " | ".join(platforms) + " |")
        out.append("|---|---|" + "---|" * len(platforms))
        grid: dict[tuple[str, str], dict[str, list[int]]] = {}
        for r in rows:
            counts = grid.setdefault((r.cell.torch_label, r.cell.cuda), {}).setdefault(
                r.cell.platform, [0, 0]
            )
            counts[0] += r.published
            counts[1] += 1
        for (torch, cuda), per in grid.items():
            cells = []
            for p in platforms:
                done, want = per.get(p, [0, 0])
                cells.append(
                    "" if not want else f"{done}/{want}" + (" ✅" if done == want else " ❌")
                )
            out.append(f"| {torch} | {cuda} | " + " | ".join(cells) + " |")
        out += ["", "<details><summary>Every wheel</summary>", ""]
        out += ["| cell | file | size | uploaded |", "|---|---|---|---|"]
        for r in rows:
            if r.published:
                out.append(
                    f"| `{r.cell.id}` | `{r.filename}` | {_size(r.size)} | {r.upload_time or ''} |"
                )
            elif r.held:
                out.append(f"| `{r.cell.id}` | `{r.filename}` **HELD**: {_one_line(r.held)} | | |")
            else:
                out.append(f"| `{r.cell.id}` | **MISSING** | | |")
        out += ["", "</details>", ""]
    if report.unplanned:
        out += [
            f"{len(report.unplanned)} published wheel(s) match no planned cell (older torch or versions).",
            "",
        ]
    return "\n".join(out)


def _one_line(text: str) -> str:
    """Text from the manifest, safe in one Markdown table cell."""
    return " ".join(text.split()).replace("|", "/")[:200]


def to_json_text(report: CoverageReport) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"


__all__ = ["CoverageReport", "CoverageRow", "coverage", "to_json_text", "to_markdown"]
