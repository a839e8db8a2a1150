"""Publish wheels to an index: check them, store them, record them, re-render what changed.

Order of a publish (``publish``), so that a crash at any point leaves the old index or,
after recovery, the new one, and never a page that links to a missing wheel:

1. every wheel is checked (filename, zip, RECORD hashes, METADATA, torch pin) before
   anything is written; a filename already published with another sha256 is refused,
   the same sha256 is a no-op;
2. the wheels and their ``.metadata`` files go to the store (invisible: no page links
   them yet); a staging store (GitHub: a draft release) then makes them public;
3. a journal ``.wheelfactory-journal.json`` in state "prepare" lists the temp files;
   the new pages and the new manifest are written to those hidden temp files;
4. the journal is rewritten in state "commit": the commit point;
5. the temp files are renamed over the pages (project pages, then project lists, then
   the root) and the manifest LAST; then the journal is removed.

The next publish, yank or ``recover_index`` finishes a committed journal or throws away
a prepared one. Only the pages that list a changed file are rewritten (index.py
``affected_pages``). ``twine check`` is not run here (publishing needs no twine); the
upload command runs it, and tests/integration/test_index_e2e.py runs ``twine check``
on every wheel it publishes.

Stores: the local store (files under ``<index>/files/``) is built in; GitHub Release
assets (``github:OWNER/NAME@TAG``, ghrelease.py) and S3-compatible buckets
(``s3://BUCKET/PREFIX``, s3store.py) return absolute URLs.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from filelock import FileLock
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from wheelfactory import atomicfile, verify, wheelfile
from wheelfactory.arch import GpuTarget
from wheelfactory.confine import confine
from wheelfactory.errors import ConfigError, PublishError
from wheelfactory.hashing import sha256_hex
from wheelfactory.index import (
    JSON_PAGE,
    ROOT_PAGE,
    Hooks,
    affected_pages,
    render_index,
    render_pages,
)
from wheelfactory.manifest import (
    MANIFEST_NAME,
    GpuCheck,
    Manifest,
    PublishedFile,
    check_filename,
    load_manifest,
    now_upload_time,
)
from wheelfactory.naming import STABLE_ABI, torch_minor
from wheelfactory.nearby import what_exists

log = logging.getLogger(__name__)

JOURNAL_NAME = ".wheelfactory-journal.json"
LOCK_NAME = ".wheelfactory.lock"
FILES_DIR = "files"
# For tests of atomicity: "stored", "prepared", "committing:<n renames done>", or a
# number N: die just before the N-th change publish, yank or unyank makes in the index's
# folder (tests/integration/test_crash_recovery.py tries every N); the process dies with
# os._exit, as a crash would (no cleanup runs).
CRASH_ENV = "WHEELFACTORY_CRASH_AT"
_changes_made = 0


# --------------------------------------------------------------------------- checking


@dataclass(frozen=True, kw_only=True)
class WheelInfo:
    """A checked wheel, ready to store: ``path`` is a private snapshot of the file given,
    hashed while it was copied, so the bytes stored are the bytes checked and hashed."""

    path: Path
    filename: str
    project: str
    version: str
    sha256: str
    size: int
    metadata: bytes
    requires_python: str | None
    build_record: Mapping[str, Any] | None


def wheel_identity(filename: str) -> tuple[str, Version, str, frozenset[str]]:
    """What makes two wheel filenames the same file to an installer: the normalized name,
    the version (a Version: 1.0 == 1.0.0, str would keep them apart), the build tag and
    the tags."""
    name, version, build, tags = parse_wheel_filename(filename)
    return (str(name), version, "".join(map(str, build)), frozenset(map(str, tags)))


def _refuse(path: Path, why: str, fix: str) -> PublishError:
    return PublishError(f"refusing {path.name}: {why}; {fix}")


def _snapshot(path: Path, folder: Path) -> tuple[Path, str, int]:
    """Copy ``path`` into ``folder``, hashing the bytes as they are copied."""
    dest = folder / path.name
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as src, dest.open("wb") as out:
        while block := src.read(1 << 20):
            digest.update(block)
            out.write(block)
            size += len(block)
    return dest, digest.hexdigest(), size


def inspect_wheel(path: str | os.PathLike[str], snapshots: Path | None = None) -> WheelInfo:
    """Check a wheel for publishing; raise PublishError saying what is wrong and what to do.

    With ``snapshots`` (a private folder), the wheel is first copied there (and hashed while
    copied), and the copy is what is checked and later stored: a file that changes on disk
    meanwhile cannot slip other bytes into the index.
    """
    path = Path(path)
    if not path.is_file():  # before the name: "nosuch/x.whl" is a missing file, not a bad name
        near = what_exists(path, "wheels", lambda p: p.suffix == ".whl")
        raise PublishError(f"{path}: no such file ({near}); pass the path of a built wheel")
    check_filename(path.name)
    if snapshots is not None:
        path, sha256, size = _snapshot(path, snapshots)
    try:
        wheel = wheelfile.read_wheel(path)
    except wheelfile.WheelError as e:
        raise PublishError(f"refusing {e}") from e
    if snapshots is None:
        sha256, size = sha256_hex(path), path.stat().st_size
    label = wheel.label
    record = wheel.build_record
    expect = verify.Expectation.of(record) if record is not None else None
    subject = verify.Subject(wheel=wheel, expect=expect)
    failed = next((c for c in verify.run_chain("publish", subject) if not c.ok), None)
    if failed is not None:
        raise PublishError(f"refusing {path.name}: {failed.detail}")
    return WheelInfo(
        path=path,
        filename=path.name,
        project=label.project,
        version=label.version,
        sha256=sha256,
        size=size,
        metadata=wheel.metadata_bytes,
        requires_python=wheel.requires_python,
        build_record=record.to_json() if record else None,
    )


# --------------------------------------------------------------------------- stores


class Store(Protocol):
    """Where wheel files live. ``put`` returns the file's URL: relative to the index root
    (served beside the pages) or absolute (another host). ``<url>.metadata`` must be
    stored too, which ``put`` is also called for. ``sha256`` is the caller's hash of
    ``source`` where it has one, so a multi-GB wheel is not hashed again."""

    def put(self, filename: str, source: Path | bytes, sha256: str | None = None) -> str: ...


@runtime_checkable
class StagingStore(Store, Protocol):
    """A store whose files are not public until ``finish`` (GitHub: a draft release takes
    the assets, then is published; an immutable release takes none after that). publish
    calls ``finish`` once every file is stored and before any page links them."""

    def finish(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class LocalStore:
    """Files in ``<index>/files/``, linked by relative URLs."""

    index: Path

    def put(self, filename: str, source: Path | bytes, sha256: str | None = None) -> str:
        dest = confine(self.index, f"{FILES_DIR}/{filename}", what="the local store")
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A file of this name not in the manifest is a leftover of a crashed publish.
        digest = hashlib.sha256()
        with atomicfile.replacing(dest) as out:
            if isinstance(source, bytes):
                digest.update(source)
                out.write(source)
            else:
                with source.open("rb") as src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        out.write(block)
            # hashed while copied: what lands under the name is what the index promises
            if sha256 is not None and digest.hexdigest() != sha256:
                msg = f"{filename} changed while it was stored (sha256 {digest.hexdigest()[:12]}...,"
                raise PublishError(f"{msg} expected {sha256[:12]}...); publish it again")
            _before_change()  # the rename: a crash here leaves a full-size temp file
        return f"{FILES_DIR}/{filename}"


def _github(index: Path, spec: str, **options: Any) -> Store:
    from wheelfactory.ghrelease import store_from_spec

    return store_from_spec(index, spec, **options)


def _s3(index: Path, spec: str, **options: Any) -> Store:
    from wheelfactory.s3store import store_from_spec

    return store_from_spec(index, spec, **options)


# scheme -> factory(index dir, spec, **options); options: api_url, upload_url (github),
# endpoint_url, public_url (s3)
STORES: dict[str, Callable[..., Store]] = {
    "local": lambda index, spec, **options: LocalStore(index=index),
    "github": _github,
    "s3": _s3,
}


def make_store(spec: str, index: str | os.PathLike[str], **options: Any) -> Store:
    """"local", "github:owner/repo@tag", "s3://bucket/prefix" -> a Store.

    ``options`` (None values are dropped): ``api_url``, ``upload_url`` for GitHub;
    ``endpoint_url``, ``public_url`` for S3.
    """
    scheme = spec.split(":", 1)[0]
    if scheme not in STORES:
        close = difflib.get_close_matches(scheme, STORES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown store {spec!r}: use one of {', '.join(STORES)}{hint}")
    return STORES[scheme](Path(index), spec, **{k: v for k, v in options.items() if v is not None})


# --------------------------------------------------------------------------- transactions


def _before_change() -> None:
    """Called before every change to the index's folder (for the fault-injection test)."""
    global _changes_made
    _changes_made += 1
    if os.environ.get(CRASH_ENV) == str(_changes_made):
        log.error("%s=%d: dying before change %d on purpose", CRASH_ENV, _changes_made, _changes_made)
        sys.stderr.flush()
        os._exit(86)


