"""How wheelfactory labels wheels and lays out index views. One scheme, documented here.

A wheel built for CUDA 13.0 and torch 2.14.x carries the local version label
``cu130torch2.14``: ``sageattention-2.2.0+cu130torch2.14-cp311-cp311-manylinux_2_34_x86_64.whl``.
It declares ``Requires-Dist: torch==2.14.*`` and is listed in the strict view
``cu130/torch2.14/simple/`` and in the per-CUDA view ``cu130/simple/``.

A stable-ABI wheel (one build loads on every later torch) is labelled ``cu130torchabi``
and declares ``torch>=<floor>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from wheelfactory.errors import ConfigError

_LABEL_RE = re.compile(r"^cu(\d+)(\d)torch(?:(\d+)\.(\d+)|(abi))$")
STABLE_ABI = "abi"


def cuda_tag(cuda: str) -> str:
    """"13.0" -> "cu130", "12.8" -> "cu128"."""
    v = Version(cuda)
    return f"cu{v.major}{v.minor}"


def cuda_from_tag(tag: str) -> str:
    """"cu130" -> "13.0"; "cu128" -> "12.8"."""
    m = re.fullmatch(r"cu(\d+)(\d)", tag)
    if not m:
        raise ConfigError(f"{tag!r} is not a CUDA tag like cu128 or cu130")
    return f"{m.group(1)}.{m.group(2)}"


def torch_minor(torch: str) -> str:
    """"2.14.1+cu130" -> "2.14"."""
    try:
        v = Version(torch)
    except InvalidVersion as e:
        raise ConfigError(f"{torch!r} is not a torch version like 2.14.1") from e
    return f"{v.major}.{v.minor}"


def local_label(cuda: str, torch: str) -> str:
    """The local version label: ("13.0", "2.14.1") -> "cu130torch2.14"."""
    minor = STABLE_ABI if torch == STABLE_ABI else torch_minor(torch)
    return f"{cuda_tag(cuda)}torch{minor}"


def labelled_version(version: str, cuda: str, torch: str) -> str:
    """("2.2.0", "13.0", "2.14.1") -> "2.2.0+cu130torch2.14" (an upstream local part is replaced)."""
    public = Version(version).public
    return f"{public}+{local_label(cuda, torch)}"


def torch_requirement(torch: str, *, stable_abi_floor: str | None = None) -> str:
    """The Requires-Dist a wheel built against ``torch`` must carry."""
    if stable_abi_floor:
        return f"torch>={stable_abi_floor}"
    return f"torch=={torch_minor(torch)}.*"


def view_path(cuda: str, torch: str | None = None) -> str:
    """The one rule for index views: the strict view "cu130/torch2.14" of a torch
    ("2.14.1+cu130", "2.14"), the stable-ABI view "cu130/torchabi" (torch "abi"), or the
    per-CUDA view "cu130" when torch is None. which.py, guard_template.py and landing.js
    keep copies (they run where wheelfactory is not installed); tests/unit/test_view_path.py
    checks each against this one."""
    if torch is None:
        return cuda_tag(cuda)
    minor = STABLE_ABI if torch == STABLE_ABI else torch_minor(torch)
    return f"{cuda_tag(cuda)}/torch{minor}"


@dataclass(frozen=True)
class WheelLabel:
    """What a wheel's filename says about it."""

    filename: str
    project: str  # normalized name
    version: str  # full version, local label included
    public_version: str
    cuda: str | None  # "13.0", None for a wheel without our label
    torch: str | None  # "2.14", "abi", or None
    build_tag: str | None
    python_tags: tuple[str, ...]  # ("cp311",)
    abi_tags: tuple[str, ...]
    platform_tags: tuple[str, ...]

    @property
    def is_labelled(self) -> bool:
        return self.cuda is not None


def parse_wheel(filename: str) -> WheelLabel:
    """Parse a wheel filename; raise ConfigError with the expected form if it is not one."""
    try:
        name, version, build, tags = parse_wheel_filename(filename)
    except Exception as e:  # packaging raises InvalidWheelFilename / InvalidVersion
        msg = f"{filename!r} is not a valid wheel filename ({e}); expected name-version-pyXY-abi-platform.whl"
        raise ConfigError(msg) from e
    cuda = torch = None
    if version.local:
        m = _LABEL_RE.match(version.local)
        if m:
            cuda = f"{m.group(1)}.{m.group(2)}"
            torch = STABLE_ABI if m.group(5) else f"{m.group(3)}.{m.group(4)}"
    return WheelLabel(
        filename=filename,
        project=str(canonicalize_name(name)),
        version=str(version),
        public_version=version.public,
        cuda=cuda,
        torch=torch,
        build_tag="".join(str(p) for p in build) if build else None,
        python_tags=tuple(sorted({t.interpreter for t in tags})),
        abi_tags=tuple(sorted({t.abi for t in tags})),
        platform_tags=tuple(sorted({t.platform for t in tags})),
    )
