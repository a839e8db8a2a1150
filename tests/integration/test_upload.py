"""wheelfactory upload: twine to a real pypiserver on 127.0.0.1, then pip downloads it back."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _index_env import installer_env
from _index_wheels import make_wheel
from wheelfactory import _proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pypiserver(tmp_path: Path):
    packages = tmp_path / "packages"
    packages.mkdir()
    port = free_port()
    exe = Path(sys.executable).parent / "pypi-server"
    # No authentication: -a . -P . (the test server is reachable from 127.0.0.1 only).
    proc = subprocess.Popen(
        [exe, "run", "-i", "127.0.0.1", "-p", str(port), "-a", ".", "-P", ".", packages],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "simple/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("pypiserver did not start")
        yield url, packages
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_upload_then_install_back(pypiserver, tmp_path: Path) -> None:
    url, packages = pypiserver
    wheel = make_wheel(tmp_path / "w")
    _proc.run([sys.executable, "-m", "wheelfactory", "upload", wheel, "--repository-url", url])
    assert (packages / wheel.name).read_bytes() == wheel.read_bytes()
    dl = tmp_path / "dl"
    _proc.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", dl,
         "--index-url", url + "simple/", "demo-ext"],
        env=installer_env(tmp_path),
    )
    assert [p.name for p in dl.iterdir()] == [wheel.name]


def test_upload_refuses_a_tampered_wheel(pypiserver, tmp_path: Path) -> None:
    url, packages = pypiserver
    wheel = make_wheel(tmp_path / "w", tamper=True)
    out = _proc.run(
        [sys.executable, "-m", "wheelfactory", "upload", wheel, "--repository-url", url],
        check=False,
    )
    assert out.returncode == 9  # PublishError
    assert "does not match RECORD" in out.stdout
    assert not list(packages.iterdir())
