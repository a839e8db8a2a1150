"""The build cache ($WHEELFACTORY_CACHE, else ~/.cache/wheelfactory): what it holds, how
much space each entry takes, and removing entries safely.

What the factory keeps there (see buildenv.py, source.py, cudastub.py):

* ``envs/<key>``: build environments, each a venv with torch (about 5 GB); complete once
  buildenv's ready mark is written, created under the lock ``envs/<key>.lock``;
* ``downloads/``, ``sources/``: source archives by sha256 (``build``, ``wheelfactory source``);
* ``stubs/``: libcuda link stubs;
* anything else (the integration tests' ``index-tests/``, ``test-fixture-wheels/``).

Each env is one entry (``envs/<key>``); any other top-level item is one entry.

Removal deletes only a listed entry, that is, a direct child of the cache or of its
``envs/``, and never follows a symlink (a linked entry loses its link, never its target). An
env is removed under its lock, taken without waiting: an env that another process is
creating is left alone.
"""

from __future__ import annotations

import difflib
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from wheelfactory.errors import ConfigError

CACHE_ENV = "WHEELFACTORY_CACHE"
ENVS = "envs"
# Written into an env by buildenv once it checks out; an env without it is incomplete.
READY_MARK = ".wheelfactory-ready.json"
DAY = 24 * 60 * 60


def cache_dir() -> Path:
    """$WHEELFACTORY_CACHE, else ~/.cache/wheelfactory."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "wheelfactory"


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One item of the cache as ``wheelfactory cache`` lists it."""

    name: str  # "envs/cp311-torch2.14.1-cu130" or "downloads": unique, what `remove` takes
    path: Path
    size: int  # bytes; symlinks count as nothing (never followed)
    last_used: float  # seconds since the epoch
    is_env: bool
    is_link: bool  # a symlink (or Windows junction) to somewhere else
    complete: bool  # envs: the ready mark is there; other entries: always True

    @property
    def short_name(self) -> str:
        """An env's key without "envs/", which `remove` also accepts."""
        return self.path.name if self.is_env else self.name


@dataclass(frozen=True, kw_only=True)
class Pruned:
    """One env that prune picked, and what became of it."""

    entry: Entry
    reason: str  # why prune picked it
    removed: bool
    skipped: str = ""  # why it was left alone (locked by another process)


def _is_link(st: os.stat_result) -> bool:
    """A symlink or, on Windows, any reparse point (junctions too): never followed."""
    reparse = getattr(st, "st_file_attributes", 0) & stat.FILE_ATTRIBUTE_REPARSE_POINT
    return stat.S_ISLNK(st.st_mode) or bool(reparse)


