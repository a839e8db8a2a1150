"""Small CI steps that the workflows call through the CLI, kept here so they are tested.

- ``split_matrices``: the planner's ``{"version": 1, "matrices": [...]}`` -> one output per
  workflow matrix job (``matrix0``..``matrixN`` + ``count0``..), since a workflow has a
  fixed number of matrix jobs and GitHub caps each matrix at 256 jobs.
- ``summarize``: a Markdown table (cell, wheel, size, time, targets) for the job summary,
  read from the wheels' build records.
- ``check_release_assets``: GitHub refuses release assets over 2 GiB; say so before upload.
- ``smoke``: the CPU import test cibuildwheel runs in its clean test venv.
- ``set_provenance``: record the attestation URL of published files in the manifest.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheelfactory import naming
from wheelfactory.errors import ConfigError, PublishError, VerifyError

log = logging.getLogger(__name__)

MAX_JOBS_PER_MATRIX = 256  # GitHub Actions' limit for one matrix
RELEASE_ASSET_LIMIT = 2 * 1024**3  # GitHub Release assets: "each file must be under 2 GiB"


# --------------------------------------------------------------------------- matrices


def split_matrices(plan: Mapping[str, Any], *, slots: int, limit: int | None = None) -> dict[str, str]:
    """Outputs for $GITHUB_OUTPUT: ``matrix<i>`` (JSON ``{"include": [...]}``) and
    ``count<i>`` for i in range(slots), plus ``count`` (all jobs). ``limit`` keeps only the
    first N jobs (pull requests build one small cell)."""
    if plan.get("version") != 1 or not isinstance(plan.get("matrices"), list):
        raise ConfigError('plan is not {"version": 1, "matrices": [...]}; produce it with wheelfactory plan --format github')
    jobs: list[Mapping[str, Any]] = []
    for matrix in plan["matrices"]:
        include = matrix.get("include") if isinstance(matrix, Mapping) else None
        if not isinstance(include, list):
            raise ConfigError('a plan matrix lacks its "include" list; produce it with wheelfactory plan --format github')
        jobs.extend(include)
    ids = [j.get("id") for j in jobs]
    if len(set(ids)) != len(ids):
        raise ConfigError("plan has duplicate job ids; artifact names would clash; fix the planner")
    if limit is not None:
        jobs = jobs[:limit]
    chunks = [jobs[i : i + MAX_JOBS_PER_MATRIX] for i in range(0, len(jobs), MAX_JOBS_PER_MATRIX)]
    if len(chunks) > slots:
        msg = (
            f"plan has {len(jobs)} jobs, more than {slots} matrix jobs x {MAX_JOBS_PER_MATRIX} can run;"
            " narrow the plan (--torch/--cuda/--os) or add a build-N job to build.yml"
        )
        raise ConfigError(msg)
    out: dict[str, str] = {"count": str(len(jobs))}
    for i in range(slots):
        chunk = chunks[i] if i < len(chunks) else []
        out[f"matrix{i}"] = json.dumps({"include": chunk}, separators=(",", ":"), sort_keys=True)
        out[f"count{i}"] = str(len(chunk))
    return out


def render_outputs(outputs: Mapping[str, str]) -> str:
    """``name=value`` lines for $GITHUB_OUTPUT (values are single-line JSON or numbers)."""
    for name, value in outputs.items():
        if "\n" in value:
            raise ConfigError(f"output {name} spans lines; emit compact JSON")
    return "".join(f"{k}={v}\n" for k, v in outputs.items())


# --------------------------------------------------------------------------- build records


def read_build_record(wheel: Path) -> dict[str, Any] | None:
    """The ``<dist-info>/wheelfactory-build.json`` of a wheel (label.py writes it), or None."""
    from wheelfactory.label import read_build_record as read

    try:
        data = read(wheel)
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError) as e:
        raise VerifyError(f"{wheel.name}: cannot read its build record ({e}); rebuild the wheel") from e
    return data if isinstance(data, dict) else None


@dataclass(frozen=True, kw_only=True)
class SummaryRow:
    cell: str
    wheel: str
    size: int
    seconds: float | None
    targets: tuple[str, ...]


def _cell_of(label: naming.WheelLabel) -> str:
    py = "-".join(label.python_tags)
    plat = "-".join(label.platform_tags)
    cuda = naming.cuda_tag(label.cuda) if label.cuda else "cu?"
    return f"{label.project}-{label.public_version}-{cuda}-torch{label.torch or '?'}-{py}-{plat}"


def _total_seconds(record: Mapping[str, Any]) -> float | None:
    timings = record.get("timings")
    if isinstance(timings, Mapping):
        if isinstance(timings.get("total"), int | float):
            return float(timings["total"])
        values = [v for v in timings.values() if isinstance(v, int | float)]
        return float(sum(values)) if values else None
    if isinstance(timings, int | float):
        return float(timings)
    return None


def summary_rows(wheels: Iterable[Path]) -> list[SummaryRow]:
    rows = []
    for wheel in sorted(wheels, key=lambda p: p.name):
        label = naming.parse_wheel(wheel.name)
        record = read_build_record(wheel) or {}
        cell = record.get("cell") if isinstance(record.get("cell"), str) else None
        targets = record.get("targets") or []
        rows.append(
            SummaryRow(
                cell=cell or _cell_of(label),
                wheel=wheel.name,
                size=wheel.stat().st_size,
                seconds=_total_seconds(record),
                targets=tuple(str(t) for t in targets) if isinstance(targets, list) else (),
            )
        )
    return rows


def _human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024  # type: ignore[assignment]
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


# --------------------------------------------------------------------------- release assets


def check_release_assets(wheels: Iterable[Path], *, limit: int = RELEASE_ASSET_LIMIT) -> None:
    """Refuse any wheel GitHub would refuse as a release asset (over 2 GiB)."""
    too_big = [(w, w.stat().st_size) for w in wheels if w.stat().st_size >= limit]
    if too_big:
        names = ", ".join(f"{w.name} ({size / 1024**3:.2f} GiB)" for w, size in too_big)
        msg = (
            f"over GitHub's 2 GiB release-asset limit: {names}; strip debug info, drop targets,"
            " or make sure no torch/CUDA library was vendored"
        )
        raise PublishError(msg)


# --------------------------------------------------------------------------- smoke test


def extension_modules(wheel: Path) -> list[str]:
    """Dotted names of the extension modules in a wheel (``pkg/_ext.cpython-311-x86_64-linux-gnu.so``
    -> ``pkg._ext``; ``pkg\\_ext.cp311-win_amd64.pyd`` likewise)."""
    modules = []
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            top = name.split("/")[0]
            if top.endswith((".dist-info", ".data")):
                continue
            base = name.rsplit("/", 1)[-1]
            if base.endswith((".so", ".pyd")) and not base.startswith("lib"):
                dotted = name.rsplit("/", 1)[0].replace("/", ".") if "/" in name else ""
                stem = base.split(".")[0]
                modules.append(f"{dotted}.{stem}" if dotted else stem)
    return sorted(set(modules))


def smoke(wheel: Path, *, modules: Sequence[str] = ()) -> list[str]:
    """Import torch, then each extension module of the (installed) wheel, in this
    interpreter; return the modules imported. A failure names the module and the cause."""
    importlib.import_module("torch")  # torch's libraries must be loaded first
    names = list(modules) or extension_modules(wheel)
    if not names:
        raise VerifyError(f"{wheel.name}: no extension module found; pass --import MODULE")
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # ImportError, OSError (DLL load failed), ...
            msg = f"{wheel.name}: import {name} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}; check the wheel's torch/CUDA label against the installed torch"
            raise VerifyError(msg) from e
        log.info("imported %s", name)
    return names


# --------------------------------------------------------------------------- provenance


def set_provenance(index: str | os.PathLike[str], filenames: Iterable[str], url: str) -> list[str]:
    """Record ``url`` (an attestation) as the provenance of ``filenames`` in the index's
    manifest; return the files changed. Unknown files are an error."""
    from dataclasses import replace

    from wheelfactory.manifest import load_manifest, save_manifest

    if not url.startswith("https://"):
        raise ConfigError(f"provenance URL {url!r} is not https; pass the attestation URL from actions/attest")
    manifest = load_manifest(index)
    wanted = set(filenames)
    known = {f.filename for f in manifest.files}
    unknown = sorted(wanted - known)
    if unknown:
        raise PublishError(f"not in the manifest: {', '.join(unknown)}; publish them before attaching provenance")
    changed = []
    files = []
    for f in manifest.files:
        if f.filename in wanted and f.provenance_url != url:
            f = replace(f, provenance_url=url)
            changed.append(f.filename)
        files.append(f)
    if changed:
        save_manifest(index, replace(manifest, files=tuple(files)))
    return changed


# --------------------------------------------------------------------------- CI repair + label


BUILD_START_ENV = "WHEELFACTORY_BUILD_START"  # epoch seconds, set by cibw-env's environment


def repair_and_label(
    wheel: Path,
    out_dir: Path,
    *,
    recipe: Any,
    torch: str,
    cuda: str,
    targets: Sequence[Any],
    cell: str | None = None,
    work: Path,
    env: Mapping[str, str] = os.environ,
) -> Path:
    """cibuildwheel's repair step: repair (auditwheel/delvewheel via repair.py, never
    vendoring torch or CUDA), then label (+cuXYZtorchA.B, Requires-Dist, build record) with
    pipeline.label_edits, the same edits ``wheelfactory build`` applies."""
    import time

    from wheelfactory import guard, label, pipeline
    from wheelfactory import repair as repair_stage

    started = time.monotonic()
    info = naming.parse_wheel(wheel.name)
    version = naming.labelled_version(pipeline.published_version(recipe, info.public_version), cuda, torch)
    build_info = pipeline.BuildInfo(
        name=info.project,
        version=version,
        torch=torch,
        cuda=cuda,
        python_tag=info.python_tags[0],
        targets=tuple(targets),
    )
    # The import guard goes in before repair, as in ``wheelfactory build``.
    add_guard = pipeline.guard_edit(env.get("WHEELFACTORY_INDEX_URL") or guard.DEFAULT_INDEX_ROOT)
    guarded = label.relabel(
        wheel, pipeline.pre_repair_edits(build_info, (add_guard,)), work / "guarded", work=work / "guard"
    )
    repaired = repair_stage.repair(guarded, work / "repaired")
    stages: dict[str, float] = {}
    start = env.get(BUILD_START_ENV, "")
    if start.isdigit():
        stages["build"] = round(max(0.0, time.time() - int(start)), 1)
    stages["repair"] = round(time.monotonic() - started, 1)
    record = {
        "cell": cell,
        "recipe": str(recipe.path) if recipe is not None and recipe.path else None,
        "recipe_sha256": recipe.sha256 if recipe is not None else None,
        "torch": torch,
        "cuda": cuda,
        "targets": [str(t) for t in targets],
        "python_tag": info.python_tags[0],
        "policy": repaired.policy,
        "repair_tool": repaired.tool,
        "vendored": list(repaired.vendored),
        "guard": True,
        "builder": "cibuildwheel",
        "ci_run": env.get("GITHUB_RUN_ID"),
        "timings": stages,
    }
    return label.relabel(repaired.wheel, pipeline.label_edits(build_info, record), out_dir, work=work)


def verify_release(wheel: Path, *, cuobjdump: Path | None) -> list[str]:
    """Offline checks of a downloaded wheel against its own build record: tags, label,
    Requires-Dist, RECORD, and (Linux, with cuobjdump) SASS promised == present. Returns
    the failures ([] when all pass)."""
    import tempfile

    from wheelfactory import arch, label, verify

    record = read_build_record(wheel)
    if not record or not record.get("targets") or not record.get("torch"):
        return [f"{wheel.name}: no build record with torch and targets; rebuild it with wheelfactory"]
    info = naming.parse_wheel(wheel.name)
    windows = any(p.startswith("win") for p in info.platform_tags)
    expect = verify.Expectation(
        targets=arch.parse_targets(list(record["targets"])), torch=str(record["torch"]), cuda=info.cuda or "",
        python_tag=info.python_tags[0], platform_prefix="win_" if windows else "manylinux_",
    )  # fmt: skip
    checks = verify.check_tags_and_label(wheel, expect)
    if cuobjdump is not None and not windows:
        with tempfile.TemporaryDirectory(prefix="wf-release-check-") as tmp:
            root = label.unpack(wheel, Path(tmp) / "u")
            checks += verify.check_binaries(root, expect, cuobjdump)[0]
    return [f"{wheel.name}: {c.name}: {c.detail}" for c in checks if not c.ok]
