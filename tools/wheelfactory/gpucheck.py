"""GPU check: run each wheel's kernels on this machine's GPU before users get them.

``wheelfactory gpu-check`` (see cli/main_gpu_check.py):

1. ``probe_machine``: the Python to check with (its torch, CUDA, the GPU and its arch);
2. ``select``: the wheels of a package, from a served index's manifest or from files, that
   fit this machine (platform, Python, torch, CUDA) and whose targets run on this GPU;
3. ``check_wheel``: a fresh venv that sees the machine's torch, the wheel installed the
   way users install it (``pip install NAME==VERSION --index-url <its strict view>``, or
   the file), then the recipe's check script (``[gpu-check]``) with a timeout;
4. ``judge``: the script measures, this module decides: every shape's cosine to the
   reference at or above ``min-cosine``, its largest error within ``max-abs-error``,
   every number finite. A crash, a timeout or output that is not the expected JSON is an
   ``error``; the import guard refusing a known-bad GPU is ``refused`` (the user gets a
   clear ImportError instead of wrong numbers).

Results are ``manifest.GpuCheck`` records, one per (wheel, arch, torch); publish.py writes
them into an index's manifest, where they gate held wheels and show on the landing page.

``check_source`` is the other check, kept apart: the *source check* builds a recipe's tree
for its ``[gpu-check.source]`` X.Y+PTX targets with this machine's torch and runs the
kernel entry points those targets reach here through the driver's PTX JIT (on an H200: the
sm80 and sm89 kernels that A100, RTX 30 and RTX 40 users run). Its ``SourceCheck`` says
what was built and is never recorded in an index: it vouches for the code, not for a
shipped wheel.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform as _platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from wheelfactory import __version__, _proc, buildenv, buildvars, naming, platforms, source, which
from wheelfactory.arch import GpuTarget
from wheelfactory.errors import ConfigError
from wheelfactory.manifest import GpuCheck
from wheelfactory.manifest import entry_field as _get
from wheelfactory.recipe import GpuCheckSpec, Recipe

log = logging.getLogger(__name__)

# The import guard's sentence for a GPU the recipe declares known-bad (guard_template.py).
_REFUSED_MARK = "computes wrong results on sm_"
_PROBE = r"""
import json, sys, torch
cap = torch.cuda.get_device_capability() if torch.cuda.is_available() else None
print(json.dumps({
    "torch": torch.__version__, "cuda": torch.version.cuda,
    "gpu": torch.cuda.get_device_name() if cap else None,
    "capability": list(cap) if cap else None,
    "python": "{}.{}".format(*sys.version_info[:2]),
}))
"""


@dataclass(frozen=True, kw_only=True)
class Machine:
    """The Python that checks wheels, and the GPU it sees."""

    python: Path
    python_version: str  # "3.12"
    torch: str  # "2.11.0+cu130"
    torch_cuda: str  # "13.0"
    gpu: str  # "NVIDIA H200"
    capability: tuple[int, int]  # (9, 0)

    @property
    def arch(self) -> str:
        return f"{self.capability[0]}.{self.capability[1]}"

    def as_which(self) -> which.Machine:
        os_name, arch = which.host_platform()
        return which.Machine(
            os=os_name, arch=arch,
            python=self.python_version, torch=self.torch, torch_cuda=self.torch_cuda,
            gpus=(which.Gpu(name=self.gpu, capability=self.capability),),
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A wheel to check: its name and hash, and where it comes from."""

    filename: str
    sha256: str
    targets: tuple[str, ...]
    index_view: str | None = None  # install NAME==VERSION from this strict view
    path: Path | str | None = None  # or this file (a path, or its URL: a held wheel is in no view)


