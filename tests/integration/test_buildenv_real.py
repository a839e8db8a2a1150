"""A build environment whose install fails leaves nothing half-made in the cache (real
venv, real pip against an index on 127.0.0.1 that has no torch)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from wheelfactory import buildenv
from wheelfactory.errors import WheelfactoryError
from wheelfactory.serve import start_server


def test_a_failed_env_install_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "empty-index").mkdir()
    cache = tmp_path / "cache"
    with start_server(tmp_path / "empty-index") as index, pytest.raises(WheelfactoryError):
        buildenv.prepare_env(
            python=Path(sys.executable), torch="2.13.0", cuda="13.0",
            index_url=index.url, cache=cache,
        )  # fmt: skip
    left = [p.name for p in (cache / "envs").iterdir() if not p.name.endswith(".lock")]
    assert left == []
