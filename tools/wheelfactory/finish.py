"""The finish stage: a freshly built wheel -> a guarded, repaired, labelled wheel.

Local builds (pipeline.build) and CI builds (cibuildwheel's repair step, ``wheelfactory
repair``) both end here, with the same steps in the same order:

1. the import guard goes in (guard.py) before repair, because it may move extension
   modules, which would break the ``$ORIGIN`` RUNPATHs that repair adds;
2. repair for the platform (auditwheel/delvewheel; torch, CUDA and the driver are never
   vendored);
3. label: the ``+cu130torch2.14`` (or ``+cu130torchabi``) version, the torch
   requirement, ``strip --strip-debug`` of host debug info (Linux), and the build record.

``new_record`` assembles the build record from what both paths know, so a wheel's record
says the same things however it was built; ``finish`` adds the repair and the timings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.version import Version

from wheelfactory import buildvars, guard, label, platforms, repair
from wheelfactory.arch import GpuTarget
from wheelfactory.errors import BuildError
from wheelfactory.naming import TorchPin
from wheelfactory.recipe import Fix, Recipe, display_path
from wheelfactory.record import BuildRecord, PatchPin, RepairInfo, SourcePin
from wheelfactory.source import PreparedSource

log = logging.getLogger(__name__)

# Build environment variables the record leaves out, as they are about the machine that
# built it and not the wheel, and would make two builds' records differ: its paths
# (PYTORCH_NVCC, PYTHONPATH: the nvcc wrapper and the no-GPU shim in the build's work dir;
# their settings are recorded) and MAX_JOBS (its cores and free memory at the time).
_HOST_ONLY_ENV = ("PATH", "VIRTUAL_ENV", "PYTORCH_NVCC", "PYTHONPATH", "MAX_JOBS")


def published_version(recipe: Recipe | None, built_version: str) -> str:
    """The public version the wheel is published as: the recipe's [package].version, after
    checking that the source built what the recipe expects (upstream-version, else version)."""
    if recipe is None or not recipe.version:
        return built_version
    expected = recipe.upstream_version or recipe.version
    if Version(built_version) != Version(expected):
        key = "upstream-version" if recipe.upstream_version else "version"
        raise BuildError(
            f"the source builds version {built_version}, the recipe expects {expected}: update [package].{key}"
        )
    return recipe.version


def source_pins(prepared: PreparedSource | None) -> tuple[SourcePin, ...]:
    if prepared is None:
        return ()
    return tuple(
        SourcePin(name=s.name, kind=s.kind, pin=s.pin, commit=s.commit, sha256=s.sha256, dirty=s.dirty)
        for s in (prepared.main, *prepared.extras)
    )


def new_record(
    recipe: Recipe,
    *,
    upstream_version: str,
    builder: str,
    platform: str,
    torch: TorchPin,
    cuda: str,
    python_tag: str,
    targets: Sequence[GpuTarget],
    changes: Iterable[buildvars.EnvChange],
    fixes: Iterable[Fix],
    prepared: PreparedSource | None = None,
    with_guard: bool = True,
    index_url: str | None = None,
    strip_debug: bool = True,
    **details: object,
) -> BuildRecord:
    """The build record of a wheel (repair and the finish timings come later).

    ``torch``: the pin the build was checked against (``Recipe.torch_pin``). ``changes``
    and ``fixes``: the build's variables (buildvars.build_changes) and the recipe fixes it
    applied. ``index_url``: the index root the import guard's fix command names (None: not
    known when building).
    ``details``: nvcc, python, tools, timings, compile_steps, cell, ci_run.
    """
    public = published_version(recipe, upstream_version)
    changes = list(changes)
    _, env = buildvars.apply({}, changes, pathsep=platforms.get(platform).pathsep)
    return BuildRecord(
        package=recipe.name,
        package_version=torch.labelled_version(public, cuda),
        upstream_version=upstream_version,
        recipe=display_path(recipe.path) if recipe.path else None,
        recipe_sha256=recipe.sha256 or None,
        sources=source_pins(prepared),
        patches=tuple(PatchPin(**p.__dict__) for p in prepared.patches) if prepared else (),
        builder=builder,
        platform=platform,
        torch=torch.version,  # the CUDA build is recorded beside it
        torch_requirement=torch.requirement,
        stable_abi_floor=torch.floor,
        cuda=cuda,
        python_tag=python_tag,
        targets=tuple(str(t) for t in targets),
        compress_mode=buildvars.compress_mode(recipe, cuda),
        env={k: v for k, v in sorted(env.items()) if k not in _HOST_ONLY_ENV},
        fixes=tuple(f.why for f in fixes),
        guard=with_guard,
        index_url=index_url if with_guard else None,
        known_bad=recipe.known_bad,
        strip_debug=strip_debug,
        **details,  # type: ignore[arg-type]
    )


def guard_info(record: BuildRecord) -> guard.GuardInfo:
    return guard.GuardInfo(
        package=record.package,
        version=record.package_version,
        cuda=record.cuda,
        torch=record.torch_pin.label,
        torch_floor=record.torch_pin.floor,
        targets=record.targets,
        index_url=record.index_url,
        known_bad=record.known_bad,
    )


@dataclass(frozen=True, kw_only=True)
class Finished:
    wheel: Path
    record: BuildRecord
    repaired: repair.RepairResult


def label_edits(record: BuildRecord, *, strip_debug: bool) -> list[label.Edit]:
    """The edits that turn a repaired wheel into a labelled one."""
    return [
        label.set_version(record.package_version),
        label.require(record.torch_requirement),
        *([label.strip_debug()] if strip_debug else []),
        label.write_build_record(record),
    ]


def finish(
    wheel: Path,
    record: BuildRecord,
    *,
    out_dir: Path,
    work: Path,
    plat: str | None = None,
    timings: Mapping[str, float] | None = None,
) -> Finished:
    """Guard, repair and label ``wheel`` as ``record`` says; the result goes to ``out_dir``."""
    platform = platforms.get(record.platform)
    stages = dict(record.timings)
    to_repair = wheel
    if record.guard:
        start = time.monotonic()
        info = guard_info(record)
        to_repair = label.relabel(
            wheel, [lambda root: guard.add_guard(root, info)], work / "edited", work=work / "edit"
        )
        stages["edit"] = round(time.monotonic() - start, 1)
    start = time.monotonic()
    repaired = repair.repair(to_repair, work / "repaired", platform=platform, plat=plat)
    stages["repair"] = round(time.monotonic() - start, 1)
    record = replace(
        record,
        repair=RepairInfo(
            tool=repaired.tool,
            policy=repaired.policy,
            vendored=repaired.vendored,
            excluded_patterns=len(repaired.excludes),
        ),
        timings={**stages, **(timings or {})},
    )
    # strip is a GNU binutils tool for ELF files: Linux wheels only.
    strip = record.strip_debug and platform.os == "linux"
    # A reproducible wheel's own record leaves out what describes this run (its timings,
    # its compile steps): two builds from the same inputs then give the same bytes. The
    # record returned keeps them, for the build's summary.
    in_wheel = record.without_run_facts() if record.reproducible else record
    labelled = label.relabel(
        repaired.wheel, label_edits(in_wheel, strip_debug=strip), out_dir, work=work / "label"
    )
    log.info("finished %s", labelled.name)
    return Finished(wheel=labelled, record=record, repaired=repaired)
