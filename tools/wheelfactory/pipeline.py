"""One build, start to end: env -> source -> build -> repair -> label -> verify.

``build(request)`` takes a frozen ``BuildRequest`` and returns a ``BuildOutcome``; each
stage is a module of its own (buildenv, source, build, repair, label, verify) and this
module only wires them and times them.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from wheelfactory import (
    __version__,
    _log,
    _proc,
    arch,
    buildenv,
    cudastub,
    guard,
    label,
    naming,
    repair,
    source,
    verify,
)
from wheelfactory import build as build_stage
from wheelfactory.arch import GpuTarget
from wheelfactory.errors import BuildError, ConfigError
from wheelfactory.recipe import Recipe

log = logging.getLogger(__name__)

# Environment variables the build record leaves out: machine-specific search paths.
_RECORD_SKIP_ENV = ("PATH", "VIRTUAL_ENV")


@dataclass(frozen=True, kw_only=True)
class BuildInfo:
    """What an edit of the unpacked wheel may need to know (e.g. an import-time guard)."""

    name: str
    version: str  # labelled: "0.3.1+cu130torch2.14"
    torch: str  # "2.14.1"
    cuda: str  # "13.0"
    python_tag: str  # "cp311"
    targets: tuple[GpuTarget, ...]


# An edit of the unpacked wheel before auditwheel repair: called with the unpacked
# wheel's root and the BuildInfo. The import guard is one; it must run before repair
# because it may move extension modules, which breaks the $ORIGIN RUNPATHs repair adds.
ExtraEdit = Callable[[Path, BuildInfo], None]


def guard_edit(index_url: str) -> ExtraEdit:
    """The edit that adds wheelfactory's import-time guard (see guard.py)."""

    def add(root: Path, info: BuildInfo) -> None:
        guard.add_guard(
            root,
            guard.GuardInfo(
                package=info.name,
                version=info.version,
                cuda=info.cuda,
                torch=naming.torch_minor(info.torch),
                targets=tuple(str(t) for t in info.targets),
                index_root=index_url,
            ),
        )

    return add


@dataclass(frozen=True, kw_only=True)
class BuildRequest:
    recipe: Recipe
    source_dir: Path | None  # --source DIR: overrides the recipe's [source]
    torch: str  # "2.14.1"
    cuda: str  # "13.0"
    python: Path  # interpreter to build for
    targets: tuple[GpuTarget, ...] | None  # --arch; None: the recipe's targets for cuda
    out_dir: Path
    torch_index_url: str | None  # None: pip's own configuration
    cache: Path
    work_dir: Path | None = None  # None: a temp dir, removed after a successful build
    resume: bool = False  # keep work_dir's sources and compiled objects (same pins only)
    jobs: int | None = None
    plat: str | None = None  # auditwheel --plat; None: the lowest policy that fits
    verify: bool = True
    strip_debug: bool = True  # strip --strip-debug the shared libraries
    empty_stub: bool = False  # TEST ONLY: link -lcuda against a stub defining nothing
    with_guard: bool = True  # add the import-time guard (guard.py)
    index_url: str = guard.DEFAULT_INDEX_ROOT  # the index the guard's fix command names


@dataclass(frozen=True, kw_only=True)
class BuildOutcome:
    wheel: Path
    size: int
    targets: tuple[GpuTarget, ...]
    stages: dict[str, float]  # stage -> seconds
    policy: str
    record: dict[str, Any]
    report: verify.VerifyReport | None
    report_file: Path | None
    log_file: Path
    compile_steps: int = 0
    vendored: tuple[str, ...] = field(default=())


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


def resolve_targets(request: BuildRequest) -> tuple[GpuTarget, ...]:
    """--arch, else the recipe's [[targets]] for the CUDA; then check CUDA compiles them."""
    if request.targets:
        targets = request.targets
    elif request.recipe.target_rules:
        targets = request.recipe.targets_for(request.cuda)
    else:
        raise ConfigError(
            "no GPU targets: pass --arch (e.g. --arch 9.0a,12.0a) or use a recipe with [[targets]]"
        )
    arch.check_buildable(targets, request.cuda)
    return targets


