"""The index manifest: ``<index root>/manifest.json``, the single source of truth of an index.

Every page of an index is rendered from it (index.py) and nothing else, so the same
manifest always gives the same bytes. One entry per published wheel::

    {"version": 1, "index_url": "https://...", "files": [{"filename": ..., "url": ..., ...}, ...]}

sorted by filename; ``index_url`` (optional) is the index's public root URL, which the
landing page and the served which.py print in their commands;
resources/manifest.schema.json is the contract other tools read.

``url`` is either relative to the index root (the local store writes ``files/<name>``)
or absolute (``https://...``: a store such as GitHub Release assets or a bucket may hand
out URLs of another host). The core metadata file is always at ``<url>.metadata``.
``upload_time`` is recorded when the wheel is published (PEP 700 format), never taken
from the clock at render time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from packaging.utils import canonicalize_name

from wheelfactory import atomicfile, naming
from wheelfactory.confine import relative_path_problem
from wheelfactory.errors import ConfigError, PublishError
from wheelfactory.nearby import what_exists
from wheelfactory.naming import WheelLabel, parse_wheel
from wheelfactory.record import target_problem
from wheelfactory.retry import with_retries

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
# PEP 700: yyyy-mm-ddThh:mm:ss.ffffffZ (UTC, microseconds)
UPLOAD_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$", re.ASCII)
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# A published filename: what packaging accepts, and nothing a path or markup could abuse.
_SAFE_FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*\.whl$")
# A torch minor a stable-ABI file covers ("2.15"): it names a view folder, cu130/torch2.15.
_TORCH_MINOR_RE = re.compile(r"^[0-9]+\.[0-9]+$")  # as resources/manifest.schema.json
# A GPU arch of the gate ("9.0", "12.0").
_GATE_ARCH_RE = re.compile(r"^[0-9]+\.[0-9]$")
# The largest size recorded: integers beyond 2**53 lose digits in JavaScript (the landing
# page reads the sizes), and no wheel comes near it.
MAX_SIZE = 2**53 - 1


def _check_types(
    item: object, name: str, types: Mapping[str, tuple[type, ...]], *, fix: str
) -> None:
    """Each field of a manifest entry has its JSON type; ``true`` is not a size, although
    bool is an int to isinstance."""
    for key, expected in types.items():
        value = getattr(item, key)
        ok = bool in expected if isinstance(value, bool) else isinstance(value, expected)
        if not ok:
            shown = repr(value) if len(repr(value)) <= 40 else f"a {type(value).__name__}"
            raise PublishError(f"{name}: {key} is {shown}, of the wrong type; {fix}")


def format_upload_time(moment: datetime) -> str:
    """A datetime -> PEP 700 upload time ``2026-05-01T12:00:00.000000Z`` (converted to UTC)."""
    if moment.tzinfo is None:
        raise ConfigError("upload time must be timezone-aware; pass datetime.now(timezone.utc)")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_upload_time() -> str:
    """Now, or $SOURCE_DATE_EPOCH (the reproducible-builds convention) when set: the same
    publish then renders the same bytes, which the crash-recovery test compares."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        if not epoch.isdigit():
            raise ConfigError(f"SOURCE_DATE_EPOCH={epoch!r} is not whole seconds since 1970; unset it")
        return format_upload_time(datetime.fromtimestamp(int(epoch), timezone.utc))
    return format_upload_time(datetime.now(timezone.utc))


def check_filename(filename: str) -> WheelLabel:
    """Validate a wheel filename for publishing; return what its name says.

    Refuses path separators, markup characters and anything packaging does not parse, and
    wheels without a ``+cuXYZtorchX.Y`` label (they belong to no view).
    """
    if not _SAFE_FILENAME_RE.fullmatch(filename) or ".." in filename:
        msg = (
            f"refusing wheel filename {filename!r}: only letters, digits and . _ + ! - are"
            " allowed; rename the file to its PEP 427 name"
        )
        raise PublishError(msg)
    try:
        label = parse_wheel(filename)
    except ConfigError as e:
        raise PublishError(str(e)) from e
    if not label.is_labelled:
        msg = (
            f"{filename} has no +cuXYZtorchX.Y local version label, so it belongs to no index"
            " view; build it with wheelfactory build, which labels it"
        )
        raise PublishError(msg)
    return label


