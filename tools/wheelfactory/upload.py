"""Push wheels to a private registry (pypiserver, devpi, Artifactory, ...) with twine.

``twine check`` runs first, so a wheel whose metadata a registry would reject never
leaves. Not ``--strict``: that also fails on warnings such as a missing long_description,
which registries accept (the test fixture wheels have none). Credentials go to twine through TWINE_USERNAME / TWINE_PASSWORD in its
environment, never on its command line (which is echoed to the log).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from wheelfactory import _proc
from wheelfactory.errors import CommandFailedError, PublishError
from wheelfactory.publish import inspect_wheel

log = logging.getLogger(__name__)


def _twine() -> list[str]:
    # The twine of this interpreter: the publish extra installs it beside wheelfactory.
    try:
        import twine  # noqa: F401
    except ImportError:
        return ["twine"]  # _proc.run turns a missing one into ToolMissingError
    return [sys.executable, "-m", "twine"]


def twine_check(wheels: Sequence[str | os.PathLike[str]]) -> None:
    """Run ``twine check`` on ``wheels``; raise PublishError if any fails."""
    try:
        _proc.run([*_twine(), "check", *(os.fspath(w) for w in wheels)])
    except CommandFailedError as e:
        msg = f"twine check failed ({e}); fix the metadata the log above names and rebuild"
        raise PublishError(msg) from e


def upload(
    wheels: Sequence[str | os.PathLike[str]],
    repository_url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    skip_existing: bool = False,
    env: Mapping[str, str] | None = None,
) -> None:
    """Check then upload ``wheels`` to ``repository_url`` (the registry's upload endpoint)."""
    if not wheels:
        raise PublishError("no wheels to upload; pass the paths of built wheels")
    paths = [Path(w) for w in wheels]
    for p in paths:
        inspect_wheel(p)  # the same checks as publishing to the static index
    twine_check(paths)
    run_env = dict(os.environ if env is None else env)
    if username is not None:
        run_env["TWINE_USERNAME"] = username
    if password is not None:
        run_env["TWINE_PASSWORD"] = password
    # twine asks interactively for what is missing; --non-interactive makes that an error.
    run_env.setdefault("TWINE_USERNAME", "")
    run_env.setdefault("TWINE_PASSWORD", "")
    argv = [*_twine(), "upload", "--non-interactive", "--disable-progress-bar"]
    argv += ["--repository-url", repository_url]
    if skip_existing:
        argv.append("--skip-existing")
    try:
        _proc.run([*argv, *map(os.fspath, paths)], env=run_env)
    except CommandFailedError as e:
        msg = (
            f"twine upload to {repository_url} failed ({e}); check the URL, the credentials"
            " (--username/--password or TWINE_USERNAME/TWINE_PASSWORD) and whether the file"
            " exists there already (--skip-existing)"
        )
        raise PublishError(msg) from e
    log.info("uploaded %d wheel(s) to %s", len(paths), repository_url)