def _crash_point(point: str) -> None:
    if os.environ.get(CRASH_ENV) == point:
        log.error("%s=%s: dying here on purpose", CRASH_ENV, point)
        sys.stderr.flush()
        os._exit(86)


@contextmanager
def _locked(index: Path) -> Iterator[None]:
    """One publish, yank or re-render of an index at a time (filelock works on Windows too)."""
    index.mkdir(parents=True, exist_ok=True)
    with FileLock(str(index / LOCK_NAME)):
        yield


def _journal_ops(index: Path, data: Any) -> list[list[str]]:
    """The ops of a journal as read back, each path checked to stay under ``index``:
    the journal is a file in a folder others may write, and its ops rename and delete."""
    where = str(index / JOURNAL_NAME)
    ops = data.get("ops") if isinstance(data, dict) else None
    if not isinstance(ops, list) or data.get("state") not in ("prepare", "commit"):
        msg = f"{where} is not a wheelfactory journal; nothing was changed"
        raise PublishError(msg + ": move it away and run again")
    for op in ops:
        name = op[0] if isinstance(op, list) and op and isinstance(op[0], str) else None
        arity = {"replace": 3, "delete": 2}.get(name) if name else None
        if arity is None or len(op) != arity:
            msg = f"{where}: operation {str(op)[:80]!r} is not replace or delete"
            raise PublishError(msg + "; nothing was changed: move the journal away")
        for path in op[1:]:
            confine(index, path, what=where)
    return ops


