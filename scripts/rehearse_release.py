#!/usr/bin/env python3
"""Rehearse a release for a small slice of the plan, on this machine, before GitHub runs it.

    scripts/rehearse_release.py tests/fixtures/quirky_ext.toml --source tests/fixtures/quirky_ext \\
        --torch 2.14.1 --cuda 13.0 --python ">=3.11,<3.13" --targets 9.0a --torch-index-url ""

For each job of ``wheelfactory plan --format github`` (Linux x86_64 only: this machine), it
reads the job's settings from ``wheelfactory cibw-env``, parses CIBW_ENVIRONMENT with
cibuildwheel's own parser, and runs what cibuildwheel runs for each Python the job lists:
before-build, build (CIBW_BUILD_FRONTEND, through cibuildwheel's own flag helper), repair
and test (a fresh venv with CIBW_TEST_REQUIRES), with cibuildwheel's placeholder
substitution. Then what publish.yml runs: download (the jobs' wheelhouses), release-check,
publish into a fresh local index, cover, coverage (must exit 0), and a user's
``pip install`` from the index served on 127.0.0.1.

What differs from GitHub is mapped explicitly and printed before the first step:
container paths (/usr/local/cuda, its driver stubs, the scratch folder, /project), PyTorch's
index (unreachable here: --torch-index-url), and each Python: a fresh venv of this
machine's CPython (/root/.pyenv/versions/X.Y.*, else pythonX.Y on PATH) holding the cached
torch env of ``wheelfactory build`` through a .pth file, so pip sees that torch as
installed. A Python this machine lacks is checked with pip's own ``--python-version``
resolution of what its steps would install.

Prints one line per step (PASS/FAIL, seconds), the peak disk of each job (its work folder
and venvs; the shared torch envs apart), and a JSON summary (also --json FILE). Exits 1 at
the first step that would fail on GitHub (--keep-going: after all of them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.utils import parse_wheel_filename

from wheelfactory import build, buildenv, cache, cudastub, naming, platforms
from wheelfactory.ci import cibw
from wheelfactory.errors import WheelfactoryError

ROOT = Path(__file__).resolve().parents[1]
PYENV = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser() / "versions"
# The platform this machine can rehearse (cibuildwheel's Linux container, x86_64).
PLATFORM = "linux-x86_64"
# The wheel platforms the CI image (pytorch/manylinux2_28-builder, glibc 2.28) installs,
# for pip's resolution: pip does not expand one manylinux tag to the older ones.
IMAGE_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)),
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64",
)  # fmt: skip
# cibuildwheel's project folder inside its Linux container.
CONTAINER_PROJECT = "/project"


class RehearsalFailed(Exception):
    """A step failed that would fail on GitHub (stops the run unless --keep-going)."""


@dataclass(kw_only=True)
class StepResult:
    step: str  # "before-build", "build", "repair", "test", "publish", ...
    job: str  # the plan job id, or "release" for the steps after the jobs
    python: str  # "cp311", or "" for a job-wide step
    ok: bool
    seconds: float
    detail: str = ""  # the failing command's last output lines, or what was checked


@dataclass(kw_only=True)
class Summary:
    version: int = 1
    ok: bool = True
    steps: list[StepResult] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    peak_disk_bytes: dict[str, int] = field(default_factory=dict)  # job id -> bytes
    torch_env_bytes: dict[str, int] = field(default_factory=dict)  # shared torch env -> bytes
    seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    recipes: tuple[str, ...]
    sources: Mapping[str, Path]  # recipe path -> local source tree
    torch: str | None
    cuda: str | None
    python: str | None
    targets: str | None
    torch_index_url: str | None  # None: pip's own configuration
    work: Path
    json: Path | None  # also write the summary here
    keep_going: bool
    keep_work: bool
    resolve_only: frozenset[str]  # Pythons checked by pip resolution even where this machine has them


class Rehearsal:
    """Runs the steps, prints one line each, and collects the summary."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.summary = Summary()
        self.started = time.monotonic()
        self.job_work: tuple[str, Path] | None = None  # the job whose disk the steps measure

    def note(self, text: str) -> None:
        print(text, flush=True)

    @contextmanager
    def step(self, step: str, job: str, python: str = "") -> Iterator[StepResult]:
        result = StepResult(step=step, job=job, python=python, ok=True, seconds=0.0)
        start = time.monotonic()
        try:
            yield result
        except subprocess.CalledProcessError as e:
            result.ok = False
            result.detail = "\n".join((e.output or "").strip().splitlines()[-15:])
        except WheelfactoryError as e:  # in-process (the torch env): a failed step too
            result.ok = False
            result.detail = f"{type(e).__name__}: {e}"
        finally:
            result.seconds = round(time.monotonic() - start, 1)
            self.summary.steps.append(result)
            if self.job_work is not None:  # peak disk: measured after each step of a job
                jid, work = self.job_work
                peaks = self.summary.peak_disk_bytes
                peaks[jid] = max(peaks.get(jid, 0), cache.tree_size(work))
            where = f"{job} {python}".strip()
            self.note(f"{'PASS' if result.ok else 'FAIL'} {result.seconds:7.1f}s  {step:<16} {where}")
            if not result.ok:
                self.summary.ok = False
                for line in result.detail.splitlines():
                    self.note(f"    | {line}")
                if not self.settings.keep_going:
                    raise RehearsalFailed(f"{step} failed for {where}")


