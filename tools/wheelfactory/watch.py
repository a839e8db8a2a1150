"""Watch for torch releases: PyPI + PyTorch's index -> an updated release table.

Sources:
- ``<pypi>/pypi/torch/json`` (PyPI's JSON API): which final versions exist, their first
  upload date, and the CPython tags of their wheels (PyPI carries the default CUDA build
  for Linux and CPU builds for Windows: the same Pythons as the CUDA variants).
- ``<pytorch>/whl/<cuXYZ>/torch/`` (PyTorch's own PEP 503 index, one per CUDA backend;
  PEP 691 JSON when the server offers it, HTML otherwise): the CUDA variants, platforms and
  Pythons actually published, read from wheel filenames such as
  ``torch-2.9.0+cu128-cp312-cp312-manylinux_2_28_x86_64.whl``.

Backends probed: every CUDA in the table, plus the next four minors after the newest
(13.2 -> cu133, cu134, cu135, cu136) and the next major's .0 (cu140): PyTorch adds one new
CUDA per release or two, and a 404 for a backend that does not exist costs one request.

With ``--proposal-branch``, the table written is compared with that branch's copy on
GitHub (``GET /repos/{o}/{r}/contents/{path}?ref=BRANCH``, raw): watch.yml proposes (push,
pull request, build dispatch) only a table the branch does not hold yet.

Network faults (connection errors, timeouts, 5xx, 429) are retried with exponential
backoff; after the last try the whole run fails with one NetworkError line and the table
is not touched. 404 means "not there" and is not retried.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from wheelfactory import naming, platforms
from wheelfactory.errors import ConfigError, NetworkError
from wheelfactory.plan import Cell, Plan
from wheelfactory.releases import (
    ReleaseTable,
    TorchRelease,
    cuda_key,
    normalize_variants,
    python_key,
    release_version_problem,
)
from wheelfactory.retry import with_retries

log = logging.getLogger(__name__)

PYPI_URL = "https://pypi.org"
PYTORCH_INDEX_URL = "https://download.pytorch.org"
ACCEPT_SIMPLE = "application/vnd.pypi.simple.v1+json, text/html;q=0.2"
_ANCHOR_RE = re.compile(r"<a\s[^>]*>([^<]+)</a>", re.IGNORECASE)
EXTRA_MINORS = 4


@dataclass(frozen=True, kw_only=True)
class Fetcher:
    """GET with bounded retries and exponential backoff (``backoff * 2**attempt`` seconds)."""

    tries: int = 4
    backoff: float = 1.0
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    user_agent: str = "wheelfactory-watch"

    def get(self, url: str, *, accept: str = "*/*") -> tuple[str, bytes] | None:
        """(content type, body), or None for a 404. Raises NetworkError after the last try."""

        def attempt() -> tuple[str, bytes] | None:
            req = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": self.user_agent})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                    return resp.headers.get("Content-Type", ""), resp.read()
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    return None
                raise

        return with_retries(
            f"GET {url}", attempt, tries=self.tries, backoff=self.backoff, sleep=self.sleep,
            fix="the table was not changed, run watch again later",
            on_http_error=lambda e: (
                f"GET {url} answered {e.code}; check the URL (--pypi-url / --pytorch-index-url)"
            ),
        )  # fmt: skip


# --------------------------------------------------------------------------- parsing


def python_of(interpreter: str, abi: str) -> str | None:
    """("cp312", "cp312") -> "3.12"; ("cp313", "cp313t") -> "3.13t"; others None."""
    m = re.fullmatch(r"cp3(\d+)", interpreter)
    if not m:
        return None
    return f"3.{m.group(1)}" + ("t" if abi.endswith("t") else "")


def platform_of(tag: str) -> str | None:
    """The platform (platforms.toml) of a torch wheel's platform tag, or None."""
    found = platforms.of_tag(tag, unrepaired=True)  # older torch wheels: linux_x86_64
    return found.name if found else None


@dataclass(frozen=True, kw_only=True)
class PypiRelease:
    version: str
    released: str | None  # "2026-10-28"
    pythons: tuple[str, ...]  # from its Linux/Windows wheels