def _apply(index: Path, ops: list[list[str]], *, crash_points: bool = False) -> None:
    where = str(index / JOURNAL_NAME)
    for n, (op, *args) in enumerate(ops):
        if crash_points:
            _before_change()
        if op == "replace":
            tmp, final = (confine(index, a, what=where) for a in args)
            if tmp.exists():  # done already when finishing an interrupted commit
                os.replace(tmp, final)
        elif op == "delete":
            confine(index, args[0], what=where).unlink(missing_ok=True)
        if crash_points:
            _crash_point(f"committing:{n + 1}")


def _remove_debris(index: Path) -> int:
    """Hidden temp files a crash left (``.<name>.<random>.tmp``: atomicfile's and the
    journal's); called with the index locked, when no journal names them any more."""
    debris = [p for p in index.rglob(".*.tmp") if p.is_file()]
    for p in debris:
        p.unlink(missing_ok=True)
    if debris:
        log.warning("%s: removed %d temp file(s) an interrupted run left", index, len(debris))
    return len(debris)


def recover_index(index: str | os.PathLike[str]) -> str | None:
    """Finish a committed publish or undo a prepared one, and remove the temp files an
    interrupted run left; return what was done, or None."""
    index = Path(index)
    journal = index / JOURNAL_NAME
    if not journal.exists():
        return "removed temp files" if _remove_debris(index) else None
    try:
        state = json.loads(journal.read_bytes())
    except ValueError:
        state = None
    ops = _journal_ops(index, state)  # every op checked before any is applied
    if state["state"] == "commit":
        _apply(index, ops)
        done = "finished an interrupted publish"
    else:
        for op, *args in ops:
            if op == "replace":
                confine(index, args[0], what=str(journal)).unlink(missing_ok=True)
        done = "threw away an unfinished publish"
    journal.unlink()
    _remove_debris(index)
    log.warning("%s: %s", index, done)
    return done