def _check_url(url: str, filename: str) -> None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        if not parts.netloc:
            raise PublishError(f"URL {url!r} of {filename} has no host; fix the store's URL")
        return
    if parts.scheme or parts.netloc or url.startswith("/") or parts.query or parts.fragment:
        msg = f"URL {url!r} of {filename} must be http(s) or relative to the index root"
        raise PublishError(msg + "; fix the store's URL")
    problem = relative_path_problem(url)  # a local file's URL is its path under the index
    if problem:
        raise PublishError(f"URL {url!r} of {filename} {problem}; fix the store's URL")


VERDICTS = ("pass", "fail", "refused", "error")


_CHECK_TEXT = ("filename", "sha256", "arch", "gpu", "torch", "date", "verdict", "detail", "checker")
_CHECK_TYPES = {k: (str,) for k in _CHECK_TEXT}


@dataclass(frozen=True, kw_only=True)
class GpuCheck:
    """One run of a wheel's kernels on a GPU (gpucheck.py), signed off by its checker."""

    filename: str
    sha256: str  # of the file that was installed and run
    arch: str  # "9.0"
    gpu: str  # "NVIDIA H200"
    torch: str  # "2.11.0+cu130"
    date: str  # "2026-11-30T12:00:00Z"
    verdict: str  # pass, fail (wrong numbers), refused (the guard refused a known-bad GPU), error
    detail: str  # one line
    cosine: float | None = None  # the lowest over the recipe's shapes
    max_abs_error: float | None = None  # the highest over them
    tflops: float | None = None  # the best over them
    checker: str = ""  # what ran it, where

    def __post_init__(self) -> None:
        name = f"GPU check of {str(self.filename)[:100]!r}"
        _check_types(self, name, _CHECK_TYPES, fix="fix the results file or manifest.json")
        if self.verdict not in VERDICTS:
            raise PublishError(f"GPU check of {self.filename}: verdict {self.verdict!r} is not one of {VERDICTS}")
        for name in ("cosine", "max_abs_error", "tflops"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)
                                      or value != value or value in (float("inf"), float("-inf"))):
                raise PublishError(f"GPU check of {self.filename}: {name} must be a finite number or null")

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: Any) -> GpuCheck:
        if not isinstance(data, Mapping) or set(data) - set(cls.__dataclass_fields__):
            raise PublishError("a GPU check entry is not an object of GpuCheck fields; fix the results file")
        try:
            return cls(**data)
        except TypeError as e:
            raise PublishError(f"a GPU check entry is incomplete ({e}); fix the results file") from e


_OPTIONAL_STR = (str, type(None))
_ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    **{k: (str,) for k in ("filename", "project", "version", "sha256", "url", "upload_time")},
    **{
        k: _OPTIONAL_STR
        for k in ("requires_python", "metadata_sha256", "yank_reason", "provenance_url", "held")
    },
    "size": (int,),
    "yanked": (bool,),
    "build_record": (Mapping, type(None)),
    "covers": (tuple,),
    "not_covered": (Mapping,),
    "gpu_checks": (tuple,),
}