def run(argv: Sequence[str | os.PathLike[str]] | str, *, env: Mapping[str, str], cwd: Path | None = None) -> str:
    """Run a command (a string: through ``sh -c``, as cibuildwheel does); return its output.
    Raises CalledProcessError with the merged output on failure."""
    args = ["sh", "-c", argv] if isinstance(argv, str) else [os.fspath(a) for a in argv]
    shown = argv if isinstance(argv, str) else shlex.join(args)
    print(f"    + {shown}", flush=True)
    proc = subprocess.run(
        args, env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, args, output=proc.stdout)
    return proc.stdout


def wheelfactory(*args: str | os.PathLike[str], cwd: Path | None = None) -> str:
    """``python -m wheelfactory ARGS`` with this script's interpreter (as the workflow's
    setup-python + ``pip install .`` gives)."""
    return run([sys.executable, "-m", "wheelfactory", *args], env=os.environ, cwd=cwd or ROOT)


# ---------------------------------------------------------------------------------------
# Plan and mapping


def plan_jobs(settings: Settings) -> list[dict]:
    argv = ["plan", *settings.recipes, "--os", "linux", "--format", "github"]
    for flag, value in (("--torch", settings.torch), ("--cuda", settings.cuda), ("--python", settings.python)):
        if value:
            argv += [flag, value]
    plan = json.loads(wheelfactory(*argv))
    jobs = [job for matrix in plan["matrices"] for job in matrix["include"]]
    mine = [j for j in jobs if getattr(platforms.of_job(j["os"], j["machine"]), "name", None) == PLATFORM]
    for j in jobs:
        if j not in mine:
            print(f"NOTE: job {j['id']} is for {j['os']}/{j['machine']}; this machine rehearses {PLATFORM} only")
    if settings.targets:
        # Compile fewer targets here than CI would (the job's own list is kept in the summary).
        mine = [{**j, "targets": settings.targets} for j in mine]
    return mine


def path_mapping(plat: platforms.Platform, work: Path) -> dict[str, str]:
    """Container path -> this machine's path, longest first (a prefix must not win)."""
    cuda_home = build.find_toolchain().cuda_home
    stubs = cudastub.make_stub(cuda_home, cache.cache_dir() / "libcuda-stubs")
    mapping = {
        plat.driver_stubs: str(stubs),  # link-time only (LIBRARY_PATH): the smoke still has no driver
        plat.cuda_home: str(cuda_home),
        # the GPU shim, the nvcc filter, a factory venv: whatever CI writes to its scratch
        f"{plat.scratch.rstrip('/')}/wheelfactory-": f"{work / 'scratch'}/wheelfactory-",
    }
    # The image's CPythons (/opt/python/cp312-cp312/bin/python): this machine's of that version.
    for python in sorted(PYENV.glob("3.*/bin/python3")):
        tag = "cp3" + python.parents[1].name.split(".")[1]
        mapping.setdefault(f"/opt/python/{tag}-{tag}/bin/python", str(python))
    return dict(sorted(mapping.items(), key=lambda kv: -len(kv[0])))