def _depth_first(path: str) -> tuple[int, str]:
    # Project pages before the lists that link to them, the root, then the manifest.
    if path == MANIFEST_NAME:
        return (1, path)
    return (-path.count("/"), path)


def _refuse_changed_hashes(
    index: Path, pages: Mapping[str, bytes | None], manifest: Manifest
) -> None:
    """A published file's sha256 never changes, so a manifest that gives a file another
    sha256 than the page it is about to replace promised was edited: refuse, naming it.

    Checked against the project pages on disk (one small JSON read per page rewritten,
    and it works whatever the store) rather than by hashing every stored wheel, which is
    GBs per publish. Where the page and the manifest disagree, the stored bytes decide
    when they are here: a page that was wrong is then rewritten, as re-render should.
    """
    for path, data in pages.items():
        if data is None or not path.endswith(f"/{JSON_PAGE}"):
            continue
        try:
            old = json.loads(_page(index, path).read_bytes())
        except (OSError, ValueError):
            continue  # no page yet (or a torn one): it promised nothing
        files = old.get("files") if isinstance(old, dict) else None
        for item in files if isinstance(files, list) else ():
            name = item.get("filename") if isinstance(item, dict) else None
            hashes = item.get("hashes") if isinstance(item, dict) else None
            promised = hashes.get("sha256") if isinstance(hashes, dict) else None
            entry = manifest.get(name) if isinstance(name, str) else None
            if entry is None or not isinstance(promised, str) or entry.sha256 == promised:
                continue
            if _stored_sha256(index, entry) == entry.sha256:
                continue  # the page was wrong; the stored file agrees with the manifest
            raise PublishError(
                f"manifest.json gives {entry.filename} sha256 {entry.sha256[:12]}..., but the"
                f" index published it as {promised[:12]}... ({path}): a published file never"
                " changes; restore manifest.json from a backup"
            )


def _stored_sha256(index: Path, entry: PublishedFile) -> str | None:
    """The sha256 of a file of the local store (None: stored elsewhere, or missing)."""
    if urlsplit(entry.url).scheme:
        return None
    path = confine(index, entry.url, what=f"the URL of {entry.filename}")
    return sha256_hex(path) if path.is_file() else None


def _commit(index: Path, pages: Mapping[str, bytes | None], manifest: Manifest) -> None:
    """Write ``pages`` and ``manifest`` so that a crash leaves old or (recoverable) new."""
    _refuse_changed_hashes(index, pages, manifest)
    txid = f"{os.getpid()}-{os.urandom(4).hex()}"
    ops: list[list[str]] = []
    contents: dict[str, bytes] = {}
    for path in sorted({*pages, MANIFEST_NAME}, key=_depth_first):
        _page(index, path)  # refuse a page outside the index before anything is written
        data = manifest.dumps() if path == MANIFEST_NAME else pages[path]
        if data is None:
            ops.append(["delete", path])
            continue
        final = Path(path)
        tmp = str(final.parent / f".{final.name}.{txid}.tmp")
        ops.append(["replace", tmp, path])
        contents[tmp] = data
    journal = index / JOURNAL_NAME
    _before_change()
    atomicfile.write_bytes(journal, json.dumps({"state": "prepare", "ops": ops}).encode())
    for tmp, data in contents.items():
        target = index / tmp
        target.parent.mkdir(parents=True, exist_ok=True)
        _before_change()
        with target.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    _crash_point("prepared")
    _before_change()
    atomicfile.write_bytes(journal, json.dumps({"state": "commit", "ops": ops}).encode())
    _apply(index, ops, crash_points=True)
    _before_change()
    journal.unlink()


