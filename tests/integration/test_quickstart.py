"""The README's first block: examples/quickstart.sh builds examples/hello_ext for sm_90a,
publishes it, serves it, and prints a pip line that installs a working wheel."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from _index_env import installer_env, make_venv, pip_install, run_python, site_packages, torch_env
from wheelfactory.serve import start_server

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_quickstart_serves_an_installable_wheel(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, OUT=str(tmp_path / "out"), PORT=str(port))
    proc = subprocess.Popen(
        ["bash", str(ROOT / "examples" / "quickstart.sh")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 900
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("serving ") or time.monotonic() > deadline:
                break
        output = "".join(lines)
        assert lines and lines[-1].startswith("serving "), output
        pip_line = re.search(r"python -m pip install (.+)", output)
        assert pip_line, output
        args = pip_line.group(1).split()
        assert args[:2] == ["hello-ext", "--extra-index-url"]
        (tmp_path / "empty").mkdir()
        py = make_venv(tmp_path / "venv", site_packages(torch_env()), for_uv=False)
        with start_server(tmp_path / "empty") as empty:  # no PyPI: only the served index
            pip_install(py, ["--index-url", empty.url + "simple/", *args], installer_env(tmp_path))
        check = "import hello_ext, importlib.metadata as md;"
        check += "print(md.version('hello-ext'), hello_ext.scale.__name__)"
        got = run_python(py, check)
        assert got == "0.1.0+cu130torch2.14 scale"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
