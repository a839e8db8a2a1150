"""One planned CI job -> the ``CIBW_*`` settings that make cibuildwheel build it.

Pure: a job (one entry of ``wheelfactory plan --format github``'s matrices) plus the CI
table (resources/ci-images.toml) and, when the recipe file is readable, the recipe's
build settings, give a dict of environment variables. ``render_github_env`` writes them
in the ``$GITHUB_ENV`` file format, so the workflow step is one line:

    wheelfactory cibw-env --job "$JOB" >> "$GITHUB_ENV"

Everything cibuildwheel runs inside the build (before-all, before-build, repair, test) is
a ``pip install`` or ``<python> -m wheelfactory`` command generated here, so the workflow
YAML holds no build logic and tests/unit/test_workflows_contract.py can parse every
wheelfactory command line it would run.

Two interpreters take part in each build. The BUILD Python (``python`` on cibuildwheel's
PATH: the one being built for, as old as the recipe admits, 3.9 included) gets torch and
the build requirements, nothing of ours. The FACTORY Python (``factory_python``: a fixed
CPython that wheelfactory's requires-python admits) runs every wheelfactory step and asks
the build or test Python what it must know about it.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from wheelfactory import buildvars, jobbudget, naming, platforms, resources
from wheelfactory.arch import parse_targets
from wheelfactory.buildvars import BuildHost
from wheelfactory.errors import ConfigError
from wheelfactory.platforms import Platform
from wheelfactory.recipe import Recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Where the workflow's source step puts the pinned sources (relative to the checkout);
# the repair step reads their pins from its src.json for the build record.
SOURCE_WORK = "build/work"
# The keys a planner job must carry (see plan.py / resources/plan.schema.json).
JOB_KEYS = ("id", "recipe", "version", "torch", "cuda", "os", "machine", "runner", "pythons", "cibw_build", "targets")
# The factory's own interpreter in a job. Linux: a venv made in CIBW_BEFORE_ALL from the
# manylinux image's CPython 3.12 (before-all's own `python` is cp39 there). Windows: the
# runner's Python from actions/setup-python, whose path build-cells.yml passes to
# cibuildwheel in this variable; cibuildwheel runs Windows commands through cmd.exe with
# the step's environment, so cmd expands it.
LINUX_BASE_PYTHON = "/opt/python/cp312-cp312/bin/python"
LINUX_FACTORY_VENV = "/tmp/wheelfactory-venv"
WINDOWS_PYTHON_ENV = "WHEELFACTORY_PYTHON"
_CIBW_ID_RE = re.compile(r"^cp3\d+t?-(\w+)$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, kw_only=True)
class Job:
    """One matrix entry of the plan: the planner gives each job one wheel (one Python);
    a hand-made job may list several, within the budget (check_budget)."""

    id: str
    recipe: str
    version: str
    torch: str
    cuda: str
    os: str
    machine: str
    runner: str
    pythons: tuple[str, ...]
    cibw_build: str
    targets: str

    @property
    def platform(self) -> Platform:
        found = platforms.of_job(self.os, self.machine)
        assert found is not None, "parse_job checks the platform"
        return found

    @property
    def target_list(self) -> tuple[str, ...]:
        return tuple(t for t in re.split(r"[;\s]+", self.targets) if t)


@dataclass(frozen=True, kw_only=True)
class CudaRow:
    cuda: str
    images: Mapping[str, str]  # platform -> container image (Linux)
    toolkits: dict[str, str]  # platform -> the CUDA release its runner installs (no image)


@dataclass(frozen=True, kw_only=True)
class CiTable:
    torch_index_url: str
    build_frontend: str
    build_requires: tuple[str, ...]
    repair_tools: Mapping[str, tuple[str, ...]]  # repairer -> requirements
    max_jobs: int
    budget: jobbudget.Budget
    cuda: Mapping[str, CudaRow]

    def row(self, cuda: str) -> CudaRow:
        if cuda not in self.cuda:
            known = ", ".join(sorted(self.cuda))
            msg = f"CUDA {cuda} has no CI build environment (known: {known}); add [cuda.\"{cuda}\"] to {resources.CI_IMAGES.name}"
            raise ConfigError(msg)
        return self.cuda[cuda]

    def torch_index(self, cuda: str) -> str:
        return self.torch_index_url.format(tag=naming.cuda_tag(cuda))


def _fail(path: Path, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {problem}; fix the table")


def parse_ci_table(text: str, path: Path) -> CiTable:
    """Parse ci-images.toml strictly (unknown keys are errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the syntax") from e
    if set(data) - {"settings", "budget", "repair-tools", "cuda"}:
        raise _fail(path, f"unknown top-level keys {sorted(set(data) - {'settings', 'budget', 'repair-tools', 'cuda'})}")
    s = data.get("settings", {})
    allowed = {"torch-index-url", "build-frontend", "build-requires", "max-jobs"}
    if set(s) != allowed:
        raise _fail(path, f"[settings] keys must be {sorted(allowed)}, got {sorted(s)}")
    if "{tag}" not in s["torch-index-url"]:
        raise _fail(path, "torch-index-url must contain {tag}")
    repairers = {p.repairer for p in platforms.table().values()}
    tools = data.get("repair-tools", {})
    if set(tools) != repairers:
        raise _fail(path, f"[repair-tools] must name exactly the repairers {sorted(repairers)}")
    imaged = [p.name for p in platforms.table().values() if p.image_option]
    rows: dict[str, CudaRow] = {}
    for cuda, row in data.get("cuda", {}).items():
        if not re.fullmatch(r"\d+\.\d", cuda):
            raise _fail(path, f"[cuda.{cuda!r}] is not a CUDA version like \"12.8\"")
        unknown = set(row) - set(platforms.names())
        if unknown:
            raise _fail(path, f"[cuda.\"{cuda}\"] has unknown keys {sorted(unknown)} (keys are platforms.toml's names)")
        toolkits = {p: v for p, v in row.items() if p not in imaged}
        for p, toolkit in toolkits.items():
            if not toolkit.startswith(cuda + "."):
                raise _fail(path, f"[cuda.\"{cuda}\"] {p} toolkit {toolkit!r} is not a {cuda}.x release")
        images = {p: row[p] for p in imaged if p in row}
        for p, image in images.items():
            if f"cuda{cuda}" not in image:
                raise _fail(path, f"[cuda.\"{cuda}\"] {p} image {image!r} is not the cuda{cuda} image")
        rows[cuda] = CudaRow(cuda=cuda, images=images, toolkits=toolkits)
    return CiTable(
        budget=jobbudget.parse_budget(data.get("budget", {}), runner_cores=int(s["max-jobs"]), path=path),
        torch_index_url=s["torch-index-url"],
        build_frontend=s["build-frontend"],
        build_requires=tuple(s["build-requires"]),
        repair_tools={name: tuple(reqs) for name, reqs in tools.items()},
        max_jobs=int(s["max-jobs"]),
        cuda=rows,
    )


@cache
def load_ci_table(path: Path = resources.CI_IMAGES) -> CiTable:
    return parse_ci_table(path.read_text(encoding="utf-8"), path)


def parse_job(raw: str | Mapping[str, Any]) -> Job:
    """A job from the planner's JSON (a string or an already-decoded dict)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ConfigError(f"--job is not JSON ({e.msg}); pass one entry of plan --format github's include list") from e
    if not isinstance(raw, Mapping):
        raise ConfigError("--job must be a JSON object; pass one entry of plan --format github's include list")
    missing = [k for k in JOB_KEYS if k not in raw]
    if missing:
        raise ConfigError(f"job lacks {', '.join(missing)}; pass one entry of plan --format github's include list")
    pythons = raw["pythons"]
    if isinstance(pythons, str):
        pythons = [pythons]
    job = Job(
        id=str(raw["id"]),
        recipe=str(raw["recipe"]),
        version=str(raw["version"]),
        torch=str(raw["torch"]),
        cuda=str(raw["cuda"]),
        os=str(raw["os"]),
        machine=str(raw["machine"]),
        runner=str(raw["runner"]),
        pythons=tuple(str(p) for p in pythons),
        cibw_build=str(raw["cibw_build"]),
        targets=str(raw["targets"]) if not isinstance(raw["targets"], list) else ";".join(raw["targets"]),
    )
    plat = platforms.of_job(job.os, job.machine)
    if plat is None:
        known = ", ".join(f"{p.os}/{p.machine}" for p in platforms.table().values())
        raise ConfigError(f"job {job.id}: os/machine {job.os}/{job.machine} is not one CI builds ({known}); fix the plan")
    for ident in job.cibw_build.split():
        m = _CIBW_ID_RE.match(ident)
        if not m or m.group(1) != plat.cibw_suffix:
            msg = f"job {job.id}: cibw_build entry {ident!r} does not fit {plat.name}; expected e.g. cp312-{plat.cibw_suffix}"
            raise ConfigError(msg)
    if not job.cibw_build.split():
        raise ConfigError(f"job {job.id}: cibw_build is empty; the plan must name at least one cpXY-<platform>")
    if not job.target_list:
        raise ConfigError(f"job {job.id}: no GPU targets; the plan must give targets like \"9.0a;12.0a\"")
    return job


def ci_host(platform: Platform) -> BuildHost:
    """Where things are on a CI build host of ``platform`` (cibuildwheel's container on Linux)."""
    return BuildHost(
        platform=platform,
        cuda_home=platform.cuda_home or None,
        driver_stubs=platform.driver_stubs or None,
        gpu_shim_dir=platform.gpu_shim_dir,
        nvcc_filter=platform.nvcc_filter_path,
        real_nvcc=platform.nvcc,
    )


def _job_python(job: Job, recipe: Recipe) -> str:
    """The Python the job's fixes are chosen for: they must agree across its Pythons,
    because cibuildwheel builds them with one environment."""
    per_python = {
        py: tuple(f.why for f in recipe.fixes_for(torch=job.torch, cuda=job.cuda, python=py.rstrip("t"), os=job.os))
        for py in job.pythons
    }
    if len(set(per_python.values())) > 1:
        msg = (
            f"job {job.id}: recipe fixes differ between Pythons {', '.join(job.pythons)}, but cibuildwheel builds them"
            " with one environment; narrow the fix's when.python or have the planner split the job"
        )
        raise ConfigError(msg)
    return job.pythons[0].rstrip("t")


# cibuildwheel 4.2's default audit-command (cibuildwheel/resources/defaults.toml).
ABI3_AUDIT = "abi3audit --strict --report {abi3_wheel}"

# The host's variables that the finish stage (ci/cell.py) reads.
HOST_VARIABLES = ("WHEELFACTORY_INDEX_URL", "GITHUB_RUN_ID")


def environment(job: Job, recipe: Recipe, table: CiTable) -> dict[str, str]:
    """CIBW_ENVIRONMENT as NAME -> one double-quoted word: buildvars' rule, quoted, plus
    what only CI needs."""
    changes = buildvars.build_changes(
        recipe,
        torch=job.torch,
        cuda=job.cuda,
        python=_job_python(job, recipe),
        targets=parse_targets(list(job.target_list)),
        jobs=table.max_jobs,
        host=ci_host(job.platform),
    )
    words = buildvars.cibw_words(changes, pathsep=job.platform.pathsep)
    # The real nvcc may name the host's $CUDA_PATH (Windows): let cibuildwheel expand it.
    if "WHEELFACTORY_NVCC_REAL" in words:
        words["WHEELFACTORY_NVCC_REAL"] = f'"{job.platform.nvcc}"'
    return {
        **words,
        # The test step installs the wheel, whose Requires-Dist pins torch==X.Y.*: take
        # that torch from PyTorch's index for this CUDA (its +cuXYZ local version sorts
        # above PyPI's plain one), never a CPU or other-CUDA build.
        "PIP_EXTRA_INDEX_URL": buildvars.quote(table.torch_index(job.cuda)),
        # No pip cache: torch and its nvidia-* wheels would sit there a second time (the
        # job's disk budget counts each torch once per install).
        "PIP_NO_CACHE_DIR": buildvars.quote("1"),
        "WHEELFACTORY_CELL": buildvars.quote(job.id),
        # Build start, for the build record's timings (evaluated per Python by cibuildwheel).
        "WHEELFACTORY_BUILD_START": '$(python -c "import time; print(int(time.time()))")',
    }


def factory_python(platform: Platform) -> str:
    """The interpreter that runs wheelfactory in a job's cibuildwheel commands (see
    LINUX_FACTORY_VENV, WINDOWS_PYTHON_ENV), as the word that stands first in them."""
    if platform.is_windows:
        return f'"%{WINDOWS_PYTHON_ENV}%"'  # cmd.exe expands it; quoted for spaces in the path
    return f"{LINUX_FACTORY_VENV}/bin/python"


def _pip_install(requirements: Sequence[str], *extra: str, python: str = "python") -> str:
    return " ".join([python, _command(["-m", "pip", "install", *extra, *requirements])])


def _factory(platform: Platform, argv: Sequence[str]) -> str:
    """``<factory python> -m wheelfactory ARGV``: never the build Python, which may be
    older than wheelfactory's requires-python (cibuildwheel builds cp39 first)."""
    return " ".join([factory_python(platform), _command(["-m", "wheelfactory", *argv])])


def check_budget(job: Job, table: CiTable) -> None:
    """Refuse a job that would outrun its runner: over [budget] limit-minutes, or needing
    more disk than the runner has (each Python of a job holds its own torch)."""
    budget = table.budget
    plat = job.platform.name
    minutes = budget.minutes(platform=plat, targets=len(job.target_list), wheels=len(job.pythons))
    if minutes > budget.limit_minutes:
        msg = (
            f"job {job.id}: estimated {minutes} min is over the {budget.limit_minutes}-min budget of a CI job"
            f" ({len(job.pythons)} wheel(s) of {len(job.target_list)} targets); plan it again: the planner gives each wheel its own job"
        )
        raise ConfigError(msg)
    need = budget.disk(platform=plat, pythons=len(job.pythons))
    if need > budget.disk_gb[plat]:
        msg = (
            f"job {job.id}: needs about {need} GB of disk ({len(job.pythons)} torch install(s) of {budget.torch_gb} GB"
            f" plus the test venv's), over the {budget.disk_gb[plat]} GB a {plat} runner has; build one Python per job"
        )
        raise ConfigError(msg)


def cibw_env(job: Job, *, recipe: Recipe, table: CiTable | None = None) -> dict[str, str]:
    """The CIBW_* variables (and a few for later workflow steps) that build ``job``."""
    table = table or load_ci_table()
    row = table.row(job.cuda)
    plat = job.platform
    check_budget(job, table)
    torch_pin = f"torch=={job.torch}+{naming.cuda_tag(job.cuda)}"
    env: dict[str, str] = {
        "CIBW_BUILD": job.cibw_build,
        "CIBW_ARCHS": plat.cibw_arch,
        "CIBW_BUILD_FRONTEND": table.build_frontend,
        "CIBW_BUILD_VERBOSITY": "1",
    }
    if plat.image_option:
        image = row.images.get(plat.name)
        if image is None:
            raise ConfigError(f"CUDA {job.cuda} has no {plat.name} image; add it to {resources.CI_IMAGES.name}")
        env[plat.image_option] = image
    elif plat.name not in row.toolkits:
        raise ConfigError(
            f"CUDA {job.cuda} has no {plat.name} toolkit; add {plat.name} = \"{job.cuda}.x\" to"
            f" [cuda.\"{job.cuda}\"] in {resources.CI_IMAGES.name} or drop the cell"
        )

    # before-all (once per job): the factory Python gets wheelfactory ({project} is the
    # checkout of this repository) and the repair tools.
    factory_install = [*table.repair_tools[plat.repairer], "{project}"]
    if plat.is_windows:
        before_all = [_pip_install(factory_install, python=factory_python(plat))]
    else:
        before_all = [
            " ".join([LINUX_BASE_PYTHON, _command(["-m", "venv", LINUX_FACTORY_VENV])]),
            _pip_install(factory_install, python=factory_python(plat)),
        ]
    env["CIBW_BEFORE_ALL"] = " && ".join(before_all)
    # before-build: this Python's build environment gets the exact torch (from
    # PyTorch's index for this CUDA) and the build requirements upstream forgets.
    before = [
        _pip_install([torch_pin], "--index-url", table.torch_index(job.cuda)),
        _pip_install(table.build_requires),
    ]
    if recipe.build.no_gpu_shim:
        # setup.py asks torch.cuda for the GPU: the no-GPU shim answers (see build.py).
        before.append(_factory(plat, ["gpu-shim", "--out", plat.gpu_shim_dir]))
    if recipe.build.source_targets:
        # setup.py gives every .cu file every target: the nvcc filter limits the named ones.
        before.append(_factory(plat, ["nvcc-filter", "--out", plat.nvcc_filter_dir]))
    env["CIBW_BEFORE_BUILD"] = " && ".join(before)
    assignments = environment(job, recipe, table)
    env["CIBW_ENVIRONMENT"] = " ".join(f"{k}={v}" for k, v in assignments.items())
    if plat.image_option:
        # Linux builds run in a container that sees only CIBW_ENVIRONMENT: the repair step
        # there needs the index URL (the guard's fix command) and the run id (the record).
        env["CIBW_ENVIRONMENT_PASS_LINUX"] = " ".join(HOST_VARIABLES)
    # repair: the finish stage (guard, repair without vendoring torch or CUDA, label
    # +cuXYZtorchA.B, build record), as in `wheelfactory build`; the record describes the
    # build Python (`python` on cibuildwheel's PATH during repair), not the factory's.
    repair = [
        "repair", "{wheel}", "--out", "{dest_dir}",
        "--recipe", "{project}/" + job.recipe, "--torch", job.torch, "--cuda", job.cuda,
        "--arch", ",".join(job.target_list), "--source-work", "{project}/" + SOURCE_WORK,
        "--build-python", "python",
    ]  # fmt: skip
    env["CIBW_REPAIR_WHEEL_COMMAND"] = _factory(plat, repair)
    # audit: cibuildwheel 4.2 runs `abi3audit --strict --report {abi3_wheel}` on abi3
    # wheels by default. Kept on purpose, and spelled out here so it is visible: it reads
    # only the Python C-API symbols a module imports (torch's C++ libraries are not in the
    # wheel and not audited), which is exactly the abi3 promise our abi3 wheels make.
    env["CIBW_AUDIT_COMMAND"] = ABI3_AUDIT
    # test: the import smoke in cibuildwheel's clean test venv (the wheel and its exact
    # torch are installed there). The factory Python drives it; `python` (the test venv's,
    # smoke's default) does the importing, with a stub libcuda.so.1 when the runner has no
    # driver (hosted runners have none).
    env["CIBW_TEST_REQUIRES"] = torch_pin
    if recipe.build.no_gpu_shim:
        env["CIBW_TEST_ENVIRONMENT"] = f'{buildvars.GPU_SHIM_ENV}=""'  # the smoke sees no fake GPU
    env["CIBW_TEST_COMMAND"] = _factory(plat, ["smoke", "{wheel}"])
    # For later workflow steps (artifact name, Windows CUDA install).
    env["WHEELFACTORY_CELL"] = job.id
    env["WHEELFACTORY_ARTIFACT"] = artifact_name(job)
    if plat.is_windows:
        env["WHEELFACTORY_WINDOWS_CUDA"] = row.toolkits.get(plat.name, "")
    return env


_BARE_RE = re.compile(r"^[A-Za-z0-9_./:=+,@-]+$")
_PLACEHOLDER_RE = re.compile(r"^\{[a-z_]+\}(/[A-Za-z0-9_./-]*)?$")


def _arg(arg: str) -> str:
    """Quote one argument so that bash (Linux) and cmd.exe (Windows, where cibuildwheel
    runs its commands through the shell) read it the same: bare when safe, else in double
    quotes. cibuildwheel's {placeholders} stay bare so it can substitute them."""
    if _BARE_RE.match(arg) or _PLACEHOLDER_RE.match(arg):
        return arg
    if re.search(r'["$`%!\\\n]', arg):
        raise ConfigError(f"argument {arg!r} cannot be quoted for both bash and cmd.exe; simplify it")
    return f'"{arg}"'


def _command(argv: Sequence[str]) -> str:
    return " ".join(_arg(a) for a in argv)


def artifact_name(job: Job) -> str:
    """The upload-artifact name of a job's wheels: ``wheels-<cell id>`` (unique per job)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", job.id)
    return f"wheels-{safe}"


def render_github_env(env: Mapping[str, str]) -> str:
    """``NAME=value`` lines for $GITHUB_ENV; multi-line values use the heredoc form
    (``NAME<<DELIM`` ... ``DELIM``) with a delimiter that cannot occur in the value."""
    lines: list[str] = []
    for name, value in env.items():
        if not _ENV_NAME_RE.match(name):
            raise ConfigError(f"{name!r} is not an environment variable name; fix the caller")
        if "\n" in value or "\r" in value:
            delim = "WF_EOF_" + hashlib.sha256(value.encode()).hexdigest()[:16]
            if delim in value:  # pragma: no cover - a sha256 prefix inside its own input
                raise ConfigError(f"cannot pick a heredoc delimiter for {name}; shorten the value")
            lines += [f"{name}<<{delim}", value, delim]
        else:
            lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"