# --------------------------------------------------------------------------- operations


def default_hooks() -> Hooks:
    """The landing page at the index root, its URL taken from the manifest's index_url."""
    from wheelfactory.landing import landing_hooks

    return landing_hooks()


@dataclass(frozen=True, kw_only=True)
class PublishResult:
    added: tuple[str, ...]
    unchanged: tuple[str, ...]
    pages_written: tuple[str, ...]


def _changed_pages(
    index: Path, old: Manifest, new: Manifest, hooks: Hooks
) -> dict[str, bytes | None]:
    """The pages to write: affected_pages, plus root files missing on disk (a new index, or
    one rendered with other hooks before), less those whose bytes on disk are already
    right. The index on disk stays a full rendering of the manifest."""
    paths = affected_pages(old, new, hooks=hooks)
    root = {ROOT_PAGE, *(hooks.extra_root_files(new) if hooks.extra_root_files else ())}
    paths |= {p for p in root - paths if not _page(index, p).is_file()}
    pages = render_pages(new, paths, hooks=hooks)
    return {p: data for p, data in pages.items() if not _same_on_disk(_page(index, p), data)}


def _page(index: Path, path: str) -> Path:
    """A page's file: its name comes from manifest data (a project, a covered torch)."""
    return confine(index, path, what="a page of the index")


def _same_on_disk(path: Path, data: bytes | None) -> bool:
    if data is None:
        return not path.exists()
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def publish(
    wheels: Iterable[str | os.PathLike[str]],
    index: str | os.PathLike[str],
    *,
    store: Store | None = None,
    hooks: Hooks | None = None,
    provenance_urls: Mapping[str, str] | None = None,
    upload_time: Callable[[], str] = now_upload_time,
    index_url: str | None = None,
    gpu_gate: Sequence[str] | None = None,
) -> PublishResult:
    """Add ``wheels`` to the index at ``index`` (a local folder) and re-render what changed.

    ``index_url``: the index's public root URL, recorded in the manifest for this and
    later renders (None: keep the recorded one). ``gpu_gate``: the GPU archs ("9.0") whose
    wheels are held out of every view until a GPU check there passes, recorded likewise
    (None: keep the recorded gate). ``hooks``: default_hooks().
    """
    index = Path(index)
    hooks = hooks if hooks is not None else default_hooks()
    store = store if store is not None else LocalStore(index=index)
    with tempfile.TemporaryDirectory(prefix="wf-publish-") as snapshots:
        # Every wheel is checked (as a private snapshot) before anything is written.
        infos = [inspect_wheel(w, Path(snapshots)) for w in wheels]
        return _publish_checked(
            infos, index, store, hooks, provenance_urls, upload_time, index_url, gpu_gate
        )


def guard_index_mismatch(
    filename: str, build_record: Mapping[str, Any] | None, index_url: str | None
) -> str | None:
    """A warning when a wheel's import guard sends users to another index than this one.

    Not a refusal: the wheel works, only its fix command points elsewhere (a local test
    index, say). But a published file never changes, so say it before it is published.
    """
    if not build_record or not build_record.get("guard") or not index_url:
        return None
    named = build_record.get("index_url")
    if named and str(named).rstrip("/") == index_url.rstrip("/"):
        return None
    where = f"names {named}" if named else "names no index (built without --index-url)"
    return (
        f"{filename}: its import guard's fix command {where}, not this index"
        f" {index_url.rstrip('/')}; rebuild with --index-url {index_url.rstrip('/')}"
        " if users of this index should be sent here"
    )


