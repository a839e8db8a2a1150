"""recipes/<package>.toml -> a validated, frozen ``Recipe``.

Parsing is strict: an unknown key is an error with a "did you mean" suggestion, and
every error is one line naming the file, the key and the fix. See recipes/README.md for
the format; tests/unit/test_recipe.py has one small recipe per failure.
"""

from __future__ import annotations

import builtins
import difflib
import hashlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelfactory import arch, platforms
from wheelfactory.arch import GpuTarget
from wheelfactory.errors import ConfigError, RecipeError
from wheelfactory.naming import TorchPin

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_DEST_RE = re.compile(r"^(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_.\-/]+$")


@dataclass(frozen=True, kw_only=True)
class Source:
    """A pinned source: a git commit, or an archive (sdist/wheel/tarball) with its sha256."""

    git: str | None = None
    commit: str | None = None
    ref: str | None = None  # tag or branch the commit came from; informational
    url: str | None = None
    sha256: str | None = None
    subdirectory: str = ""  # for the main source: the folder that holds setup.py
    name: str = "main"  # for extra sources: what it is ("cutlass")
    dest: str = ""  # for extra sources: where it goes inside the build tree
    member: str = ""  # for archives: the folder inside the archive to take

    @property
    def pin(self) -> str:
        """One string naming exactly what is built: "<git>@<commit>" or "<url>#sha256=<hex>"."""
        if self.git:
            return f"{self.git}@{self.commit}"
        return f"{self.url}#sha256={self.sha256}"


@dataclass(frozen=True, kw_only=True)
class TargetRule:
    """GPU targets for the CUDA versions in ``cuda``; the first rule that matches wins."""

    cuda: SpecifierSet
    targets: tuple[GpuTarget, ...]


@dataclass(frozen=True, kw_only=True)
class Fix:
    """An environment change for upstream build quirks, applied when ``when`` matches."""

    why: str
    torch: SpecifierSet = field(default_factory=SpecifierSet)
    cuda: SpecifierSet = field(default_factory=SpecifierSet)
    python: SpecifierSet = field(default_factory=SpecifierSet)
    os: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    env_append: Mapping[str, str] = field(default_factory=dict)

    def applies(self, *, torch: str, cuda: str, python: str, os: str) -> bool:
        return (
            self.torch.contains(Version(torch).public, prereleases=True)
            and self.cuda.contains(cuda, prereleases=True)
            and self.python.contains(python, prereleases=True)
            and (not self.os or os in self.os)
        )


@dataclass(frozen=True, kw_only=True)
class Patch:
    """A change to the pinned source that this repository carries (recipes/patches/...),
    applied with ``git apply`` to the build tree before the compile. Upstream's code stays
    upstream's; a patch is ours, small, and says why and which upstream PR or issue it
    follows."""

    file: Path  # resolved against the recipe's folder
    sha256: str  # of the patch file: a changed patch is a changed recipe
    why: str
    mirrors: str  # the upstream PR or issue it follows: "thu-ml/SageAttention#370"
    os: tuple[str, ...] = ()  # only builds on these OSes; () = every OS

    def applies(self, os: str) -> bool:
        return not self.os or os in self.os


@dataclass(frozen=True, kw_only=True)
class Matrix:
    """Which torch releases, CUDA versions, Pythons and platforms the recipe is built for."""

    torch: SpecifierSet = field(default_factory=SpecifierSet)
    cuda: SpecifierSet = field(default_factory=SpecifierSet)
    python: SpecifierSet = field(default_factory=SpecifierSet)
    platforms: tuple[str, ...] = field(default_factory=platforms.names)
    free_threaded: bool = False  # also build for 3.13t / 3.14t where torch ships them
    # one cp3X-abi3 wheel replaces the per-Python wheels: true (tagged for the oldest
    # CPython of each torch), or the tag the source's limited API gives it ("cp310")
    abi3: bool | str = False
    stable_abi_floor: str | None = None  # one wheel for every torch >= this (torch's stable ABI)
    # platforms left out on purpose -> why (plan --explain shows it)
    platform_reasons: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    env: Mapping[str, str] = field(default_factory=dict)
    links_driver: bool = False  # some module links -lcuda: provide a link-time stub
    no_gpu_shim: bool = False  # setup.py asks torch.cuda for the GPU: answer from the targets
    msvc_flags: tuple[str, ...] = ()  # extra cl.exe flags for Windows builds
    # glob on a .cu path -> the only targets it may compile for (setup.py gives it all)
    source_targets: Mapping[str, tuple[GpuTarget, ...]] = field(default_factory=dict)
    # setup.py reads TORCH_CUDA_ARCH_LIST as plain "9.0" and adds the "a" itself
    plain_arch_list: bool = False
    # nvcc --compress-mode: "auto" (the CUDA version's default, gpu-targets.toml), "off"
    # (no flag: nvcc's default), or a mode nvcc takes ("size", "balance", "speed", "none")
    compress: str = "auto"


