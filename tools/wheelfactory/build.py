"""Build one wheel with pypa/build inside a prepared env, with a composed environment.

The environment is a pure function of its inputs (``compose_env``): the caller's
environment, then what this machine's build env needs (its bin folders on PATH,
VIRTUAL_ENV, CPATH with torch's CUDA headers), then the changes of the one rule that CI
builds get too (buildvars.build_changes: TORCH_CUDA_ARCH_LIST from the targets, never
from a local GPU; MAX_JOBS with nvcc held to one thread per job; a fixed PYTHONHASHSEED;
the nvcc --compress-mode; a libcuda stub on LIBRARY_PATH for linking; the recipe's env
and fixes).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wheelfactory import _log, _proc, buildvars, resources
from wheelfactory.buildenv import BuildEnv
from wheelfactory.buildvars import EnvChange
from wheelfactory.errors import BuildError, CommandFailedError, ToolMissingError

log = logging.getLogger(__name__)

GPU_SHIM = resources.GPU_SHIM
NVCC_FILTER = resources.NVCC_FILTER
# The source tree, for the nvcc wrapper's per-file seeds (resources/nvcc_filter.py reads it).
SOURCE_ROOT_ENV = "WHEELFACTORY_SOURCE_ROOT"
_PROGRESS_RE = re.compile(r"^\s*\[(\d+)/(\d+)\]\s")
# One nvcc device pass (cicc + ptxas) of a large attention kernel for one target takes
# 1-3 GiB (sageattn3's api.cu: ~9 GiB); the default job count leaves this much per job.
GIB_PER_COMPILE_JOB = 3


@dataclass(frozen=True, kw_only=True)
class Toolchain:
    """Where CUDA is and what it is."""

    cuda_home: Path
    nvcc: Path
    nvcc_version: str  # "13.0.88"


@dataclass(frozen=True, kw_only=True)
class ComposedEnv:
    """The build's environment and the part of it wheelfactory set (for the build record)."""

    env: dict[str, str]
    applied: dict[str, str]  # every variable wheelfactory, the recipe or a fix set
    fixes: tuple[str, ...] = ()  # the ``why`` of each fix applied


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    wheel: Path
    seconds: float
    log_file: Path
    compile_steps: int  # ninja steps run over all extensions (0: everything was up to date)
    composed: ComposedEnv = field(repr=False)


def find_toolchain(env: Mapping[str, str] | None = None) -> Toolchain:
    """CUDA_HOME from the environment, else nvcc on PATH, else /usr/local/cuda."""
    env = os.environ if env is None else env
    candidates: list[Path] = []
    if env.get("CUDA_HOME"):
        candidates.append(Path(env["CUDA_HOME"]))
    nvcc_on_path = shutil.which("nvcc", path=env.get("PATH"))
    if nvcc_on_path:
        # /usr/local/bin/nvcc may be a symlink into the toolkit: follow it. torch would
        # guess CUDA_HOME=/usr/local from the link itself, which breaks -lcudart.
        candidates.append(Path(os.path.realpath(nvcc_on_path)).parent.parent)
    candidates.append(Path("/usr/local/cuda"))
    for home in candidates:
        nvcc = home / "bin" / "nvcc"
        if nvcc.exists() and (home / "include" / "cuda_runtime.h").exists():
            out = _proc.run([nvcc, "--version"], echo=False).stdout
            m = re.search(r"release [\d.]+, V([\d.]+)", out)
            return Toolchain(cuda_home=home, nvcc=nvcc, nvcc_version=m.group(1) if m else "unknown")
    raise ToolMissingError("nvcc not found: install the CUDA toolkit, or set CUDA_HOME to it")


def check_cuda_matches(toolchain: Toolchain, cuda: str) -> None:
    """The nvcc found must be the --cuda asked for (13.0 vs 13.0.88)."""
    parts = toolchain.nvcc_version.split(".")
    if parts[:2] != cuda.split(".")[:2]:
        msg = (
            f"--cuda {cuda} but nvcc at {toolchain.nvcc} is CUDA {toolchain.nvcc_version}:"
            f" set CUDA_HOME to a CUDA {cuda} toolkit or pass --cuda {'.'.join(parts[:2])}"
        )
        raise BuildError(msg)