def _publish_checked(
    infos: list[WheelInfo],
    index: Path,
    store: Store,
    hooks: Hooks,
    provenance_urls: Mapping[str, str] | None,
    upload_time: Callable[[], str],
    index_url: str | None,
    gpu_gate: Sequence[str] | None,
) -> PublishResult:
    with _locked(index):
        recover_index(index)
        old = load_manifest(index)
        gate = tuple(gpu_gate) if gpu_gate is not None else old.gpu_gate
        new_files: dict[str, PublishedFile] = {}
        unchanged: list[str] = []
        spelled = {wheel_identity(f.filename): f for f in old.files}
        for info in infos:
            other = spelled.get(wheel_identity(info.filename))
            if other is not None and other.filename != info.filename:
                raise PublishError(
                    f"refusing {info.filename}: it is {other.filename}, already published, under"
                    " another spelling (name case, -/_ or a version like 1.0 vs 1.0.0); a"
                    " published file never changes: publish it under that name, or a new version"
                )
            known = old.get(info.filename) or new_files.get(info.filename)
            if known is not None:
                if known.sha256 != info.sha256:
                    msg = (
                        f"refusing {info.filename}: a different file of that name is already"
                        f" published (sha256 {known.sha256[:12]}..., this one"
                        f" {info.sha256[:12]}...); give the rebuild a build tag or a new version"
                    )
                    raise PublishError(msg)
                unchanged.append(info.filename)
                continue
            new_files[info.filename] = PublishedFile(
                filename=info.filename,
                project=info.project,
                version=info.version,
                sha256=info.sha256,
                size=info.size,
                url=info.filename,  # replaced by the store's URL below
                requires_python=info.requires_python,
                metadata_sha256=hashlib.sha256(info.metadata).hexdigest(),
                upload_time=upload_time(),
                build_record=info.build_record,
                provenance_url=(provenance_urls or {}).get(info.filename),
                # a stable-ABI wheel is listed for the torch it was verified against
                covers=(torch_minor(info.build_record["torch"]),)
                if info.build_record and info.build_record.get("stable_abi_floor")
                else (),
            )
            new_files[info.filename] = replace(
                new_files[info.filename], held=held_reason(new_files[info.filename], gate)
            )
        updated = replace(old.with_index_url(index_url), gpu_gate=gate)
        for f in new_files.values():
            note = guard_index_mismatch(f.filename, f.build_record, updated.index_url)
            if note:
                log.warning("warning: %s", note)
        if not new_files and updated == old:
            log.info("nothing new to publish (%d already published)", len(unchanged))
            return PublishResult(added=(), unchanged=tuple(unchanged), pages_written=())
        for info in infos:
            if info.filename in new_files:
                _before_change()
                url = store.put(info.filename, info.path, info.sha256)  # hashed once, in read
                _before_change()
                store.put(info.filename + ".metadata", info.metadata)
                new_files[info.filename] = replace(new_files[info.filename], url=url)
                log.debug("stored %s", info.filename)
        if isinstance(store, StagingStore):
            store.finish()
        _crash_point("stored")
        new = updated.with_files(new_files.values())
        pages = _changed_pages(index, old, new, hooks)
        _commit(index, pages, new)
    log.debug("published %d wheel(s), rewrote %d page(s)", len(new_files), len(pages))
    return PublishResult(
        added=tuple(sorted(new_files)), unchanged=tuple(unchanged), pages_written=tuple(pages)
    )


def _existing_index(index: str | os.PathLike[str]) -> Path:
    """Yank, unyank and re-render change an index; a mistyped path must not create one."""
    index = Path(index)
    if not (index / MANIFEST_NAME).is_file():
        raise PublishError(f"{index} holds no manifest.json: pass the folder of a published index")
    return index