def parse_pypi(data: Mapping[str, Any]) -> dict[str, PypiRelease]:
    """PyPI's ``/pypi/torch/json`` -> final releases with their date and Pythons."""
    out = {}
    for version, files in (data.get("releases") or {}).items():
        try:
            v = Version(version)
        except InvalidVersion:
            continue
        if v.is_prerelease or v.is_devrelease or v.local or not files:
            continue
        files = [f for f in files if not f.get("yanked")]
        pythons: set[str] = set()
        for f in files:
            try:
                _, _, _, tags = parse_wheel_filename(f.get("filename", ""))
            except InvalidWheelFilename:
                continue
            for t in tags:
                py = python_of(t.interpreter, t.abi)
                if py and platform_of(t.platform):
                    pythons.add(py)
        times = sorted(
            str(f.get("upload_time_iso_8601") or f.get("upload_time") or "") for f in files
        )
        released = times[0][:10] if times and times[0] else None
        out[str(v)] = PypiRelease(
            version=str(v), released=released, pythons=tuple(sorted(pythons, key=python_key))
        )
    return out


def parse_simple_page(content_type: str, body: bytes) -> list[str]:
    """Filenames on a PEP 691 JSON or PEP 503 HTML project page."""
    text = body.decode("utf-8", errors="replace")
    if "json" in content_type:
        data = json.loads(text)
        return [
            f["filename"] for f in data.get("files", []) if isinstance(f, dict) and "filename" in f
        ]
    return [html.unescape(m.group(1)).strip() for m in _ANCHOR_RE.finditer(text)]


def builds_from_filenames(filenames: Iterable[str]) -> dict[str, set[tuple[str, str, str]]]:
    """torch wheel filenames -> {version: {(cuda, platform, python)}}; CPU/ROCm ignored."""
    out: dict[str, set[tuple[str, str, str]]] = {}
    for name in filenames:
        if not name.endswith(".whl"):
            continue
        try:
            project, version, _, tags = parse_wheel_filename(name)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if (
            project != "torch"
            or not version.local
            or version.is_prerelease
            or version.is_devrelease
        ):
            continue
        m = re.fullmatch(r"cu(\d+)(\d)", version.local)
        if not m:
            continue
        cuda = f"{m.group(1)}.{m.group(2)}"
        for t in tags:
            py, platform = python_of(t.interpreter, t.abi), platform_of(t.platform)
            if py and platform:
                out.setdefault(version.public, set()).add((cuda, platform, py))
    return out


def backends_to_probe(table: ReleaseTable, extra_minors: int = EXTRA_MINORS) -> tuple[str, ...]:
    """CUDA tags to ask PyTorch's index for: the table's, plus the plausible next ones."""
    cudas = set(table.cudas)
    major, minor = cuda_key(max(cudas, key=cuda_key))
    cudas.update(f"{major}.{minor + i}" for i in range(1, extra_minors + 1))
    cudas.add(f"{major + 1}.0")
    return tuple(naming.cuda_tag(c) for c in sorted(cudas, key=cuda_key))


# --------------------------------------------------------------------------- observing


@dataclass(frozen=True, kw_only=True)
class Observation:
    pypi: Mapping[str, PypiRelease]
    builds: Mapping[str, frozenset[tuple[str, str, str]]]  # version -> builds
    probed: tuple[str, ...] = ()
    found: tuple[str, ...] = ()  # backends that answered


def observe(
    table: ReleaseTable,
    *,
    pypi_url: str = PYPI_URL,
    pytorch_url: str = PYTORCH_INDEX_URL,
    fetcher: Fetcher | None = None,
) -> Observation:
    fetcher = fetcher or Fetcher()
    got = fetcher.get(pypi_url.rstrip("/") + "/pypi/torch/json", accept="application/json")
    if got is None:
        raise NetworkError(f"{pypi_url}/pypi/torch/json answered 404; check --pypi-url")
    try:
        pypi = parse_pypi(json.loads(got[1]))
    except ValueError as e:
        raise NetworkError(f"{pypi_url}/pypi/torch/json is not JSON ({e}); check --pypi-url") from e
    builds: dict[str, set[tuple[str, str, str]]] = {}
    probed, found = backends_to_probe(table), []
    for tag in probed:
        page = fetcher.get(f"{pytorch_url.rstrip('/')}/whl/{tag}/torch/", accept=ACCEPT_SIMPLE)
        if page is None:
            log.info("no %s backend on %s", tag, pytorch_url)
            continue
        found.append(tag)
        for version, bs in builds_from_filenames(parse_simple_page(*page)).items():
            builds.setdefault(version, set()).update(bs)
    return Observation(
        pypi=pypi,
        builds={v: frozenset(b) for v, b in builds.items()},
        probed=probed,
        found=tuple(found),
    )


