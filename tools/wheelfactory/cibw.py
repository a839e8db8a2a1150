"""One planned CI job -> the ``CIBW_*`` settings that make cibuildwheel build it.

Pure: a job (one entry of ``wheelfactory plan --format github``'s matrices) plus the CI
table (resources/ci-images.toml) and, when the recipe file is readable, the recipe's
build settings, give a dict of environment variables. ``render_github_env`` writes them
in the ``$GITHUB_ENV`` file format, so the workflow step is one line:

    wheelfactory cibw-env --job "$JOB" >> "$GITHUB_ENV"

Everything cibuildwheel runs inside the build (before-build, repair, test) is a
``python -m pip`` or ``python -m wheelfactory`` command generated here, so the workflow
YAML holds no build logic and tests/unit/test_workflows_contract.py can parse every
wheelfactory command line it would run.
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

from wheelfactory import naming, resources
from wheelfactory.build import STABLE_HASH_SEED
from wheelfactory.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The keys a planner job must carry (see plan.py / resources/plan.schema.json).
JOB_KEYS = ("id", "recipe", "version", "torch", "cuda", "os", "machine", "runner", "pythons", "cibw_build", "targets")
# (os, machine) -> the platform name used in recipes and in ci-images.toml
PLATFORM_OF = {
    ("linux", "x86_64"): "linux-x86_64",
    ("linux", "aarch64"): "linux-aarch64",
    ("windows", "amd64"): "windows-amd64",
}
# platform -> cibuildwheel's CIBW_ARCHS value
CIBW_ARCH = {"linux-x86_64": "x86_64", "linux-aarch64": "aarch64", "windows-amd64": "AMD64"}
# platform -> the cibuildwheel option naming the manylinux image
IMAGE_OPTION = {
    "linux-x86_64": "CIBW_MANYLINUX_X86_64_IMAGE",
    "linux-aarch64": "CIBW_MANYLINUX_AARCH64_IMAGE",
}
_CIBW_ID_RE = re.compile(r"^cp3\d+t?-(manylinux_x86_64|manylinux_aarch64|win_amd64)$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, kw_only=True)
class Job:
    """One matrix entry of the plan: the Pythons of one (recipe, torch, CUDA, platform)."""

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
    def platform(self) -> str:
        return PLATFORM_OF[(self.os, self.machine)]

    @property
    def target_list(self) -> tuple[str, ...]:
        return tuple(t for t in re.split(r"[;\s]+", self.targets) if t)


@dataclass(frozen=True, kw_only=True)
class CudaRow:
    cuda: str
    images: Mapping[str, str]  # platform -> container image (Linux)
    windows_toolkit: str | None


@dataclass(frozen=True, kw_only=True)
class CiTable:
    runners: Mapping[str, str]
    torch_index_url: str
    build_frontend: str
    build_requires: tuple[str, ...]
    repair_tools: Mapping[str, tuple[str, ...]]  # os -> requirements
    delvewheel_exclude: tuple[str, ...]
    max_jobs: int
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
    if set(data) - {"runners", "settings", "cuda"}:
        raise _fail(path, f"unknown top-level keys {sorted(set(data) - {'runners', 'settings', 'cuda'})}")
    runners = data.get("runners", {})
    if set(runners) != set(PLATFORM_OF.values()):
        raise _fail(path, f"[runners] must name exactly {sorted(PLATFORM_OF.values())}")
    s = data.get("settings", {})
    allowed = {
        "torch-index-url", "build-frontend", "build-requires", "repair-tools-linux",
        "repair-tools-windows", "delvewheel-exclude", "max-jobs",
    }  # fmt: skip
    if set(s) != allowed:
        raise _fail(path, f"[settings] keys must be {sorted(allowed)}, got {sorted(s)}")
    if "{tag}" not in s["torch-index-url"]:
        raise _fail(path, "torch-index-url must contain {tag}")
    rows: dict[str, CudaRow] = {}
    for cuda, row in data.get("cuda", {}).items():
        if not re.fullmatch(r"\d+\.\d", cuda):
            raise _fail(path, f"[cuda.{cuda!r}] is not a CUDA version like \"12.8\"")
        if set(row) - {"linux-x86_64", "linux-aarch64", "windows-toolkit"}:
            raise _fail(path, f"[cuda.\"{cuda}\"] has unknown keys {sorted(set(row) - set(IMAGE_OPTION) - {'windows-toolkit'})}")
        toolkit = row.get("windows-toolkit")
        if toolkit is not None and not toolkit.startswith(cuda + "."):
            raise _fail(path, f"[cuda.\"{cuda}\"] windows-toolkit {toolkit!r} is not a {cuda}.x release")
        images = {p: row[p] for p in IMAGE_OPTION if p in row}
        for p, image in images.items():
            if f"cuda{cuda}" not in image:
                raise _fail(path, f"[cuda.\"{cuda}\"] {p} image {image!r} is not the cuda{cuda} image")
        rows[cuda] = CudaRow(cuda=cuda, images=images, windows_toolkit=toolkit)
    return CiTable(
        runners=dict(runners),
        torch_index_url=s["torch-index-url"],
        build_frontend=s["build-frontend"],
        build_requires=tuple(s["build-requires"]),
        repair_tools={"linux": tuple(s["repair-tools-linux"]), "windows": tuple(s["repair-tools-windows"])},
        delvewheel_exclude=tuple(s["delvewheel-exclude"]),
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
    if (job.os, job.machine) not in PLATFORM_OF:
        known = ", ".join(f"{o}/{m}" for o, m in PLATFORM_OF)
        raise ConfigError(f"job {job.id}: os/machine {job.os}/{job.machine} is not one CI builds ({known}); fix the plan")
    suffix = {"linux-x86_64": "manylinux_x86_64", "linux-aarch64": "manylinux_aarch64", "windows-amd64": "win_amd64"}
    for ident in job.cibw_build.split():
        m = _CIBW_ID_RE.match(ident)
        if not m or m.group(1) != suffix[job.platform]:
            msg = f"job {job.id}: cibw_build entry {ident!r} does not fit {job.platform}; expected e.g. cp312-{suffix[job.platform]}"
            raise ConfigError(msg)
    if not job.cibw_build.split():
        raise ConfigError(f"job {job.id}: cibw_build is empty; the plan must name at least one cpXY-<platform>")
    if not job.target_list:
        raise ConfigError(f"job {job.id}: no GPU targets; the plan must give targets like \"9.0a;12.0a\"")
    return job


def _escape(value: str) -> str:
    """``value`` for use inside a double-quoted word (no expansion)."""
    for char in ("\\", '"', "$", "`"):
        value = value.replace(char, "\\" + char)
    return value


def _quote(value: str) -> str:
    """A literal for cibuildwheel's environment option: one double-quoted word, so that a
    [[fix]] can append to it inside the quotes (cibuildwheel keeps the quotes of "a"'b')."""
    return f'"{_escape(value)}"'


def _append(word: str, value: str) -> str:
    """Append `` value`` inside a double-quoted word ("$X" or a _quote result)."""
    opened = word.removesuffix('"')
    return f'{opened} {_escape(value)}"'


# Where the before-build step writes the no-GPU shim (inside the manylinux container on Linux).
GPU_SHIM_DIR = {"linux": "/tmp/wheelfactory-gpu-shim", "windows": "C:/wheelfactory-gpu-shim"}
# ... and the nvcc filter (build.write_nvcc_filter), with the nvcc it hands over to.
NVCC_FILTER_DIR = {
    "linux": "/tmp/wheelfactory-nvcc-filter",
    "windows": "C:/wheelfactory-nvcc-filter",
}
NVCC_FILTER = {
    "linux": f"{NVCC_FILTER_DIR['linux']}/nvcc",
    "windows": f"{NVCC_FILTER_DIR['windows']}/nvcc.bat",
}
REAL_NVCC = {"linux": "/usr/local/cuda/bin/nvcc", "windows": "$CUDA_PATH/bin/nvcc.exe"}


def _environment(job: Job, table: CiTable, recipe: Any | None) -> dict[str, str]:
    """The build environment inside cibuildwheel, as NAME -> already-quoted value."""
    env: dict[str, str] = {
        "TORCH_CUDA_ARCH_LIST": _quote(";".join(job.target_list)),
        "MAX_JOBS": _quote(str(table.max_jobs)),
        # nvcc keeps the last --threads: one thread per job (a setup.py's --threads=8 would
        # multiply MAX_JOBS past the runner's memory), unless the runner's own setting follows.
        "NVCC_APPEND_FLAGS": '"--threads 1 $NVCC_APPEND_FLAGS"',
        # setup.py's set-ordered -gencode list comes out the same in every build
        "PYTHONHASHSEED": _quote(STABLE_HASH_SEED),
        # The test step installs the wheel, whose Requires-Dist pins torch==X.Y.*: take
        # that torch from PyTorch's index for this CUDA (its +cuXYZ local version sorts
        # above PyPI's plain one), never a CPU or other-CUDA build.
        "PIP_EXTRA_INDEX_URL": _quote(table.torch_index(job.cuda)),
        "WHEELFACTORY_CELL": _quote(job.id),
        # Build start, for the build record's timings (evaluated per Python by cibuildwheel).
        "WHEELFACTORY_BUILD_START": '$(python -c "import time; print(int(time.time()))")',
    }
    if job.os == "linux":
        env["CUDA_HOME"] = _quote("/usr/local/cuda")
    else:
        env["DISTUTILS_USE_SDK"] = _quote("1")  # use the MSVC environment the workflow set up
    if recipe is not None:
        if job.os == "linux" and recipe.build.links_driver:
            # Link -lcuda against the toolkit's stub; the real driver comes at run time.
            # (cibuildwheel's parser has no ${X:+...}; an empty LIBRARY_PATH entry is ignored)
            env["LIBRARY_PATH"] = '"/usr/local/cuda/lib64/stubs:$LIBRARY_PATH"'
        for name, value in recipe.build.env.items():
            env[name] = _quote(value)
        env.update(_fixes_env(job, recipe, env))
        if recipe.build.no_gpu_shim:
            from wheelfactory import arch
            from wheelfactory.build import GPU_SHIM_ENV, gpu_shim_capability

            env["PYTHONPATH"] = _quote(GPU_SHIM_DIR[job.os])
            highest = gpu_shim_capability(arch.parse_targets(list(job.target_list)))
            env[GPU_SHIM_ENV] = _quote(highest)
        if recipe.build.source_targets:
            from wheelfactory.build import nvcc_filter_env

            rules = recipe.build.source_targets
            for name, value in nvcc_filter_env(NVCC_FILTER[job.os], "", rules).items():
                env[name] = _quote(value)
            env["WHEELFACTORY_NVCC_REAL"] = f'"{REAL_NVCC[job.os]}"'  # $CUDA_PATH expands
        if job.os == "windows" and recipe.build.msvc_flags:
            # cl.exe reads extra options from CL; nvcc's host compiler is cl.exe too.
            env["CL"] = _quote(" ".join(recipe.build.msvc_flags))
    return env


def _fixes_env(job: Job, recipe: Any, env: dict[str, str]) -> dict[str, str]:
    """The recipe's [[fix]] entries for this job, over ``env``.

    They must agree across the job's Pythons."""
    per_python = {
        py: recipe.fixes_for(torch=job.torch, cuda=job.cuda, python=py.rstrip("t"), os=job.os) for py in job.pythons
    }
    distinct = {tuple(f.why for f in fixes) for fixes in per_python.values()}
    if len(distinct) > 1:
        msg = (
            f"job {job.id}: recipe fixes differ between Pythons {', '.join(job.pythons)}, but cibuildwheel builds them"
            " with one environment; narrow the fix's when.python or have the planner split the job"
        )
        raise ConfigError(msg)
    fixes = next(iter(per_python.values()), ())
    out: dict[str, str] = {}
    for fix in fixes:
        for name, value in fix.env.items():
            out[name] = _quote(value)
        for name, value in fix.env_append.items():
            out[name] = _append(out.get(name) or env.get(name) or f'"${name}"', value)
    return out