@dataclass(frozen=True, kw_only=True)
class PublishedFile:
    """One wheel in the index, as recorded when it was published."""

    filename: str
    project: str  # normalized (PEP 503)
    version: str
    sha256: str
    size: int
    url: str  # relative to the index root, or absolute http(s)
    requires_python: str | None = None
    metadata_sha256: str | None = None  # sha256 of the .metadata file beside the wheel
    upload_time: str  # PEP 700
    yanked: bool = False
    yank_reason: str | None = None
    build_record: Mapping[str, Any] | None = field(default=None, hash=False)
    provenance_url: str | None = None
    # Why the file is held out of every view (a GPU check pending or failed); None: listed.
    held: str | None = None
    # A stable-ABI wheel: the torch minors whose strict views list it (each import-checked).
    covers: tuple[str, ...] = ()
    # A stable-ABI wheel: torch minors at or above its floor whose views leave it out, and
    # why in one line ("_C.abi3.so imports aoti_torch_x, which torch 2.13 does not export").
    not_covered: Mapping[str, str] = field(default_factory=dict, hash=False)
    gpu_checks: tuple[GpuCheck, ...] = ()

    def __post_init__(self) -> None:
        name = f"manifest entry {str(self.filename)[:100]!r}"
        _check_types(self, name, _ENTRY_TYPES, fix="fix manifest.json")
        label = check_filename(self.filename)
        self.__dict__["label"] = label  # fills the cached_property: parse the name once
        if label.project != self.project:
            msg = f"{self.filename}: project {self.project!r} differs from its filename's"
            raise PublishError(msg + f" {label.project!r}; fix the manifest entry")
        if label.version != self.version:
            msg = f"{self.filename}: version {self.version!r} differs from its filename's"
            raise PublishError(msg + f" {label.version!r}; fix the manifest entry")
        for name in ("sha256", "metadata_sha256"):
            value = getattr(self, name)
            if value is not None and not _SHA256_RE.fullmatch(value):
                raise PublishError(f"{self.filename}: {name} is not 64 lowercase hex digits")
        if not 0 <= self.size <= MAX_SIZE:
            msg = f"{self.filename}: size must be a whole number of bytes, 0 to {MAX_SIZE}"
            raise PublishError(msg + "; fix manifest.json")
        for minor in self.covers:
            # each names a view folder: cu130/torch<minor>/simple/
            if not isinstance(minor, str) or not _TORCH_MINOR_RE.fullmatch(minor):
                msg = f"{self.filename}: covers entry {repr(minor)[:40]} is not a torch minor"
                raise PublishError(msg + ' like "2.15"; fix manifest.json')
        for minor, why in self.not_covered.items():
            if not _TORCH_MINOR_RE.fullmatch(str(minor)) or not isinstance(why, str) or "\n" in why:
                msg = f"{self.filename}: not_covered entry {repr(minor)[:40]} is not a torch minor"
                raise PublishError(msg + ' like "2.15" with a one-line reason; fix manifest.json')
            if minor in self.covers:
                raise PublishError(f"{self.filename}: torch {minor} is both covered and not covered; fix manifest.json")
        if self.build_record is not None:
            targets = self.build_record.get("targets") or []
            for target in targets if isinstance(targets, list | tuple) else [targets]:
                problem = target_problem(target)
                if problem:
                    msg = f"{self.filename}: build record {problem}; fix manifest.json"
                    raise PublishError(msg)
        if not UPLOAD_TIME_RE.fullmatch(self.upload_time):
            msg = f"{self.filename}: upload_time {self.upload_time!r} is not PEP 700"
            raise PublishError(msg + " (yyyy-mm-ddThh:mm:ss.ffffffZ)")
        if not self.yanked and self.yank_reason is not None:
            raise PublishError(f"{self.filename}: yank_reason set on a file that is not yanked")
        _check_url(self.url, self.filename)
        if self.provenance_url is not None:
            parts = urlsplit(self.provenance_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise PublishError(f"{self.filename}: provenance_url must be an http(s) URL")

    @cached_property
    def label(self) -> WheelLabel:
        return parse_wheel(self.filename)

    @property
    def cuda(self) -> str:
        """"13.0" (from the filename's label)."""
        assert self.label.cuda is not None
        return self.label.cuda

    @property
    def torch(self) -> str:
        """"2.14" or "abi" (from the filename's label)."""
        assert self.label.torch is not None
        return self.label.torch

    @property
    def metadata_url(self) -> str:
        return self.url + ".metadata"

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "project": self.project,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "url": self.url,
            "requires_python": self.requires_python,
            "metadata_sha256": self.metadata_sha256,
            "upload_time": self.upload_time,
            "yanked": self.yanked,
            "yank_reason": self.yank_reason,
            "build_record": dict(self.build_record) if self.build_record is not None else None,
            "provenance_url": self.provenance_url,
            "held": self.held,
            "covers": list(self.covers),
            # only when there is a gap: the manifests of indexes without one keep their bytes
            **({"not_covered": dict(sorted(self.not_covered.items()))} if self.not_covered else {}),
            "gpu_checks": [c.to_json() for c in self.gpu_checks],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PublishedFile:
        if not isinstance(data, Mapping):
            raise PublishError("manifest entry is not an object; restore manifest.json")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            msg = f"manifest entry {data.get('filename')!r} has unknown keys {sorted(unknown)}"
            raise PublishError(msg + "; upgrade wheelfactory or fix manifest.json")
        values = dict(data)
        if not isinstance(values.get("covers", []), list) or not isinstance(values.get("gpu_checks", []), list):
            raise PublishError(f"manifest entry {data.get('filename')!r}: covers and gpu_checks must be lists")
        if not isinstance(values.get("not_covered", {}), Mapping):
            raise PublishError(f"manifest entry {data.get('filename')!r}: not_covered must be an object")
        values["covers"] = tuple(values.get("covers", ()))
        values["gpu_checks"] = tuple(GpuCheck.from_json(c) for c in values.get("gpu_checks", ()))
        try:
            return cls(**values)
        except TypeError as e:
            msg = f"manifest entry {data.get('filename')!r} is incomplete ({e}); fix manifest.json"
            raise PublishError(msg) from e

    @property
    def targets(self) -> tuple[str, ...]:
        """The GPU targets its build record names (() when it has none)."""
        targets = (self.build_record or {}).get("targets")
        return tuple(str(t) for t in targets) if isinstance(targets, list | tuple) else ()

    @property
    def stable_abi_floor(self) -> str | None:
        floor = (self.build_record or {}).get("stable_abi_floor")
        return str(floor) if floor else None


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """All published files of an index, sorted by filename."""

    files: tuple[PublishedFile, ...] = ()
    version: int = MANIFEST_VERSION
    # The public URL of the index root (https://owner.github.io/wheelfactory/); "" when
    # unknown: pages then use relative links and the landing page asks the browser.
    index_url: str = ""
    # GPU archs ("9.0") this index's GPU checks run on: a new wheel targeting one of them
    # is held out of every view until a check there passes (publish --gpu-gate).
    gpu_gate: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.index_url:  # validated on read too: it reaches pip commands and pages
            naming.index_url(self.index_url, given_as="index URL")
        for arch in self.gpu_gate:
            if not isinstance(arch, str) or not _GATE_ARCH_RE.fullmatch(arch):
                msg = f"gpu_gate arch {repr(arch)[:40]} is not like \"9.0\""
                raise PublishError(msg + "; fix manifest.json or --gpu-gate")
        ordered = tuple(sorted(self.files, key=lambda f: f.filename))
        names = [f.filename for f in ordered]
        dupes = sorted({n for a, n in zip(names, names[1:]) if a == n})
        if dupes:
            raise PublishError(f"manifest lists {dupes[0]} twice; keep one entry")
        object.__setattr__(self, "files", ordered)

    @cached_property
    def by_filename(self) -> Mapping[str, PublishedFile]:
        return {f.filename: f for f in self.files}

    def get(self, filename: str) -> PublishedFile | None:
        return self.by_filename.get(filename)

    def with_files(self, files: Iterable[PublishedFile]) -> Manifest:
        """A new manifest with ``files`` added or replacing entries of the same filename."""
        merged = dict(self.by_filename)
        for f in files:
            merged[f.filename] = f
        return replace(self, files=tuple(merged.values()))

    def with_index_url(self, index_url: str | None) -> Manifest:
        """This manifest with ``index_url`` recorded (None: keep the recorded one)."""
        if index_url is None:
            return self
        return replace(self, index_url=normalize_index_url(index_url))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version}
        if self.index_url:
            out["index_url"] = self.index_url
        if self.gpu_gate:
            out["gpu_gate"] = list(self.gpu_gate)
        out["files"] = [f.to_json() for f in self.files]
        return out

    def dumps(self) -> bytes:
        """One file per line: diffs stay readable and json's C encoder does the work."""
        entries = ",\n".join(json.dumps(f.to_json(), sort_keys=True) for f in self.files)
        body = f"\n{entries}\n" if entries else ""
        # index_url only when set, so manifests written before it existed keep their bytes.
        url = f'"index_url": {json.dumps(self.index_url)}, ' if self.index_url else ""
        gate = f'"gpu_gate": {json.dumps(list(self.gpu_gate))}, ' if self.gpu_gate else ""
        return f'{{"version": {self.version}, {url}{gate}"files": [{body}]}}\n'.encode()

    @classmethod
    def from_json(cls, data: Any, *, source: str = MANIFEST_NAME) -> Manifest:
        if not isinstance(data, Mapping) or data.get("version") != MANIFEST_VERSION:
            msg = f"{source} is not a version {MANIFEST_VERSION} wheelfactory manifest"
            raise PublishError(msg + "; upgrade wheelfactory or restore the file")
        files = data.get("files")
        if not isinstance(files, list) or set(data) - {"version", "index_url", "gpu_gate", "files"}:
            msg = f"{source} must hold only 'version', 'index_url', 'gpu_gate' and a 'files' list"
            raise PublishError(msg + "; restore the file")
        index_url = data.get("index_url", "")
        if not isinstance(index_url, str):
            raise PublishError(f"{source}: index_url must be a string; fix the file")
        gate = data.get("gpu_gate", [])
        if not isinstance(gate, list) or not all(isinstance(a, str) for a in gate):
            raise PublishError(f"{source}: gpu_gate must be a list of archs like \"9.0\"; fix the file")
        return cls(
            files=tuple(PublishedFile.from_json(f) for f in files),
            index_url=index_url,
            gpu_gate=tuple(gate),
        )