def _update(
    index: str | os.PathLike[str],
    change: Callable[[Manifest], Manifest],
    hooks: Hooks | None,
) -> Manifest:
    """Apply ``change`` to an existing index's manifest and commit the pages that differ."""
    index = _existing_index(index)
    hooks = hooks if hooks is not None else default_hooks()
    with _locked(index):
        recover_index(index)
        old = load_manifest(index)
        new = change(old)
        if new != old:
            _commit(index, _changed_pages(index, old, new, hooks), new)
    return new


def _entry(manifest: Manifest, filename: str, where: str | os.PathLike[str]) -> PublishedFile:
    entry = manifest.get(filename)
    if entry is None:
        close = difflib.get_close_matches(filename, list(manifest.by_filename), n=1)
        hint = f"did you mean {close[0]}?" if close else "see manifest.json for the names"
        raise PublishError(f"{filename} is not published in {where}; {hint}")
    return entry


def set_yanked(
    index: str | os.PathLike[str],
    filename: str,
    *,
    yanked: bool,
    reason: str | None = None,
    hooks: Hooks | None = None,
) -> PublishedFile:
    """Yank (PEP 592) or unyank a published file; installers skip a yanked file unless pinned."""
    filename = Path(filename).name
    reason = " ".join(reason.split()) if reason is not None else None  # one line

    def change(old: Manifest) -> Manifest:
        entry = _entry(old, filename, index)
        return old.with_files(
            [replace(entry, yanked=yanked, yank_reason=(reason or None) if yanked else None)]
        )

    updated = _update(index, change, hooks).by_filename[filename]
    log.debug("%s %s", "yanked" if yanked else "unyanked", filename)
    return updated


def held_reason(file: PublishedFile, gate: Sequence[str]) -> str | None:
    """Why a new file waits for a GPU check: its targets run on a gated arch (None: not)."""
    caps = [tuple(int(x) for x in a.split(".")) for a in gate]
    reachable = [
        a for a, cap in zip(gate, caps, strict=True)
        if any(GpuTarget.parse(t).runs_on(cap) for t in file.targets)  # type: ignore[arg-type]
    ]  # fmt: skip
    if not reachable:
        return None
    arches = ", ".join(f"sm_{a.replace('.', '')}" for a in reachable)
    return f"awaiting a GPU check on {arches}"


def _judged(entry: PublishedFile, check: GpuCheck, gate: Sequence[str]) -> PublishedFile:
    """``entry`` with ``check`` recorded (replacing one of the same arch and torch minor),
    and held or listed as the verdict says."""
    minor = ".".join(check.torch.split("+")[0].split(".")[:2])
    kept = [
        c for c in entry.gpu_checks
        if (c.arch, ".".join(c.torch.split("+")[0].split(".")[:2])) != (check.arch, minor)
    ]  # fmt: skip
    entry = replace(entry, gpu_checks=(*kept, check))
    where = f"{check.gpu} (sm_{check.arch.replace('.', '')}, torch {check.torch})"
    if check.verdict in ("pass", "refused"):
        # a refusal is the import guard saying "wrong on this GPU, install X": safe to list
        if entry.held and check.arch in gate:
            entry = replace(entry, held=None)
    elif check.verdict == "fail":
        reason = f"GPU check failed on {where}: {check.detail}"
        if entry.held:
            entry = replace(entry, held=reason)
        elif not entry.yanked:
            entry = replace(entry, yanked=True, yank_reason=reason)
    elif entry.held:  # error: the check could not run; a listed wheel is left as it is
        entry = replace(entry, held=f"GPU check could not run on {where}: {check.detail}")
    return entry


