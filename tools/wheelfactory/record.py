"""The build record: ``<dist-info>/wheelfactory-build.json``, what a wheel was built from.

One typed ``BuildRecord``, written by the finish stage (finish.py) for local builds and CI
builds alike, read back (strictly) by verify, publish, the landing page and which.py.
resources/build-record.schema.json describes the same shape for other tools;
tests/unit/test_record.py checks the two agree.

Reading is strict: unknown keys, wrong types, non-finite numbers and deep nesting are
errors (the record ends up in manifest.json, which must stay strict JSON).
"""

from __future__ import annotations

import functools
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any

from wheelfactory.arch import GpuTarget
from wheelfactory.errors import ConfigError, WheelfactoryError
from wheelfactory.naming import TorchPin
from wheelfactory.recipe import KnownBad  # the recipe's [[known-bad]] entries, as recorded

RECORD_NAME = "wheelfactory-build.json"
RECORD_VERSION = 2
RECORD_LIMIT = 1 << 20  # bytes; a real record is a few KB
_MAX_DEPTH = 8
# What a record says about one run of the build rather than about its inputs.
RUN_FACTS = ("timings", "compile_steps")


class RecordError(WheelfactoryError):
    """A build record is missing, malformed or of another version."""

    return_code = 8


@dataclass(frozen=True, kw_only=True)
class SourcePin:
    """One source a wheel was built from (the main source first, then the extras)."""

    name: str  # "main", "cutlass"
    kind: str  # "git", "archive", "local"
    pin: str  # "<git url>@<commit>", "<url>#sha256=<hex>", or a local path
    commit: str | None = None
    sha256: str | None = None
    dirty: bool = False  # a local tree with uncommitted changes


@dataclass(frozen=True, kw_only=True)
class PatchPin:
    """A patch of the recipe's applied to the source before the build."""

    file: str  # "recipes/patches/sageattention/0001-zero-fill-out-of-range-smem.patch"
    sha256: str
    why: str
    mirrors: str  # the upstream PR or issue it follows

    @property
    def name(self) -> str:
        return self.file.rsplit("/", 1)[-1]


@dataclass(frozen=True, kw_only=True)
class RepairInfo:
    tool: str  # "auditwheel 6.8.2", "delvewheel"
    policy: str  # "manylinux_2_34_x86_64", "win_amd64"
    vendored: tuple[str, ...] = ()  # libraries the repairer copied into the wheel
    excluded_patterns: int = 0  # never-vendor patterns passed to it


@dataclass(frozen=True, kw_only=True)
class BuildRecord:
    version: int = RECORD_VERSION
    package: str  # normalized name
    package_version: str  # labelled: "2.2.0+cu130torch2.14"
    upstream_version: str  # what the source itself reported
    recipe: str | None  # the recipe file, relative to the repository where possible
    recipe_sha256: str | None
    sources: tuple[SourcePin, ...] = ()
    patches: tuple[PatchPin, ...] = ()  # applied to the sources, in order
    builder: str  # "wheelfactory build" or "cibuildwheel"
    cell: str | None = None  # the plan's job or cell id
    ci_run: str | None = None
    platform: str  # "linux-x86_64" (platforms.toml)
    torch: str  # the torch it was compiled against: "2.14.1+cu130"
    torch_requirement: str  # its Requires-Dist: "torch==2.14.*" or "torch>=2.10"
    stable_abi_floor: str | None = None  # stable-ABI wheels: the oldest torch minor it loads on
    cuda: str  # "13.0"
    nvcc: str | None = None  # "13.0.88"
    python: str | None = None  # the interpreter it was built with: "3.11.7"
    python_tag: str  # "cp311", "cp310-abi3"
    targets: tuple[str, ...]  # "9.0a", "8.9+PTX"
    compress_mode: str | None = None  # nvcc --compress-mode (None: nvcc's default)
    env: Mapping[str, str] = field(default_factory=dict)  # what wheelfactory set for the build
    fixes: tuple[str, ...] = ()  # the recipe fixes applied (their "why")
    guard: bool = True
    index_url: str | None = None  # the index the guard's fix command names
    known_bad: tuple[KnownBad, ...] = ()
    strip_debug: bool = True
    # built with the flags that make a rebuild from this record give the same bytes
    # (Linux: nvcc seeded per file, the tree's path mapped); `wheelfactory verify --rebuild`
    reproducible: bool = False
    repair: RepairInfo | None = None
    tools: Mapping[str, str] = field(default_factory=dict)  # name -> version
    timings: Mapping[str, float] = field(default_factory=dict)  # stage -> seconds
    compile_steps: int | None = None  # ninja steps run (local builds)

    def __post_init__(self) -> None:
        # which, the guard and the GPU gate parse every target: one that does not parse
        # must stop here, not on a user's GPU machine.
        for target in self.targets:
            problem = target_problem(target)
            if problem:
                raise RecordError(f"{problem}; rebuild the wheel with wheelfactory")

    def without_run_facts(self) -> BuildRecord:
        """This record less its RUN_FACTS: what a reproducible wheel carries, so that two
        builds from the same inputs give the same bytes (the build's summary keeps them)."""
        return replace(self, timings={}, compile_steps=None)

    @property
    def torch_pin(self) -> TorchPin:
        """The torch this wheel is pinned to, as the record says."""
        return TorchPin(self.torch, floor=self.stable_abi_floor)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, data: Any, *, where: str = RECORD_NAME) -> BuildRecord:
        if not isinstance(data, Mapping):
            raise RecordError(f"{where} is not a JSON object; rebuild the wheel with wheelfactory")
        if data.get("version") != RECORD_VERSION:
            raise RecordError(
                f"{where} is build record version {data.get('version')!r}, not"
                f" {RECORD_VERSION}; rebuild the wheel with this wheelfactory"
            )
        return _build(cls, data, where)

    @classmethod
    def loads(cls, raw: bytes, *, where: str = RECORD_NAME) -> BuildRecord:
        return cls.from_json(strict_json(raw, where=where), where=where)


