"""A build environment that holds exactly the requested torch, cached per Python/torch/CUDA.

Two kinds:

* cached: a venv under ``$WHEELFACTORY_CACHE/envs/cp311-torch2.14.1-cu130`` into which pip
  installs ``torch==<version>`` (from ``--torch-index-url``, or from pip's own configuration
  when that is ``""``) plus the build tools;
* system: when ``--python PATH`` already has the requested torch for the requested CUDA
  (a GPU machine with a preinstalled torch and no network), a ``--system-site-packages``
  venv of it; only build tools it lacks are installed.

A cached env is built in place under a file lock and marked ready at the end; an env
without the mark is removed and rebuilt, so an interrupted install never poisons the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelfactory import _proc, naming
from wheelfactory.cache import READY_MARK, cache_dir, tree_size
from wheelfactory.errors import ConfigError, NetworkError, ToolMissingError

log = logging.getLogger(__name__)

TORCH_INDEX_ENV = "WHEELFACTORY_TORCH_INDEX_URL"
# The build tools every env holds (pypa/build drives the build; ninja gives fast,
# parallel compiles and the [n/m] progress lines).
BUILD_TOOLS: tuple[str, ...] = ("setuptools", "wheel", "ninja", "packaging", "build")

_PROBE = r"""
import importlib.metadata as md, importlib.util, json, os, re, sys, sysconfig
def ver(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
torch_cuda = None
spec = importlib.util.find_spec("torch")
if spec and spec.submodule_search_locations:
    path = os.path.join(list(spec.submodule_search_locations)[0], "version.py")
    if os.path.exists(path):
        m = re.search(r"^cuda\b[^=]*=\s*['\"]([^'\"]+)['\"]", open(path).read(), re.M)
        torch_cuda = m.group(1) if m else None
print(json.dumps({
    "executable": sys.executable,
    "version": "{}.{}".format(*sys.version_info[:2]),
    "full_version": sys.version.split()[0],
    "tag": "cp{}{}".format(*sys.version_info[:2]) + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""),
    "purelib": sysconfig.get_paths()["purelib"],
    "torch": ver("torch"),
    "torch_cuda": torch_cuda,
    "tools": {n: ver(n) for n in TOOLS},
}))
"""


@dataclass(frozen=True, kw_only=True)
class Interpreter:
    """What a Python interpreter is and holds, read without importing torch."""

    executable: Path
    version: str  # "3.11"
    full_version: str  # "3.11.7"
    tag: str  # "cp311" (or "cp313t")
    purelib: Path
    torch: str | None  # "2.14.1+cu130"
    torch_cuda: str | None  # "13.0"
    tools: dict[str, str | None]

    def has_torch(self, torch: str, cuda: str) -> bool:
        """Whether this interpreter already holds torch ``torch`` built for CUDA ``cuda``."""
        if not self.torch or not self.torch_cuda:
            return False
        return Version(self.torch).public == Version(torch).public and _same_cuda(
            self.torch_cuda, cuda
        )


@dataclass(frozen=True, kw_only=True)
class BuildEnv:
    """A prepared environment: run its ``python`` to build; its torch is ``torch``."""

    root: Path
    python: Path
    site_packages: Path
    interpreter: Interpreter  # the env's own python, probed after preparation
    torch: str  # installed torch version, local label included ("2.14.1+cu130")
    torch_cuda: str  # "13.0"
    kind: str  # "cached" or "system"
    site_dirs: tuple[Path, ...]  # site.getsitepackages() of the env's python
    extra_bin: tuple[Path, ...] = ()  # system envs: the base interpreter's scripts (ninja)

    @property
    def bin_dir(self) -> Path:
        return self.python.parent

    @property
    def torch_dir(self) -> Path:
        return self.site_packages / "torch"

    def torch_paths(self) -> tuple[Path, ...]:
        """The env's site-packages dirs, its own first (system envs add the base's)."""
        return self.site_dirs

    def nvidia_include(self) -> Path | None:
        """torch's CUDA headers wheel dir (cuBLAS etc.), when torch brought one."""
        for site in self.torch_paths():
            for sub in ("nvidia/cu13/include", "nvidia/cuda_runtime/include"):
                if (site / sub).is_dir():
                    return site / sub
        return None