def probe_machine(python: Path, *, gpu: str | None = None, arch: str | None = None) -> Machine:
    """Ask ``python`` for its torch and GPU. ``arch``/``gpu`` stand in for a GPU that torch
    cannot see (tests drive the plumbing on CPU with a stand-in check)."""
    run = _proc.run([python, "-c", _PROBE], echo=False, check=False)
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines:
        why = lines[-1] if lines else f"exit status {run.returncode}"
        raise ConfigError(f"{python} cannot report its torch ({why}); pass --python PATH of a Python with torch")
    try:
        data = json.loads(lines[-1])
    except ValueError as e:
        raise ConfigError(f"{python} cannot report its torch ({e}); pass --python PATH of a Python with torch") from e
    if not data.get("cuda"):
        raise ConfigError(f"torch {data['torch']} in {python} has no CUDA: gpu-check needs a CUDA build of torch")
    capability = data["capability"]
    if arch is not None:
        major, _, minor = arch.partition(".")
        capability = [int(major), int(minor.rstrip("af") or 0)]
    if not capability:
        raise ConfigError(f"{python} sees no GPU (torch.cuda.is_available() is False); run gpu-check on a GPU machine")
    return Machine(
        python=python,
        python_version=data["python"],
        torch=data["torch"],
        torch_cuda=data["cuda"],
        gpu=gpu or data["gpu"] or "unknown GPU",
        capability=(int(capability[0]), int(capability[1])),
    )


def select(
    files: Iterable[Any], package: str, machine: Machine, *, index_root: str | None = None
) -> tuple[list[Candidate], list[str]]:
    """(wheels of ``package`` to check on ``machine``, why the others are left out)."""
    want = which.canonical_name(package)
    target = machine.as_which()
    chosen: list[Candidate] = []
    skipped: list[str] = []
    for f in files:
        name = str(_get(f, "filename"))
        try:
            info = which.parse_wheel(name)
        except ValueError:
            skipped.append(f"{which.printable(name)}: not a wheel filename")
            continue
        if info.project != want or not info.cuda:
            continue
        record = _get(f, "build_record") or {}
        targets = tuple(str(t) for t in record.get("targets") or ())
        floor = record.get("stable_abi_floor")
        # a stable-ABI wheel with no recorded floor is not checked (which.advise offers it)
        torch_ok = which.torch_fits(info, machine.torch, floor=floor) and (
            info.torch != naming.STABLE_ABI or bool(floor))
        why = (
            "its CUDA major is not this torch's" if info.cuda.split(".")[0] != machine.torch_cuda.split(".")[0]
            else f"built for torch {info.torch}, this machine has {machine.torch}" if not torch_ok
            else "not for this platform or Python" if not (which.platform_fits(info, target) and which.python_fits(info, target))
            else f"its targets ({', '.join(targets) or 'none recorded'}) do not run on sm_{machine.capability[0]}{machine.capability[1]}"
            if not (targets and which.targets_run_on(list(targets), machine.capability))
            else None
        )  # fmt: skip
        if why:
            skipped.append(f"{name}: {why}")
            continue
        view: str | None = None
        path: Path | str | None = None
        if index_root is not None and _get(f, "held"):
            path = urljoin(index_root.rstrip("/") + "/", str(_get(f, "url")))
        elif index_root is not None:
            # users take their torch's strict view; a stable-ABI wheel not listed there yet
            # (no `wheelfactory cover` for this torch) is in the stable-ABI view
            covered = info.torch != naming.STABLE_ABI or which.torch_minor(machine.torch) in (_get(f, "covers") or ())
            torch = machine.torch if covered else naming.STABLE_ABI
            view = f"{index_root.rstrip('/')}/{which.view_path(info.cuda, torch)}/simple/"
        elif _get(f, "path"):
            path = Path(str(_get(f, "path")))
        chosen.append(Candidate(
            filename=name, sha256=str(_get(f, "sha256")), targets=targets, index_view=view, path=path,
        ))  # fmt: skip
    return chosen, skipped


_EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception)\b")


