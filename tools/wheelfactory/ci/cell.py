"""The steps cibuildwheel runs for each wheel of a CI cell (see cibw.py, which sets them up).

- ``repair_step``: cibuildwheel's repair command. The same finish stage as ``wheelfactory
  build`` (guard, repair without vendoring torch or CUDA, label, build record), with a
  record assembled from the same build variables (buildvars) that cibw-env gave the build;
- ``smoke``: the CPU import test cibuildwheel runs in its clean test venv.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from wheelfactory import (
    __version__,
    build,
    buildvars,
    finish,
    naming,
    platforms,
    source,
    wheelfile,
)
from wheelfactory.arch import GpuTarget
from wheelfactory.ci.cibw import ci_host, load_ci_table
from wheelfactory.errors import ToolMissingError, VerifyError
from wheelfactory.recipe import Recipe

log = logging.getLogger(__name__)

BUILD_START_ENV = "WHEELFACTORY_BUILD_START"  # epoch seconds, set by cibw-env's environment
_TOOLS = ("setuptools", "wheel", "ninja", "packaging", "build")


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def repair_step(
    wheel: Path,
    out_dir: Path,
    *,
    recipe: Recipe,
    torch: str,
    cuda: str,
    targets: Sequence[GpuTarget],
    work: Path,
    source_work: Path | None = None,
    cell: str | None = None,
    env: Mapping[str, str] = os.environ,
) -> Path:
    """Finish a wheel cibuildwheel built (in the build's Python, on the build host)."""
    platform = platforms.host()
    raw = naming.parse_wheel(wheel.name)
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    pin = recipe.torch_pin(_installed("torch") or torch)  # what the build compiled against
    changes = buildvars.build_changes(
        recipe, torch=pin.version, cuda=cuda, python=python, targets=targets,
        jobs=load_ci_table().max_jobs, host=ci_host(platform),
    )  # fmt: skip
    fixes = recipe.fixes_for(torch=pin.version, cuda=cuda, python=python, os=platform.os)
    timings = {}
    start = env.get(BUILD_START_ENV, "")
    if start.isdigit():
        timings["build"] = round(max(0.0, time.time() - int(start)), 1)
    prepared = source.read_marker(source_work) if source_work is not None else None
    try:
        nvcc = build.find_toolchain().nvcc_version
    except ToolMissingError:
        nvcc = None
    record = finish.new_record(
        recipe,
        upstream_version=raw.public_version,
        builder="cibuildwheel",
        platform=platform.name,
        torch=pin,
        cuda=cuda,
        python_tag=f"{raw.python_tags[0]}-{raw.abi_tags[0]}",
        targets=targets,
        changes=changes,
        fixes=fixes,
        prepared=prepared,
        # passed into the container by cibw-env
        index_url=naming.index_url(url, given_as=f"${naming.INDEX_URL_ENV}")
        if (url := env.get(naming.INDEX_URL_ENV))
        else None,
        nvcc=nvcc,
        python=sys.version.split()[0],
        tools={"wheelfactory": __version__, **{t: _installed(t) or "none" for t in _TOOLS}},
        timings=timings,
        cell=cell,
        ci_run=env.get("GITHUB_RUN_ID"),
    )
    return finish.finish(wheel, record, out_dir=out_dir, work=work).wheel


def smoke(wheel: Path, *, modules: Sequence[str] = ()) -> list[str]:
    """Import torch, then each extension module of the (installed) wheel, in this
    interpreter; return the modules imported. A failure names the module and the cause."""
    importlib.import_module("torch")  # torch's libraries must be loaded first
    names = list(modules) or list(wheelfile.read_wheel(wheel, check_hashes=False).extension_modules())
    if not names:
        raise VerifyError(f"{wheel.name}: no extension module found; pass --import MODULE")
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # ImportError, OSError (DLL load failed), ...
            first = str(e).splitlines()[0] if str(e) else ""
            msg = (
                f"{wheel.name}: import {name} failed: {type(e).__name__}: {first}; check the"
                " wheel's torch/CUDA label against the installed torch"
            )
            raise VerifyError(msg) from e
        log.info("imported %s", name)
    return names