@dataclass(frozen=True, kw_only=True)
class KnownBad:
    """A GPU on which this build computes wrong results: the import guard refuses it there
    and names the version to install instead."""

    arch: str  # compute capability "9.0" (every variant of it: sm_90, sm_90a)
    reason: str
    use_instead: str  # a version ("2.2.1") or range (">=2.2.1") of the package that is right there


@dataclass(frozen=True, kw_only=True)
class GpuCheckSpec:
    """[gpu-check]: how `wheelfactory gpu-check` runs a wheel's kernels on a GPU. The
    script measures (it prints JSON; see recipes/checks/attention.py); wheelfactory judges
    the numbers against these tolerances."""

    script: Path  # resolved against the recipe's folder
    args: Mapping[str, Any]  # passed to the script as JSON: what to call, which shapes
    min_cosine: float  # every shape's output vs the reference
    max_abs_error: float | None = None
    timeout: float = 600.0  # seconds for install + script
    source: SourceCheckSpec | None = None  # [gpu-check.source]: the PTX variant's check


@dataclass(frozen=True, kw_only=True)
class SourceCheckSpec:
    """[gpu-check.source]: a check of the recipe's source rather than of a shipped wheel.
    `wheelfactory gpu-check --source-variant DIR` builds the tree for ``archs`` (X.Y+PTX
    targets: their PTX runs on any later GPU through the driver's JIT) and runs the script
    with ``calls``, each kernel entry point whose ``arch`` was built and runs here, so an
    H200 exercises the sm80/sm89 kernels that no shipped-wheel check on it reaches."""

    archs: tuple[GpuTarget, ...]
    calls: tuple[Mapping[str, Any], ...]  # {"arch": "8.0", "call": "pkg:function", "kwargs": {...}}


