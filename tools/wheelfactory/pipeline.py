"""One local build, start to end: env -> source -> build -> finish -> verify.

``build(request)`` takes a frozen ``BuildRequest`` and returns a ``BuildOutcome``; each
stage is a module of its own (buildenv, source, build, finish, verify) and this module
only wires them and times them. CI builds run the same build variables (buildvars) and
the same finish stage from cibuildwheel (cibw.py, ci_build.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.utils import canonicalize_name

from wheelfactory import (
    __version__,
    _log,
    _proc,
    arch,
    buildenv,
    buildvars,
    cudastub,
    finish,
    naming,
    platforms,
    releases,
    source,
    verify,
)
from wheelfactory import build as build_stage
from wheelfactory.arch import GpuTarget
from wheelfactory.errors import BuildError, ConfigError, WheelfactoryError
from wheelfactory.recipe import Fix, Recipe
from wheelfactory.record import BuildRecord

log = logging.getLogger(__name__)


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
    index_url: str | None = None  # the index the guard's fix command names (None: unknown)


@dataclass(frozen=True, kw_only=True)
class BuildOutcome:
    wheel: Path
    size: int
    targets: tuple[GpuTarget, ...]
    stages: dict[str, float]  # stage -> seconds
    policy: str
    record: BuildRecord
    report: verify.VerifyReport | None
    report_file: Path | None
    log_file: Path
    compile_steps: int = 0
    vendored: tuple[str, ...] = field(default=())


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


def compiler_version() -> str:
    try:
        out = _proc.run(["c++", "--version"], echo=False, check=False).stdout
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


def expected_python_tag(recipe: Recipe, interpreter_tag: str) -> str:
    """The Python tag the recipe promises: "cp311-cp311", or "cp310-abi3" for an abi3 recipe
    (the tag its limited API gives; True: the building Python's)."""
    if isinstance(recipe.matrix.abi3, str):
        return f"{recipe.matrix.abi3}-abi3"
    if recipe.matrix.abi3:
        return f"{interpreter_tag}-abi3"
    return f"{interpreter_tag}-{interpreter_tag}"


# Scratch outputs of a run in the work dir; an earlier run's would be taken for this run's.
_SCRATCH = ("dist", "edit", "edited", "repaired", "label", "labelled", "verify")


@dataclass(frozen=True, kw_only=True)
class CheckedRequest:
    """What check_request found: the request can be built on this machine."""

    targets: tuple[GpuTarget, ...]
    torch: naming.TorchPin  # what the wheel will be labelled and pinned to
    toolchain: build_stage.Toolchain
    host: platforms.Platform


def check_request(request: BuildRequest) -> CheckedRequest:
    """Everything that can be refused before anything is downloaded or created: the GPU
    targets for the CUDA, the torch release and its CUDA build, a stable-ABI floor, nvcc's
    version, a --source folder, and the CUDA of the torch the index serves (pip's dry run)."""
    targets = resolve_targets(request)
    releases.load().check_build(request.torch, request.cuda)
    torch = request.recipe.torch_pin(request.torch)  # a stable-ABI recipe refuses torch < floor
    if request.source_dir is not None and not request.source_dir.is_dir():
        raise ConfigError(
            f"--source {request.source_dir} is not a folder: pass a checkout of the source"
        )
    toolchain = build_stage.find_toolchain()
    build_stage.check_cuda_matches(toolchain, request.cuda)
    buildenv.check_torch_cuda(python=request.python, torch=request.torch, cuda=request.cuda,
                              index_url=request.torch_index_url, cache=request.cache)  # fmt: skip
    return CheckedRequest(targets=targets, torch=torch, toolchain=toolchain, host=platforms.host())


def build(request: BuildRequest) -> BuildOutcome:
    """Build, finish (guard, repair, label) and verify one wheel; raise a WheelfactoryError."""
    checked = check_request(request)
    work = _fresh_work_dir(request)
    try:
        return _build_in(request, checked, work)
    except WheelfactoryError as e:
        e.args = (f"{e}{kept_work_dir(work)}",)  # same class, return code and tip
        raise


def kept_work_dir(work: Path) -> str:
    """What a failed build's one line adds: its work dir is kept, and how to reuse it."""
    return f" (work dir kept: {work}; rerun with --work-dir {work} --resume to reuse its sources and objects, or delete it)"


def _build_in(request: BuildRequest, checked: CheckedRequest, work: Path) -> BuildOutcome:
    log.info(
        "building %s for torch %s, CUDA %s, targets %s (work dir %s)", request.recipe.name,
        request.torch, request.cuda, arch.torch_arch_list(checked.targets), work,
    )  # fmt: skip
    stages: dict[str, float] = {}
    # the sources first: a pin or a patch that fails costs seconds, torch's env gigabytes
    with _stage("source", stages):
        prepared = source.prepare_source(
            request.recipe,
            work,
            local=request.source_dir,
            cache=request.cache,
            resume=request.resume,
            target_os=checked.host.os,
        )
    with _stage("env", stages):
        env = buildenv.prepare_env(
            python=request.python, torch=request.torch, cuda=request.cuda,
            index_url=request.torch_index_url, cache=request.cache,
        )  # fmt: skip
    with _stage("build", stages):
        built, changes, fixes = _compile(request, checked, env, prepared, work)
    record = _new_record(request, checked, env, prepared, built, changes, fixes, stages)
    with _stage("finish", stages):
        finished = finish.finish(
            built.wheel, record, out_dir=work / "labelled", work=work, plat=request.plat,
        )
    report = None
    if request.verify:
        with _stage("verify", stages):
            report = _verify(request, checked, env, finished, work)
    return _deliver(request, checked, work, finished, report, built, stages)


def _fresh_work_dir(request: BuildRequest) -> Path:
    work = request.work_dir or Path(tempfile.mkdtemp(prefix=f"wheelfactory-{request.recipe.name}-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    for scratch in _SCRATCH:
        shutil.rmtree(work / scratch, ignore_errors=True)
    return work


def _compile(
    request: BuildRequest,
    checked: CheckedRequest,
    env: buildenv.BuildEnv,
    prepared: source.PreparedSource,
    work: Path,
) -> tuple[build_stage.BuildResult, list[buildvars.EnvChange], tuple[Fix, ...]]:
    """The build variables and the recipe's fixes, then the backend's build of the wheel."""
    recipe, toolchain = request.recipe, checked.toolchain
    stub_dir = cudastub.make_stub(
        toolchain.cuda_home, request.cache / "stubs", empty=request.empty_stub
    )
    shim_dir = build_stage.write_gpu_shim(work) if recipe.build.no_gpu_shim else None
    # Linux builds are reproducible: every .cu compile goes through the nvcc wrapper
    reproducible = checked.host.os == "linux"
    nvcc_filter = (
        build_stage.write_nvcc_filter(work, sys.executable)
        if recipe.build.source_targets or reproducible
        else None
    )
    changes = buildvars.build_changes(
        recipe,
        torch=checked.torch.version,
        cuda=request.cuda,
        python=env.interpreter.version,
        targets=checked.targets,
        jobs=request.jobs or build_stage.default_jobs(),
        host=buildvars.BuildHost(
            platform=checked.host,
            cuda_home=str(toolchain.cuda_home),
            driver_stubs=str(stub_dir),
            gpu_shim_dir=str(shim_dir) if shim_dir else None,
            nvcc_filter=str(nvcc_filter) if nvcc_filter else None,
            real_nvcc=str(toolchain.nvcc),
            reproducible=reproducible,
        ),
    )
    fixes = recipe.fixes_for(
        torch=checked.torch.version, cuda=request.cuda, python=env.interpreter.version,
        os=checked.host.os,
    )  # fmt: skip
    for fix in fixes:
        log.info("fix: %s", fix.why)
    composed = build_stage.compose_env(
        os.environ,
        build_env=env,
        toolchain=toolchain,
        changes=changes,
        fixes=[f.why for f in fixes],
        source_root=prepared.tree if reproducible else None,
    )
    built = build_stage.run_build(
        prepared.tree,
        build_env=env,
        composed=composed,
        out_dir=work / "dist",
        log_file=work / "build.log",
    )
    raw = naming.parse_wheel(built.wheel.name)
    if raw.project != canonicalize_name(recipe.name):
        raise BuildError(
            f"the build made {raw.project}, not {recipe.name}: fix [package].name (or --name)"
        )
    return built, changes, fixes


def _new_record(
    request: BuildRequest,
    checked: CheckedRequest,
    env: buildenv.BuildEnv,
    prepared: source.PreparedSource,
    built: build_stage.BuildResult,
    changes: list[buildvars.EnvChange],
    fixes: tuple[Fix, ...],
    stages: dict[str, float],
) -> BuildRecord:
    raw = naming.parse_wheel(built.wheel.name)
    return finish.new_record(
        request.recipe,
        upstream_version=raw.public_version,
        builder="wheelfactory build",
        platform=checked.host.name,
        torch=checked.torch,
        cuda=request.cuda,
        python_tag=f"{raw.python_tags[0]}-{raw.abi_tags[0]}",
        targets=checked.targets,
        changes=changes,
        fixes=fixes,
        prepared=prepared,
        with_guard=request.with_guard,
        index_url=request.index_url,
        strip_debug=request.strip_debug,
        reproducible=checked.host.os == "linux",
        nvcc=checked.toolchain.nvcc_version,
        python=env.interpreter.full_version,
        tools={
            "wheelfactory": __version__,
            **{k: v or "none" for k, v in sorted(env.interpreter.tools.items())},
            "c++": compiler_version(),
            "builder_python": sys.version.split()[0],
        },
        timings=dict(stages),
        compile_steps=built.compile_steps,
    )


def _verify(
    request: BuildRequest,
    checked: CheckedRequest,
    env: buildenv.BuildEnv,
    finished: finish.Finished,
    work: Path,
) -> verify.VerifyReport:
    """Verify the finished wheel; a failure keeps it (and its report) in the work dir."""
    expect = replace(
        verify.Expectation.of(finished.record, modules=request.recipe.modules_for(checked.targets)),
        python_tag=expected_python_tag(request.recipe, env.interpreter.tag),
        names=request.recipe.import_names,
    )
    report = verify.verify_wheel(
        finished.wheel,
        expect,
        build_env=env,
        stub_dir=cudastub.make_stub(checked.toolchain.cuda_home, request.cache / "stubs"),
        work=work / "verify",
    )
    if not report.ok:
        (work / f"{finished.wheel.name}.verify.json").write_text(report.to_json())
        log.info("unverified wheel kept at %s", finished.wheel)
        report.raise_for_failures()
    return report


def _deliver(
    request: BuildRequest,
    checked: CheckedRequest,
    work: Path,
    finished: finish.Finished,
    report: verify.VerifyReport | None,
    built: build_stage.BuildResult,
    stages: dict[str, float],
) -> BuildOutcome:
    """Only a verified wheel reaches --out (replacing one of the same name), with its logs."""
    out_dir = request.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    out_wheel = out_dir / finished.wheel.name
    shutil.move(finished.wheel, out_wheel)
    log_file = out_dir / f"{out_wheel.name}.build.log"
    shutil.copyfile(work / "build.log", log_file)
    report_file = None
    if report is not None:
        report_file = out_dir / f"{out_wheel.name}.verify.json"
        report_file.write_text(report.to_json())
    if request.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return BuildOutcome(
        wheel=out_wheel,
        size=out_wheel.stat().st_size,
        targets=checked.targets,
        stages=stages,
        policy=finished.repaired.policy,
        record=replace(finished.record, timings={**finished.record.timings, **stages}),
        report=report,
        report_file=report_file,
        log_file=log_file,
        compile_steps=built.compile_steps,
        vendored=finished.repaired.vendored,
    )
