"""The torch release table (resources/torch-releases.toml): load, validate, dump.

Which wheels must exist is a function of the recipes and of this table: for every torch
release, the CUDA variants PyTorch ships, and per variant the platforms and CPython
versions ("3.13t" = free-threaded) it has wheels for.

``dump`` is the table's one canonical writer: ``wheelfactory watch`` and
scripts/update_torch_releases.py write through it, and tests/unit/test_releases.py checks
that the file in the repo round-trips through ``load`` + ``dump`` unchanged. Edit the
file by hand only in that canonical form (or edit, then run the script to re-canonicalize).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from wheelfactory import atomicfile, naming, platforms, resources
from wheelfactory.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TABLE_VERSION = 1
_PYTHON_RE = re.compile(r"^3\.(\d+)(t?)$")
_CUDA_RE = re.compile(r"^\d+\.\d+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Written at the top of the file by ``dump`` (TOML comments do not survive a load, so the
# writer owns them). Per-release sources live in each release's ``sources`` key.
HEADER = """\
# Torch releases and the CUDA builds PyTorch ships for them. Canonical form: written by
# wheelfactory.releases.dump (via `wheelfactory watch` or scripts/update_torch_releases.py);
# tests/unit/test_releases.py checks that this file round-trips unchanged.
#
# [[release]]           one final torch release (every patch release is kept; planning uses
#                       the newest patch of each minor, since wheels are per torch minor)
#   pythons             CPython versions with wheels ("3.13t" = free-threaded)
#   pypi-cuda           the CUDA build PyPI serves for Linux (others: PyTorch's own index)
#   sources             where the facts come from (see the key below)
# [[release.variant]]   one CUDA variant on some platforms; a variant's own `pythons`
#                       overrides the release's. A (cuda, platform) pair appears once.
#
# Sources:
#   pypi                https://pypi.org/pypi/torch/json (versions, upload dates, the
#                       CPython and platform tags of every wheel; read 2026-11)
#   release-md          pytorch/pytorch RELEASE.md "Release Compatibility Matrix"
#                       (rows added in pytorch/pytorch#170603 for 2.10, #187075 for 2.13,
#                       #194367 for 2.14)
#   pt-194374           pytorch/pytorch#194374 and pytorch/test-infra#8601: "CUDA 13.4 is
#                       not shipping in the 2.14 release" (dropped from release/2.14,
#                       x86_64 and aarch64; it was Linux-only, CUDA_ARCHES_NO_WINDOWS)
#   pt-196560           pytorch/pytorch#196560: CUDA 13.4 GA builds on main (2.15 branch
#                       source), Windows builds split off
#   shared-ref          shared/reference/torch-and-cuda.md (project notes from PyTorch's
#                       binary build matrix history)
#   watch               written by `wheelfactory watch` from PyTorch's index listings
"""


def python_key(python: str) -> tuple[int, int, int]:
    """Sort key for "3.9" < "3.13" < "3.13t" < "3.14"."""
    m = _PYTHON_RE.match(python)
    if not m:
        raise ConfigError(f"{python!r} is not a CPython version like 3.12 or 3.13t")
    return (3, int(m.group(1)), 1 if m.group(2) else 0)


def is_free_threaded(python: str) -> bool:
    return python.endswith("t")


def base_python(python: str) -> str:
    """ "3.13t" -> "3.13"."""
    return python.rstrip("t")


def cuda_key(cuda: str) -> tuple[int, int]:
    major, minor = cuda.split(".")
    return (int(major), int(minor))


def platform_key(platform: str) -> int:
    return platforms.names().index(platform)


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One CUDA build of a torch release on some platforms."""

    cuda: str  # "12.8"
    platforms: tuple[str, ...]
    pythons: tuple[str, ...] | None = None  # None: the release's pythons


@dataclass(frozen=True, kw_only=True)
class TorchRelease:
    version: str  # full, final: "2.8.0"
    released: str | None = None  # "2025-08-06" (first upload to PyPI)
    pythons: tuple[str, ...]
    pypi_cuda: str | None = None
    variants: tuple[Variant, ...]
    sources: tuple[str, ...] = ()
    note: str = ""

    @cached_property
    def parsed(self) -> Version:
        return Version(self.version)

    @property
    def minor(self) -> str:
        """ "2.8.0" -> "2.8"."""
        return naming.torch_minor(self.version)

    def pythons_of(self, variant: Variant) -> tuple[str, ...]:
        return variant.pythons if variant.pythons is not None else self.pythons

    def builds(self) -> Iterator[tuple[str, str, str]]:
        """Every (cuda, platform, python) that PyTorch ships for this release, sorted."""
        out = [
            (v.cuda, platform, python)
            for v in self.variants
            for platform in v.platforms
            for python in self.pythons_of(v)
        ]
        out.sort(key=lambda b: (cuda_key(b[0]), platform_key(b[1]), python_key(b[2])))
        return iter(out)

    @property
    def cudas(self) -> tuple[str, ...]:
        return tuple(sorted({v.cuda for v in self.variants}, key=cuda_key))