@contextmanager
def _stage(name: str, stages: dict[str, float]) -> Iterator[None]:
    start = time.monotonic()
    with _log.step(name):
        yield
    stages[name] = round(time.monotonic() - start, 1)


def _compiler_version() -> str:
    try:
        out = _proc.run(["c++", "--version"], echo=False, check=False).stdout
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


def label_edits(
    info: BuildInfo, record: dict[str, Any], *, strip_debug: bool = True
) -> list[label.Edit]:
    """The edits that turn a repaired wheel into a labelled one."""
    return [
        label.set_version(info.version),
        label.require(naming.torch_requirement(info.torch)),
        *([label.strip_debug()] if strip_debug else []),
        label.write_build_record(record),
    ]


def pre_repair_edits(info: BuildInfo, extra_edits: tuple[ExtraEdit, ...]) -> list[label.Edit]:
    """The extra edits (guard hook), bound to ``info``; applied before repair."""
    return [lambda root, _extra=extra: _extra(root, info) for extra in extra_edits]


def build(request: BuildRequest, *, extra_edits: tuple[ExtraEdit, ...] = ()) -> BuildOutcome:
    """Build, repair, label and verify one wheel; raise a WheelfactoryError on any failure."""
    stages: dict[str, float] = {}
    recipe = request.recipe
    targets = resolve_targets(request)
    toolchain = build_stage.find_toolchain()
    build_stage.check_cuda_matches(toolchain, request.cuda)
    out_dir = request.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = request.work_dir or Path(tempfile.mkdtemp(prefix=f"wheelfactory-{recipe.name}-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    # An earlier run's outputs in a reused work dir would be taken for this run's.
    for scratch in ("dist", "edit", "edited", "repaired", "label", "labelled", "verify"):
        shutil.rmtree(work / scratch, ignore_errors=True)
    log.info(
        "building %s for torch %s, CUDA %s, targets %s (work dir %s)",
        recipe.name,
        request.torch,
        request.cuda,
        arch.torch_arch_list(targets),
        work,
    )

    with _stage("env", stages):
        env = buildenv.prepare_env(
            python=request.python,
            torch=request.torch,
            cuda=request.cuda,
            index_url=request.torch_index_url,
            cache=request.cache,
        )
    with _stage("source", stages):
        prepared = source.prepare_source(
            recipe, work, local=request.source_dir, cache=request.cache, resume=request.resume
        )

    log_file = work / "build.log"
    with _stage("build", stages):
        stub_dir = cudastub.make_stub(
            toolchain.cuda_home, request.cache / "stubs", empty=request.empty_stub
        )
        shim_dir = build_stage.write_gpu_shim(work) if recipe.build.no_gpu_shim else None
        nvcc_filter = (
            build_stage.write_nvcc_filter(work, sys.executable)
            if recipe.build.source_targets
            else None
        )
        fixes = recipe.fixes_for(
            torch=request.torch, cuda=request.cuda, python=env.interpreter.version, os="linux"
        )
        composed = build_stage.compose_env(
            os.environ,
            build_env=env,
            toolchain=toolchain,
            targets=targets,
            jobs=request.jobs or build_stage.default_jobs(),
            recipe_env=recipe.build.env,
            fixes=fixes,
            stub_dir=stub_dir,
            shim_dir=shim_dir,
            nvcc_filter=nvcc_filter,
            source_targets=recipe.build.source_targets,
        )
        for fix in fixes:
            log.info("fix: %s", fix.why)
        built = build_stage.run_build(
            prepared.tree,
            build_env=env,
            composed=composed,
            out_dir=work / "dist",
            log_file=log_file,
        )

    raw = naming.parse_wheel(built.wheel.name)
    if raw.project != canonicalize_name(recipe.name):
        raise BuildError(
            f"the build made {raw.project}, not {recipe.name}: fix [package].name (or --name)"
        )
    public_version = published_version(recipe, raw.public_version)

    info = BuildInfo(
        name=recipe.name,
        version=naming.labelled_version(public_version, request.cuda, request.torch),
        torch=request.torch,
        cuda=request.cuda,
        python_tag=env.interpreter.tag,
        targets=targets,
    )
    to_repair = built.wheel
    edits = ((guard_edit(request.index_url),) if request.with_guard else ()) + extra_edits
    if edits:
        with _stage("edit", stages):
            pre = pre_repair_edits(info, edits)
            to_repair = label.relabel(built.wheel, pre, work / "edited", work=work / "edit")

    with _stage("repair", stages):
        repaired = repair.repair(to_repair, work / "repaired", plat=request.plat)
    record = {
        "package": {
            "name": recipe.name,
            "version": info.version,
            "upstream_version": raw.public_version,
        },
        "recipe": {
            "path": str(recipe.path) if recipe.path else None,
            "sha256": recipe.sha256 or None,
        },
        "source": {
            "kind": prepared.main.kind,
            "pin": prepared.main.pin,
            "commit": prepared.main.commit,
            "sha256": prepared.main.sha256,
            "dirty": prepared.main.dirty,
            "extras": [
                {"name": e.name, "pin": e.pin, "commit": e.commit, "sha256": e.sha256}
                for e in prepared.extras
            ],
        },
        "torch": env.torch,
        "torch_requirement": naming.torch_requirement(request.torch),
        "cuda": request.cuda,
        "nvcc": toolchain.nvcc_version,
        "python": env.interpreter.full_version,
        "python_tag": env.interpreter.tag,
        "platform": platform.machine(),
        "targets": [str(t) for t in targets],
        "sass": sorted(t.sm for t in targets),
        "env": {k: v for k, v in sorted(composed.applied.items()) if k not in _RECORD_SKIP_ENV},
        "fixes": list(composed.fixes),
        "gpu_shim": shim_dir is not None,
        "guard": request.with_guard,
        "index_url": request.index_url,
        "strip_debug": request.strip_debug,
        "links_driver": recipe.build.links_driver,
        "build_env": env.kind,
        "repair": {
            "policy": repaired.policy,
            "tool": repaired.tool,
            "vendored": list(repaired.vendored),
            "excluded_patterns": len(repaired.excludes),
        },
        "tools": {
            "wheelfactory": __version__,
            **{k: v for k, v in sorted(env.interpreter.tools.items())},
            "auditwheel": repaired.tool.split()[-1],
            "c++": _compiler_version(),
            "builder_python": sys.version.split()[0],
        },
        "timings": dict(stages),
        "compile_steps": built.compile_steps,
    }
    with _stage("label", stages):
        labelled = label.relabel(
            repaired.wheel,
            label_edits(info, record, strip_debug=request.strip_debug),
            work / "labelled",
            work=work / "label",
        )

    report = None
    if request.verify:
        with _stage("verify", stages):
            verify_stub = cudastub.make_stub(toolchain.cuda_home, request.cache / "stubs")
            expect = verify.Expectation(
                targets=targets,
                torch=request.torch,
                cuda=request.cuda,
                python_tag=env.interpreter.tag,
                modules=recipe.import_modules,
            )
            report = verify.verify_wheel(
                labelled, expect, build_env=env, stub_dir=verify_stub, work=work / "verify"
            )
        if not report.ok:
            # The wheel stays in the work dir: only verified wheels reach --out.
            (work / f"{labelled.name}.verify.json").write_text(report.to_json())
            log.info("unverified wheel kept at %s", labelled)
            report.raise_for_failures()
    # Only a verified wheel reaches --out (replacing one of the same name).
    out_wheel = out_dir / labelled.name
    shutil.move(labelled, out_wheel)
    shutil.copyfile(log_file, out_dir / f"{out_wheel.name}.build.log")
    report_file = None
    if report is not None:
        report_file = out_dir / f"{out_wheel.name}.verify.json"
        report_file.write_text(report.to_json())
    if request.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return BuildOutcome(
        wheel=out_wheel,
        size=out_wheel.stat().st_size,
        targets=targets,
        stages=stages,
        policy=repaired.policy,
        record=record,
        report=report,
        report_file=report_file,
        log_file=out_dir / f"{out_wheel.name}.build.log",
        compile_steps=built.compile_steps,
        vendored=repaired.vendored,
    )
