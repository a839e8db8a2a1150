"""Fetch and verify the sources of a build into a scratch directory.

The main source is a git commit (``git fetch`` of exactly that commit, checked with
``git rev-parse``), an archive pinned by sha256 (http(s), file:// or a local path), or a
local tree given with ``--source DIR``, which is copied: a build never runs inside the
user's tree. Extra sources (``[[extra-source]]``) are fetched the same way and placed at
their ``dest`` inside the tree, replacing what is there.

With ``resume``, a work dir that already holds the same sources (``src.json`` records
their pins) keeps its tree, and with it the objects an interrupted or failed build already
compiled; a local tree is re-synced into it file by file (unchanged files keep their
mtimes, so ninja recompiles only what changed). Links are always redone: torch's
BuildExtension forces setuptools' build_ext when it uses ninja.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tarfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from wheelfactory import _proc, platforms
from wheelfactory.errors import CommandFailedError, NetworkError, SourceError, ToolMissingError
from wheelfactory.hashing import sha256_hex
from wheelfactory.recipe import Patch, Recipe, Source, display_path

log = logging.getLogger(__name__)

# Not copied from a local tree: build outputs and caches that would leak into the build.
COPY_IGNORE = ("build", "dist", "*.egg-info", "__pycache__", ".venv", "*.so", "*.o")
# In the work dir: the PreparedSource of work/src, pins included (read by --resume).
MARKER = "src.json"


@dataclass(frozen=True, kw_only=True)
class FetchedSource:
    """One source in place: what it was pinned to and where it is now."""

    name: str
    kind: str  # "git", "url" or "local"
    pin: str  # "<git>@<commit>", "<url>#sha256=<hex>" or "local:<dir>"
    commit: str | None  # git commit (also for a local tree that is a git checkout)
    sha256: str | None
    path: Path
    dirty: bool = False  # a local git tree with uncommitted changes


@dataclass(frozen=True, kw_only=True)
class AppliedPatch:
    """One of the recipe's patches, as applied to the tree."""

    file: str  # as build records name it (relative to the repository)
    sha256: str
    why: str
    mirrors: str


@dataclass(frozen=True, kw_only=True)
class PreparedSource:
    """The tree to build (holds setup.py / pyproject.toml) and what went into it."""

    tree: Path
    main: FetchedSource
    extras: tuple[FetchedSource, ...] = ()
    patches: tuple[AppliedPatch, ...] = ()


def apply_patches(tree: Path, patches: tuple[Patch, ...], scratch: Path) -> tuple[AppliedPatch, ...]:
    """Apply the recipe's patches to ``tree`` in order with ``git apply -p1`` (paths relative
    to the tree, whatever repository holds it); all are checked before any is applied, so a
    patch that no longer applies leaves the tree as fetched."""
    if not patches:
        return ()
    # an empty repository of our own: git apply then reads paths from the tree's top, not
    # from the top of a checkout the tree may sit in
    git_dir = scratch / "patch-git"
    shutil.rmtree(git_dir, ignore_errors=True)
    _proc.run(["git", "init", "-q", "--bare", git_dir], echo=False)
    git = ["git", f"--git-dir={git_dir}", f"--work-tree={tree}", "apply", "-p1"]
    for patch in patches:
        check = _proc.run([*git, "--check", patch.file], cwd=tree, check=False, echo=False)
        if check.returncode != 0:
            first = next((ln for ln in check.stderr.splitlines() if ln.strip()), "no output")
            raise SourceError(
                f"patch {patch.file.name} does not apply to the pinned source ({first.strip()}):"
                " rebase the patch on the pinned commit, or drop it if upstream has the fix"
            )
        _proc.run([*git, patch.file], cwd=tree, echo=False)
        log.info("patched: %s (%s)", patch.file.name, patch.mirrors)
    return tuple(
        AppliedPatch(file=display_path(p.file), sha256=p.sha256, why=p.why, mirrors=p.mirrors)
        for p in patches
    )


def _git(args: list[str], cwd: Path) -> str:
    return _proc.run(["git", "-c", "advice.detachedHead=false", *args], cwd=cwd).stdout.strip()


