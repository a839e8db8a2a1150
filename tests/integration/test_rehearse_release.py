"""scripts/rehearse_release.py on a slice of the plan: what each CI job runs (cibw-env's
settings through cibuildwheel's parser, before-build, build with real nvcc, repair, test in
a fresh venv) and then download -> release-check -> publish -> cover -> coverage -> a
user's pip install from the index served on 127.0.0.1.

The fixture slice is one per-torch job with two Pythons (quirky_ext, cp310 + cp311) and
one stable-ABI job (stable_ext, cp310-abi3), compiled for 9.0a only. Torch comes from
pip's own configuration (PyPI's 2.14.1 is the cu130 build; PyTorch's index is out of reach).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPT = ROOT / "scripts" / "rehearse_release.py"
CIBW_STEPS = ("before-build", "build", "repair", "test")
RELEASE_STEPS = ("download", "release-check", "publish", "cover", "coverage", "user-install")
FIXTURE_SLICE = [
    "tests/fixtures/quirky_ext.toml", "tests/fixtures/stable_ext.toml",
    "--source", "tests/fixtures/quirky_ext.toml=tests/fixtures/quirky_ext",
    "--source", "tests/fixtures/stable_ext.toml=tests/fixtures/stable_ext",
    "--torch", "2.14.1", "--cuda", "13.0", "--python", "<3.12", "--targets", "9.0a", "--torch-index-url", "",
]  # fmt: skip
# The real per-torch cell with cp39: its Pythons checked by pip's resolution (no build).
CP39_SLICE = [
    "recipes/sageattention.toml", "--torch", "2.8", "--cuda", "12.8", "--python", "<3.11",
    "--resolve-only", "3.9", "--resolve-only", "3.10", "--torch-index-url", "",
]  # fmt: skip


def rehearse(args: list[str], work: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    summary = work / "summary.json"
    proc = subprocess.run(
        [sys.executable, SCRIPT, *args, "--work", work / "w", "--json", summary],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert summary.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads(summary.read_text())


def failures(summary: dict) -> list[str]:
    return [f"{s['step']} {s['job']} {s['python']}: {s['detail'][-400:]}" for s in summary["steps"] if not s["ok"]]


def test_a_python_checked_by_resolution_passes_where_pip_resolves_it(tmp_path):
    # The cp39-abi3 cell (built with CPython 3.9, the oldest its torch ships): every pip
    # install of its before-build and test steps resolves for Python 3.9 on the image's
    # manylinux_2_28 (torch 2.8.0 and the build requirements; wheelfactory runs in the
    # factory's own Python, never in the build Python).
    cp39 = ["recipes/sageattention.toml", "--torch", "2.8", "--cuda", "12.8", "--python", "3.9"]
    proc, summary = rehearse([*cp39, "--resolve-only", "3.9", "--torch-index-url", ""], tmp_path)
    steps = [(s["step"], s["python"], s["ok"]) for s in summary["steps"]]
    assert ("resolve", "cp39", True) in steps, failures(summary)
    assert "MAPPING: CPython 3.9 was asked for with --resolve-only" in proc.stdout
    # Nothing was built, so the release part has no wheel: the run fails there, not before.
    assert failures(summary) and failures(summary)[0].startswith("download release"), failures(summary)
    assert proc.returncode == 1


def test_rehearsal_of_the_slice_passes(tmp_path):
    # cp39: its before-build installs wheelfactory ({project}, requires-python >= 3.10).
    proc, summary = rehearse(CP39_SLICE, tmp_path / "cp39")
    resolved = [(s["python"], s["ok"]) for s in summary["steps"] if s["step"] == "resolve"]
    # one job with both Pythons, one per cell, or one cp39-abi3 wheel: cp39 resolves either way
    assert ("cp39", True) in resolved and all(ok for _, ok in resolved), failures(summary)

    # The fixture slice, built for real: the smoke imports quirky_ext._driver (-lcuda),
    # which cannot load on a machine (or hosted runner) without the driver.
    proc, summary = rehearse(FIXTURE_SLICE, tmp_path / "fixtures")
    assert failures(summary) == [], failures(summary)
    done = [(s["step"], s["job"], s["python"]) for s in summary["steps"]]
    built = sorted({(job, python) for step, job, python in done if step == "build"})
    # every Python of the slice, whether the plan gives them one job or one each
    assert sorted((job.split("-0.")[0], python) for job, python in built) == [
        ("quirky-ext", "cp310"), ("quirky-ext", "cp311"), ("stable-ext", "cp310"),
    ]  # fmt: skip
    for job, python in built:
        order = [done.index((step, job, python)) for step in CIBW_STEPS]
        assert order == sorted(order), (job, python)
    release = [s["step"] for s in summary["steps"] if s["job"] == "release"]
    assert release == list(RELEASE_STEPS)
    assert summary["ok"] and proc.returncode == 0
    assert all(size > 0 for size in summary["peak_disk_bytes"].values())