@dataclass(frozen=True, kw_only=True)
class ReleaseTable:
    releases: tuple[TorchRelease, ...]  # sorted by version
    version: int = TABLE_VERSION

    def get(self, version: str) -> TorchRelease | None:
        for r in self.releases:
            if r.version == version:
                return r
        return None

    def planning_releases(self) -> tuple[TorchRelease, ...]:
        """The newest patch release of each torch minor: wheels are per minor, so a newer
        patch supersedes the older ones for planning (they stay in the table)."""
        newest: dict[str, TorchRelease] = {}
        for r in self.releases:
            if r.minor not in newest or r.parsed > newest[r.minor].parsed:
                newest[r.minor] = r
        return tuple(sorted(newest.values(), key=lambda r: r.parsed))

    def pythons(self) -> tuple[str, ...]:
        """Every CPython some torch release ships wheels for, oldest first ("3.13t" after 3.13)."""
        found = {p for r in self.releases for v in r.variants for p in r.pythons_of(v)}
        return tuple(sorted(found, key=python_key))

    @property
    def cudas(self) -> tuple[str, ...]:
        return tuple(sorted({c for r in self.releases for c in r.cudas}, key=cuda_key))

    def check_build(self, torch: str, cuda: str) -> None:
        """Refuse, before anything is downloaded, a torch the table does not know or a CUDA
        it was not built for, naming the nearest real ones. Pre-releases and local builds
        (2.15.0.dev20261101, 2.14.1+mine) are not in the table and pass."""
        try:
            wanted = Version(torch)
        except InvalidVersion as e:
            raise ConfigError(f"--torch {torch!r} is not a version: pass a release like 2.14.1") from e
        if wanted.is_prerelease or wanted.is_devrelease or wanted.local:
            return
        release = self.get(torch)
        if release is None:
            near = ", ".join(r.version for r in self.nearest(wanted))
            raise ConfigError(
                f"torch {torch} is not a torch release (nearest: {near}); pass one of those, or"
                " run `wheelfactory watch` if it came out after the release table was updated"
            )
        if cuda not in release.cudas:
            raise ConfigError(
                f"torch {torch} has no CUDA {cuda} build (it has {', '.join(release.cudas)}):"
                " pass one of those as --cuda, with the matching nvcc"
            )

    def check_selection(self, text: str, spec: SpecifierSet) -> None:
        """Refuse a --torch selection (``text``, parsed as ``spec``) that selects no release
        of the table, naming the nearest real ones: a typo like 2.91 would otherwise plan
        nothing and pass."""
        if not text.strip() or any(spec.contains(r.version, prereleases=True) for r in self.releases):
            return
        number = re.search(r"\d+(\.\d+)*", text)
        near = self.nearest(Version(number.group())) if number else self.releases[-1:]
        raise ConfigError(
            f"--torch {text!r} selects no torch release of the table (nearest:"
            f" {', '.join(r.version for r in near)}); pass one of those, or run"
            " `wheelfactory watch` if it came out after the release table was updated"
        )

    def nearest(self, wanted: Version, count: int = 3) -> tuple[TorchRelease, ...]:
        """Releases of the closest minors to ``wanted``, the newest patch first."""

        def closeness(r: TorchRelease) -> tuple[int, list[int]]:
            minors_apart = abs((r.parsed.major - wanted.major) * 100 + r.parsed.minor - wanted.minor)
            return (minors_apart, [-part for part in r.parsed.release])  # then newest first

        return tuple(sorted(self.releases, key=closeness)[:count])

    def with_release(self, release: TorchRelease) -> ReleaseTable:
        """A new table with ``release`` added or replacing the one of the same version."""
        kept = [r for r in self.releases if r.version != release.version]
        return replace(self, releases=_sorted_releases([*kept, release]))


def _sorted_releases(releases: Iterable[TorchRelease]) -> tuple[TorchRelease, ...]:
    return tuple(sorted(releases, key=lambda r: Version(r.version)))