def tree_size(path: Path) -> int:
    """Bytes under ``path``, symlinks not followed and hard links counted once."""
    try:
        top = os.lstat(path)
    except OSError:
        return 0
    if _is_link(top):
        return 0
    if not stat.S_ISDIR(top.st_mode):
        return top.st_size
    total, pending = 0, [path]
    seen: set[tuple[int, int]] = set()
    while pending:
        try:
            with os.scandir(pending.pop()) as it:
                children = list(it)
        except OSError:  # vanished or unreadable meanwhile (an env being created)
            continue
        for child in children:
            try:
                st = child.stat(follow_symlinks=False)
            except OSError:
                continue
            if _is_link(st):
                continue
            if stat.S_ISDIR(st.st_mode):
                pending.append(Path(child.path))
            elif st.st_nlink <= 1 or (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def human_size(size: int) -> str:
    """1234 -> "1.2 kB"; decimal units, as pip shows them."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def _mtime(path: Path) -> float | None:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return None


def _entry(root: Path, path: Path, *, is_env: bool) -> Entry:
    st = os.lstat(path)
    link = _is_link(st)
    # buildenv writes the ready mark last and never touches the env again: its time is
    # the best "last used" there is; without one, the folder's.
    mark_time = None if link or not is_env else _mtime(path / READY_MARK)
    return Entry(
        name=path.relative_to(root).as_posix(),
        path=path,
        size=tree_size(path),
        last_used=mark_time if mark_time is not None else st.st_mtime,
        is_env=is_env,
        is_link=link,
        complete=not is_env or link or mark_time is not None,
    )


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_real_dir(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and not _is_link(st)


def _is_dir_or_link(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) or _is_link(st)


def list_entries(root: Path | None = None) -> list[Entry]:
    """Every env under ``root/envs`` and every other top-level item, envs first."""
    root = root or cache_dir()
    envs_dir = root / ENVS
    expand_envs = _is_real_dir(envs_dir)  # a linked envs/ is one entry, never entered
    # Envs are folders (or links); the files beside them are their lock files.
    envs = [
        _entry(root, p, is_env=True)
        for p in (_children(envs_dir) if expand_envs else [])
        if _is_dir_or_link(p)
    ]
    others = [
        _entry(root, p, is_env=False)
        for p in _children(root)
        if not (expand_envs and p.name == ENVS)
    ]
    return envs + others


def find_entry(entries: list[Entry], name: str) -> Entry:
    """The entry called ``name`` ("envs/KEY", or an env's bare KEY); ConfigError naming
    the nearest names otherwise."""
    wanted = name.strip().rstrip("/\\").replace("\\", "/")
    aliases: dict[str, Entry] = {}
    for entry in entries:
        aliases[entry.name] = entry
        aliases.setdefault(entry.short_name, entry)
    if wanted in aliases:
        return aliases[wanted]
    near = difflib.get_close_matches(wanted, list(aliases), n=3, cutoff=0.6)
    suggestions = list(dict.fromkeys(aliases[n].name for n in near))  # as listed, once each
    if suggestions:
        hint = "did you mean " + " or ".join(f"'{n}'" for n in suggestions) + "?"
    else:
        hint = "`wheelfactory cache` lists the entries"
    raise ConfigError(f"no cache entry '{name}'; {hint}")


def _check_inside(root: Path, entry: Entry) -> None:
    """Refuse anything that is not a direct child of the cache or of its envs/."""
    allowed = {root, root / ENVS} if entry.is_env else {root}
    if entry.path.parent not in allowed or entry.path.name in ("", ".", ".."):
        raise ConfigError(f"{entry.path} is not an entry of the cache {root}; not removing it")


def _delete(path: Path) -> None:
    """Delete ``path``; a link loses only itself (its target lies outside the cache)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if _is_link(st) or not stat.S_ISDIR(st.st_mode):
        path.unlink()  # on Windows this also removes a directory link or junction
    else:
        shutil.rmtree(path)  # removes links inside the tree, never what they point to


def _env_lock(path: Path) -> FileLock:
    # The same lock file buildenv.prepare_env holds while it creates or checks the env.
    return FileLock(str(path.with_name(path.name + ".lock")), timeout=0)


def _remove_env(entry: Entry, *, still: bool | None = None) -> str:
    """Remove an env under its lock; "" when done, else why it was left alone.

    ``still``: remove only if the env is still complete (True) or incomplete (False),
    as prune saw it: another process may have finished or rebuilt it meanwhile."""
    lock = _env_lock(entry.path)
    try:
        lock.acquire()
    except Timeout:
        return "locked by another wheelfactory process (the env is being created)"
    try:
        if still is not None and (entry.path / READY_MARK).exists() != still:
            return "another process changed it meanwhile"
        # The mark goes first: if removal stops half-way (a read-only file, Ctrl-C),
        # buildenv sees an incomplete env and rebuilds it instead of using what is left.
        (entry.path / READY_MARK).unlink(missing_ok=True)
        _delete(entry.path)
        return ""
    finally:
        lock.release()


def remove(entry: Entry, root: Path | None = None) -> int:
    """Remove one listed entry; the bytes freed. ConfigError when an env is locked."""
    root = root or cache_dir()
    _check_inside(root, entry)
    if entry.is_env and not entry.is_link:
        why = _remove_env(entry)
        if why:
            raise ConfigError(f"{entry.name} is {why}; run this again when it is done")
    else:
        _delete(entry.path)
    return entry.size


def prune_reason(entry: Entry, older_than_days: float | None, now: float) -> str | None:
    """Why prune removes ``entry``, or None to keep it. Only envs are pruned."""
    if not entry.is_env or entry.is_link:
        return None
    if not entry.complete:
        return "incomplete (no ready mark: a failed or interrupted install)"
    age_days = (now - entry.last_used) / DAY
    if older_than_days is not None and age_days >= older_than_days:
        return f"not used for {age_days:.0f} days"
    return None


def prune(
    root: Path | None = None,
    *,
    older_than_days: float | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> list[Pruned]:
    """Remove incomplete envs and, with ``older_than_days``, complete ones not used for
    that long. ``dry_run`` removes nothing."""
    root = root or cache_dir()
    now = time.time() if now is None else now
    results = []
    for entry in list_entries(root):
        reason = prune_reason(entry, older_than_days, now)
        if reason is None:
            continue
        if dry_run:
            results.append(Pruned(entry=entry, reason=reason, removed=False))
            continue
        _check_inside(root, entry)
        why = _remove_env(entry, still=entry.complete)
        results.append(Pruned(entry=entry, reason=reason, removed=not why, skipped=why))
    return results


def format_age(seconds: float) -> str:
    days = int(seconds // DAY)
    return "today" if days < 1 else "1 day ago" if days == 1 else f"{days} days ago"


def format_listing(root: Path, entries: list[Entry], now: float | None = None) -> str:
    """The table `wheelfactory cache` prints: entries, total, location and how to move it."""
    now = time.time() if now is None else now
    head = f"Build cache: {root} (set {CACHE_ENV} to move it)"
    if not entries:
        return f"{head}\nempty\n"
    rows = [("NAME", "SIZE", "LAST USED", "STATE")]
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        rows.append((e.name, human_size(e.size), f"{when} ({format_age(now - e.last_used)})",
                     _state(e)))  # fmt: skip
    rows.append(("total", human_size(sum(e.size for e in entries)), "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
             for r in rows]  # fmt: skip
    return "\n".join([head, "", *(line.rstrip() for line in lines)]) + "\n"


def _state(entry: Entry) -> str:
    if entry.is_link:
        return "link (not followed)"
    if not entry.is_env:
        return ""
    return "complete" if entry.complete else "INCOMPLETE (prune removes it)"
