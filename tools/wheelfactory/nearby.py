"""What exists near a path that does not: the one-line hint for a mistyped file or folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def what_exists(path: Path, what: str, is_one: Callable[[Path], bool], *, limit: int = 5) -> str:
    """For a missing ``path``: the ``what`` (e.g. "wheels") its nearest existing folder holds,
    as "dist holds a.whl, b.whl" or "there is no folder nosuch; the current folder holds no
    wheels", so that the error names what the user may have meant."""
    folder = path.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    found = sorted(p.name for p in folder.iterdir() if is_one(p)) if folder.is_dir() else []
    name = "the current folder" if str(folder) == "." else str(folder)
    missing = f"there is no folder {path.parent}; " if folder != path.parent else ""
    if not found:
        return f"{missing}{name} holds no {what}"
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return f"{missing}{name} holds {', '.join(found[:limit])}{more}"