def apply_paths(text: str, mapping: Mapping[str, str]) -> str:
    for container, here in mapping.items():
        text = text.replace(container, here)
    return text


def map_torch_index(text: str, settings: Settings, cuda: str) -> str:
    """PyTorch's index -> --torch-index-url; ``torch==X+cuXYZ`` -> ``torch==X`` when torch
    comes from elsewhere (PyPI's plain releases carry no local version)."""
    pytorch = cibw.load_ci_table().torch_index(cuda)
    tag = naming.cuda_tag(cuda)
    if settings.torch_index_url is None:
        text = text.replace(f"--index-url {pytorch} ", "")
        return re.sub(rf"(torch==[0-9.]+)\+{tag}", r"\1", text)
    return text.replace(pytorch, settings.torch_index_url)


def without_pytorch_index(env: dict[str, str], settings: Settings, cuda: str) -> dict[str, str]:
    """CIBW_ENVIRONMENT's PIP_EXTRA_INDEX_URL (PyTorch's index, unreachable here) gives way
    to pip's own configuration when --torch-index-url is "" (else map_torch_index named
    the URL given)."""
    if settings.torch_index_url is None and env.get("PIP_EXTRA_INDEX_URL") == cibw.load_ci_table().torch_index(cuda):
        return {k: v for k, v in env.items() if k != "PIP_EXTRA_INDEX_URL"}
    return env


def find_python(version: str) -> Path | None:
    """This machine's CPython X.Y: pyenv's build, else pythonX.Y on PATH."""
    for candidate in sorted(PYENV.glob(f"{version}.*"), reverse=True):
        if re.fullmatch(rf"{re.escape(version)}\.\d+", candidate.name) and (candidate / "bin" / "python3").exists():
            return candidate / "bin" / "python3"
    found = shutil.which(f"python{version}")
    return Path(found) if found else None


def clean_env() -> dict[str, str]:
    """The host environment, as a container would start: no active venv, no CIBW_* of ours."""
    own_bin = str(Path(sys.prefix) / "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env = {k: v for k, v in env.items() if not k.startswith("CIBW_")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != own_bin)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_ROOT_USER_ACTION"] = "ignore"
    return env


