from __future__ import annotations

import os
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


def _standin_torch_index(root: Path) -> Path:
    """A PEP 503 index with tiny stand-in torch wheels whose metadata names their CUDA the
    way the real ones do (PyPI torch 2.10.0: nvidia-cuda-runtime-cu12==12.8.90; 2.14.1:
    cuda-toolkit[...]==13.0.3; PyTorch's own index: a +cu130 label)."""
    import zipfile

    from wheelfactory import wheelfile

    linux = 'platform_system == "Linux"'
    wheels = {
        "2.10.0": [f"nvidia-cuda-runtime-cu12==12.8.90; {linux}", "filelock"],
        "2.11.0+cu130": [f"nvidia-cuda-runtime==13.0.96; {linux}"],
        "2.12.0": [f"cuda-toolkit[cudart,cublas]==13.0.3; {linux}", 'cuda-bindings<14,>=13.0.3; python_version < "3.15"'],
        "2.13.0": ["filelock"],  # a CPU build: no CUDA runtime
    }
    folder = root / "torch"
    folder.mkdir(parents=True)
    links = []
    for version, requires in wheels.items():
        name = f"torch-{version}-py3-none-any.whl"
        meta = "Metadata-Version: 2.1\nName: torch\nVersion: " + version + "\n"
        meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
        files = {
            "torch/__init__.py": b"",
            f"torch-{version}.dist-info/METADATA": meta.encode(),
            f"torch-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        }
        record = "".join(f"{n},{wheelfile.record_hash(d)},{len(d)}\n" for n, d in files.items())
        with zipfile.ZipFile(folder / name, "w") as z:
            for n, d in files.items():
                z.writestr(n, d)
            z.writestr(f"torch-{version}.dist-info/RECORD", record + f"torch-{version}.dist-info/RECORD,,\n")
        links.append(f'<a href="{name}">{name}</a>')
    (folder / "index.html").write_text("<html><body>" + "".join(links) + "</body></html>")
    return root


def test_torch_built_for_another_cuda_is_refused_before_any_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip's dry run reads torch's metadata from the index (a local one here, on 127.0.0.1):
    the mismatch fails in one line, naming torch's CUDA and what to pass (issue 27: it was
    found after installing 5 GB)."""
    from wheelfactory.errors import ConfigError
    from wheelfactory.serve import start_server

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # only the local index: no machine mirrors
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    cache = tmp_path / "cache"
    with start_server(_standin_torch_index(tmp_path / "index")) as server:
        def check(torch: str, cuda: str) -> None:
            buildenv.check_torch_cuda(python=Path(sys.executable), torch=torch, cuda=cuda,
                                      index_url=server.url, cache=cache)  # fmt: skip

        with pytest.raises(ConfigError) as info:
            check("2.10.0", "13.0")
        text = str(info.value)
        assert "\n" not in text
        assert re.search(r"torch 2\.10\.0 from http://127\.0\.0\.1:\d+/ is built for CUDA 12\.8, not CUDA 13\.0", text)
        assert "--torch-index-url https://download.pytorch.org/whl/cu130" in text and "--cuda 12.8" in text
        check("2.12.0", "13.0")  # torch >= 2.13's way: cuda-toolkit==13.0.3
        with pytest.raises(ConfigError, match=r"torch 2\.13\.0 .* built for no CUDA \(a CPU build\)"):
            check("2.13.0", "13.0")
        with pytest.raises(ConfigError, match=r"has no torch 2\.9\.1 for Python 3\.\d+: pass --torch-index-url"):
            check("2.9.1", "13.0")
        # PyTorch's own per-CUDA index serves only that CUDA's builds: no dry run there
        monkeypatch.setattr(buildenv, "default_torch_index_url", lambda cuda: server.url)
        check("2.10.0", "13.0")
    assert not (cache / "envs").exists()  # nothing was made


@pytest.mark.parametrize(
    ("version", "requires", "cuda"),
    [
        ("2.10.0", ['nvidia-cuda-runtime-cu12==12.8.90; platform_system == "Linux"'], "12.8"),
        ("2.14.1", ['cuda-toolkit[cublas,cudart]==13.0.3; platform_system == "Linux"'], "13.0"),
        ("2.11.0+cu130", [], "13.0"),  # PyTorch's own index: the label
        ("2.11.0+cu126", ["nvidia-cuda-runtime-cu12==12.6.77"], "12.6"),
        ("2.13.0+cpu", [], None),
        ("2.13.0", ["filelock", "sympy>=1.13.3"], None),
        ("2.10.0", ['nvidia-cuda-runtime-cu12==12.8.90; python_version < "3.0"'], None),
    ],
)
def test_cuda_of_torch_from_its_metadata(version: str, requires: list[str], cuda: str | None) -> None:
    assert buildenv.cuda_of_torch(version, requires, python="3.11") == cuda


def test_a_ready_env_is_not_asked_about(tmp_path: Path) -> None:
    """An env already built for the request downloads nothing: no dry run, no network."""
    base = buildenv.probe(Path(sys.executable))
    root = tmp_path / "envs" / buildenv.env_key(base, "2.10.0", "13.0")
    root.mkdir(parents=True)
    (root / buildenv.READY_MARK).write_text("{}")
    buildenv.check_torch_cuda(python=Path(sys.executable), torch="2.10.0", cuda="13.0",
                              index_url="http://127.0.0.1:9/unreachable", cache=tmp_path)  # fmt: skip
