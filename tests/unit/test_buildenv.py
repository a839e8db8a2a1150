from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from wheelfactory import buildenv, cache
from wheelfactory.errors import ToolMissingError


def interp(torch: str | None, torch_cuda: str | None, tag: str = "cp311") -> buildenv.Interpreter:
    return buildenv.Interpreter(
        executable=Path("/usr/bin/python3"),
        version="3.11",
        full_version="3.11.7",
        tag=tag,
        purelib=Path("/x"),
        torch=torch,
        torch_cuda=torch_cuda,
        tools={},
    )


def test_torch_index_url_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(buildenv.TORCH_INDEX_ENV, raising=False)
    assert (
        buildenv.resolve_torch_index_url(None, "13.0") == "https://download.pytorch.org/whl/cu130"
    )
    assert (
        buildenv.resolve_torch_index_url(None, "12.8") == "https://download.pytorch.org/whl/cu128"
    )
    assert buildenv.resolve_torch_index_url("", "13.0") is None  # pip's own configuration
    assert buildenv.resolve_torch_index_url("pip", "13.0") is None
    assert buildenv.resolve_torch_index_url("https://mirror/whl", "13.0") == "https://mirror/whl"
    monkeypatch.setenv(buildenv.TORCH_INDEX_ENV, "")
    assert buildenv.resolve_torch_index_url(None, "13.0") is None
    monkeypatch.setenv(buildenv.TORCH_INDEX_ENV, "https://env/whl")
    assert buildenv.resolve_torch_index_url(None, "13.0") == "https://env/whl"
    assert buildenv.resolve_torch_index_url("https://opt/whl", "13.0") == "https://opt/whl"


def test_has_torch_matches_public_version_and_cuda() -> None:
    assert interp("2.11.0+cu130", "13.0").has_torch("2.11.0", "13.0")
    assert not interp("2.11.0+cu128", "12.8").has_torch("2.11.0", "13.0")
    assert not interp("2.11.0+cu130", "13.0").has_torch("2.14.1", "13.0")
    assert not interp(None, None).has_torch("2.14.1", "13.0")
    assert not interp("2.14.1+cpu", None).has_torch("2.14.1", "13.0")


def test_env_key_and_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert (
        buildenv.env_key(interp(None, None, "cp313t"), "2.14.1+cu130", "13.0")
        == "cp313t-torch2.14.1-cu130"
    )
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    assert cache.cache_dir() == tmp_path
    monkeypatch.delenv(cache.CACHE_ENV)
    assert cache.cache_dir() == Path.home() / ".cache" / "wheelfactory"


def test_probe_reads_this_interpreter_without_torch() -> None:
    me = buildenv.probe(Path(sys.executable))
    assert me.version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert me.tag.startswith(f"cp{sys.version_info[0]}{sys.version_info[1]}")
    assert set(me.tools) == set(buildenv.BUILD_TOOLS)


def test_resolve_python_errors_in_one_line() -> None:
    assert buildenv.resolve_python(sys.executable) == Path(sys.executable)
    with pytest.raises(ToolMissingError, match="not found"):
        buildenv.resolve_python("9.99")
    with pytest.raises(ToolMissingError, match=r"not found: pass --python 3.11 or a path"):
        buildenv.resolve_python("/no/such/python")


def test_an_unreachable_torch_index_fails_in_seconds_naming_host_and_option() -> None:
    import socket
    import time

    from wheelfactory.errors import NetworkError

    with socket.socket() as s:  # a port nothing listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(
        NetworkError, match=r"cannot reach 127\.0\.0\.1 for torch 2\.14\.1 .*--torch-index-url ''"
    ):
        buildenv.check_reachable(f"http://127.0.0.1:{port}/whl/cu130", "2.14.1", timeout=2)
    assert time.monotonic() - start < 5


def test_an_index_that_answers_is_reachable_even_with_an_error(tmp_path: Path) -> None:
    from wheelfactory.serve import start_server

    with start_server(tmp_path) as server:  # answers 404 for /torch/: pip will report that
        buildenv.check_reachable(server.url, "2.14.1")
    buildenv.check_reachable("file:///nowhere", "2.14.1")  # local indexes are not probed


def test_torch_versions_are_checked_against_the_release_table() -> None:
    from wheelfactory import releases
    from wheelfactory.errors import ConfigError

    table = releases.load()
    newest = table.releases[-1]
    table.check_build(newest.version, newest.cudas[-1])  # a real build passes
    with pytest.raises(
        ConfigError, match=r"torch 2\.9 is not a torch release \(nearest: 2\.9\.1, 2\.9\.0"
    ):
        table.check_build("2.9", "12.8")
    with pytest.raises(ConfigError, match=rf"nearest: {re.escape(newest.version)}"):
        table.check_build("2.99.0", "13.0")
    with pytest.raises(ConfigError, match=r"has no CUDA 11\.1 build \(it has "):
        table.check_build(newest.version, "11.1")
    table.check_build("2.16.0.dev20261201", "13.0")  # nightlies are not in the table