# --------------------------------------------------------------------------- validation


def _fail(where: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{where}: {problem}; {fix}")


def _str_list(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(
            where, f"{key} must be a list of strings, not {value!r}", f'write {key} = ["..."]'
        )
    return tuple(value)


def _check_keys(where: str, table: Any, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(table, dict):
        raise _fail(where, f"must be a table, not {type(table).__name__}", "fix the table")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r}", f"allowed keys: {', '.join(allowed)}")
    return table


def _pythons(where: str, value: Any) -> tuple[str, ...]:
    pythons = _str_list(where, "pythons", value)
    for p in pythons:
        if not _PYTHON_RE.match(p):
            raise _fail(where, f"python {p!r} is not like 3.12 or 3.13t", "fix the entry")
    if len(set(pythons)) != len(pythons):
        raise _fail(where, "pythons lists a version twice", "remove the duplicate")
    if not pythons:
        raise _fail(where, "pythons is empty", "list the CPython versions torch ships")
    return tuple(sorted(pythons, key=python_key))


def _parse_variant(where: str, data: Any) -> Variant:
    table = _check_keys(where, data, ("cuda", "platforms", "pythons"))
    cuda = table.get("cuda")
    if not isinstance(cuda, str) or not _CUDA_RE.match(cuda):
        raise _fail(where, f'cuda {cuda!r} is not like "12.8"', 'write cuda = "12.8"')
    listed = _str_list(where, "platforms", table.get("platforms"))
    known = platforms.names()
    for p in listed:
        if p not in known:
            raise _fail(where, f"platform {p!r} is unknown", f"use {', '.join(known)}")
    if not listed or len(set(listed)) != len(listed):
        raise _fail(where, "platforms is empty or lists one twice", "list each platform once")
    pythons = _pythons(where, table["pythons"]) if "pythons" in table else None
    return Variant(cuda=cuda, platforms=tuple(sorted(listed, key=platform_key)), pythons=pythons)


def release_version_problem(version: str) -> str | None:
    """Why ``version`` is not a plain final torch release "X.Y.Z" (no epoch, pre, post, dev
    or local part: cibw-env pins it as torch==X.Y.Z+cuXYZ and the views are named after
    X.Y), or None."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return "is not a version"
    if parsed.epoch or parsed.is_prerelease or parsed.is_postrelease or parsed.local:
        return "is not a final release (it has an epoch, pre, post, dev or local part)"
    if str(parsed) != version or len(parsed.release) != 3:
        return f'is not in full form "{parsed.major}.{parsed.minor}.{parsed.micro}"'
    return None


def _parse_release(where: str, data: Any) -> TorchRelease:
    table = _check_keys(
        where, data, ("version", "released", "pythons", "pypi-cuda", "sources", "note", "variant")
    )
    version = table.get("version")
    problem = release_version_problem(version) if isinstance(version, str) else "is not a string"
    if problem or not isinstance(version, str):
        raise _fail(where, f"version {version!r} {problem}", 'write version = "2.8.0"')
    where = f"{where} ({version})"
    released = table.get("released")
    if released is not None and (not isinstance(released, str) or not _DATE_RE.match(released)):
        raise _fail(where, f"released {released!r} is not a date", 'write released = "2025-08-06"')
    pythons = _pythons(where, table.get("pythons"))
    variants_raw = table.get("variant")
    if not isinstance(variants_raw, list) or not variants_raw:
        raise _fail(where, "has no [[release.variant]]", "add the CUDA variants torch ships")
    variants = tuple(_parse_variant(f"{where} variant {i}", v) for i, v in enumerate(variants_raw))
    seen: set[tuple[str, str]] = set()
    for v in variants:
        for p in v.platforms:
            if (v.cuda, p) in seen:
                raise _fail(where, f"CUDA {v.cuda} on {p} is listed twice", "merge the variants")
            seen.add((v.cuda, p))
    pypi_cuda = table.get("pypi-cuda")
    if pypi_cuda is not None and pypi_cuda not in {v.cuda for v in variants}:
        raise _fail(where, f"pypi-cuda {pypi_cuda!r} is not one of its variants", "fix pypi-cuda")
    note = table.get("note", "")
    if not isinstance(note, str):
        raise _fail(where, "note must be a string", 'write note = "..."')
    return TorchRelease(
        version=version,
        released=released,
        pythons=pythons,
        pypi_cuda=pypi_cuda,
        variants=tuple(
            sorted(variants, key=lambda v: (cuda_key(v.cuda), platform_key(v.platforms[0])))
        ),
        sources=_str_list(where, "sources", table.get("sources", [])),
        note=note,
    )


def parse(text: str, source: str = "torch-releases.toml") -> ReleaseTable:
    """Parse and validate the table; every problem is one ConfigError naming the fix."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"{source}: not valid TOML ({e}); fix the syntax or restore it from git"
        ) from e
    _check_keys(source, data, ("table-version", "release"))
    if data.get("table-version") != TABLE_VERSION:
        raise _fail(
            source,
            f"table-version is {data.get('table-version')!r}, not {TABLE_VERSION}",
            "upgrade wheelfactory",
        )
    raw = data.get("release")
    if not isinstance(raw, list) or not raw:
        raise _fail(source, "lists no [[release]]", "restore the file from git")
    releases = [_parse_release(f"{source} release {i}", r) for i, r in enumerate(raw)]
    versions = [r.version for r in releases]
    if len(set(versions)) != len(versions):
        dupe = next(v for v in versions if versions.count(v) > 1)
        raise _fail(source, f"release {dupe} is listed twice", "keep one entry")
    return ReleaseTable(releases=_sorted_releases(releases))


def load(path: str | Path | None = None) -> ReleaseTable:
    path = Path(path) if path is not None else resources.TORCH_RELEASES
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"{path}: cannot read the torch release table ({e.strerror}); check --table"
        ) from e
    return parse(text, str(path))


