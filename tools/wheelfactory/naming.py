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


@dataclass(frozen=True)
class TorchPin:
    """The torch a wheel is built against, and what follows from it. Made once (by
    ``check_request``, the CI cell from the installed torch, or a build record), then
    carried: nothing else derives a label, a minor or a requirement from a torch string.

    ``version``: the public torch version compiled against ("2.14.1"). ``floor``: for a
    stable-ABI wheel, the oldest torch minor it loads on ("2.10"); None for a wheel bound to
    one torch minor.
    """

    version: str
    floor: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", _public_torch(self.version))
        if self.floor is not None:
            if not re.fullmatch(r"\d+\.\d+", self.floor):
                raise ConfigError(f"stable-ABI floor {self.floor!r} must be a torch minor like 2.10")
            if Version(self.minor) < Version(self.floor):
                raise ConfigError(
                    f"torch {self.version} is older than the stable-ABI floor {self.floor}:"
                    f" pass --torch {self.floor}.0 or newer"
                )

    @property
    def minor(self) -> str:
        """"2.14" """
        return torch_minor(self.version)

    @property
    def is_stable_abi(self) -> bool:
        return self.floor is not None

    @property
    def label(self) -> str:
        """The torch part of the version label: the minor ("2.14"), or "abi"."""
        return STABLE_ABI if self.floor is not None else self.minor

    @property
    def requirement(self) -> str:
        """The Requires-Dist the wheel carries: "torch==2.14.*", or "torch>=2.10"."""
        return f"torch>={self.floor}" if self.floor is not None else f"torch=={self.minor}.*"

    def labelled_version(self, version: str, cuda: str) -> str:
        """("2.2.0", "13.0") -> "2.2.0+cu130torch2.14" (an upstream local part is replaced)."""
        return f"{Version(version).public}+{cuda_tag(cuda)}torch{self.label}"


def _public_torch(torch: str) -> str:
    """"2.14.1+cu130" -> "2.14.1", refusing what is not a torch version in one line."""
    torch_minor(torch)  # the one check of a torch version's form
    return Version(torch).public


INDEX_URL_ENV = "WHEELFACTORY_INDEX_URL"
# What an index root may hold: it is printed into pip commands that users paste into a
# shell, the landing page and which.py, so nothing a shell or a terminal would act on
# ($, `, ;, |, &, quotes, spaces, globs, escapes) is accepted.
_INDEX_URL_RE = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%+=,:/-]*)?")


def index_url(value: str, *, given_as: str = "--index-url") -> str:
    """The index's public root URL, checked where it is first given (a flag, the
    environment, a manifest): http(s), a host, a path of plain URL characters."""
    url = value.strip()
    if not _INDEX_URL_RE.fullmatch(url):
        shown = value[:200] if value.isprintable() else ascii(value)[:200]
        raise ConfigError(
            f"{given_as} {shown!r} is not a plain http(s) URL (a host, a port, a path of letters,"
            " digits and ._~%+=,:/-): fix --index-url to the index root, e.g. https://example.org/wheels/"
        )
    return url


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