def make_venv(python: Path, root: Path, torch_site: Path) -> Path:
    """A fresh venv of ``python`` that sees the cached torch env (a .pth after its own site)."""
    subprocess.run([python, "-m", "venv", root], check=True, capture_output=True)
    purelib = subprocess.run(
        [root / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "_rehearse_torch.pth").write_text(f"{torch_site}\n")
    return root / "bin"


def copy_project(dest: Path) -> Path:
    """The checkout's tracked files (as actions/checkout gives; cibuildwheel copies it to
    /project). Outside a git checkout (a scratch copy): its files, less build outputs."""
    if (ROOT / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
        names = [n for n in listed.split("\0") if n]
    else:
        skip = {"build", ".venv", "__pycache__", ".pytest_cache"}
        names = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if not skip & set(p.relative_to(ROOT).parts)]
    for name in names:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


# ---------------------------------------------------------------------------------------
# One job: cibuildwheel's steps for each Python


def rehearse_job(r: Rehearsal, job: dict, project: Path) -> list[Path]:
    from cibuildwheel.environment import parse_environment
    from cibuildwheel.frontend import BuildFrontendConfig, get_build_frontend_extra_flags
    from cibuildwheel.util.helpers import prepare_command
    from cibuildwheel.audit import needs_audit
    from cibuildwheel.util.packaging import find_compatible_wheel

    s = r.settings
    jid = job["id"]
    work = s.work / "jobs" / jid
    wheelhouse = work / "wheelhouse"
    wheelhouse.mkdir(parents=True, exist_ok=True)
    r.job_work = (jid, work)
    env_vars: dict[str, str] = {}
    with r.step("cibw-env", jid):
        env_vars = json.loads(wheelfactory("cibw-env", "--job", json.dumps(job), "--format", "json", cwd=project))
    if not env_vars:
        return []
    plat = cibw.parse_job(job).platform
    paths = path_mapping(plat, work)
    used = {c: h for c, h in paths.items() if any(c in value for value in env_vars.values())}
    for container, here in {**used, f"{CONTAINER_PROJECT} ({{project}})": str(project)}.items():
        if container not in r.summary.mapping:
            r.note(f"MAPPING: {container} -> {here}")
        r.summary.mapping[container] = here
    toolchain = build.find_toolchain()
    if toolchain.nvcc_version.split(".")[:2] != job["cuda"].split("."):
        r.note(f"MAPPING: job {jid} wants CUDA {job['cuda']}; this machine's nvcc is CUDA {toolchain.nvcc_version}")

    def mapped(text: str) -> str:
        return map_torch_index(apply_paths(text, paths), s, job["cuda"])

    package: Path | None = None  # the source tree, fetched before the first real build
    (work / "scratch").mkdir(parents=True, exist_ok=True)
    frontend = BuildFrontendConfig.from_config_string(env_vars["CIBW_BUILD_FRONTEND"])
    environment = parse_environment(mapped(env_vars["CIBW_ENVIRONMENT"]))
    test_environment = parse_environment(mapped(env_vars.get("CIBW_TEST_ENVIRONMENT", "")))
    built: list[Path] = []
    if env_vars.get("CIBW_BEFORE_ALL"):
        if "{package}" in env_vars["CIBW_BEFORE_ALL"]:
            package = fetch_source(r, job, project, work)
            if package is None:
                return []
        with r.step("before-all", jid) as result:
            # {package} is not in the command unless the source was fetched above
            run(prepare_command(mapped(env_vars["CIBW_BEFORE_ALL"]), project=project, package=package or project),
                env=without_pytorch_index(environment.as_dictionary(clean_env()), s, job["cuda"]))  # fmt: skip
        if not result.ok:
            return []
    for ident in env_vars["CIBW_BUILD"].split():
        version = f"3.{ident.split('-')[0][3:].rstrip('t')}"
        tag = ident.split("-")[0]
        python = find_python(version)
        if python is None or version in s.resolve_only:
            why = "is not on this machine" if python is None else "was asked for with --resolve-only"
            r.note(f"MAPPING: CPython {version} {why}: its steps are checked with pip's --python-version resolution")
            resolve_only(r, job, env_vars, version, tag, project, mapped)
            continue
        if package is None:
            package = fetch_source(r, job, project, work)
            if package is None:
                break
        compatible = find_compatible_wheel(built, ident)
        here = work / tag
        shutil.rmtree(here, ignore_errors=True)
        here.mkdir(parents=True)
        with r.step("torch-env", jid, tag) as result:
            torch_env = buildenv.prepare_env(
                python=python, torch=job["torch"], cuda=job["cuda"], index_url=s.torch_index_url
            )
        if not result.ok:
            continue
        r.summary.torch_env_bytes[str(torch_env.root)] = cache.tree_size(torch_env.root)
        bin_dir = make_venv(python, here / "venv", torch_env.site_packages)
        base = clean_env()
        base["PATH"] = f"{bin_dir}{os.pathsep}{base['PATH']}"
        base["VIRTUAL_ENV"] = str(bin_dir.parent)
        env = without_pytorch_index(environment.as_dictionary(base), s, job["cuda"])
        env["CIBUILDWHEEL_BUILD_IDENTIFIER"] = ident
        if compatible is not None:
            r.note(f"NOTE: {compatible.name} fits {ident}: cibuildwheel skips its build and tests that wheel")
            repaired = compatible
        else:
            with r.step("before-build", jid, tag) as result:
                run(prepare_command(mapped(env_vars["CIBW_BEFORE_BUILD"]), project=project, package=package), env=env)
            if not result.ok:
                continue
            built_dir, repaired_dir = here / "built_wheel", here / "repaired_wheel"
            built_dir.mkdir()
            repaired_dir.mkdir()
            flags = get_build_frontend_extra_flags(frontend, int(env_vars.get("CIBW_BUILD_VERBOSITY", "0")), "")
            with r.step("build", jid, tag) as result:
                # `python` of cibuildwheel's PATH: this Python's venv
                if frontend.name == "pip":
                    argv = ["-m", "pip", "wheel", str(package), f"--wheel-dir={built_dir}", "--no-deps", *flags]
                else:
                    argv = ["-m", "build", str(package), "--wheel", f"--outdir={built_dir}", *flags]
                run([bin_dir / "python", *argv], env=env, cwd=project)
            built_wheels = list(built_dir.glob("*.whl"))
            if not result.ok or len(built_wheels) != 1:
                continue
            with r.step("repair", jid, tag):
                command = prepare_command(
                    mapped(env_vars["CIBW_REPAIR_WHEEL_COMMAND"]),
                    wheel=built_wheels[0], dest_dir=repaired_dir, package=package, project=project,
                )  # fmt: skip
                run(command, env=env, cwd=project)
            repaired_list = list(repaired_dir.glob("*.whl"))
            if len(repaired_list) != 1:
                with r.step("repair", jid, tag):
                    raise subprocess.CalledProcessError(1, "repair", output=f"repair produced {len(repaired_list)} wheels")
                continue
            repaired = wheelhouse / repaired_list[0].name
            shutil.move(repaired_list[0], repaired)
            built.append(repaired)
            audit = env_vars.get("CIBW_AUDIT_COMMAND", "")
            if audit and needs_audit(audit.split(" && "), repaired.name):
                with r.step("audit", jid, tag):
                    audit_wheel(env_vars, repaired, here / "audit_venv", package)
        with r.step("test", jid, tag):
            test_bin = make_venv(python, here / "test" / "venv", torch_env.site_packages)
            test_env = {**env, "PATH": f"{test_bin}{os.pathsep}{env['PATH']}", "VIRTUAL_ENV": str(test_bin.parent)}
            test_env = test_environment.as_dictionary(test_env)
            pip: list[str | os.PathLike[str]] = [test_bin / "python", "-m", "pip"]
            run([*pip, "install", repaired], env=test_env)
            requires = mapped(env_vars.get("CIBW_TEST_REQUIRES", ""))
            if requires:
                run([*pip, "install", *shlex.split(requires)], env=test_env)
            test_cwd = here / "test" / "test_cwd"
            test_cwd.mkdir(parents=True)
            command = prepare_command(mapped(env_vars["CIBW_TEST_COMMAND"]), project=project, package=package, wheel=repaired)
            run(command, env=test_env, cwd=test_cwd)
        if not s.keep_work:
            shutil.rmtree(here, ignore_errors=True)
    r.job_work = None
    return built


def audit_wheel(env_vars: Mapping[str, str], wheel: Path, venv: Path, package: Path) -> None:
    """cibuildwheel's audit (abi3audit on abi3 wheels): on the host, in a venv of the
    Python running cibuildwheel, with CIBW_AUDIT_REQUIRES (default abi3audit)."""
    from cibuildwheel.util.helpers import prepare_command
    from cibuildwheel.util.packaging import is_abi3_wheel

    host = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([host, "-m", "venv", venv], check=True, capture_output=True)
    env = {**clean_env(), "PATH": f"{venv / 'bin'}{os.pathsep}{clean_env()['PATH']}", "VIRTUAL_ENV": str(venv)}
    run([venv / "bin" / "python", "-m", "pip", "install", *shlex.split(env_vars.get("CIBW_AUDIT_REQUIRES", "abi3audit"))], env=env)
    for template in env_vars["CIBW_AUDIT_COMMAND"].split(" && "):
        if "{abi3_wheel}" in template and not is_abi3_wheel(wheel.name):
            continue
        run(prepare_command(template, abi3_wheel=wheel, wheel=wheel, project=".", package=package), env=env)


def fetch_source(r: Rehearsal, job: dict, project: Path, work: Path) -> Path | None:
    """The workflow's "Fetch the pinned sources" step; returns the tree to build."""
    tree: Path | None = None
    with r.step("source", job["id"]):
        out = work / "github-output"
        argv = ["source", job["recipe"], "--out", "build/work", "--github-output", out]
        if job["recipe"] in r.settings.sources:
            argv += ["--local", r.settings.sources[job["recipe"]]]
        wheelfactory(*argv, cwd=project)
        found = [line.split("=", 1)[1] for line in out.read_text().splitlines() if line.startswith("tree=")]
        tree = (project / found[-1]).resolve()
    return tree


def resolve_only(r: Rehearsal, job: dict, env_vars: Mapping[str, str], version: str, tag: str, project: Path, mapped) -> None:
    """Check a Python by pip's own resolution of what its before-build and test steps would
    install, for that Python and the image's platform (wheels only, no dependencies): pip
    fails where a requirement (wheelfactory's requires-python, a torch pin) has nothing
    for it."""
    wheels = r.settings.work / "resolve" / "project-wheel"
    with r.step("resolve", job["id"], tag):
        if not list(wheels.glob("*.whl")):
            # {project} as pip would install it: its wheel (Requires-Python in its metadata).
            run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                 "--wheel-dir", wheels, project], env=clean_env())  # fmt: skip
        (project_wheel,) = wheels.glob("*.whl")
        commands = re.split(r"\s*&&\s*", env_vars["CIBW_BEFORE_BUILD"] + " && " + env_vars["CIBW_TEST_COMMAND"])
        commands.append("python -m pip install " + env_vars.get("CIBW_TEST_REQUIRES", ""))
        for command in commands:
            words = shlex.split(mapped(command).replace("{project}", str(project_wheel)))
            if words[:4] != ["python", "-m", "pip", "install"] or len(words) == 4:
                continue  # `python -m wheelfactory ...` needs wheelfactory: its install is checked
            run(
                [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet",
                 "--target", r.settings.work / "resolve" / "target", "--python-version", version,
                 "--only-binary=:all:", *(f"--platform={p}" for p in IMAGE_PLATFORMS), *words[4:]],
                env=clean_env(),
            )  # fmt: skip