@dataclass(frozen=True, kw_only=True)
class Recipe:
    path: Path | None
    name: str  # normalized distribution name
    version: str | None  # public version of the wheels; None: whatever the build reports
    # What the source itself reports, when the factory publishes it under another version
    # (a default-branch snapshot of 2.2.0 published as 2.2.0.post20250801); None: same.
    upstream_version: str | None = None
    source: Source | None  # None: --source DIR given on the command line
    extra_sources: tuple[Source, ...] = ()
    matrix: Matrix = field(default_factory=Matrix)
    target_rules: tuple[TargetRule, ...] = ()
    build: BuildSettings = field(default_factory=BuildSettings)
    fixes: tuple[Fix, ...] = ()
    patches: tuple[Patch, ...] = ()
    import_modules: tuple[str, ...] = ()  # [verify] import: every build makes these
    # [verify] import-for-targets: module -> the GPU targets whose build makes it
    target_modules: Mapping[str, tuple[GpuTarget, ...]] = field(default_factory=dict)
    # [verify] names: "module.attribute" that users' code imports (ComfyUI's attention
    # nodes: sageattention.sageattn, sageattn3.sageattn3_blackwell)
    import_names: tuple[str, ...] = ()
    known_bad: tuple[KnownBad, ...] = ()
    gpu_check: GpuCheckSpec | None = None
    sha256: str = ""  # of the recipe file's bytes, recorded in every wheel's build record

    def targets_for(self, cuda: str) -> tuple[GpuTarget, ...]:
        """The GPU targets for CUDA ``cuda`` (first matching rule), or RecipeError."""
        for rule in self.target_rules:
            if rule.cuda.contains(cuda, prereleases=True):
                return rule.targets
        where = self.path or self.name
        msg = f"{where}: no [[targets]] rule covers CUDA {cuda}; add one or pass --arch"
        raise RecipeError(msg)

    def torch_pin(self, torch: str) -> TorchPin:
        """The pin of a build of this recipe against ``torch``: one torch minor, or every
        torch from the stable-ABI floor on (refusing a torch below the floor)."""
        floor = self.matrix.stable_abi_floor
        if floor is not None and Version(TorchPin(torch).minor) < Version(floor):
            raise ConfigError(
                f"{self.path or self.name} builds stable-ABI wheels for torch >= {floor}, not"
                f" {torch}: pass --torch {floor}.0 or newer"
            )
        return TorchPin(torch, floor=floor)

    def patches_for(self, os: str) -> tuple[Patch, ...]:
        return tuple(p for p in self.patches if p.applies(os))

    def modules_for(self, targets: tuple[GpuTarget, ...]) -> tuple[str, ...]:
        """The modules a build for ``targets`` must import: [verify] import, plus each module
        of import-for-targets that one of ``targets`` makes (matched by compute capability:
        "9.0" in the recipe matches a 9.0a build)."""
        built = {t.capability for t in targets}
        made = [m for m, made_by in self.target_modules.items()
                if any(t.capability in built for t in made_by)]  # fmt: skip
        return (*self.import_modules, *made)

    def fixes_for(self, *, torch: str, cuda: str, python: str, os: str) -> tuple[Fix, ...]:
        return tuple(f for f in self.fixes if f.applies(torch=torch, cuda=cuda, python=python, os=os))


def default_recipe(name: str) -> Recipe:
    """The recipe used for ``build --source DIR --name NAME``: defaults everywhere, and a
    driver stub to link against (harmless unless the tree links -lcuda)."""
    return Recipe(
        path=None,
        name=str(canonicalize_name(name)),
        version=None,
        source=None,
        build=BuildSettings(links_driver=True),
    )


# --------------------------------------------------------------------------- parsing


class _Reader:
    """Reads one TOML table, remembering which keys were used, for strict errors."""

    def __init__(self, file: Path, where: str, table: Any, allowed: tuple[str, ...]) -> None:
        self.file, self.where = file, where
        if table is None:
            self.fail("is missing", f"add a [{where}] table; see recipes/README.md")
        if not isinstance(table, dict):
            self.fail(f"must be a table, not {type(table).__name__}", "see recipes/README.md")
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
                self.fail(f"unknown key {key!r}", hint)
        self.table: dict[str, Any] = table

    def fail(self, problem: str, fix: str, key: str | None = None) -> None:
        place = f"{self.where}.{key}" if key else self.where
        raise RecipeError(f"{self.file}: [{place}] {problem}; {fix}")

    def str(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        if key not in self.table:
            if required:
                self.fail("is missing", f"add {key} = \"...\"", key)
            return default
        value = self.table[key]
        if not isinstance(value, str):
            self.fail(f"must be a string, not {value!r}", f'write {key} = "..."', key)
        return value

    def bool(self, key: builtins.str, default: bool = False) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"must be true or false, not {value!r}", f"write {key} = true", key)
        return value

    def str_list(self, key: builtins.str, default: tuple[builtins.str, ...] = ()) -> tuple[builtins.str, ...]:
        value = self.table.get(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"must be a list of strings, not {value!r}", f'write {key} = ["..."]', key)
        return tuple(value)

    def specifier(self, key: builtins.str) -> SpecifierSet:
        text = self.str(key, "") or ""
        try:
            return SpecifierSet(text)
        except InvalidSpecifier:
            self.fail(f"{text!r} is not a version range", f'write e.g. {key} = ">=12.8"', key)
            raise  # unreachable; fail() raises

    def env_table(self, key: builtins.str) -> dict[builtins.str, builtins.str]:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            self.fail("must be a table of strings", f'write {key} = {{ NAME = "value" }}', key)
        for name, text in value.items():
            if not _ENV_NAME_RE.match(name) or not isinstance(text, str):
                self.fail(f"entry {name!r} = {text!r} is not NAME = \"string\"", "fix the entry", key)
        return dict(value)


    def targets_table(
        self, key: builtins.str, example_name: builtins.str
    ) -> dict[builtins.str, tuple[GpuTarget, ...]]:
        """A table of name = ["9.0a", ...] (source-targets, import-for-targets)."""
        value = self.table.get(key, {})
        example = f'write {key} = {{ "{example_name}" = ["9.0a"] }}'
        if not isinstance(value, dict):
            self.fail("must be a table of name = [targets]", example, key)
        out: dict[builtins.str, tuple[GpuTarget, ...]] = {}
        for glob, archs in value.items():
            if not isinstance(archs, list) or not archs or not all(isinstance(a, str) for a in archs):
                self.fail(f"entry {glob!r} must list targets, not {archs!r}", example, key)
            try:
                out[glob] = arch.parse_targets(list(archs))
            except ConfigError as e:
                self.fail(f"entry {glob!r}: {e}", "use targets like 9.0a or 12.0a", key)
        return out


