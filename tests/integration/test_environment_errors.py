"""Errors of the machine, not of the input, met for real: a disk that fills mid-write.

RLIMIT_FSIZE makes the kernel refuse writes past a size (EFBIG) as a full disk does
(ENOSPC), without root or a small filesystem; /dev/full answers ENOSPC to every write.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from _index_wheels import index_tree, make_wheel


def wf(*args: str, file_limit: int | None = None, stdout: int | None = None):
    def limit() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return subprocess.run(
        [sys.executable, "-m", "wheelfactory", *args],
        preexec_fn=limit,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )


def test_a_disk_that_fills_while_publishing_leaves_the_index_as_it_was(tmp_path: Path) -> None:
    index = tmp_path / "index"
    assert (
        wf(
            "publish", str(make_wheel(tmp_path / "w", version="1.0.0")), "--index", str(index)
        ).returncode
        == 0
    )
    before = index_tree(index)
    big = make_wheel(
        tmp_path / "w", version="1.0.1", extra_files={"demo_ext/blob.bin": os.urandom(400_000)}
    )
    run = wf("publish", str(big), "--index", str(index), file_limit=200_000)
    assert run.returncode == 74, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: File too large"), run.stderr
    assert "run the command again" in lines[0]
    assert index_tree(index) == before  # no stored half file, no temp file, pages untouched
    # With room again, the same command publishes it.
    assert wf("publish", str(big), "--index", str(index)).returncode == 0
    assert big.name in (index / "manifest.json").read_text()


def test_output_to_a_full_device_is_one_line() -> None:
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "sageattention.toml"
    with open("/dev/full", "w") as full:
        run = wf("plan", str(recipe), stdout=full.fileno())
    assert run.returncode == 74, run.stderr
    assert run.stderr.strip().splitlines() == [
        "ERROR: No space left on device; free disk space or fix the path or its permissions,"
        " then run the command again"
    ]