def _same_cuda(a: str, b: str) -> bool:
    try:
        va, vb = Version(a), Version(b)
    except InvalidVersion:
        return a == b
    return (va.major, va.minor) == (vb.major, vb.minor)


def site_dirs(python: Path) -> list[Path]:
    """Site-packages dirs of ``python``: site.getsitepackages() plus those on sys.path (.pth)."""
    code = (
        "import json, site, sys; d = list(site.getsitepackages());"
        " d += [p for p in sys.path if p.endswith(('site-packages', 'dist-packages')) and p not in d];"
        " print(json.dumps(d))"
    )
    out = _proc.run([python, "-c", code], echo=False).stdout
    return [Path(p) for p in json.loads(out.strip().splitlines()[-1])]


def default_torch_index_url(cuda: str) -> str:
    """PyTorch's index for CUDA ``cuda``: "13.0" -> https://download.pytorch.org/whl/cu130."""
    return f"https://download.pytorch.org/whl/{naming.cuda_tag(cuda)}"


def resolve_torch_index_url(option: str | None, cuda: str) -> str | None:
    """The index torch comes from: the option, else $WHEELFACTORY_TORCH_INDEX_URL, else
    PyTorch's per-CUDA index. "" (or "pip") means pip's own configuration: returns None."""
    value = option if option is not None else os.environ.get(TORCH_INDEX_ENV)
    if value is None:
        return default_torch_index_url(cuda)
    value = value.strip()
    return None if value in ("", "pip") else value


def resolve_python(spec: str) -> Path:
    """ "3.11" -> python3.11 on PATH; a path -> that interpreter. ToolMissingError otherwise."""
    if re.fullmatch(r"\d+\.\d+t?", spec):
        return Path(_proc.which(f"python{spec}"))
    path = Path(spec).expanduser()
    if not path.exists():
        found = shutil.which(spec)
        if found is None:
            raise ToolMissingError(
                f"Python interpreter {spec!r} not found: pass --python 3.11 or a path"
            )
        path = Path(found)
    return path


def probe(python: Path) -> Interpreter:
    """Ask ``python`` about itself (version, tag, torch) without importing torch."""
    code = f"TOOLS = {BUILD_TOOLS!r}\n" + _PROBE
    out = _proc.run([python, "-c", code], echo=False).stdout.strip().splitlines()[-1]
    data = json.loads(out)
    return Interpreter(
        executable=Path(data["executable"]),
        version=data["version"],
        full_version=data["full_version"],
        tag=data["tag"],
        purelib=Path(data["purelib"]),
        torch=data["torch"],
        torch_cuda=data["torch_cuda"],
        tools=data["tools"],
    )


def env_key(interp: Interpreter, torch: str, cuda: str) -> str:
    """The cache key of a cached env: "cp311-torch2.14.1-cu130"."""
    return f"{interp.tag}-torch{Version(torch).public}-{naming.cuda_tag(cuda)}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process at a time (filelock: fcntl on POSIX, msvcrt on Windows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield


def venv_python(root: Path) -> Path:
    """The interpreter of the venv at ``root`` (Scripts\\python.exe on Windows)."""
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _pip_install(python: Path, requirements: list[str], *, index_url: str | None) -> None:
    argv: list[str | os.PathLike[str]] = [
        python,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
    ]
    if index_url is not None:
        argv += ["--index-url", index_url]
    _proc.run([*argv, *requirements])


def _check_env(root: Path, torch: str, cuda: str, kind: str, base: Interpreter) -> BuildEnv:
    python = venv_python(root)
    interp = probe(python)
    if not interp.has_torch(torch, cuda):
        msg = (
            f"the build env {root} holds torch {interp.torch} (CUDA {interp.torch_cuda}), not"
            f" {torch} for CUDA {cuda}: check --torch-index-url serves torch=={torch} for CUDA {cuda}"
        )
        raise ConfigError(msg)
    missing = [t for t, v in interp.tools.items() if v is None]
    if missing:
        msg = f"the build env {root} lacks {', '.join(missing)}: pip install them into it or delete it"
        raise ConfigError(msg)
    return BuildEnv(
        root=root,
        python=python,
        site_packages=interp.purelib,
        interpreter=interp,
        torch=interp.torch or torch,
        torch_cuda=interp.torch_cuda or cuda,
        kind=kind,
        site_dirs=tuple(site_dirs(python)),
        extra_bin=(base.executable.parent,) if kind == "system" else (),
    )