def _parse_source(file: Path, where: str, table: Any, *, extra: bool) -> Source:
    keys: tuple[str, ...] = ("git", "commit", "ref", "url", "sha256", "member")
    keys += ("name", "dest") if extra else ("subdirectory",)
    r = _Reader(file, where, table, keys)
    git, url = r.str("git"), r.str("url")
    if bool(git) == bool(url):
        r.fail("needs exactly one of git or url", 'pin git = "https://..." with commit, or url with sha256')
    commit, sha256 = r.str("commit"), r.str("sha256")
    # what pins each kind of source: (key, value, its form, said as, how to get it), and the
    # key that belongs to the other kind
    (key, pin, form, said, how), other = (
        (("commit", commit, _COMMIT_RE, "a full 40-hex commit", "pin the full SHA (git rev-parse <tag>^{commit})"),
         "sha256") if git else
        (("sha256", sha256, _SHA256_RE, "64 lowercase hex digits", "pin the archive's sha256 (sha256sum FILE)"),
         "commit")
    )  # fmt: skip
    if pin is None or not form.match(pin):
        r.fail(f"{key} {pin!r} is not {said}", how, key)
    if r.str(other) is not None:
        kind = "git" if git else "url"
        r.fail(f"{other} is not for {kind} sources", f"remove it; the {key} pins a {kind} source", other)
    dest = r.str("dest", "") or ""
    if extra and (not dest or not _DEST_RE.match(dest)):
        r.fail(f"dest {dest!r} must be a relative path inside the tree", 'write dest = "csrc/cutlass"', "dest")
    subdirectory = r.str("subdirectory", "") or ""
    if subdirectory and not _DEST_RE.match(subdirectory):
        r.fail(f"subdirectory {subdirectory!r} must be a relative path", "fix it", "subdirectory")
    return Source(
        git=git,
        commit=commit,
        ref=r.str("ref"),
        url=url,
        sha256=sha256,
        subdirectory=subdirectory,
        name=(r.str("name", "extra") or "extra") if extra else "main",
        dest=dest,
        member=r.str("member", "") or "",
    )


def _parse_targets(file: Path, where: str, table: Any, matrix_cuda: SpecifierSet) -> TargetRule:
    r = _Reader(file, where, table, ("cuda", "archs"))
    cuda = r.specifier("cuda")
    archs = r.str_list("archs")
    if not archs:
        r.fail("lists no GPU targets", 'write archs = ["9.0a", "12.0a"]', "archs")
    try:
        targets = arch.parse_targets(list(archs))
    except ConfigError as e:
        r.fail(str(e), "fix the entry", "archs")
        raise
    # Every CUDA release this rule (and the matrix) admits must compile every target.
    for release in arch.known_cuda_releases():
        if not (cuda.contains(release) and matrix_cuda.contains(release)):
            continue
        for target in targets:
            reason = arch.why_not_buildable(target, release)
            if reason:
                r.fail(
                    f"{reason}, but cuda = {str(cuda) or '(any)'!r} admits {release}",
                    f"narrow cuda (e.g. \">={arch.target_table()[target.arch].min_cuda}\") or drop {target}"
                    if target.arch in arch.target_table()
                    else f"drop {target}",
                    "archs",
                )
    return TargetRule(cuda=cuda, targets=targets)