# git's (curl's, ssh's) words for "the host was not reached", as opposed to "the host said no"
_NETWORK_FAILURES = re.compile(
    r"Could not resolve (?:host|proxy)|Failed to connect|Couldn't connect|Connection (?:refused|timed out|reset)"
    r"|Network is unreachable|No route to host|Temporary failure in name resolution"
    r"|Name or service not known|Operation timed out"
)


def network_failure(output: str) -> str | None:
    """The line of a failed fetch's output that says the host was not reached, or None."""
    return next((line.strip() for line in output.splitlines() if _NETWORK_FAILURES.search(line)), None)


def _unreachable(url: str, commit: str, reason: str) -> NetworkError:
    host = urllib.parse.urlsplit(url).hostname or url
    return NetworkError(
        f"cannot reach {host} to fetch {url} (network or DNS: {reason.removeprefix('fatal: ')}):"
        f" check your connection, or pass --source DIR with a checkout of commit {commit}"
    )


def fetch_git(url: str, commit: str, dest: Path) -> Path:
    """Check out exactly ``commit`` of ``url`` into ``dest`` (no .git history kept beyond it)."""
    dest.mkdir(parents=True, exist_ok=True)
    _git(["init", "-q"], dest)
    git = ["git", "-c", "advice.detachedHead=false"]
    shallow = _proc.run([*git, "fetch", "-q", "--depth", "1", url, commit], cwd=dest, check=False)
    if shallow.returncode != 0:
        reason = network_failure(shallow.stdout)
        if reason:
            raise _unreachable(url, commit, reason)
        # Some servers refuse fetching an unadvertised commit: fetch all, then pick it.
        log.info("shallow fetch of %s refused; fetching the full history", commit)
        full = _proc.run(
            [*git, "fetch", "-q", url, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
            cwd=dest, check=False,
        )  # fmt: skip
        if full.returncode != 0:
            reason = network_failure(full.stdout)
            if reason:
                raise _unreachable(url, commit, reason)
            log.error("%s", full.stdout.rstrip())
            raise SourceError(
                f"cannot fetch {url}: check the URL and your network, or pass --source DIR"
            )
    try:
        _git(["checkout", "-q", commit], dest)
    except CommandFailedError as e:
        raise SourceError(f"commit {commit} is not in {url}: pin a commit that exists there") from e
    head = _git(["rev-parse", "HEAD"], dest)
    if head != commit:
        raise SourceError(f"{url}: checked out {head}, not the pinned {commit}; re-pin the commit")
    return dest


def download(url: str, sha256: str, cache: Path, base_dir: Path | None = None) -> Path:
    """Download ``url`` (or take a local path / file:// URL) into ``cache``; check its sha256.

    A path without a scheme is relative to ``base_dir`` (the recipe's folder)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "" and base_dir is not None and not Path(parsed.path).is_absolute():
        url = str(base_dir / parsed.path)
        parsed = urllib.parse.urlparse(url)
    name = Path(parsed.path).name or "download"
    target = cache / "downloads" / sha256 / name
    if target.exists() and sha256_hex(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{name}.part{os.getpid()}")
    try:
        if parsed.scheme in ("", "file"):
            shutil.copyfile(urllib.request.url2pathname(parsed.path), tmp)
        else:
            with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:  # noqa: S310
                shutil.copyfileobj(r, f)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise SourceError(f"cannot download {url} ({e}); check the URL and your network") from e
    got = sha256_hex(tmp)
    if got != sha256:
        tmp.unlink(missing_ok=True)
        msg = f"{url} has sha256 {got}, not the pinned {sha256}: the file changed upstream; re-pin it only after checking why"
        raise SourceError(msg)
    os.replace(tmp, target)
    return target


def extract(archive: Path, dest: Path, member: str = "") -> Path:
    """Unpack a tar/zip/wheel into ``dest``; return ``member`` inside it, else the single
    top-level folder, else ``dest`` itself."""
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    if name.endswith((".zip", ".whl")):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if info.filename.startswith("/") or ".." in Path(info.filename).parts:
                    raise SourceError(
                        f"{archive} has an unsafe member {info.filename!r}; do not use this archive"
                    )
            z.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")
    else:
        raise SourceError(
            f"{archive} is neither a tar nor a zip archive: pin an sdist, tarball or zip"
        )
    if member:
        root = dest / member
        if not root.is_dir():
            raise SourceError(f"{archive} has no folder {member!r}: fix member in the recipe")
        return root
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")] if dest.is_dir() else []
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


def _local_git_state(tree: Path) -> tuple[str | None, bool]:
    """(commit, dirty) of a local tree that is a git checkout; (None, False) otherwise."""
    try:
        head = _proc.run(["git", "rev-parse", "HEAD"], cwd=tree, check=False, echo=False)
        if head.returncode != 0:
            return None, False
        # only this tree counts, not the rest of an enclosing repository
        status = _proc.run(
            ["git", "status", "--porcelain", "--", "."], cwd=tree, check=False, echo=False
        )
        return head.stdout.strip(), bool(status.stdout.strip())
    except ToolMissingError:
        return None, False


def _copy_if_changed(src: str, dest: str) -> None:
    """copy2, unless ``dest`` has the same size and mtime (rsync's quick check)."""
    a, b = os.stat(src), (os.stat(dest) if os.path.exists(dest) else None)
    if b is None or (a.st_size, a.st_mtime_ns) != (b.st_size, b.st_mtime_ns):
        shutil.copy2(src, dest)


def copy_local(
    src: Path, dest: Path, *, update: bool = False, keep: tuple[str, ...] = ()
) -> FetchedSource:
    """Copy a local tree (never build inside the user's tree).

    ``update``: ``dest`` is an earlier copy; copy only changed files into it and leave the
    paths in ``keep`` (extra sources placed there) alone.
    """
    if not (src / "setup.py").exists() and not (src / "pyproject.toml").exists():
        raise SourceError(
            f"{src} has no setup.py or pyproject.toml: pass the folder that holds them to --source"
        )
    commit, dirty = _local_git_state(src)
    ignore_build_outputs = shutil.ignore_patterns(*COPY_IGNORE)
    kept = {src / k for k in keep}

    def ignore(folder: str, names: list[str]) -> set[str]:
        return set(ignore_build_outputs(folder, names)) | {
            n for n in names if Path(folder, n) in kept
        }

    shutil.copytree(
        src,
        dest,
        symlinks=True,
        ignore=ignore,
        dirs_exist_ok=update,
        copy_function=_copy_if_changed if update else shutil.copy2,
    )
    return FetchedSource(
        name="main",
        kind="local",
        pin=f"local:{src.resolve()}",
        commit=commit,
        sha256=None,
        path=dest,
        dirty=dirty,
    )


def fetch(source: Source, dest: Path, cache: Path, base_dir: Path | None = None) -> FetchedSource:
    """Fetch one pinned recipe source to ``dest`` (a new folder)."""
    if source.git:
        assert source.commit is not None
        fetch_git(source.git, source.commit, dest)
        root = dest
        kind, sha = "git", None
    else:
        assert source.url is not None and source.sha256 is not None
        archive = download(source.url, source.sha256, cache, base_dir)
        root = extract(archive, dest, source.member)
        kind, sha = "url", source.sha256
    return FetchedSource(
        name=source.name, kind=kind, pin=source.pin, commit=source.commit, sha256=sha, path=root
    )


def _patch_pin(name: str, sha256: str) -> str:
    """How a patch stands among a work dir's pins (a changed patch is another build)."""
    return f"patch:{name}#sha256={sha256}"


def _wanted_pins(recipe: Recipe, local: Path | None, target_os: str) -> list[str] | None:
    if local is not None:
        main = f"local:{local.resolve()}"
    elif recipe.source is not None:
        main = recipe.source.pin
    else:
        return None
    patches = (_patch_pin(p.file.name, p.sha256) for p in recipe.patches_for(target_os))
    return [main, *(extra.pin for extra in recipe.extra_sources), *patches]


def _write_marker(work: Path, prepared: PreparedSource) -> None:
    def fetched(f: FetchedSource) -> dict:
        return {**f.__dict__, "path": str(f.path)}

    record = {
        "tree": str(prepared.tree),
        "main": fetched(prepared.main),
        "extras": [fetched(e) for e in prepared.extras],
        "patches": [p.__dict__ for p in prepared.patches],
    }
    (work / MARKER).write_text(json.dumps(record, indent=2) + "\n")


def read_marker(work: Path) -> PreparedSource | None:
    """The PreparedSource that prepare_source recorded in ``work`` (None: none there)."""
    marker = work / MARKER
    if not marker.exists():
        return None
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))

        def fetched(d: dict) -> FetchedSource:
            return FetchedSource(**{**d, "path": Path(d["path"])})

        return PreparedSource(
            tree=Path(record["tree"]),
            main=fetched(record["main"]),
            extras=tuple(fetched(e) for e in record["extras"]),
            patches=tuple(AppliedPatch(**p) for p in record.get("patches", [])),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise SourceError(f"{marker} is damaged ({e}); delete it and fetch the sources again") from e


def _resume(recipe: Recipe, work: Path, local: Path | None, target_os: str) -> PreparedSource | None:
    """The PreparedSource already in ``work`` if it holds these sources; None: nothing to resume."""
    held_source = read_marker(work) if (work / "src").is_dir() else None
    if held_source is None:
        log.info("nothing to resume in %s: preparing the sources afresh", work)
        return None
    held = [s.pin for s in (held_source.main, *held_source.extras)]
    held += [_patch_pin(p.file.rsplit("/", 1)[-1], p.sha256) for p in held_source.patches]
    wanted = _wanted_pins(recipe, local, target_os)
    if held != wanted:
        raise SourceError(
            f"--resume: {work} holds a build of {held[0]}, not {wanted and wanted[0]}"
            " (or other extra sources): drop --resume for a fresh build, or pass another --work-dir"
        )
    main, extras = held_source.main, held_source.extras
    if local is not None:
        keep = tuple(e.dest for e in recipe.extra_sources)
        main = copy_local(local.resolve(), work / "src", update=True, keep=keep)
    log.info("resuming in %s: keeping %s and what was compiled there", work, main.pin)
    if local is not None and held_source.patches:  # the re-synced files lost their patches
        raise SourceError(
            f"--resume: {work} holds a patched copy of {local}: drop --resume for a fresh build"
        )
    return PreparedSource(tree=held_source.tree, main=main, extras=extras, patches=held_source.patches)


def prepare_source(
    recipe: Recipe,
    work: Path,
    *,
    local: Path | None = None,
    cache: Path,
    resume: bool = False,
    target_os: str | None = None,
) -> PreparedSource:
    """Put the recipe's sources (or ``local``, which overrides [source]) under ``work``,
    with the recipe's patches for ``target_os`` (default: this machine's) applied.

    ``resume``: keep what ``work`` holds when it was prepared from the same pins.
    """
    target_os = target_os or platforms.host().os
    work.mkdir(parents=True, exist_ok=True)
    if resume and (kept := _resume(recipe, work, local, target_os)) is not None:
        return kept
    base_dir = recipe.path.resolve().parent if recipe.path else None
    src_dir = work / "src"
    (work / MARKER).unlink(missing_ok=True)
    if src_dir.exists():
        shutil.rmtree(src_dir)
    if local is not None:
        main = copy_local(local.resolve(), src_dir)
        tree = src_dir
    elif recipe.source is not None:
        main = fetch(recipe.source, src_dir, cache, base_dir)
        tree = main.path / recipe.source.subdirectory if recipe.source.subdirectory else main.path
        if not tree.is_dir():
            raise SourceError(
                f"{recipe.source.pin} has no folder {recipe.source.subdirectory!r}: fix [source].subdirectory"
            )
    else:
        where = recipe.path or recipe.name
        raise SourceError(f"{where} has no [source]: pass --source DIR")
    extras = []
    for i, extra in enumerate(recipe.extra_sources):
        fetched = fetch(extra, work / f"extra-{i}-{extra.name}", cache, base_dir)
        place = tree / extra.dest
        if place.exists() or place.is_symlink():
            log.info("extra source %s replaces %s", extra.name, place)
            shutil.rmtree(place) if place.is_dir() and not place.is_symlink() else place.unlink()
        place.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(fetched.path), place)
        extras.append(FetchedSource(**{**fetched.__dict__, "path": place}))
    patches = apply_patches(tree, recipe.patches_for(target_os), work)
    prepared = PreparedSource(tree=tree, main=main, extras=tuple(extras), patches=patches)
    _write_marker(work, prepared)
    return prepared