# --------------------------------------------------------------------------- writing


def _toml_str(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes for what we write.
    return json.dumps(value, ensure_ascii=False)


def _toml_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def dumps(table: ReleaseTable) -> str:
    """The canonical text of ``table``: fixed key order, sorted entries, fixed header."""
    lines = [HEADER, f"table-version = {TABLE_VERSION}"]
    for r in _sorted_releases(table.releases):
        lines += ["", "[[release]]", f"version = {_toml_str(r.version)}"]
        if r.released:
            lines.append(f"released = {_toml_str(r.released)}")
        lines.append(f"pythons = {_toml_list(sorted(r.pythons, key=python_key))}")
        if r.pypi_cuda:
            lines.append(f"pypi-cuda = {_toml_str(r.pypi_cuda)}")
        if r.sources:
            lines.append(f"sources = {_toml_list(r.sources)}")
        if r.note:
            lines.append(f"note = {_toml_str(r.note)}")
        for v in sorted(r.variants, key=lambda v: (cuda_key(v.cuda), platform_key(v.platforms[0]))):
            lines += ["", "[[release.variant]]", f"cuda = {_toml_str(v.cuda)}"]
            lines.append(f"platforms = {_toml_list(sorted(v.platforms, key=platform_key))}")
            if v.pythons is not None and tuple(sorted(v.pythons, key=python_key)) != r.pythons:
                lines.append(f"pythons = {_toml_list(sorted(v.pythons, key=python_key))}")
    return "\n".join(lines) + "\n"


def dump(table: ReleaseTable, path: str | Path | None = None) -> Path:
    """Write ``table`` canonically (atomically) to ``path`` (default: the packaged table)."""
    path = Path(path) if path is not None else resources.TORCH_RELEASES
    text = dumps(table)
    parse(text, str(path))  # never write what load would refuse
    atomicfile.write_bytes(path, text.encode("utf-8"))
    return path


def normalize_variants(
    builds: Iterable[tuple[str, str, str]], release_pythons: tuple[str, ...]
) -> tuple[Variant, ...]:
    """Group observed (cuda, platform, python) builds into the fewest variants: platforms of
    one CUDA with the same Python set share one entry. Used by watch."""
    by_cp: dict[tuple[str, str], set[str]] = {}
    for cuda, platform, python in builds:
        by_cp.setdefault((cuda, platform), set()).add(python)
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (cuda, platform), pys in by_cp.items():
        key = (cuda, tuple(sorted(pys, key=python_key)))
        grouped.setdefault(key, []).append(platform)
    variants = [
        Variant(
            cuda=cuda,
            platforms=tuple(sorted(platforms, key=platform_key)),
            pythons=None if pys == release_pythons else pys,
        )
        for (cuda, pys), platforms in grouped.items()
    ]
    variants.sort(key=lambda v: (cuda_key(v.cuda), platform_key(v.platforms[0])))
    return tuple(variants)


__all__ = [
    "ReleaseTable",
    "TorchRelease",
    "Variant",
    "dump",
    "dumps",
    "load",
    "normalize_variants",
    "parse",
    "python_key",
]
