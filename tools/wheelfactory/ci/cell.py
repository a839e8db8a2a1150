"""The steps cibuildwheel runs for each wheel of a CI cell (see cibw.py, which sets them up).

- ``repair_step``: cibuildwheel's repair command. The same finish stage as ``wheelfactory
  build`` (guard, repair without vendoring torch or CUDA, label, build record), with a
  record assembled from the same build variables (buildvars) that cibw-env gave the build;
- ``smoke``: the CPU import test cibuildwheel runs in its clean test venv.

Both run in the factory's own Python (cibw.factory_python) and ask the build or test
Python (``python`` on cibuildwheel's PATH) what they need from it in a subprocess: that
Python may be older than wheelfactory supports.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wheelfactory import (
    __version__,
    _proc,
    build,
    buildvars,
    cudastub,
    finish,
    naming,
    pe,
    platforms,
    source,
    verify,
    wheelfile,
)
from wheelfactory.arch import GpuTarget
from wheelfactory.ci.cibw import ci_host, load_ci_table
from wheelfactory.errors import CommandFailedError, ToolMissingError, VerifyError
from wheelfactory.recipe import Recipe

log = logging.getLogger(__name__)

BUILD_START_ENV = "WHEELFACTORY_BUILD_START"  # epoch seconds, set by cibw-env's environment
_TOOLS = ("setuptools", "wheel", "ninja", "packaging", "build")


@dataclass(frozen=True, kw_only=True)
class BuildPython:
    """What the build record says about the interpreter a wheel was built with."""

    version: str  # "3.9.23"
    packages: Mapping[str, str | None]  # torch and _TOOLS -> installed version (None: absent)

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


# Runs in the build Python (3.9 included): stdlib only, and 3.8-era syntax.
_DESCRIBE = """
import importlib.metadata as m, json, platform, sys
def v(n):
    try:
        return m.version(n)
    except m.PackageNotFoundError:
        return None
print(json.dumps({"version": platform.python_version(), "packages": {n: v(n) for n in sys.argv[1:]}}))
"""


def describe_python(python: str) -> BuildPython:
    """Ask ``python`` (a path or a name on PATH) for its version and packages."""
    try:
        out = _proc.run([python, "-c", _DESCRIBE, "torch", *_TOOLS], echo=False).stdout
    except (ToolMissingError, CommandFailedError) as e:
        raise ToolMissingError(f"cannot ask the build Python {python!r} for its packages ({e}); pass --build-python PATH") from e
    data = json.loads(out)
    return BuildPython(version=data["version"], packages=data["packages"])


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
    build_python: str = sys.executable,
    env: Mapping[str, str] = os.environ,
) -> Path:
    """Finish a wheel cibuildwheel built with ``build_python``, on the build host."""
    platform = platforms.host()
    raw = naming.parse_wheel(wheel.name)
    built_by = describe_python(build_python)
    python = built_by.minor
    pin = recipe.torch_pin(built_by.packages["torch"] or torch)  # what the build compiled against
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
        python=built_by.version,
        tools={"wheelfactory": __version__, **{t: built_by.packages[t] or "none" for t in _TOOLS}},
        timings=timings,
        cell=cell,
        ci_run=env.get("GITHUB_RUN_ID"),
    )
    return finish.finish(wheel, record, out_dir=out_dir, work=work).wheel


# The NVIDIA driver's DLL on Windows: no stub stands in for it (see smoke).
DRIVER_DLL = "nvcuda.dll"


@dataclass(frozen=True, kw_only=True)
class SmokeReport:
    imported: tuple[str, ...]
    # module -> why it was not imported (Windows without a driver: it imports nvcuda.dll)
    not_imported: Mapping[str, str]


def _windows_driver_missing() -> bool:
    import ctypes

    try:
        ctypes.WinDLL(DRIVER_DLL)  # type: ignore[attr-defined,unused-ignore]
    except (OSError, AttributeError):
        return True
    return False


def _driver_modules(wheel: Path, names: Sequence[str], platform_: platforms.Platform) -> dict[str, str]:
    """The modules among ``names`` whose import table names nvcuda.dll, each with what was
    checked instead of importing it (read from the wheel's own files)."""
    found = {}
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            (module,) = wheelfile.extension_modules([member]) or ("",)
            if module not in names:
                continue
            try:
                dlls = pe.dll_imports(zf.read(member))
            except pe.PEFormatError as e:
                raise VerifyError(f"{wheel.name}: {member} is not a Windows DLL ({e}); rebuild the wheel for {platform_.name}") from e
            if DRIVER_DLL in (d.lower() for d in dlls):
                found[module] = f"imports {DRIVER_DLL} (no driver here): not imported; its import table lists {', '.join(dlls)}"
    return found


def smoke(
    wheel: Path, *, modules: Sequence[str] = (), python: str = "python", work: Path, env: Mapping[str, str] = os.environ
) -> SmokeReport:
    """Import torch, then each extension module of the wheel installed in ``python`` (by
    default the one on PATH: cibuildwheel's test venv), each in its own process.

    No NVIDIA driver on the machine (hosted runners): on Linux a stub libcuda.so.1 (the
    toolkit's, as verify uses) is on the loader path for these imports only; on Windows a
    module whose import table names nvcuda.dll is not imported (nothing stands in for the
    driver there) and the report says so; every other module is really imported."""
    names = list(modules) or list(wheelfile.read_wheel(wheel, check_hashes=False).extension_modules())
    if not names:
        raise VerifyError(f"{wheel.name}: no extension module found; pass --import MODULE")
    platform_ = platforms.host()
    stub_dir = None
    if platform_.driver_stubs and not verify.driver_installed():
        cuda_home = Path(env.get("CUDA_HOME") or platform_.cuda_home)
        stub_dir = cudastub.make_stub(cuda_home, work / "stubs")
    skipped = _driver_modules(wheel, names, platform_) if platform_.is_windows and _windows_driver_missing() else {}
    to_import = [n for n in names if n not in skipped]
    results = verify.run_imports(python, to_import, env=verify.with_driver_stub(env, stub_dir), cwd=work / "import-cwd")
    for r in results:
        if not r.ok:
            msg = (
                f"{wheel.name}: import {r.module} failed: {r.error}; check the"
                " wheel's torch/CUDA label against the installed torch"
            )
            raise VerifyError(msg)
    for module, why in skipped.items():
        log.info("%s: %s", module, why)
    return SmokeReport(imported=tuple(r.module for r in results), not_imported=skipped)