def _pip_install(requirements: Sequence[str], *extra: str) -> str:
    return _command(["python", "-m", "pip", "install", *extra, *requirements])


def cibw_env(job: Job, *, recipe: Any | None = None, table: CiTable | None = None) -> dict[str, str]:
    """The CIBW_* variables (and a few for later workflow steps) that build ``job``."""
    table = table or load_ci_table()
    row = table.row(job.cuda)
    torch_pin = f"torch=={job.torch}+{naming.cuda_tag(job.cuda)}"
    env: dict[str, str] = {
        "CIBW_BUILD": job.cibw_build,
        "CIBW_ARCHS": CIBW_ARCH[job.platform],
        "CIBW_BUILD_FRONTEND": table.build_frontend,
        "CIBW_BUILD_VERBOSITY": "1",
    }
    if job.os == "linux":
        image = row.images.get(job.platform)
        if image is None:
            raise ConfigError(f"CUDA {job.cuda} has no {job.platform} image; add it to {resources.CI_IMAGES.name}")
        env[IMAGE_OPTION[job.platform]] = image
    elif row.windows_toolkit is None:
        raise ConfigError(f"CUDA {job.cuda} has no windows-toolkit; add it to {resources.CI_IMAGES.name} or drop the cell")

    # before-build: this Python's build environment gets the exact torch (from
    # PyTorch's index for this CUDA), the build requirements upstream forgets, the repair
    # tools, and wheelfactory itself ({project} is the checkout of this repository).
    before = [
        _pip_install([torch_pin], "--index-url", table.torch_index(job.cuda)),
        _pip_install([*table.build_requires, *table.repair_tools[job.os], "{project}"]),
    ]
    if recipe is not None and recipe.build.no_gpu_shim:
        # setup.py asks torch.cuda for the GPU: the no-GPU shim answers (see build.py).
        before.append(_command(["python", "-m", "wheelfactory", "gpu-shim", "--out", GPU_SHIM_DIR[job.os]]))
    if recipe is not None and recipe.build.source_targets:
        # setup.py gives every .cu file every target: the nvcc filter limits the named ones.
        write = ["python", "-m", "wheelfactory", "nvcc-filter", "--out", NVCC_FILTER_DIR[job.os]]
        before.append(_command(write))
    env["CIBW_BEFORE_BUILD"] = " && ".join(before)
    assignments = _environment(job, table, recipe)
    env["CIBW_ENVIRONMENT"] = " ".join(f"{k}={v}" for k, v in assignments.items())
    # repair: label (+cuXYZtorchA.B, Requires-Dist torch==A.B.*, build record) and
    # repair without vendoring torch or CUDA libraries, in wheelfactory.
    repair = [
        "python", "-m", "wheelfactory", "repair", "{wheel}", "--out", "{dest_dir}",
        "--recipe", "{project}/" + job.recipe, "--torch", job.torch, "--cuda", job.cuda,
        "--arch", ",".join(job.target_list),
    ]  # fmt: skip
    env["CIBW_REPAIR_WHEEL_COMMAND"] = _command(repair)
    # test: the CPU import smoke in cibuildwheel's clean test venv (the wheel and its
    # exact torch are installed there; no GPU on hosted runners).
    env["CIBW_TEST_REQUIRES"] = torch_pin
    if recipe is not None and recipe.build.no_gpu_shim:
        env["CIBW_TEST_ENVIRONMENT"] = 'WHEELFACTORY_GPU_SHIM_CAPABILITY=""'  # the smoke sees no fake GPU
    smoke = ["python", "-m", "wheelfactory", "smoke", "{wheel}"]
    env["CIBW_TEST_COMMAND"] = " && ".join([_pip_install(["{project}"]), _command(smoke)])
    # For later workflow steps (artifact name, Windows CUDA install).
    env["WHEELFACTORY_CELL"] = job.id
    env["WHEELFACTORY_ARTIFACT"] = artifact_name(job)
    if job.os == "windows":
        env["WHEELFACTORY_WINDOWS_CUDA"] = row.windows_toolkit or ""
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