def _one_line(text: str) -> str:
    """The line that says what went wrong: the traceback's exception line if there is one
    (torch adds hints after it), else the last line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return "no output"
    return next((ln for ln in reversed(lines) if _EXCEPTION_LINE.match(ln)), lines[-1])[:400]


_NAN_SHAPES_SHOWN = 8  # the one line names this many shapes with NaN, then counts the rest


def judge(output: str, spec: GpuCheckSpec) -> tuple[str, str, dict[str, Any]]:
    """(verdict, one-line detail, the script's JSON) from the script's output."""
    try:
        data = json.loads(output.strip().splitlines()[-1], parse_constant=lambda c: float("nan"))
        cases = data["cases"]
        if not isinstance(cases, list) or not cases:
            raise ValueError("no cases")
    except (ValueError, IndexError, KeyError, TypeError) as e:
        return "error", f"the check script printed no result JSON ({e}): {_one_line(output)}", {}
    # A NaN anywhere fails, and the one line says how widely: kernels that read
    # uninitialised memory give NaN at some short lengths only, and not on every run.
    nan_cases = [c for c in cases if isinstance(c.get("nonfinite"), int) and c["nonfinite"] > 0]
    if nan_cases:
        shown = ", ".join(str(c.get("shape", "?")) for c in nan_cases[:_NAN_SHAPES_SHOWN])
        more = f" and {len(nan_cases) - _NAN_SHAPES_SHOWN} more" if len(nan_cases) > _NAN_SHAPES_SHOWN else ""
        total = sum(int(c["nonfinite"]) for c in nan_cases)
        return "fail", f"NaN/Inf in the output at {len(nan_cases)} of {len(cases)} shapes ({total} values): {shown}{more}", data
    for case in cases:
        shape = case.get("shape", "?")
        for key in ("cosine", "max_abs_error"):
            value = case.get(key)
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                return "fail", f"{key} is not a number ({value}) at {shape}", data
        if case["cosine"] < spec.min_cosine:
            return "fail", f"cosine {case['cosine']:.4f} < {spec.min_cosine} at {shape}", data
        if spec.max_abs_error is not None and case["max_abs_error"] > spec.max_abs_error:
            return "fail", f"max abs error {case['max_abs_error']:.3g} > {spec.max_abs_error} at {shape}", data
    cosine = min(c["cosine"] for c in cases)
    finite = ", every value finite" if all("nonfinite" in c for c in cases) else ""
    return "pass", f"{len(cases)} shapes, cosine >= {cosine:.4f}{finite}", data


def _venv(machine: Machine, where: Path) -> Path:
    """A venv that sees the machine's torch and what it needs: the site folders of its
    Python (a venv's own too, which --system-site-packages would miss) through a .pth file.
    No pip or setuptools of its own (they would shadow the machine's): the machine's pip
    installs into it with --python."""
    _proc.run([machine.python, "-m", "venv", "--without-pip", where], echo=False)
    python = buildenv.venv_python(where)
    purelib = _proc.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], echo=False
    ).stdout.strip()
    Path(purelib, "_wheelfactory_machine.pth").write_text(
        "".join(f"{p}\n" for p in buildenv.site_dirs(machine.python)), encoding="utf-8"
    )
    return python


def check_wheel(
    candidate: Candidate,
    spec: GpuCheckSpec,
    machine: Machine,
    *,
    work: Path,
    skip_guard: bool = False,
) -> GpuCheck:
    """Install ``candidate`` as a user would and run the recipe's check; never raises for
    what the wheel does (a crash, a timeout, NaN: the verdict says so)."""
    info = naming.parse_wheel(candidate.filename)
    folder = Path(tempfile.mkdtemp(prefix="check-", dir=work))
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def result(verdict: str, detail: str, data: Mapping[str, Any] | None = None) -> GpuCheck:
        cases = list((data or {}).get("cases") or [])
        numbers = [c.get("tflops") for c in cases if isinstance(c.get("tflops"), int | float)]
        cosines = [c["cosine"] for c in cases if isinstance(c.get("cosine"), int | float)]
        errors = [c["max_abs_error"] for c in cases if isinstance(c.get("max_abs_error"), int | float)]
        return GpuCheck(
            filename=candidate.filename, sha256=candidate.sha256, arch=machine.arch, gpu=machine.gpu,
            torch=machine.torch, date=started, verdict=verdict, detail=detail,
            cosine=min(cosines) if cosines and all(map(math.isfinite, cosines)) else None,
            max_abs_error=max(errors) if errors and all(map(math.isfinite, errors)) else None,
            tflops=round(max(numbers), 1) if numbers else None,
            checker=f"wheelfactory {__version__} gpu-check on {_platform.node() or 'unknown host'}",
        )  # fmt: skip

    try:
        python = _venv(machine, folder / "venv")
        install = [machine.python, "-m", "pip", "--python", python, "install", "-q",
                   "--disable-pip-version-check"]  # fmt: skip
        if candidate.index_view:
            install += ["--index-url", candidate.index_view, f"{info.project}=={info.version}"]
        elif candidate.path:
            # the file itself; its requirements (torch) must be met by the machine already
            install += ["--no-index", candidate.path]
        else:
            return result("error", "neither an index view nor a file to install from")
        proc = subprocess.run(
            [str(a) for a in install], capture_output=True, text=True, timeout=spec.timeout, check=False
        )
        if proc.returncode != 0:
            return result("error", f"pip install failed: {_one_line(proc.stdout + proc.stderr)}")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        if skip_guard:
            env["WHEELFACTORY_SKIP_GUARD"] = "1"
        (folder / "cwd").mkdir()
        proc = subprocess.run(
            [str(python), str(spec.script), json.dumps(dict(spec.args))],
            capture_output=True, text=True, timeout=spec.timeout, check=False, cwd=folder / "cwd", env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return result("error", f"timed out after {spec.timeout:.0f} s")
    finally:
        shutil.rmtree(folder / "venv", ignore_errors=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        line = _one_line(output)
        verdict = "refused" if _REFUSED_MARK in output else "error"
        return result(verdict, f"the check exited with status {proc.returncode}: {line}")
    verdict, detail, data = judge(proc.stdout, spec)
    return result(verdict, detail, data)


def run(
    candidates: Sequence[Candidate],
    spec: GpuCheckSpec,
    machine: Machine,
    *,
    work: Path,
    skip_guard: bool = False,
) -> list[GpuCheck]:
    results = []
    for candidate in candidates:
        log.info("gpu-check %s on %s (sm_%d%d)", candidate.filename, machine.gpu, *machine.capability)
        check = check_wheel(candidate, spec, machine, work=work, skip_guard=skip_guard)
        log.info("  %s: %s", check.verdict, check.detail)
        results.append(check)
    return results


def table(results: Sequence[GpuCheck]) -> str:
    """A Markdown table: wheel, arch, cosine, TFLOP/s, verdict."""
    lines = ["| wheel | GPU (arch) | torch | cosine (min) | TFLOP/s (best) | verdict |",
             "|---|---|---|---:|---:|---|"]  # fmt: skip
    for r in results:
        cos = f"{r.cosine:.4f}" if r.cosine is not None else "-"
        tf = f"{r.tflops:.1f}" if r.tflops is not None else "-"
        lines.append(f"| `{r.filename}` | {r.gpu} (sm_{r.arch.replace('.', '')}) | {r.torch} | {cos} | {tf} | {r.verdict}: {r.detail} |")
    return "\n".join(lines) + "\n"


_BUILD_LINES_SHOWN = 40  # of a failed build's output, in the log
SHIPPED = "shipped binary"  # the name of the wheel check in reports, beside SourceCheck.kind


@dataclass(frozen=True, kw_only=True)
class SourceCheck:
    """The result of ``check_source``: a PTX build of a tree checked on this GPU."""

    tree: str
    targets: tuple[str, ...]  # what was built: "8.0+PTX", ...
    patches: tuple[str, ...]  # the recipe's patches applied to it (none: upstream's code as is)
    gpu: str
    arch: str
    torch: str
    date: str
    verdict: str  # pass | fail | error
    detail: str
    build_seconds: int | None = None
    cases: tuple[Mapping[str, Any], ...] = ()

    @property
    def kind(self) -> str:
        """What ran, in the words every report uses: not the shipped binary."""
        ptx = "/".join(t.removesuffix("+PTX") for t in self.targets)
        patched = f"{len(self.patches)} patch(es)" if self.patches else "no patches"
        return f"source check (PTX {ptx} via JIT on sm_{self.arch.replace('.', '')}, {patched})"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1, "check": self.kind, "tree": self.tree, "targets": list(self.targets),
            "patches": list(self.patches),
            "gpu": self.gpu, "arch": self.arch, "torch": self.torch, "date": self.date,
            "verdict": self.verdict, "detail": self.detail, "build_seconds": self.build_seconds,
            "cases": list(self.cases),
        }  # fmt: skip


def check_source(
    tree: Path,
    recipe: Recipe,
    machine: Machine,
    *,
    work: Path,
    jobs: int,
    only: Sequence[GpuTarget] = (),
    with_patches: bool = True,
) -> SourceCheck:
    """Build ``tree`` (a copy of it, in ``work``, with the recipe's patches applied unless
    ``with_patches`` is false: upstream's code as is) for the recipe's [gpu-check.source]
    targets that run on this GPU (``only`` these, when given: a shorter build), and run the
    check with the entry points they reach."""
    spec = recipe.gpu_check
    if spec is None or spec.source is None:
        raise ConfigError(f"{recipe.path} has no [gpu-check.source]: add archs and calls (see recipes/README.md)")
    unknown = [str(t) for t in only if t not in spec.source.archs]
    if unknown:
        listed = ", ".join(map(str, spec.source.archs))
        raise ConfigError(f"--source-arch {', '.join(unknown)} is not in {recipe.path}'s [gpu-check.source] archs: use some of {listed}")
    targets = tuple(t for t in spec.source.archs if t.runs_on(machine.capability) and (not only or t in only))
    built = {t.arch for t in targets}
    calls = [dict(c) for c in spec.source.calls if c["arch"] in built]
    if not calls:
        raise ConfigError(
            f"none of {', '.join(map(str, spec.source.archs))} runs on sm_{machine.capability[0]}{machine.capability[1]}:"
            " run the source check on a GPU at least as new as its lowest target"
        )  # fmt: skip
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    build_seconds: int | None = None
    applied: tuple[source.AppliedPatch, ...] = ()

    def result(verdict: str, detail: str, data: Mapping[str, Any] | None = None) -> SourceCheck:
        return SourceCheck(
            tree=str(tree), targets=tuple(map(str, targets)), patches=tuple(Path(p.file).name for p in applied),
            gpu=machine.gpu, arch=machine.arch,
            torch=machine.torch, date=started, verdict=verdict, detail=detail, build_seconds=build_seconds,
            cases=tuple((data or {}).get("cases") or ()),
        )  # fmt: skip

    src = work / "src"
    shutil.copytree(tree, src, symlinks=True, ignore=shutil.ignore_patterns(".git", "build", "*.so"))
    applied = source.apply_patches(src, recipe.patches_for(platforms.host().os), work) if with_patches else ()
    changes = buildvars.build_changes(
        recipe, torch=machine.torch.split("+")[0], cuda=machine.torch_cuda, python=machine.python_version,
        targets=targets, jobs=jobs,
        host=buildvars.BuildHost(platform=platforms.host(), cuda_home=None, driver_stubs=None,
                                 gpu_shim_dir=None, nvcc_filter=None, real_nvcc="nvcc"),
    )  # fmt: skip
    env, _ = buildvars.apply(os.environ, changes, pathsep=os.pathsep)
    log.info("source check: building %s for %s", tree, ", ".join(map(str, targets)))
    began = time.monotonic()
    proc = _proc.run([machine.python, "setup.py", "build_ext", "--inplace"], cwd=src, env=env, check=False)
    build_seconds = round(time.monotonic() - began)
    if proc.returncode != 0:
        log.error("%s", "\n".join(proc.stdout.splitlines()[-_BUILD_LINES_SHOWN:]))
        return result("error", f"the build failed: {_one_line(proc.stdout)}")
    log.info("source check: built in %d s", build_seconds)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV",)}
    env["PYTHONPATH"] = str(src)  # the freshly built modules, ahead of anything installed
    (work / "cwd").mkdir()
    args = dict(spec.args, calls=calls)
    try:
        proc = subprocess.run(
            [str(machine.python), str(spec.script), json.dumps(args)],
            capture_output=True, text=True, timeout=spec.timeout, check=False, cwd=work / "cwd", env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return result("error", f"the check timed out after {spec.timeout:.0f} s")
    if proc.returncode != 0:
        return result("error", f"the check exited with status {proc.returncode}: {_one_line(proc.stdout + proc.stderr)}")
    verdict, detail, data = judge(proc.stdout, spec)
    return result(verdict, detail, data)