def _parse_fix(file: Path, where: str, table: Any) -> Fix:
    r = _Reader(file, where, table, ("why", "when", "env", "env-append"))
    why = r.str("why", required=True) or ""
    when = _Reader(file, f"{where}.when", table.get("when", {}), ("torch", "cuda", "python", "os"))
    oses = when.str_list("os")
    for os_name in oses:
        if os_name not in platforms.oses():
            when.fail(f"os {os_name!r} is unknown", f"use one of {', '.join(platforms.oses())}", "os")
    env, env_append = r.env_table("env"), r.env_table("env-append")
    if not env and not env_append:
        r.fail("changes nothing", "add env = {...} or env-append = {...}")
    return Fix(
        why=why,
        torch=when.specifier("torch"),
        cuda=when.specifier("cuda"),
        python=when.specifier("python"),
        os=oses,
        env=env,
        env_append=env_append,
    )


_MIRRORS_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+#\d+$")


def _parse_patch(file: Path, where: str, table: Any) -> Patch:
    r = _Reader(file, where, table, ("file", "sha256", "why", "mirrors", "os"))
    rel = r.str("file", required=True) or ""
    if not _DEST_RE.match(rel) or not rel.endswith(".patch"):
        r.fail(f"file {rel!r} is not a .patch path inside the recipe's folder",
               'write file = "patches/<recipe>/0001-name.patch"', "file")  # fmt: skip
    path = file.resolve().parent / rel
    why = r.str("why", required=True) or ""
    mirrors = r.str("mirrors", required=True) or ""
    if not _MIRRORS_RE.match(mirrors):
        r.fail(f"mirrors {mirrors!r} names no upstream PR or issue",
               'write mirrors = "owner/repo#123" (the PR or issue the patch follows)', "mirrors")  # fmt: skip
    oses = r.str_list("os")
    for os_name in oses:
        if os_name not in platforms.oses():
            r.fail(f"os {os_name!r} is unknown", f"use one of {', '.join(platforms.oses())}", "os")
    sha256 = r.str("sha256", required=True) or ""
    try:
        got = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        r.fail(f"cannot read {rel} ({e.strerror})", "add the patch file, or fix file", "file")
        raise  # unreachable; fail() raises
    if got != sha256:
        r.fail(f"{rel} has sha256 {got}, not the pinned {sha256}",
               "re-pin sha256 only after reviewing the patch (sha256sum FILE)", "sha256")  # fmt: skip
    return Patch(file=path, sha256=sha256, why=why, mirrors=mirrors, os=oses)


def _parse_known_bad(file: Path, where: str, table: Any) -> KnownBad:
    r = _Reader(file, where, table, ("arch", "reason", "use-instead"))
    arch_text = r.str("arch", required=True) or ""
    if not re.fullmatch(r"\d+\.\d", arch_text):
        r.fail(f"arch {arch_text!r} is not a compute capability", 'write arch = "9.0"', "arch")
    use_instead = r.str("use-instead", required=True) or ""
    try:
        SpecifierSet(use_instead if use_instead[:1] in "<>=!~" else f"=={use_instead}")
    except InvalidSpecifier:
        r.fail(f"use-instead {use_instead!r} is neither a version nor a range",
               'write use-instead = ">=2.2.0.post1"', "use-instead")  # fmt: skip
    return KnownBad(arch=arch_text, reason=r.str("reason", required=True) or "", use_instead=use_instead)


def _left_out(mx: _Reader) -> dict[str, str]:
    value = mx.table.get("platforms-left-out", {})
    example = 'write platforms-left-out = { windows-amd64 = "why" }'
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
        mx.fail("must be a table of platform = \"why it is left out\"", example, "platforms-left-out")
    listed = mx.table.get("platforms")
    for name in value:
        if name not in platforms.names() or (isinstance(listed, list) and name in listed):
            mx.fail(f"{name!r} is not a platform that platforms leaves out", example, "platforms-left-out")
    return dict(value)


