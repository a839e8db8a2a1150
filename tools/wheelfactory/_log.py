"""Logging set-up: the library logs with ``logging.getLogger(__name__)``, the CLI renders."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
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


HEARTBEAT_ENV = "WHEELFACTORY_HEARTBEAT_S"


def heartbeat_interval() -> float:
    """Seconds between heartbeats: $WHEELFACTORY_HEARTBEAT_S (tests set a short one), else 30."""
    try:
        return max(0.05, float(os.environ.get(HEARTBEAT_ENV, "30")))
    except ValueError:
        return 30.0


@contextmanager
def heartbeat(
    step: str, what: Callable[[], str], *, quiet_since: Callable[[], float] | None = None
) -> Iterator[None]:
    """While the body runs (a compile of many minutes), log "still in <step>, <elapsed>:
    <what()>" whenever nothing was logged for heartbeat_interval() seconds, so a long step
    is never silent. ``quiet_since`` gives the time.monotonic() of the last line logged."""
    interval = heartbeat_interval()
    started = time.monotonic()
    last = [started]  # when the heartbeat itself last spoke
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval / 4):
            now = time.monotonic()
            spoke = max(last[0], quiet_since() if quiet_since else started)
            if now - spoke >= interval:
                last[0] = now
                log.info("  still in %s, %.0f s: %s", step, now - started, what())

    thread = threading.Thread(target=beat, name=f"heartbeat-{step}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
