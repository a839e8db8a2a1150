from __future__ import annotations

import sys
from pathlib import Path

import pytest
from wheelfactory import buildenv
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
    monkeypatch.setenv(buildenv.CACHE_ENV, str(tmp_path))
    assert buildenv.cache_dir() == tmp_path
    monkeypatch.delenv(buildenv.CACHE_ENV)
    assert buildenv.cache_dir() == Path.home() / ".cache" / "wheelfactory"


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