_MISSING = object()


def entry_field(item: Any, key: str) -> Any:
    """A field of a manifest entry that is a PublishedFile (or GpuCheck) or its JSON form
    (manifest.json as read); None when absent."""
    # Plain dicts and attributes first: the Mapping ABC check is slow, and landing pages
    # read every field of every file.
    if isinstance(item, dict):
        return item.get(key)
    value = getattr(item, key, _MISSING)
    if value is not _MISSING:
        return value
    return item.get(key) if isinstance(item, Mapping) else None


def normalize_index_url(url: str) -> str:
    """An index root URL as recorded: stripped, ending in exactly one "/" ("" stays "")."""
    url = url.strip()
    if not url:
        return ""
    return naming.index_url(url, given_as="index URL").rstrip("/") + "/"


def _is_url(index: str | os.PathLike[str]) -> bool:
    return isinstance(index, str) and urlsplit(index).scheme in ("http", "https")


def check_index_exists(index: str | os.PathLike[str]) -> None:
    """Refuse a local index folder that does not exist, naming the indexes beside it.

    load_manifest reads a folder without manifest.json as an empty index (publish starts
    one there), so a mistyped --index of a command that only reads would pass as empty."""
    if _is_url(index) or Path(index).is_dir():
        return
    near = what_exists(Path(index), "index (folder with manifest.json)", lambda p: (p / MANIFEST_NAME).is_file())
    raise ConfigError(f"--index {index}: no such folder ({near}); pass the folder `wheelfactory publish --index` wrote, or its URL")


