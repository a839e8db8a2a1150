"""GPU targets ("9.0a", "12.0f", "8.9+PTX"): parsing, and which CUDA can compile them.

The table of targets and CUDA versions is data (resources/gpu-targets.toml); this module
only reads it and answers questions about it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import cache

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from wheelfactory import resources
from wheelfactory.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_TARGET_RE = re.compile(r"^(?:sm_)?(\d+)\.?(\d)([af]?)(\+PTX)?$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class GpuTarget:
    """One entry of TORCH_CUDA_ARCH_LIST: compute capability, variant, PTX or not."""

    major: int
    minor: int
    suffix: str = ""  # "", "a" (arch-specific) or "f" (family-specific)
    ptx: bool = False  # also embed PTX, JIT-compiled by the driver on later GPUs

    @classmethod
    def parse(cls, text: str) -> GpuTarget:
        """Accept "9.0a", "90a", "sm_90a", "8.9+PTX"; raise ConfigError otherwise."""
        m = _TARGET_RE.match(text.strip())
        if not m:
            msg = f"GPU target {text!r} is not of the form 9.0, 9.0a, 12.0f or 8.9+PTX"
            raise ConfigError(msg)
        major, minor, suffix, ptx = m.groups()
        target = cls(int(major), int(minor), suffix.lower(), ptx is not None)
        if target.ptx and target.suffix == "a":
            msg = (
                f"GPU target {text!r}: PTX of an arch-specific target runs on no other GPU;"
                f" use {target.major}.{target.minor}+PTX or drop +PTX"
            )
            raise ConfigError(msg)
        return target

    @property
    def arch(self) -> str:
        """The target without +PTX: "9.0a"."""
        return f"{self.major}.{self.minor}{self.suffix}"

    @property
    def sm(self) -> str:
        """The SASS name cuobjdump prints: "sm_90a"."""
        return f"sm_{self.major}{self.minor}{self.suffix}"

    @property
    def capability(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def __str__(self) -> str:
        return self.arch + ("+PTX" if self.ptx else "")

    def sass_runs_on(self, capability: tuple[int, int]) -> bool:
        """Whether this target's SASS (machine code) runs on a GPU of ``capability``."""
        major, minor = capability
        if self.suffix == "a":
            return capability == self.capability
        if self.suffix == "f":
            return major == self.major and minor >= self.minor
        return major == self.major and minor >= self.minor

    def runs_on(self, capability: tuple[int, int]) -> bool:
        """SASS that fits, or PTX the driver can JIT for a newer GPU."""
        return self.sass_runs_on(capability) or (self.ptx and capability >= self.capability)


@dataclass(frozen=True)
class TargetSupport:
    """One row of resources/gpu-targets.toml."""

    arch: str
    gpus: str
    min_cuda: Version
    max_cuda: Version | None  # first CUDA release that no longer compiles it

    def compiles_with(self, cuda: Version) -> bool:
        return cuda >= self.min_cuda and (self.max_cuda is None or cuda < self.max_cuda)


@cache
def target_table() -> dict[str, TargetSupport]:
    table: dict[str, TargetSupport] = {}
    for row in _table_data()["target"]:
        max_cuda = row.get("max-cuda")
        table[row["arch"]] = TargetSupport(
            arch=row["arch"],
            gpus=row["gpus"],
            min_cuda=Version(row["min-cuda"]),
            max_cuda=Version(max_cuda) if max_cuda else None,
        )
    return table


def parse_targets(texts: str | list[str] | tuple[str, ...]) -> tuple[GpuTarget, ...]:
    """Parse "9.0a,12.0a" / "9.0a;12.0a" / a list into sorted, unique targets."""
    if isinstance(texts, str):
        texts = [t for t in re.split(r"[,;\s]+", texts) if t]
    return tuple(sorted({GpuTarget.parse(t) for t in texts}))


def why_not_buildable(target: GpuTarget, cuda: str | Version) -> str | None:
    """None if CUDA ``cuda`` compiles ``target``, else a sentence that says why not."""
    cuda_v = Version(str(cuda))
    row = target_table().get(target.arch)
    if row is None:
        known = ", ".join(target_table())
        return f"{target.arch} is not a known GPU target (known: {known})"
    if cuda_v < row.min_cuda:
        return f"{target.arch} ({row.gpus}) needs CUDA >= {row.min_cuda}, not {cuda_v}"
    if row.max_cuda is not None and cuda_v >= row.max_cuda:
        return f"CUDA {row.max_cuda} and later no longer compile {target.arch} ({row.gpus})"
    return None


def check_buildable(targets: tuple[GpuTarget, ...], cuda: str | Version) -> None:
    """Raise ConfigError naming the first target that CUDA ``cuda`` cannot compile."""
    for target in targets:
        reason = why_not_buildable(target, cuda)
        if reason:
            raise ConfigError(f"{reason}: drop it or choose another --cuda")


def torch_arch_list(targets: tuple[GpuTarget, ...]) -> str:
    """The value of TORCH_CUDA_ARCH_LIST for these targets: "9.0a;12.0a"."""
    return ";".join(str(t) for t in targets)


@cache
def _table_data() -> dict:
    with resources.GPU_TARGETS.open("rb") as f:
        return tomllib.load(f)


@cache
def known_cuda_releases() -> tuple[Version, ...]:
    return tuple(sorted(Version(v) for v in _table_data()["cuda-releases"]))


COMPRESS_MODES = ("size", "balance", "speed", "none")  # what nvcc --compress-mode takes


def compress_flag_from() -> Version:
    """The first CUDA release whose nvcc has --compress-mode."""
    return Version(_table_data()["compression"]["flag-from-cuda"])


def default_compress_mode(cuda: str | Version) -> str | None:
    """The --compress-mode a build for ``cuda`` uses by default (None: pass no flag)."""
    for rule in _table_data()["compression"]["auto"]:
        if SpecifierSet(rule["cuda"]).contains(str(cuda), prereleases=True):
            return str(rule["mode"])
    return None