def prepare_env(
    *,
    python: Path,
    torch: str,
    cuda: str,
    index_url: str | None,
    cache: Path | None = None,
) -> BuildEnv:
    """Return a build env with torch ``torch`` for CUDA ``cuda``, creating it if needed."""
    cache = cache or cache_dir()
    base = probe(python)
    if base.has_torch(torch, cuda):
        digest = hashlib.sha256(str(base.executable).encode()).hexdigest()[:10]
        root = cache / "envs" / f"system-{digest}-{env_key(base, torch, cuda)}"
        kind = "system"
    else:
        root = cache / "envs" / env_key(base, torch, cuda)
        kind = "cached"
    with _locked(root.with_name(root.name + ".lock")):
        mark = root / READY_MARK
        if mark.exists():
            log.info("build env: reusing %s", root)
            mark.touch()  # last used: `wheelfactory cache prune --older-than` reads it
            return _check_env(root, torch, cuda, kind, base)
        if root.exists():
            log.info("build env: removing incomplete %s", root)
            shutil.rmtree(root)
        if kind == "cached" and index_url is not None:
            check_reachable(index_url, torch)
        log.info("build env: creating %s (%s)", root, kind)
        try:
            env = _create_env(root, base, kind, torch, cuda, index_url)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)  # nothing half-made stays in the cache
            raise
        log.info(
            "build env: created %s (%.1f GB; `wheelfactory cache` lists and removes envs)",
            root, tree_size(root) / 1e9,
        )  # fmt: skip
        return env


