"""Publish wheels, serve them on 127.0.0.1, install them with real pip and uv, import them.

Every installer runs with its configuration switched off and with two indexes: a primary
that knows no project (an empty served folder: 404 for everything, as a real index
answers for unknown projects) and the published view as ``--extra-index-url``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _index_env import (
    installer_env,
    make_venv,
    pip_install,
    run_python,
    site_packages,
    torch_env,
    uv_install,
)
from _index_wheels import make_wheel
from wheelfactory import _proc
from wheelfactory.manifest import load_manifest
from wheelfactory.publish import CRASH_ENV, index_drift
from wheelfactory.serve import start_server

STRICT = "cu130/torch2.14/simple/"
PER_CUDA = "cu130/simple/"
IMPORT_CHECK = (
    "import importlib.metadata as md, demo_ext, torch;"
    "print(demo_ext.VERSION, demo_ext.BUILT_FOR, md.version('torch'))"
)


def wf(*args: str, env: dict[str, str] | None = None, check: bool = True):
    return _proc.run([sys.executable, "-m", "wheelfactory", *args], env=env, check=check)


@pytest.fixture(scope="session")
def torch_site() -> Path:
    return site_packages(torch_env())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """An index with demo-ext 1.0.0 (torch 2.14), 1.0.1 (torch 2.13 only), 1.0.2 (2.14, yanked)."""
    tmp = tmp_path_factory.mktemp("demo")
    wheels = [
        make_wheel(tmp / "w", version="1.0.0", torch="2.14"),
        make_wheel(tmp / "w", version="1.0.1", torch="2.13"),
        make_wheel(tmp / "w", version="1.0.2", torch="2.14"),
    ]
    idx = tmp / "index"
    wf("publish", *map(str, wheels), "--index", str(idx))
    wf("yank", wheels[2].name, "--index", str(idx), "--reason", "black output on sm_120")
    (tmp / "empty").mkdir()
    with (
        start_server(idx) as server,
        start_server(tmp / "empty") as empty,
        static_host(idx) as static,
    ):
        yield {
            "tmp": tmp, "index": idx, "wheels": wheels, "server": server, "empty": empty,
            "static": static,
        }  # fmt: skip


@contextlib.contextmanager
def static_host(root: Path) -> Iterator[str]:
    """A plain static file server, as GitHub Pages is: a folder's index.html for the folder,
    no content negotiation, so pip and uv read the HTML pages (data-yanked included)."""
    handler = functools.partial(QuietStaticHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietStaticHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def strict_view(demo: dict, host: str) -> list[str]:
    """Installer options: nothing from --index-url (an empty index), the demo wheels from
    the strict torch 2.14 view of ``host``: "serve" or the static HTML-only host."""
    root = demo["server"].url if host == "serve" else demo["static"]
    return ["--index-url", demo["empty"].url + "simple/", "--extra-index-url", root + STRICT]


HOSTS = pytest.mark.parametrize("host", ["serve", "static-html-only"])


def test_twine_check_passes_on_published_wheels(demo) -> None:
    files = [demo["index"] / f.url for f in load_manifest(demo["index"]).files]
    _proc.run([sys.executable, "-m", "twine", "check", *files])


@HOSTS
def test_pip_installs_from_strict_view(demo, torch_site: Path, tmp_path: Path, host: str) -> None:
    env = installer_env(tmp_path)
    py = make_venv(tmp_path / "venv", torch_site, for_uv=False)
    strict = strict_view(demo, host)
    demo["server"].requests.clear()
    pip_install(py, [*strict, "demo-ext"], env)
    # Not 1.0.1 (built for torch 2.13, absent from this view), not 1.0.2 (yanked).
    assert run_python(py, IMPORT_CHECK).split() == ["1.0.0+cu130torch2.14", "2.14", "2.14.1"]
    if host == "serve":  # pip read Requires-Dist from the PEP 658 .metadata file
        assert any(p.endswith(".whl.metadata") for p in demo["server"].requests)
    # A yanked file is still installable when pinned with ==.
    out = pip_install(py, [*strict, "demo-ext==1.0.2"], env)
    assert "black output on sm_120" in out  # pip shows the yank reason
    assert run_python(py, IMPORT_CHECK).split()[0] == "1.0.2+cu130torch2.14"


@HOSTS
def test_uv_installs_from_strict_view(demo, torch_site: Path, tmp_path: Path, host: str) -> None:
    env = installer_env(tmp_path)
    py = make_venv(tmp_path / "venv", torch_site, for_uv=True)
    strict = strict_view(demo, host)
    uv_install(py, [*strict, "demo-ext"], env)
    assert run_python(py, IMPORT_CHECK).split() == ["1.0.0+cu130torch2.14", "2.14", "2.14.1"]
    # uv (0.13) takes a yanked file only when the pin names its exact version, local
    # label included: "==1.0.2" is refused as "was yanked", "==1.0.2+cu130torch2.14" works.
    uv_install(py, [*strict, "demo-ext==1.0.2+cu130torch2.14"], env)
    assert run_python(py, IMPORT_CHECK).split()[0] == "1.0.2+cu130torch2.14"


def test_strict_view_never_offers_another_torch(demo, tmp_path: Path) -> None:
    env = installer_env(tmp_path)
    url = demo["server"].url
    for accept in ("application/vnd.pypi.simple.v1+json", "text/html"):
        req = urllib.request.Request(url + STRICT + "demo-ext/", headers={"Accept": accept})
        with urllib.request.urlopen(req) as resp:
            body = resp.read().decode()
        assert "cu130torch2.14" in body
        assert "cu130torch2.13" not in body
    # The per-CUDA view does offer it, and pip takes it as the newest (why pip users need
    # the strict view): with the 2.14 torch installed it would have to swap torch.
    base = ["--index-url", demo["empty"].url + "simple/"]
    dl = tmp_path / "dl"
    _proc.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", dl, *base,
         "--extra-index-url", url + PER_CUDA, "demo-ext"],
        env=env,
    )
    assert [p.name for p in dl.iterdir()] == [demo["wheels"][1].name]


def test_crash_mid_publish_leaves_a_consistent_index(tmp_path: Path, torch_site: Path) -> None:
    idx = tmp_path / "index"
    first = make_wheel(tmp_path / "w", version="1.0.0", torch="2.14")
    wf("publish", str(first), "--index", str(idx))
    second = make_wheel(tmp_path / "w", version="1.1.0", torch="2.14")
    other_view = make_wheel(tmp_path / "w", version="1.1.0", torch="2.13")
    env = dict(os.environ, **{CRASH_ENV: "committing:2"})
    crashed = wf("publish", str(second), str(other_view), "--index", str(idx), env=env, check=False)
    assert crashed.returncode == 86, crashed.stdout
    assert load_manifest(idx).get(second.name) is None  # the manifest is written last
    (tmp_path / "empty").mkdir()
    with start_server(idx) as server, start_server(tmp_path / "empty") as empty:
        # Every link of every project page, as served, resolves to a file with its hash.
        for page in idx.rglob("index.json"):
            data = json.loads(page.read_bytes())
            rel = page.parent.relative_to(idx).as_posix()
            for f in data.get("files", []):
                file_url = urllib.parse.urljoin(f"{server.url}{rel}/", f["url"])
                with urllib.request.urlopen(file_url) as resp:
                    assert hashlib.sha256(resp.read()).hexdigest() == f["hashes"]["sha256"]
        py = make_venv(tmp_path / "venv", torch_site, for_uv=False)
        args = ["--index-url", empty.url + "simple/", "--extra-index-url", server.url + STRICT]
        pip_install(py, [*args, "demo-ext"], installer_env(tmp_path))
        assert run_python(py, IMPORT_CHECK).split()[1] == "2.14"
        # The next run finishes the committed publish.
        wf("publish", "--index", str(idx))
        assert index_drift(idx) == []
        assert {second.name, other_view.name} <= set(load_manifest(idx).by_filename)
        pip_install(py, [*args, "--upgrade", "demo-ext"], installer_env(tmp_path))
        assert run_python(py, IMPORT_CHECK).split()[0] == "1.1.0+cu130torch2.14"


def test_crash_before_commit_keeps_the_old_index(tmp_path: Path) -> None:
    idx = tmp_path / "index"
    wf("publish", str(make_wheel(tmp_path / "w", version="1.0.0")), "--index", str(idx))
    before = {p: p.read_bytes() for p in idx.rglob("index.*")} | {
        idx / "manifest.json": (idx / "manifest.json").read_bytes()
    }
    env = dict(os.environ, **{CRASH_ENV: "prepared"})
    late = make_wheel(tmp_path / "w", version="2.0.0", torch="2.13")
    assert wf("publish", str(late), "--index", str(idx), env=env, check=False).returncode == 86
    wf("publish", "--index", str(idx))  # recovery throws the prepared publish away
    after = {p: p.read_bytes() for p in idx.rglob("index.*")} | {
        idx / "manifest.json": (idx / "manifest.json").read_bytes()
    }
    assert after == before
    assert not list(idx.rglob(".*.tmp"))


def test_fixture_wheels_install_with_pip_and_uv(
    fixture_wheels: dict[str, Path], torch_site: Path, tmp_path: Path
) -> None:
    """The factory's real wheels (tests/integration/conftest.py), built for the torch the
    install venvs hold (both follow WHEELFACTORY_TEST_TORCH), from their strict view."""
    from _index_env import TORCH, cache_dir
    from wheelfactory.cudastub import make_stub
    from wheelfactory.index import views_of

    wheels = [Path(p) for p in fixture_wheels.values()]
    # No GPU driver here: modules that NEED libcuda.so.1 load against the build's stub.
    cuda_home = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda"))
    stub = make_stub(cuda_home, cache_dir() / "libcuda-stubs")
    import_env = dict(os.environ, LD_LIBRARY_PATH=f"{stub}:{os.environ.get('LD_LIBRARY_PATH', '')}")
    idx = tmp_path / "index"
    wf("publish", *map(str, wheels), "--index", str(idx))
    _proc.run([sys.executable, "-m", "twine", "check", *wheels])
    manifest = load_manifest(idx)
    (tmp_path / "empty").mkdir()
    with start_server(idx) as server, start_server(tmp_path / "empty") as empty:
        view = f"cu130/torch{'.'.join(TORCH.split('.')[:2])}"
        tested = [f for f in manifest.files if view in views_of(f)]
        assert len(tested) == len(wheels), [f.filename for f in manifest.files]
        for f in tested:
            for installer, for_uv in ((pip_install, False), (uv_install, True)):
                py = make_venv(tmp_path / f"venv-{f.project}-{for_uv}", torch_site, for_uv=for_uv)
                strict = f"{server.url}{view}/simple/"
                args = ["--index-url", empty.url + "simple/", "--extra-index-url", strict]
                installer(py, [*args, f"{f.project}=={f.version}"], installer_env(tmp_path))
                top = run_python(
                    py,
                    "import importlib.metadata as md, sys;"
                    f"d = md.distribution({f.project!r});"
                    "print(sorted({p.parts[0] for p in d.files if p.suffix in ('.py', '.so')"
                    " and '.dist-info' not in p.parts[0]})[0].removesuffix('.py'))",
                ).strip()
                run_python(py, f"import torch, {top}", env=import_env)


def test_stable_and_per_torch_wheels_of_one_version_resolve_to_one_file(
    torch_site: Path, tmp_path: Path
) -> None:
    """Both fit torch 2.14: the index's rule (docs/index.md) is PEP 440's own: on the same
    public version the local label decides, and +cu130torchabi sorts above
    +cu130torch2.14, so pip, uv and which all take the stable-ABI wheel."""
    from _records import record_json
    from wheelfactory import which

    per_torch = make_wheel(
        tmp_path / "w", version="1.0.0", torch="2.14",
        build_record=record_json(package_version="1.0.0+cu130torch2.14", python_tag="py3-none"),
    )  # fmt: skip
    stable = make_wheel(
        tmp_path / "w", version="1.0.0", torch="abi", requires_torch="torch>=2.10",
        build_record=record_json(
            package_version="1.0.0+cu130torchabi", torch_requirement="torch>=2.10",
            stable_abi_floor="2.10", python_tag="py3-none",
        ),
    )  # fmt: skip
    idx = tmp_path / "index"
    wf("publish", str(per_torch), str(stable), "--index", str(idx))
    (tmp_path / "empty").mkdir()
    chosen = {}
    with start_server(idx) as server, start_server(tmp_path / "empty") as empty:
        args = ["--index-url", empty.url + "simple/", "--extra-index-url", server.url + STRICT]
        for name, installer, for_uv in (("pip", pip_install, False), ("uv", uv_install, True)):
            py = make_venv(tmp_path / f"venv-{name}", torch_site, for_uv=for_uv)
            installer(py, [*args, "demo-ext"], installer_env(tmp_path))
            chosen[name] = run_python(py, "import demo_ext; print(demo_ext.VERSION)")
    machine = which.Machine(
        os="linux", arch="x86_64", python="3.11", implementation="cpython",
        executable="python", torch="2.14.1+cu130", torch_cuda="13.0", glibc="2.36",
    )  # fmt: skip
    advice = which.advise(machine, "demo-ext", [f.to_json() for f in load_manifest(idx).files])
    assert chosen == {"pip": "1.0.0+cu130torchabi", "uv": "1.0.0+cu130torchabi"}
    assert advice.wheel == stable.name