def load_manifest(index: str | os.PathLike[str], *, timeout: float = 30, tries: int = 3) -> Manifest:
    """Read the manifest of an index: a local directory, or the http(s) URL of its root.

    A local directory without manifest.json is an empty index.
    """
    if _is_url(index):
        url = urljoin(str(index).rstrip("/") + "/", MANIFEST_NAME)

        def fetch() -> bytes:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
                return bytes(resp.read())

        raw = with_retries(
            f"GET {url}", fetch, tries=tries, backoff=0.5, fix="check the URL and network",
            on_http_error=lambda e: f"GET {url} answered {e.code}; check the index URL (its root, not a view)",
        )  # fmt: skip
        source = url
    else:
        path = Path(index) / MANIFEST_NAME
        if not path.exists():
            return Manifest()
        raw = path.read_bytes()
        source = str(path)
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise PublishError(f"{source} is not valid JSON ({e}); restore it from a backup") from e
    return Manifest.from_json(data, source=source)


def save_manifest(index: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Write ``<index>/manifest.json`` atomically; return its path."""
    path = Path(index) / MANIFEST_NAME
    atomicfile.write_bytes(path, manifest.dumps())
    return path


def absolute_url(index_root: str, file: PublishedFile) -> str:
    """The full URL of a file of an index published at ``index_root``."""
    return urljoin(index_root.rstrip("/") + "/", file.url)


def normalize(name: str) -> str:
    return str(canonicalize_name(name))
