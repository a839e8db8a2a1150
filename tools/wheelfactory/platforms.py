"""The platforms wheelfactory builds for, read from resources/platforms.toml.

One ``Platform`` per row: what the planner calls it (``linux-x86_64``), the wheel tags it
accepts, how cibuildwheel and GitHub Actions name it, which repairer fixes its wheels, and
where its CI build host keeps CUDA and scratch files. Other modules ask this one instead
of keeping tables of their own, so a new platform is one row (and perhaps a repairer).
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import platform as _platform
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from wheelfactory import resources
from wheelfactory.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_KEYS = (
    "os", "machine", "label", "wheel-tags", "plain-tag", "cibw-arch", "cibw-suffix", "runner",
    "image-option", "repairer", "pathsep", "scratch", "cuda-home", "nvcc", "nvcc-filter",
    "driver-stubs", "extension-suffixes",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Platform:
    name: str  # "linux-x86_64"
    os: str  # "linux", "windows"
    machine: str  # "x86_64", "aarch64", "amd64"
    label: str
    wheel_tags: tuple[str, ...]  # fnmatch patterns: "manylinux_*_x86_64"
    plain_tag: str  # before repair: "linux_x86_64"
    cibw_arch: str
    cibw_suffix: str
    runner: str
    image_option: str  # "" where cibuildwheel builds on the host (Windows)
    repairer: str
    pathsep: str
    scratch: str
    cuda_home: str
    nvcc: str
    nvcc_filter: str
    driver_stubs: str
    extension_suffixes: tuple[str, ...]

    @property
    def cpu(self) -> str:
        """The CPU as Linux names it ("x86_64" for Windows' "amd64")."""
        return _machine_key(self.machine)

    @property
    def is_windows(self) -> bool:
        return self.os == "windows"

    def matches_tag(self, tag: str) -> bool:
        """Whether a wheel platform tag ("manylinux_2_28_x86_64") belongs to this platform."""
        return any(fnmatch.fnmatchcase(tag, pattern) for pattern in self.wheel_tags)

    def _scratch(self, name: str) -> str:
        return f"{self.scratch.rstrip('/')}/{name}"

    @property
    def gpu_shim_dir(self) -> str:
        """Where CI's before-build step writes the no-GPU shim."""
        return self._scratch("wheelfactory-gpu-shim")

    @property
    def nvcc_filter_dir(self) -> str:
        return self._scratch("wheelfactory-nvcc-filter")

    @property
    def nvcc_filter_path(self) -> str:
        return f"{self.nvcc_filter_dir}/{self.nvcc_filter}"


def _parse(text: str, source: str) -> dict[str, Platform]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML ({e}); restore it from git") from e
    rows = data.get("platform")
    if set(data) != {"platform"} or not isinstance(rows, dict) or not rows:
        raise ConfigError(f"{source}: must hold only [platform.<name>] tables; restore it from git")
    out: dict[str, Platform] = {}
    for name, row in rows.items():
        if not isinstance(row, dict) or set(row) != set(_KEYS):
            got = sorted(row) if isinstance(row, dict) else row
            raise ConfigError(f"{source}: [platform.{name}] must have the keys {list(_KEYS)}, not {got}")
        values = {k.replace("-", "_"): row[k] for k in _KEYS}
        for key in ("wheel_tags", "extension_suffixes"):
            values[key] = tuple(values[key])
        if name != f"{values['os']}-{values['machine']}":
            raise ConfigError(f"{source}: [platform.{name}] must be named <os>-<machine>")
        out[name] = Platform(name=name, **values)
    return out


@cache
def table(path: Path = resources.PLATFORMS) -> dict[str, Platform]:
    """Every platform, in the table's order."""
    return _parse(path.read_text(encoding="utf-8"), str(path))


def names() -> tuple[str, ...]:
    return tuple(table())


def oses() -> tuple[str, ...]:
    """The operating systems of the table, each once: ("linux", "windows")."""
    return tuple(dict.fromkeys(p.os for p in table().values()))


def get(name: str) -> Platform:
    """The platform called ``name``; ConfigError with the nearest name otherwise."""
    found = table().get(name)
    if found is None:
        close = difflib.get_close_matches(name, names(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(names())}"
        raise ConfigError(f"platform {name!r} is unknown; {hint}")
    return found


def of_tag(tag: str, *, unrepaired: bool = False) -> Platform | None:
    """The platform a wheel platform tag belongs to, or None ("any", macOS, ...).
    ``unrepaired``: also the tag of a wheel no repairer has seen ("linux_x86_64")."""
    for p in table().values():
        if p.matches_tag(tag) or (unrepaired and tag == p.plain_tag):
            return p
    return None


def of_job(os_name: str, machine: str) -> Platform | None:
    return next((p for p in table().values() if (p.os, p.machine) == (os_name, machine)), None)


def host_os() -> str:
    """This machine's OS as the table names it ("linux", "windows"), else sys.platform."""
    if sys.platform == "win32":
        return "windows"
    return "linux" if sys.platform.startswith("linux") else sys.platform


# Names one CPU goes by on different systems (Windows says AMD64, macOS arm64).
_SAME_MACHINE = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}


def _machine_key(machine: str) -> str:
    return _SAME_MACHINE.get(machine.lower(), machine.lower())


HOST_ENV = "WHEELFACTORY_PLATFORM"


def host() -> Platform:
    """The platform of this machine ($WHEELFACTORY_PLATFORM names another: the tests run
    the Windows side of CI steps this way); ConfigError where wheelfactory builds nothing."""
    if os.environ.get(HOST_ENV):
        return get(os.environ[HOST_ENV])
    machine = _platform.machine()
    for p in table().values():
        if p.os == host_os() and _machine_key(p.machine) == _machine_key(machine):
            return p
    raise ConfigError(
        f"this machine ({host_os()} {machine}) is not a platform wheelfactory builds for;"
        f" build on one of {', '.join(names())}"
    )
