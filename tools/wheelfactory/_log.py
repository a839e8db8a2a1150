"""Logging set-up: the library logs with ``logging.getLogger(__name__)``, the CLI renders."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("wheelfactory")


def configure(verbose: int = 0) -> None:
    level = logging.DEBUG if verbose > 0 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("wheelfactory")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def on_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


@contextmanager
def step(title: str) -> Iterator[None]:
    """A named step; a collapsible group on GitHub Actions, a heading elsewhere."""
    if on_github_actions():
        print(f"::group::{title}", file=sys.stderr, flush=True)
    else:
        log.info("==> %s", title)
    try:
        yield
    finally:
        if on_github_actions():
            print("::endgroup::", file=sys.stderr, flush=True)