def record_gpu_checks(
    index: str | os.PathLike[str], checks: Sequence[GpuCheck], *, hooks: Hooks | None = None
) -> Manifest:
    """Record GPU check results in an index: a pass (or the guard's refusal) on a gated arch
    releases a held wheel; wrong numbers keep it held, or yank a listed one, with the reason;
    a check that could not run (crash, timeout) changes nothing already listed."""

    def change(old: Manifest) -> Manifest:
        updated: dict[str, PublishedFile] = {}
        for check in checks:
            entry = updated.get(check.filename) or _entry(old, check.filename, index)
            if entry.sha256 != check.sha256:
                raise PublishError(
                    f"the GPU check of {check.filename} ran sha256 {check.sha256[:12]}..., the"
                    f" index holds {entry.sha256[:12]}...: check the published file again"
                )
            updated[check.filename] = _judged(entry, check, old.gpu_gate)
        return old.with_files(updated.values())

    return _update(index, change, hooks)


def add_covers(
    index: str | os.PathLike[str], filename: str, torch_minor: str, *, hooks: Hooks | None = None
) -> PublishedFile:
    """List a stable-ABI wheel in the strict view of ``torch_minor`` too (after it passed the
    import check against that torch): the view's pages change, nothing is rebuilt."""

    def change(old: Manifest) -> Manifest:
        entry = _entry(old, filename, index)
        if entry.torch != STABLE_ABI:
            raise PublishError(f"{filename} is built for torch {entry.torch} only: only stable-ABI wheels cover more")
        floor = entry.stable_abi_floor or "0.0"
        if tuple(map(int, torch_minor.split("."))) < tuple(map(int, floor.split("."))):
            raise PublishError(f"{filename} loads on torch >= {floor}, not {torch_minor}")
        if torch_minor in entry.covers:
            return old
        covers = tuple(sorted({*entry.covers, torch_minor}, key=lambda m: tuple(map(int, m.split(".")))))
        gaps = {m: why for m, why in entry.not_covered.items() if m != torch_minor}  # a re-check passed
        return old.with_files([replace(entry, covers=covers, not_covered=gaps)])

    return _update(index, change, hooks).by_filename[filename]


def add_gap(
    index: str | os.PathLike[str], filename: str, torch_minor: str, why: str, *, hooks: Hooks | None = None
) -> PublishedFile:
    """Record that a stable-ABI wheel does not load on ``torch_minor`` (``why``: one line):
    its views stay as they are, and `coverage` can name the gap and its cause."""
    why = " ".join(why.split())  # one line

    def change(old: Manifest) -> Manifest:
        entry = _entry(old, filename, index)
        if torch_minor in entry.covers:  # never taken back here: yank a wheel that broke
            raise PublishError(f"{filename} is listed for torch {torch_minor} already; yank it if it does not load there")
        gaps = {**entry.not_covered, torch_minor: why}
        return old.with_files([replace(entry, not_covered=gaps)])

    return _update(index, change, hooks).by_filename[filename]


def rerender(
    index: str | os.PathLike[str], *, hooks: Hooks | None = None, index_url: str | None = None
) -> tuple[str, ...]:
    """Rewrite every page that differs from what the manifest renders to; return them.

    ``index_url`` (not None) is recorded in the manifest first, as publish does.
    """
    index = _existing_index(index)
    hooks = hooks if hooks is not None else default_hooks()
    with _locked(index):
        recover_index(index)
        old = load_manifest(index)
        manifest = old.with_index_url(index_url)
        drift = _drift(index, manifest, hooks)
        if drift or manifest != old:
            pages = render_pages(manifest, drift, hooks=hooks)
            _commit(index, pages, manifest)
    return tuple(drift)


def index_drift(index: str | os.PathLike[str], *, hooks: Hooks | None = None) -> list[str]:
    """Pages on disk that differ from (or are missing against) the rendering of the manifest."""
    hooks = hooks if hooks is not None else default_hooks()
    return _drift(Path(index), load_manifest(index), hooks)


def _drift(index: Path, manifest: Manifest, hooks: Hooks) -> list[str]:
    drift = []
    for path, data in render_index(manifest, hooks=hooks).items():
        p = _page(index, path)
        if not p.is_file() or p.read_bytes() != data:
            drift.append(path)
    return drift