def update_table(table: ReleaseTable, obs: Observation) -> ReleaseTable:
    """The table with every observed final release >= the table's oldest added or updated.

    A release's variants are replaced by what PyTorch's index lists for it; a release the
    index does not list keeps its entry (or, if new, is skipped: nothing to plan from).
    A version that is not a plain "X.Y.Z" (an epoch like 1!2.98.0, a post release) is
    skipped with a warning: one odd upstream entry must not stop the others.
    """
    oldest = min(r.parsed for r in table.releases)
    new = table
    versions = set(obs.pypi) | set(obs.builds)
    for version in sorted(versions, key=Version):
        if Version(version) < oldest:
            continue  # before the table (PyPI has torch 0.1.2.post1): not ours to judge
        problem = release_version_problem(version)
        if problem:
            log.warning("torch %r upstream %s; skipped (the table holds only X.Y.Z)", version, problem)
            continue
        builds = obs.builds.get(version)
        old = table.get(version)
        pypi = obs.pypi.get(version)
        if not builds:
            if old is None:
                log.warning(
                    "torch %s is on PyPI but PyTorch's index lists no CUDA build; skipped", version
                )
            continue
        pythons = pypi.pythons if pypi and pypi.pythons else _most_common_pythons(builds)
        release = TorchRelease(
            version=version,
            released=(old.released if old and old.released else (pypi.released if pypi else None)),
            pythons=pythons,
            pypi_cuda=old.pypi_cuda if old else None,
            variants=normalize_variants(builds, pythons),
            sources=tuple(dict.fromkeys([*(old.sources if old else ("pypi",)), "watch"])),
            note=old.note if old else "",
        )
        if (
            old is not None
            and set(old.builds()) == set(release.builds())
            and old.pythons == release.pythons
        ):
            continue  # nothing new: keep the entry (and its sources) as it was
        if old is not None and old.pypi_cuda and old.pypi_cuda not in release.cudas:
            release = replace(release, pypi_cuda=None)
        new = new.with_release(release)
    return new


def _most_common_pythons(builds: Iterable[tuple[str, str, str]]) -> tuple[str, ...]:
    per: dict[tuple[str, str], set[str]] = {}
    for cuda, platform, python in builds:
        per.setdefault((cuda, platform), set()).add(python)
    sets = [tuple(sorted(s, key=python_key)) for s in per.values()]
    return max(sorted(set(sets)), key=sets.count)


# --------------------------------------------------------------------------- diffs


def table_diff(old: ReleaseTable, new: ReleaseTable) -> list[str]:
    lines = []
    for r in new.releases:
        before = old.get(r.version)
        if before is None:
            lines.append(
                f"+ torch {r.version}: CUDA {', '.join(r.cudas)}; Python {', '.join(r.pythons)}"
            )
            continue
        added = sorted(set(r.builds()) - set(before.builds()))
        removed = sorted(set(before.builds()) - set(r.builds()))
        for verb, items in (("+", added), ("-", removed)):
            if items:
                shown = ", ".join(f"cu{c.replace('.', '')}/{p}/{py}" for c, p, py in items[:6])
                more = f" (+{len(items) - 6} more)" if len(items) > 6 else ""
                lines.append(f"{verb} torch {r.version}: {shown}{more}")
    return lines


@dataclass(frozen=True, kw_only=True)
class PlanDiff:
    added: tuple[Cell, ...] = ()
    removed: tuple[Cell, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def plan_diff(before: Plan, after: Plan) -> PlanDiff:
    old, new = set(before.ids()), set(after.ids())
    return PlanDiff(
        added=tuple(c for c in after.cells if c.id not in old),
        removed=tuple(c for c in before.cells if c.id not in new),
    )


# --------------------------------------------------------------------------- proposal


def proposal_is_new(written: bytes, on_branch: bytes | None) -> bool:
    """Whether the proposal branch must be pushed and its cells built: only when it does
    not hold these bytes already (None: no branch or no table there). Comparing with main
    instead would dispatch a full build every day until the pull request is merged."""
    return on_branch != written


def repo_path(path: Path, root: Path) -> str:
    """``path`` as the repository names it (POSIX, relative to the checkout ``root``)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        msg = f"{path} is outside {root}; run watch from the repository's root, --table inside it"
        raise ConfigError(msg) from None


__all__ = [
    "Fetcher",
    "Observation",
    "PlanDiff",
    "PypiRelease",
    "backends_to_probe",
    "builds_from_filenames",
    "observe",
    "parse_pypi",
    "parse_simple_page",
    "plan_diff",
    "proposal_is_new",
    "repo_path",
    "table_diff",
    "update_table",
]