def _abi3(mx: _Reader) -> bool | str:
    value = mx.table.get("abi3", False)
    if isinstance(value, bool):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"cp3\d+", value):
        mx.fail(f"abi3 {value!r} is neither true/false nor a tag like \"cp310\"", 'write abi3 = "cp310"', "abi3")
    return value


def _number(r: _Reader, key: str, default: float | None) -> float | None:
    value = r.table.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        r.fail(f"must be a number, not {value!r}", f"write {key} = 0.99", key)
    return None if value is None else float(value)


def _parse_gpu_check(file: Path, table: Any) -> GpuCheckSpec:
    r = _Reader(file, "gpu-check", table, ("script", "args", "min-cosine", "max-abs-error", "timeout", "source"))
    script = r.str("script", required=True) or ""
    if not _DEST_RE.match(script):
        r.fail(f"script {script!r} must be a relative path", 'write script = "checks/attention.py"', "script")
    resolved = file.resolve().parent / script
    if not resolved.is_file():
        r.fail(f"script {script!r} is not a file next to the recipe", "add it or fix the path", "script")
    args = r.table.get("args", {})
    if not isinstance(args, dict):
        r.fail("must be a table", 'write args = { call = "pkg:function" }', "args")
    min_cosine = _number(r, "min-cosine", None)
    if min_cosine is None or not 0 < min_cosine <= 1:
        r.fail(f"min-cosine {min_cosine!r} must be in (0, 1]", "write min-cosine = 0.99", "min-cosine")
    timeout = _number(r, "timeout", 600.0)
    if timeout is None or timeout <= 0:
        r.fail("timeout must be positive seconds", "write timeout = 600", "timeout")
    return GpuCheckSpec(
        script=resolved,
        args=dict(args),
        min_cosine=float(min_cosine),  # type: ignore[arg-type]
        max_abs_error=_number(r, "max-abs-error", None),
        timeout=float(timeout),  # type: ignore[arg-type]
        source=_parse_source_check(file, r.table["source"]) if "source" in r.table else None,
    )


def _parse_source_check(file: Path, table: Any) -> SourceCheckSpec:
    r = _Reader(file, "gpu-check.source", table, ("archs", "calls"))
    example = 'write archs = ["8.0+PTX", "8.9+PTX"]'
    try:
        targets = arch.parse_targets(r.str_list("archs"))
    except ConfigError as e:
        r.fail(str(e), example, "archs")
        raise
    if not targets or not all(t.ptx for t in targets):
        r.fail("must list X.Y+PTX targets (their PTX is what runs on a newer GPU)", example, "archs")
    raw = r.table.get("calls")
    calls: list[Any] = raw if isinstance(raw, list) else []
    call_example = 'write calls = [{ arch = "8.0", call = "pkg:function", kwargs = {} }]'
    if not calls:
        r.fail("must be a list of kernel entry points", call_example, "calls")
    built = {t.arch for t in targets}
    for call in calls:
        c = _Reader(file, "gpu-check.source.calls", call, ("arch", "call", "kwargs"))
        if c.str("arch", required=True) not in built or ":" not in (c.str("call", required=True) or ""):
            c.fail(f"{call!r} needs arch = one of {sorted(built)} and call = \"module:function\"", call_example)
        if not isinstance(call.get("kwargs", {}), dict):
            c.fail("must be a table", "write kwargs = { tensor_layout = \"HND\" }", "kwargs")
    return SourceCheckSpec(archs=targets, calls=tuple(dict(c) for c in calls))