# ---------------------------------------------------------------------------------------
# After the jobs: publish.yml's steps, cover, coverage, and a user's install


def rehearse_release(r: Rehearsal, jobs: list[dict], wheels: list[Path], project: Path) -> None:
    s = r.settings
    dist, site = s.work / "dist", s.work / "site"
    with r.step("download", "release") as result:
        # GitHub: download-artifact of each job's wheelhouse; here: the same files, copied.
        dist.mkdir(parents=True, exist_ok=True)
        for wheel in wheels:
            shutil.copy2(wheel, dist / wheel.name)
        if not wheels:
            raise subprocess.CalledProcessError(1, "download", output="no job produced a wheel")
    if not result.ok:
        return  # --keep-going: nothing to publish
    dist_wheels = sorted(dist.glob("*.whl"))
    with r.step("release-check", "release"):
        wheelfactory("release-check", dist, cwd=project)
    with r.step("publish", "release") as result:
        wheelfactory("publish", *dist_wheels, "--index", site, cwd=project)
    if not result.ok:
        return  # --keep-going: no index to cover, check or install from
    torch_flag = ["--torch-index-url", s.torch_index_url or ""]
    for torch, cuda in sorted({(j["torch"], j["cuda"]) for j in jobs}):
        with r.step("cover", "release", f"torch{torch}"):
            python = find_python(f"{sys.version_info[0]}.{sys.version_info[1]}") or Path(sys.executable)
            wheelfactory("cover", "--index", site, "--torch", torch, "--cuda", cuda, "--python", python, *torch_flag, cwd=project)
    with r.step("coverage", "release"):
        argv: list[str | os.PathLike[str]] = ["coverage", *s.recipes, "--index", site, "--os", "linux"]
        for flag, value in (("--torch", s.torch), ("--cuda", s.cuda), ("--python", s.python)):
            if value:
                argv += [flag, value]
        glibc = host_glibc_for(dist_wheels)
        if glibc:  # this machine's toolchain, not the image's: count users of its glibc
            r.note(f"MAPPING: the image's glibc 2.28 -> this machine's {glibc} (its toolchain tags the wheels"
                   f" manylinux_{glibc.replace('.', '_')} or older): coverage counts Linux users of glibc {glibc}")
            os.environ["WHEELFACTORY_USER_GLIBC"] = glibc
        try:
            wheelfactory(*argv, cwd=project)
        finally:
            os.environ.pop("WHEELFACTORY_USER_GLIBC", None)
    with r.step("user-install", "release"):
        user_install(r, jobs, dist_wheels, site)


