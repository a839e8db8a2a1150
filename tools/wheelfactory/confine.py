"""Paths that come from data (a manifest, a journal, a page name) stay under their root.

Every place that turns a string read from a file into a path under the index goes
through ``confine``: the string must be a plain relative POSIX path, so that a
``covers`` entry of ``"/../../x"`` or a journal op ``["delete", "../victim"]`` is refused
with one line instead of acting outside the index. Refused: anything but a non-empty
string, absolute paths, empty, ``.`` and ``..`` segments, backslashes (a separator on
Windows), colons (drive letters, NTFS streams) and control characters.
"""

from __future__ import annotations

import re
from pathlib import Path

from wheelfactory.errors import PublishError

# Regular expressions, not loops over characters: every entry of a 10,000-wheel manifest
# passes its URL through here on each load.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_BAD_SEGMENT_RE = re.compile(r"(?:^|/)\.{0,2}(?:/|$)")  # "", "." or ".." between slashes


def relative_path_problem(relative: object) -> str | None:
    """Why ``relative`` is not a plain relative path under a root, or None."""
    if not isinstance(relative, str) or not relative:
        return "is not a non-empty string"
    if relative.startswith("/"):
        return "is absolute"
    if "\\" in relative or ":" in relative:
        return "holds a backslash or colon (a Windows separator or drive)"
    if _CONTROL_RE.search(relative):
        return "holds a control character"
    if _BAD_SEGMENT_RE.search(relative):
        return "has an empty, . or .. segment"
    return None


def confine(root: Path, relative: object, *, what: str) -> Path:
    """``root / relative``, where ``relative`` (read from ``what``) must stay under ``root``."""
    problem = relative_path_problem(relative)
    if problem is not None:
        msg = f"{what}: path {relative!r} {problem}, so it could point outside {root}"
        raise PublishError(msg + "; refusing it: restore the file from a backup")
    return root / str(relative)