def _available_memory_gib() -> float | None:
    """MemAvailable from /proc/meminfo (None where there is no /proc)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def default_jobs() -> int:
    """Parallel compile jobs: the usable CPU cores, capped by memory (GIB_PER_COMPILE_JOB each)."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # Windows, macOS
        cores = os.cpu_count() or 1
    memory = _available_memory_gib()
    if memory is None:
        return cores
    return max(1, min(cores, int(memory // GIB_PER_COMPILE_JOB)))


def reproducible_changes(source_root: Path) -> list[EnvChange]:
    """What makes a Linux build's objects independent of the folder it is built in: gcc maps
    the tree's path to "." in __FILE__ and debug info (CPPFLAGS: setuptools appends it to
    its compiler flags, where CFLAGS would replace them), and the nvcc wrapper
    (resources/nvcc_filter.py) seeds each .cu compile relative to the tree. Host paths:
    the build record leaves them out."""
    return [
        EnvChange(SOURCE_ROOT_ENV, str(source_root)),
        EnvChange("CPPFLAGS", f"-ffile-prefix-map={source_root}=.", "prepend"),
    ]


def compose_env(
    base: Mapping[str, str],
    *,
    build_env: BuildEnv,
    toolchain: Toolchain,
    changes: Sequence[EnvChange],
    fixes: Sequence[str] = (),
    source_root: Path | None = None,
) -> ComposedEnv:
    """The build's environment: ``base``, then this machine's build env, then ``changes``
    (buildvars.build_changes, the rule CI builds share). ``source_root``: the tree, for a
    reproducible build (``reproducible_changes``)."""
    bins = [build_env.bin_dir, *build_env.extra_bin, toolchain.cuda_home / "bin"]
    host = [
        *(EnvChange("PATH", str(b), "prepend-path") for b in reversed(bins)),
        EnvChange("VIRTUAL_ENV", str(build_env.root)),
        # Never pick up a user's site-packages or a foreign sitecustomize by accident.
        EnvChange("PYTHONNOUSERSITE", "1"),
    ]
    include = build_env.nvidia_include()
    if include is not None:
        host.append(EnvChange("CPATH", str(include), "prepend-path"))
    if source_root is not None:
        host += reproducible_changes(source_root)
    env, applied = buildvars.apply(base, [*host, *changes], pathsep=os.pathsep)
    return ComposedEnv(env=env, applied=applied, fixes=tuple(fixes))


def parse_progress(line: str) -> tuple[int, int] | None:
    """ninja's "[12/40] /usr/local/cuda/bin/nvcc ..." -> (12, 40); other lines -> None."""
    m = _PROGRESS_RE.match(line)
    return (int(m.group(1)), int(m.group(2))) if m else None


_SOURCE_RE = re.compile(r"(?:^|\s)([^\s'\"]+\.(?:cu|cpp|cc|cxx|c))(?=\s|$)")


def compiled_source(step_line: str) -> str:
    """The source file a ninja step compiles ("scale.cu"), or "" (a link step). torch's
    ninja rules may repeat -c ("-c -c src.cu"), so the source is found by its suffix."""
    m = _SOURCE_RE.search(step_line)
    return Path(m.group(1)).name if m else ""


class ProgressLogger:
    """Logs "compiling n/m" for each new ninja step (and keeps the last one seen)."""

    def __init__(self, log_file: Path | None = None) -> None:
        self.last: tuple[int, int] | None = None
        # Steps run over every ninja run of the build: ninja prints "[n/m] ..." as each step
        # finishes, and extensions built in parallel (EXT_PARALLEL) interleave their lines.
        self.total = 0
        self.started = time.monotonic()
        self.logged = self.started  # when a progress line was last logged (the heartbeat's clock)
        self.last_source = ""
        self._fh = open(log_file, "w", encoding="utf-8") if log_file else None  # noqa: SIM115

    def __call__(self, line: str) -> None:
        if self._fh:
            self._fh.write(line + "\n")
            self._fh.flush()
        step = parse_progress(line)
        if step:
            self.total += 1
            self.last = step
            what = self.last_source = compiled_source(line)
            self.logged = time.monotonic()
            log.info(
                "  compiling %d/%d (%.0f s) %s",
                step[0],
                step[1],
                time.monotonic() - self.started,
                what,
            )
        elif re.search(r"\berror\b", line, re.I) and "warning" not in line.lower():
            log.info("  %s", line[:300])

    def describe(self) -> str:
        """What the build is doing, for the heartbeat: the last ninja step seen."""
        if self.last is None:
            return "python -m build (setup.py; no compile step yet)"
        done, total = self.last
        return f"compiling, step {done}/{total} done (last: {self.last_source or 'a link'})"

    def close(self) -> None:
        if self._fh:
            self._fh.close()


def write_gpu_shim(work: Path, *, name: str = "gpu-shim") -> Path:
    """A folder holding the no-GPU shim as ``sitecustomize.py`` (goes on PYTHONPATH)."""
    shim_dir = work / name
    shim_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(GPU_SHIM, shim_dir / "sitecustomize.py")
    return shim_dir


def write_nvcc_filter(work: Path, python: str, *, name: str = "nvcc-filter") -> Path:
    """An executable ``nvcc`` (``nvcc.bat`` on Windows) that runs NVCC_FILTER with
    ``python``; PYTORCH_NVCC names it."""
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    script = NVCC_FILTER.read_text(encoding="utf-8")
    if os.name == "nt":  # untested here: no Windows machine
        (folder / "nvcc_filter.py").write_text(script, encoding="utf-8")
        wrapper = folder / "nvcc.bat"
        wrapper.write_text(f'@"{python}" "{folder / "nvcc_filter.py"}" %*\r\n', encoding="utf-8")
        return wrapper
    wrapper = folder / "nvcc"
    wrapper.write_text(f"#!{python}\n{script}", encoding="utf-8")
    wrapper.chmod(0o755)
    return wrapper


def run_build(
    tree: Path,
    *,
    build_env: BuildEnv,
    composed: ComposedEnv,
    out_dir: Path,
    log_file: Path,
    on_line: Callable[[str], None] | None = None,
) -> BuildResult:
    """``python -m build --wheel --no-isolation --skip-dependency-check`` in ``build_env``.

    No isolation: the env already holds the exact torch, and upstream's undeclared (or
    wrongly pinned) build requirements must not fail the build.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.whl"))
    progress = ProgressLogger(log_file)

    def line_cb(line: str) -> None:
        progress(line)
        if on_line:
            on_line(line)

    start = time.monotonic()
    argv: list[str | os.PathLike[str]] = [
        build_env.python,
        "-m",
        "build",
        "--wheel",
        "--no-isolation",
        "--skip-dependency-check",
        "--outdir",
        out_dir,
        tree,
    ]
    try:
        with _log.heartbeat("build", progress.describe, quiet_since=lambda: progress.logged):
            _proc.run(argv, cwd=tree, env=composed.env, on_line=line_cb, echo=True)
    except CommandFailedError as e:
        msg = f"the build of {tree.name} failed (full log: {log_file}); read the first error above, then fix the recipe ([[fix]] env) or the source"
        raise BuildError(msg) from e
    finally:
        progress.close()
    wheels = sorted(set(out_dir.glob("*.whl")) - before)
    if len(wheels) != 1:
        raise BuildError(
            f"the build gave {len(wheels)} wheels in {out_dir}, not 1: check the build log {log_file}"
        )
    return BuildResult(
        wheel=wheels[0],
        seconds=time.monotonic() - start,
        log_file=log_file,
        compile_steps=progress.total,
        composed=composed,
    )