def host_glibc_for(wheels: list[Path]) -> str | None:
    """This machine's glibc ("2.36") when a wheel built here is tagged for a glibc newer
    than the CI image's 2.28 (auditwheel tags what this toolchain's binaries need), else None."""
    newest = 28
    for w in wheels:
        for tag in parse_wheel_filename(w.name)[3]:
            if m := re.match(r"manylinux_2_(\d+)_", tag.platform):
                newest = max(newest, int(m.group(1)))
    if newest <= 28:
        return None
    _, _, version = os.confstr("CS_GNU_LIBC_VERSION").partition(" ")  # "glibc 2.36"
    return version or f"2.{newest}"


def user_install(r: Rehearsal, jobs: list[dict], wheels: list[Path], site: Path) -> None:
    """Serve the index on 127.0.0.1 and pip install each wheel as the README says."""
    server = subprocess.Popen(
        [sys.executable, "-m", "wheelfactory", "serve", site, "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = _served_url(server)
        for wheel in wheels:
            info = naming.parse_wheel(wheel.name)
            assert info.cuda is not None, "release-check passed only labelled wheels"
            job = next(j for j in jobs if j["cuda"] == info.cuda)
            # a stable-ABI wheel is listed in the view of each torch it covers: the job's
            view = f"{url}/{naming.cuda_tag(info.cuda)}/torch{naming.torch_minor(job['torch'])}/simple/"
            python = find_python(f"3.{info.python_tags[0][3:]}")
            if python is None:
                r.note(f"NOTE: no CPython for {wheel.name} here: its user install is not rehearsed")
                continue
            torch_env = buildenv.prepare_env(python=python, torch=job["torch"], cuda=job["cuda"], index_url=r.settings.torch_index_url)
            venv = r.settings.work / "user" / wheel.name
            shutil.rmtree(venv, ignore_errors=True)
            bin_dir = make_venv(python, venv, torch_env.site_packages)
            env = {**clean_env(), "PATH": f"{bin_dir}{os.pathsep}{clean_env()['PATH']}"}
            run([bin_dir / "python", "-m", "pip", "install", f"{info.project}=={info.version}", "--extra-index-url", view], env=env)
            shown = run([bin_dir / "python", "-m", "pip", "show", info.project], env=env)
            if f"Version: {info.version}" not in shown:
                raise subprocess.CalledProcessError(1, "pip show", output=shown)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _served_url(server: subprocess.Popen) -> str:
    assert server.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:\d+", line)
        if m:
            return m.group(0)
        if not line and server.poll() is not None:
            break
    raise subprocess.CalledProcessError(1, "serve", output="wheelfactory serve printed no URL")


# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Settings:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipes", nargs="+", metavar="RECIPE", help="recipe files (paths relative to the repository)")
    p.add_argument("--source", action="append", default=[], metavar="[RECIPE=]DIR",
                   help="a local source tree for a recipe (outside the repository); DIR alone: for the only recipe")
    p.add_argument("--torch", help="plan's --torch")
    p.add_argument("--cuda", help="plan's --cuda")
    p.add_argument("--python", help="plan's --python")
    p.add_argument("--targets", help='compile only these GPU targets, e.g. "9.0a" (default: the job\'s)')
    p.add_argument("--torch-index-url", default="",
                   help="where torch comes from instead of PyTorch's index (unreachable here; default '': pip's own configuration)")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "rehearsal", help="work folder (emptied first)")
    p.add_argument("--json", type=Path, help="also write the JSON summary here")
    p.add_argument("--resolve-only", action="append", default=[], metavar="X.Y",
                   help="check this Python with pip's --python-version resolution only (as for one this machine lacks)")
    p.add_argument("--keep-going", action="store_true", help="run every step even after a failure")
    p.add_argument("--keep-work", action="store_true", help="keep each Python's venvs and wheels")
    args = p.parse_args(argv)
    sources: dict[str, Path] = {}
    for item in args.source:
        recipe, _, folder = item.rpartition("=")
        if not recipe:
            if len(args.recipes) != 1:
                p.error("--source DIR without RECIPE= needs exactly one recipe")
            recipe = args.recipes[0]
        sources[recipe] = Path(folder).resolve()
    index = args.torch_index_url.strip()
    return Settings(
        recipes=tuple(args.recipes), sources=sources, torch=args.torch, cuda=args.cuda, python=args.python,
        targets=args.targets, torch_index_url=None if index in ("", "pip") else index,
        work=args.work.resolve(), json=args.json, keep_going=args.keep_going, keep_work=args.keep_work,
        resolve_only=frozenset(args.resolve_only),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    r = Rehearsal(settings)
    shutil.rmtree(settings.work, ignore_errors=True)
    settings.work.mkdir(parents=True)
    project = copy_project(settings.work / "project")
    try:
        jobs: list[dict] = []
        with r.step("plan", "plan"):
            jobs = plan_jobs(settings)
        r.summary.mapping["PyTorch's index"] = settings.torch_index_url or "pip's own configuration (torch==X+cuXYZ -> torch==X)"
        r.summary.mapping["each Python's environment"] = "a venv of this machine's CPython + the cached torch env of `wheelfactory build` (.pth)"
        r.summary.mapping["download-artifact"] = "a copy of each job's wheelhouse; attest and provenance are GitHub-only, not rehearsed"
        for container, here in r.summary.mapping.items():
            r.note(f"MAPPING: {container} -> {here}")
        wheels: list[Path] = []
        for job in jobs:
            r.note(f"== job {job['id']}: Pythons {', '.join(job['pythons'])}, targets {job['targets']}")
            wheels += rehearse_job(r, job, project)
        rehearse_release(r, jobs, wheels, project)
    except RehearsalFailed as e:
        r.note(f"STOPPED: {e} (would fail on GitHub; --keep-going runs the rest)")
    r.summary.seconds = round(time.monotonic() - r.started, 1)
    for jid, size in r.summary.peak_disk_bytes.items():
        r.note(f"peak disk {jid}: {cache.human_size(size)} (work folder + venvs)")
    for root, size in r.summary.torch_env_bytes.items():
        r.note(f"shared torch env {root}: {cache.human_size(size)}")
    text = json.dumps(asdict(r.summary), indent=2)
    if settings.json:
        settings.json.write_text(text + "\n")
    r.note(text)
    r.note(f"REHEARSAL {'PASSED' if r.summary.ok else 'FAILED'} in {r.summary.seconds:.0f}s")
    return 0 if r.summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