def parse_recipe(text: str, path: Path) -> Recipe:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML ({e}); fix the syntax") from e
    top = _Reader(
        path,
        "recipe",
        data,
        ("package", "source", "extra-source", "patch", "matrix", "targets", "build", "fix",
         "verify", "known-bad", "gpu-check"),
    )
    del top
    pkg = _Reader(path, "package", data.get("package"), ("name", "version", "upstream-version"))
    name = pkg.str("name", required=True) or ""
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", name):
        pkg.fail(f"name {name!r} is not a valid distribution name", "use letters, digits, - _ .", "name")
    version = pkg.str("version")
    upstream_version = pkg.str("upstream-version")
    for key, value in (("version", version), ("upstream-version", upstream_version)):
        if value is None:
            continue
        try:
            parsed = Version(value)
        except InvalidVersion:
            parsed = None
        if parsed is None or parsed.local is not None:
            pkg.fail(f"{key} {value!r} is not a public PEP 440 version", f'write e.g. {key} = "2.2.0"', key)
    if upstream_version is not None and version is None:
        pkg.fail("upstream-version needs version", 'add version = "<what the wheels are published as>"', "upstream-version")

    # No [source]: the recipe is for trees given with --source DIR (e.g. test fixtures).
    source = _parse_source(path, "source", data["source"], extra=False) if "source" in data else None
    extras_raw = data.get("extra-source", [])
    if not isinstance(extras_raw, list):
        raise RecipeError(f"{path}: [extra-source] must be an array of tables; write [[extra-source]]")
    extras = tuple(
        _parse_source(path, f"extra-source.{i}", t, extra=True) for i, t in enumerate(extras_raw)
    )

    mx = _Reader(
        path,
        "matrix",
        data.get("matrix", {}),
        ("torch", "cuda", "python", "platforms", "free-threaded", "abi3", "stable-abi-floor",
         "platforms-left-out"),
    )
    known = platforms.names()
    left_out = _left_out(mx)
    # every platform in the table, less those left out with a reason: a new platform is a
    # row in platforms.toml, not an edit of every recipe
    wanted = mx.str_list("platforms", tuple(p for p in known if p not in left_out))
    for platform in wanted:
        if platform not in known:
            close = difflib.get_close_matches(platform, known, n=1)
            fix = f"did you mean {close[0]!r}?" if close else f"use {', '.join(known)}"
            mx.fail(f"platform {platform!r} is unknown", fix, "platforms")
    floor = mx.str("stable-abi-floor")
    if floor is not None and not re.fullmatch(r"\d+\.\d+", floor):
        mx.fail(f"stable-abi-floor {floor!r} is not a torch minor", 'write "2.10"', "stable-abi-floor")
    matrix = Matrix(
        torch=mx.specifier("torch"),
        cuda=mx.specifier("cuda"),
        python=mx.specifier("python"),
        platforms=wanted,
        free_threaded=mx.bool("free-threaded"),
        abi3=_abi3(mx),
        stable_abi_floor=floor,
        platform_reasons=left_out,
    )

    rules_raw = data.get("targets", [])
    if not isinstance(rules_raw, list) or not rules_raw:
        raise RecipeError(f"{path}: [[targets]] is missing; add a rule: cuda = \">=12.8\", archs = [\"9.0a\"]")
    rules = tuple(_parse_targets(path, f"targets.{i}", t, matrix.cuda) for i, t in enumerate(rules_raw))

    build_keys = (
        "env", "links-driver", "no-gpu-shim", "msvc-flags", "source-targets", "plain-arch-list",
        "compress-mode",
    )  # fmt: skip
    b = _Reader(path, "build", data.get("build", {}), build_keys)
    compress = b.str("compress-mode", "auto") or "auto"
    if compress not in ("auto", "off", *arch.COMPRESS_MODES):
        modes = ", ".join(("auto", "off", *arch.COMPRESS_MODES))
        b.fail(f"compress-mode {compress!r} is unknown", f"use one of {modes}", "compress-mode")
    if compress in arch.COMPRESS_MODES:
        too_old = [c for c in arch.known_cuda_releases()
                   if matrix.cuda.contains(c) and c < arch.compress_flag_from()]
        if too_old:
            b.fail(f"nvcc of CUDA {too_old[0]} has no --compress-mode (it came with"
                   f" {arch.compress_flag_from()})", 'narrow [matrix].cuda or use "auto"',
                   "compress-mode")
    build = BuildSettings(
        env=b.env_table("env"),
        links_driver=b.bool("links-driver"),
        no_gpu_shim=b.bool("no-gpu-shim"),
        msvc_flags=b.str_list("msvc-flags"),
        source_targets=b.targets_table("source-targets", "csrc/*_sm90.cu"),
        plain_arch_list=b.bool("plain-arch-list"),
        compress=compress,
    )
    fixes_raw = data.get("fix", [])
    if not isinstance(fixes_raw, list):
        raise RecipeError(f"{path}: [fix] must be an array of tables; write [[fix]]")
    fixes = tuple(_parse_fix(path, f"fix.{i}", t) for i, t in enumerate(fixes_raw))
    patches_raw = data.get("patch", [])
    if not isinstance(patches_raw, list):
        raise RecipeError(f"{path}: [patch] must be an array of tables; write [[patch]]")
    patches = tuple(_parse_patch(path, f"patch.{i}", t) for i, t in enumerate(patches_raw))

    v = _Reader(path, "verify", data.get("verify", {}), ("import", "import-for-targets", "names"))
    modules = v.str_list("import")
    names = v.str_list("names")
    for attribute in names:
        if not _MODULE_RE.match(attribute) or "." not in attribute:
            v.fail(f"{attribute!r} is not a module.attribute name", 'write names = ["sageattention.sageattn"]', "names")
    target_modules = v.targets_table("import-for-targets", "pkg._sm90")
    for module in (*modules, *target_modules):
        if not _MODULE_RE.match(module):
            v.fail(f"{module!r} is not a dotted module name", "write import = [\"pkg._ext\"]", "import")
    for module in set(modules) & set(target_modules):
        v.fail(f"{module!r} is in both import and import-for-targets",
               "keep it in import (every build makes it) or in import-for-targets", "import-for-targets")  # fmt: skip

    bad_raw = data.get("known-bad", [])
    if not isinstance(bad_raw, list):
        raise RecipeError(f"{path}: [known-bad] must be an array of tables; write [[known-bad]]")
    known_bad = tuple(_parse_known_bad(path, f"known-bad.{i}", t) for i, t in enumerate(bad_raw))

    gpu_check = _parse_gpu_check(path, data["gpu-check"]) if "gpu-check" in data else None

    return Recipe(
        path=path,
        name=str(canonicalize_name(name)),
        version=version,
        upstream_version=upstream_version,
        source=source,
        extra_sources=extras,
        matrix=matrix,
        target_rules=rules,
        build=build,
        fixes=fixes,
        patches=patches,
        import_modules=modules,
        target_modules=target_modules,
        import_names=names,
        known_bad=known_bad,
        gpu_check=gpu_check,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


def repo_root(start: Path | None = None) -> Path:
    """The nearest directory (from ``start``, default the working directory, upwards) with
    recipes/ or pyproject.toml: where recipe paths in plans and build records start."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "recipes").is_dir() or (d / "pyproject.toml").is_file():
            return d
    return here


RECIPES_ENV = "WHEELFACTORY_RECIPES"


def recipe_dirs() -> list[Path]:
    """Where commands look for recipes when none are named, in order: $WHEELFACTORY_RECIPES;
    the recipes/ of the repository around the working directory; that of the checkout this
    wheelfactory runs from (an editable install), so any working directory works."""
    if os.environ.get(RECIPES_ENV):
        return [Path(os.environ[RECIPES_ENV]).expanduser()]
    here = repo_root() / "recipes"
    installed_from = Path(__file__).resolve().parents[2] / "recipes"
    return [here] if here == installed_from else [here, installed_from]


def find_recorded(recipe: str) -> Path | None:
    """The recipe file a build record names (``display_path``'s form), in the repository
    around the working directory or the checkout wheelfactory runs from; None: not here."""
    for root in (repo_root(), Path(__file__).resolve().parents[2]):
        if (root / recipe).is_file():
            return root / recipe
    return None


def display_path(path: Path) -> str:
    """A recipe's path as plans and build records name it: relative to its repository."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(repo_root(resolved.parent)).as_posix()
    except ValueError:
        return resolved.as_posix()


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RecipeError(f"{path}: cannot read recipe ({e.strerror}); check the path") from e
    except UnicodeDecodeError as e:
        raise RecipeError(f"{path}: not UTF-8 text (byte {e.start}); save the recipe as UTF-8 TOML") from e
    return parse_recipe(text, path)
