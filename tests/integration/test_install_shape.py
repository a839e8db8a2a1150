"""wheelfactory installed the way a user installs it (``pip install .``, not ``-e``) into a
fresh venv publishes a complete index, landing page included: everything publish reads
(the landing templates, the GPU table, the schemas) ships as package data.

The sources are copied out of the checkout first, so neither the build (build/, *.egg-info)
touches the checkout nor the run can read it; publish runs from a folder outside both.
pip builds the wheel in its usual isolated environment, so it needs setuptools and the
dependencies from pip's configured index (PyPI or a mirror).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from _index_wheels import make_wheel
from _records import record_json

REPO = Path(__file__).resolve().parents[2]
# What `pip install .` needs of the checkout: the package and its metadata.
SOURCES = ("pyproject.toml", "README.md", "tools")


def _copy_sources(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    dest.mkdir()
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


def _run(argv: list, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=600, check=False)
    assert out.returncode == 0, f"{argv}\n{out.stdout}\n{out.stderr}"
    return out


def test_installed_wheelfactory_publishes_the_landing_page(tmp_path: Path) -> None:
    source = _copy_sources(tmp_path / "src")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", tmp_path / "venv"], outside, env)
    python = tmp_path / "venv" / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", source], outside, env)
    # The installed copy, not the checkout (no editable finder, no .pth into the repo).
    where = _run([python, "-c", "import wheelfactory; print(wheelfactory.__file__)"], outside,
                 env).stdout.strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), where
    shutil.rmtree(source)  # nothing may be read from the sources after the install

    wheel = make_wheel(tmp_path / "wheels", name="demo_ext", python_tag="cp312",
                       abi_tag="cp312", platform_tag="manylinux_2_28_x86_64",
                       build_record=record_json(targets=["9.0a", "12.0a"]))
    site = tmp_path / "site"
    _run([python, "-m", "wheelfactory", "publish", wheel, "--index", site,
          "--index-url", "http://example.invalid/"], outside, env)

    page = (site / "index.html").read_text(encoding="utf-8")
    assert "Get your install command" in page and 'id="sel-gpu"' in page
    data = json.loads(re.search(
        r'<script id="wf-data" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert data["root"] == "http://example.invalid"
    assert [f["file"] for f in data["files"]] == [wheel.name]
    assert data["runs_on"]["9.0a,12.0a"] == ["rtx50", "rtx-pro-blackwell", "h100"]
    installed = Path(where).parent / "resources" / "landing"
    for name in ("landing.css", "landing.js"):
        assert (site / "assets" / name).read_bytes() == (installed / name).read_bytes()
    assert "INDEX_ROOT = 'http://example.invalid'" in (site / "which.py").read_text()
