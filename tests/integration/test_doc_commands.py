"""Every command block of README.md and docs/users.md runs, as written, in a copy of the
repository, with the local stand-ins that tests/_doc_blocks.py names for it: an index on
127.0.0.1 holding the fixture wheels for <ROOT> (published with `wheelfactory publish`, from
the session's fixture builds), the stable_ext fixture's tree for SageAttention's (GitHub is
out of reach), an empty local index for PyPI. Blocks that cannot run here (Windows) are
listed there with the reason; tests/unit/test_doc_blocks.py fails on a block in neither."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _doc_blocks import RUNS, Block, blocks
from _index_env import site_packages, torch_env
from conftest import SETTINGS, BuiltWheel, run_wheelfactory
from wheelfactory.serve import start_server

ROOT = Path(__file__).resolve().parents[2]
RUNNABLE = [b for b in blocks() if b.key in RUNS]
# Shell functions the stand-ins call.
PRELUDE = """\
wait_for_http() {
    for _ in $(seq 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "nothing answered at $1" >&2; return 1
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served_index(
    fixture_builds: dict[str, BuiltWheel], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL (no trailing /) of an index on 127.0.0.1 that holds every fixture wheel."""
    site = tmp_path_factory.mktemp("doc-index") / "site"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    wheels = [b.wheel for b in fixture_builds.values()]
    proc = run_wheelfactory("publish", *wheels, "--index", site, "--index-url", url)
    assert proc.returncode == 0, proc.stderr
    with start_server(site, port=port):
        yield url


@pytest.fixture(scope="module")
def pypi_stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty simple index: with it as pip's index only the documented one can answer."""
    empty = tmp_path_factory.mktemp("empty-index")
    with start_server(empty) as server:
        yield server.url + "simple/"


def torch_venv(path: Path) -> Path:
    """A venv with pip whose Python sees torch 2.14.1 (the build cache's env, through a .pth):
    a Python with torch, as the user's is; its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    purelib = subprocess.run(
        [path / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "_torch_env.pth").write_text(f"{site_packages(torch_env())}\n")
    # the venv's own old setuptools would hide the torch env's, which torch requires
    subprocess.run([path / "bin" / "python", "-m", "pip", "uninstall", "-q", "-y", "setuptools"],
                   check=True, capture_output=True)  # fmt: skip
    return path / "bin"


def sandbox_copy(dest: Path) -> Path:
    """The repository's files (no venv, git data or build output), to run commands in."""
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache",
                                    "dist", "site", "out", ".device")  # fmt: skip
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    return dest


def script_of(block: Block, root: str, port: int) -> str:
    run = RUNS[block.key]
    text = block.text
    for old, new in run.stand_ins:
        assert old in text, f"{block.where} no longer says {old!r}"
        text = text.replace(old, new.format(root=root, port=port))
    if block.lang == "console":
        text = "\n".join(block.commands)
    return f"{PRELUDE}{text}\n{run.check.format(root=root, port=port)}\n"


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: f"{b.where}:{b.key[:40]}")
def test_doc_block_runs(
    block: Block, served_index: str, pypi_stand_in: str, fixture_builds: dict[str, BuiltWheel],
    tmp_path: Path,
) -> None:  # fmt: skip
    run = RUNS[block.key]
    repo = sandbox_copy(tmp_path / "repo")
    if run.dist:
        (repo / "dist").mkdir()
        for built in fixture_builds.values():
            shutil.copy2(built.wheel, repo / "dist")
    venv_bin = torch_venv(tmp_path / "user-venv")
    env = {k: v for k, v in os.environ.items()
           if k != "VIRTUAL_ENV" and (run.pypi or not k.startswith("PIP_"))}  # fmt: skip
    env.update(
        # the user's Python first; then wheelfactory, as after the README's first block
        PATH=os.pathsep.join([str(venv_bin), str(Path(sys.executable).parent), env["PATH"]]),
        WHEELFACTORY_TORCH_INDEX_URL=SETTINGS.index_url,  # as the fixture builds get torch
    )
    if not run.pypi:
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=pypi_stand_in, PIP_NO_CACHE_DIR="1",
                   PIP_DISABLE_PIP_VERSION_CHECK="1")  # fmt: skip
    script = script_of(block, served_index, free_port())
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script], cwd=repo, env=env,
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"{block.where} failed (rc {proc.returncode}); ran:\n{script}\n"
        f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}"
    )

