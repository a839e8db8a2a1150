"""The Markdown table (cell, wheel, size, time, targets) that the build-cells and publish
jobs write to their step summary, read from the wheels' build records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wheelfactory import naming, wheelfile
from wheelfactory.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class SummaryRow:
    cell: str
    wheel: str
    size: int
    seconds: float | None
    targets: tuple[str, ...]


def find_wheels(paths: Iterable[Path]) -> list[Path]:
    """Wheels named directly, or found (recursively) in the directories named."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(p.rglob("*.whl"))
        elif p.is_file() and p.suffix == ".whl":
            found.append(p)
        else:
            raise ConfigError(f"{p}: not a wheel or a directory; pass wheels or the folder that holds them")
    return found


def _cell_of(label: naming.WheelLabel) -> str:
    py = "-".join(label.python_tags)
    plat = "-".join(label.platform_tags)
    cuda = naming.cuda_tag(label.cuda) if label.cuda else "cu?"
    return f"{label.project}-{label.public_version}-{cuda}-torch{label.torch or '?'}-{py}-{plat}"


def summary_rows(wheels: Iterable[Path]) -> list[SummaryRow]:
    rows = []
    for wheel in sorted(wheels, key=lambda p: p.name):
        label = naming.parse_wheel(wheel.name)
        record = wheelfile.read_build_record(wheel)
        timings = record.timings if record else {}
        rows.append(
            SummaryRow(
                cell=(record.cell if record else None) or _cell_of(label),
                wheel=wheel.name,
                size=wheel.stat().st_size,
                seconds=float(sum(timings.values())) if timings else None,
                targets=record.targets if record else (),
            )
        )
    return rows


def _human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError  # pragma: no cover


def _md(text: str) -> str:
    """Escape a table cell: pipes and markup from file names must not break the table."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render_summary(rows: Sequence[SummaryRow], *, title: str = "Wheels built") -> str:
    lines = [f"### {title}", ""]
    if not rows:
        return "\n".join([*lines, "No wheels.", ""])
    lines += ["| cell | wheel | size | time | targets |", "|---|---|---:|---:|---|"]
    for r in rows:
        secs = f"{r.seconds / 60:.1f} min" if r.seconds is not None else "?"
        targets = ", ".join(r.targets) or "?"
        lines.append(f"| {_md(r.cell)} | `{_md(r.wheel)}` | {_human_size(r.size)} | {secs} | {_md(targets)} |")
    return "\n".join([*lines, ""])
