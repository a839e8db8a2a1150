"""Helpers for the index integration tests: a torch env, cheap venvs that hold it, installers.

Getting torch into a test venv without installing 5 GB each time:
- pip: a ``.pth`` file pointing at a torch env's site-packages; pip lists what is on
  sys.path, so it sees torch 2.14.1 as installed.
- uv does not: it reads only the venv's own site-packages folder, and skips symlinked
  ``*.dist-info`` folders (measured with uv 0.13.9). So a uv venv gets real copies of the
  torch env's ``*.dist-info`` folders (5.5 MB) and symlinks to everything else.
The torch env is the build helper's cached one ($WHEELFACTORY_CACHE/envs/cp311-torch2.14.1-cu130)
when it is ready, else one made here once with ``pip install torch==2.14.1``.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from wheelfactory import _proc

TORCH = os.environ.get("WHEELFACTORY_TEST_TORCH", "2.14.1")  # as conftest.SETTINGS builds for


def cache_dir() -> Path:
    return Path(os.environ.get("WHEELFACTORY_CACHE", "~/.cache/wheelfactory")).expanduser()


def torch_env() -> Path:
    """The root of a venv holding torch 2.14.1 for this Python (created once, then reused)."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    shared = cache_dir() / "envs" / f"{tag}-torch{TORCH}-cu130"
    if (shared / ".wheelfactory-ready.json").exists():
        return shared
    own = cache_dir() / "index-tests" / f"torch-{TORCH}-{tag}"
    if not (own / ".ready").exists():
        shutil.rmtree(own, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)
        _proc.run([base, "-m", "venv", own])
        _proc.run([own / "bin" / "python", "-m", "pip", "install", "-q", f"torch=={TORCH}"])
        (own / ".ready").write_text(TORCH)
    return own


def site_packages(env: Path) -> Path:
    out = _proc.run(
        [env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        echo=False,
    )
    return Path(out.stdout.strip())


def make_venv(path: Path, torch_site: Path, *, for_uv: bool) -> Path:
    """A venv (no pip) that holds the torch of ``torch_site``; return its python."""
    base = getattr(sys, "_base_executable", sys.executable)
    _proc.run([base, "-m", "venv", "--without-pip", path], echo=False)
    purelib = Path(
        sysconfig.get_paths(vars={"base": str(path), "platbase": str(path)})["purelib"]
    )
    if for_uv:
        for entry in torch_site.iterdir():
            if entry.name.endswith(".dist-info"):
                shutil.copytree(entry, purelib / entry.name, symlinks=True)
            elif not (purelib / entry.name).exists():
                (purelib / entry.name).symlink_to(entry)
    else:
        (purelib / "_torch_env.pth").write_text(f"{torch_site}\n")
    return path / "bin" / "python"


def installer_env(tmp: Path) -> dict[str, str]:
    """The environment for pip and uv: no user or machine configuration, no caches shared."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_NO_CACHE_DIR="1",
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(tmp / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
    )
    return env


def uv_bin() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except ImportError:
        return _proc.which("uv")


def pip_install(python: Path, args: list[str], env: dict[str, str]) -> str:
    return _proc.run([sys.executable, "-m", "pip", "--python", python, "install", *args], env=env).stdout


def uv_install(python: Path, args: list[str], env: dict[str, str]) -> str:
    return _proc.run([uv_bin(), "pip", "install", "--python", python, *args], env=env).stdout


def run_python(python: Path, code: str, env: dict[str, str] | None = None) -> str:
    """Run ``code``; return its last output line (torch warns on stderr, merged by _proc)."""
    out = _proc.run([python, "-W", "ignore", "-c", code], env=env, echo=False).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    return lines[-1] if lines else ""