def target_problem(target: object) -> str | None:
    """Why a recorded GPU target is not one arch.py parses ("9.0a", "8.9+PTX"), or None."""
    if not isinstance(target, str):
        return f"target {str(target)[:40]!r} is not a string like \"9.0a\""
    if not _parses(target):
        return f"target {target[:40]!r} is not a GPU target like 9.0, 9.0a, 12.0f or 8.9+PTX"
    return None


@functools.lru_cache(maxsize=256)  # a manifest repeats a handful of targets thousands of times
def _parses(target: str) -> bool:
    try:
        GpuTarget.parse(target)
    except ConfigError:
        return False
    return True


def strict_json(raw: bytes, *, where: str, limit: int = RECORD_LIMIT) -> Any:
    """JSON that the manifest can carry: bounded size, finite numbers, shallow nesting."""
    if len(raw) > limit:
        raise RecordError(f"{where} is {len(raw)} bytes, over the {limit} limit; rebuild the wheel")

    def refuse_constant(name: str) -> Any:
        raise RecordError(f"{where} holds {name}, which JSON does not allow; rebuild the wheel")

    try:
        data = json.loads(raw, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as e:
        raise RecordError(f"{where} is not valid JSON ({str(e)[:80]}); rebuild the wheel") from e
    _check_depth(data, where)
    return data


def _check_depth(data: Any, where: str) -> None:
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise RecordError(f"{where} nests deeper than {_MAX_DEPTH} levels; rebuild the wheel")
        if isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, depth + 1) for v in item]
        elif isinstance(item, float) and not math.isfinite(item):
            raise RecordError(f"{where} holds a non-finite number; rebuild the wheel")


def _fail(where: str, key: str, problem: str) -> RecordError:
    return RecordError(f"{where}: {key} {problem}; rebuild the wheel with wheelfactory")


def _convert(tp: Any, value: Any, where: str, key: str) -> Any:
    """``value`` checked against the field type ``tp`` (and turned into dataclasses/tuples)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        (inner,) = [t for t in options if t is not type(None)]
        return _convert(inner, value, where, key)
    if is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise _fail(where, key, f"must be an object, not {type(value).__name__}")
        return _build(tp, value, f"{where}: {key}")
    if origin is tuple:
        (inner, _) = typing.get_args(tp)
        if not isinstance(value, list):
            raise _fail(where, key, f"must be a list, not {type(value).__name__}")
        return tuple(_convert(inner, v, where, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict):
        _, inner = typing.get_args(tp)
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _fail(where, key, "must be an object with string keys")
        return {k: _convert(inner, v, where, f"{key}.{k}") for k, v in value.items()}
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    if not ok:
        raise _fail(where, key, f"must be {tp.__name__}, not {type(value).__name__}")
    return value


def _build(cls: Any, data: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _fail(where, repr(unknown[0]), "is not a build record key")
    values = {k: _convert(hints[k], v, where, k) for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as e:  # a required key is missing
        raise RecordError(f"{where} is incomplete ({e}); rebuild the wheel with wheelfactory") from e
    except RecordError as e:  # a value the type itself refuses
        raise RecordError(f"{where}: {e}") from e


def json_schema() -> dict[str, Any]:
    """The JSON schema of BuildRecord (resources/build-record.schema.json is this, written
    by scripts/update_schemas.py; tests/unit/test_record.py checks they agree)."""

    def of(tp: Any) -> dict[str, Any]:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [of(t) for t in typing.get_args(tp)]}
        if tp is type(None):
            return {"type": "null"}
        if is_dataclass(tp):
            return {"$ref": f"#/$defs/{tp.__name__}"}  # type: ignore[union-attr]
        if origin is tuple:
            return {"type": "array", "items": of(typing.get_args(tp)[0])}
        if origin in (Mapping, dict):
            return {"type": "object", "additionalProperties": of(typing.get_args(tp)[1])}
        return {"type": {str: "string", int: "integer", float: "number", bool: "boolean"}[tp]}

    def obj(cls: Any) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        required = [
            f.name for f in fields(cls)
            if f.default is MISSING and f.default_factory is MISSING  # type: ignore[misc]
        ]  # fmt: skip
        return {
            "type": "object",
            "additionalProperties": False,
            "required": required,
            "properties": {f.name: of(hints[f.name]) for f in fields(cls)},
        }

    schema = obj(BuildRecord)
    schema["properties"]["version"] = {"const": RECORD_VERSION}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "wheelfactory build record (<dist-info>/wheelfactory-build.json)",
        **schema,
        "$defs": {c.__name__: obj(c) for c in (SourcePin, KnownBad, RepairInfo)},
    }