def _create_env(
    root: Path, base: Interpreter, kind: str, torch: str, cuda: str, index_url: str | None
) -> BuildEnv:
    """A venv at ``root`` with torch and the build tools, marked ready when it checks out."""
    venv_args: list[str | os.PathLike[str]] = [base.executable, "-m", "venv"]
    if kind == "system":
        venv_args.append("--system-site-packages")
    _proc.run([*venv_args, root])
    env_python = venv_python(root)
    if kind == "system":
        # --system-site-packages sees the BASE interpreter's site-packages only; when
        # --python is itself a venv (or has extra .pth dirs), point at its dirs too.
        purelib = Path(
            _proc.run(
                [
                    env_python,
                    "-c",
                    "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                ],
                echo=False,
            ).stdout.strip()
        )
        (purelib / "_wheelfactory_base.pth").write_text(
            "".join(f"{p}\n" for p in site_dirs(base.executable))
        )
    if kind == "cached":
        _pip_install(env_python, [f"torch=={Version(torch).public}"], index_url=index_url)
        missing = list(BUILD_TOOLS)
    else:
        missing = [t for t, v in base.tools.items() if v is None]
    if missing:
        # Build tools come from pip's own configuration (PyPI or a mirror).
        _pip_install(env_python, missing, index_url=None)
    env = _check_env(root, torch, cuda, kind, base)
    (root / READY_MARK).write_text(
        json.dumps({"torch": env.torch, "cuda": env.torch_cuda, "python": str(base.executable)})
    )
    return env


def check_reachable(index_url: str, torch: str, timeout: float = 5.0) -> None:
    """Fail in seconds, naming the host and the option to use, when torch's index is out of
    reach (pip would retry for minutes, then blame some dependency). An HTTP error is an
    answer: pip reports what the index said."""
    if urllib.parse.urlsplit(index_url).scheme not in ("http", "https"):
        return
    try:
        urllib.request.urlopen(index_url.rstrip("/") + "/torch/", timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as e:
        host = urllib.parse.urlsplit(index_url).hostname
        reason = getattr(e, "reason", e)
        raise NetworkError(
            f"cannot reach {host} for torch {torch} ({reason}): pass --torch-index-url '' to take"
            " torch from pip's configuration, or --torch-index-url URL of an index that has it"
        ) from e


# --------------------------------------------------------------- torch's CUDA, before download

# torch's own CUDA runtime requirement names the CUDA it is built for: PyPI's torch 2.10
# "nvidia-cuda-runtime-cu12==12.8.90", torch 2.14 "cuda-toolkit[cudart,...]==13.0.3"
_CUDA_RUNTIME_DISTS = ("cuda-toolkit", "nvidia-cuda-runtime", "nvidia-cuda-runtime-cu12",
                       "nvidia-cuda-runtime-cu13", "nvidia-cuda-runtime-cu11")  # fmt: skip


def cuda_of_torch(version: str, requires_dist: list[str], *, python: str) -> str | None:
    """The CUDA a torch distribution is built for, from its metadata: the local label
    ("2.10.0+cu128" -> "12.8"), else the CUDA runtime it requires; None: a CPU build."""
    from packaging.requirements import InvalidRequirement, Requirement

    local = Version(version).local or ""
    if re.fullmatch(r"cu\d+\d", local):
        return naming.cuda_from_tag(local)
    for text in requires_dist:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker and not req.marker.evaluate({"python_version": python, "extra": ""}):
            continue
        pins = [s.version for s in req.specifier if s.operator in ("==", "===", "~=")]
        if canonicalize_name(req.name) in _CUDA_RUNTIME_DISTS and pins:
            major, minor = (pins[0].split(".") + ["0"])[:2]
            return f"{major}.{minor}"
    return None


def check_torch_cuda(
    *, python: Path, torch: str, cuda: str, index_url: str | None, cache: Path | None = None
) -> None:
    """Refuse a torch whose CUDA is not ``cuda`` before the env is made: pip's dry run reads
    only torch's metadata (seconds), where installing it downloads gigabytes first. Nothing
    to check when the env exists or ``python`` already holds that torch."""
    base = probe(python)
    root = (cache or cache_dir()) / "envs" / env_key(base, torch, cuda)
    if base.has_torch(torch, cuda) or (root / READY_MARK).exists():
        return
    if index_url is not None:
        check_reachable(index_url, torch)  # pip would retry an unreachable host for minutes
    if index_url == default_torch_index_url(cuda):
        return  # PyTorch's per-CUDA index holds only that CUDA's builds
    found = torch_on_index(torch, cuda, python=base.version, index_url=index_url)
    if found is None:
        return
    version, found_cuda = found
    if found_cuda is not None and _same_cuda(found_cuda, cuda):
        return
    where = index_url or "pip's configured index"
    built = f"CUDA {found_cuda}" if found_cuda else "no CUDA (a CPU build)"
    instead = default_torch_index_url(cuda)
    fixes = [f"--torch-index-url {instead} (PyTorch's CUDA {cuda} builds)"] if index_url != instead else []
    fixes += [f"--cuda {found_cuda}"] if found_cuda else []
    fix = " or ".join(fixes) or "--torch-index-url URL of an index with a CUDA build"
    raise ConfigError(f"torch {version} from {where} is built for {built}, not CUDA {cuda}: pass {fix}")


def torch_on_index(
    torch: str, cuda: str, *, python: str, index_url: str | None
) -> tuple[str, str | None] | None:
    """(version, CUDA) of the torch pip would install for Python ``python`` from
    ``index_url`` (None: pip's own configuration), by a metadata-only dry run; None when
    pip cannot say (the install then reports why)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="wheelfactory-torch-") as tmp:
        report = Path(tmp) / "report.json"
        argv: list[str | os.PathLike[str]] = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps",
            "--ignore-installed", "--only-binary", ":all:", "--python-version", python,
            "--disable-pip-version-check", "--report", report,
        ]  # fmt: skip
        if index_url is not None:
            argv += ["--index-url", index_url]
        log.info("build env: asking pip which CUDA torch %s is built for", torch)
        proc = _proc.run([*argv, f"torch=={Version(torch).public}"], echo=False, check=False)
        if proc.returncode != 0 or not report.is_file():
            if "No matching distribution found" in proc.stdout:
                where = index_url or "pip's configured index"
                raise ConfigError(
                    f"{where} has no torch {torch} for Python {python}: pass --torch-index-url"
                    f" {default_torch_index_url(cuda)} or the URL of an index that has it"
                )
            log.info("build env: pip could not say (%s); installing tells", proc.stdout.strip()[-200:])
            return None
        installs = json.loads(report.read_text()).get("install", [])
    if not installs:
        return None
    meta = installs[0]["metadata"]
    version = str(meta["version"])
    return version, cuda_of_torch(version, list(meta.get("requires_dist", [])), python=python)


def running_python_tag() -> str:
    return f"cp{sys.version_info[0]}{sys.version_info[1]}"
