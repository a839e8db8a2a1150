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


def test_pypi_torch_2_10_is_refused_for_cuda_13_from_its_metadata_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real PyPI (issue 27): torch 2.10.0 there is the CUDA 12.8 build. pip's dry run reads
    its metadata only (seconds), so `--torch 2.10.0 --cuda 13.0 --torch-index-url ''` stops
    before the 5 GB install."""
    import os
    import time

    from wheelfactory.errors import ConfigError

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # PyPI itself, not this machine's mirrors
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"torch 2\.10\.0 from https://pypi\.org/simple is built for CUDA 12\.8, not CUDA 13\.0: pass --torch-index-url https://download\.pytorch\.org/whl/cu130"):
        buildenv.check_torch_cuda(python=Path(sys.executable), torch="2.10.0", cuda="13.0",
                                  index_url="https://pypi.org/simple", cache=tmp_path)  # fmt: skip
    assert time.monotonic() - start < 120
    assert not (tmp_path / "envs").exists()
