"""`wheelfactory gpu-check` end to end on this GPU-less machine: the real fixture wheel,
published behind the GPU gate, served on 127.0.0.1, installed by pip from its strict view
into a fresh venv that sees torch 2.14.1, and checked by a CPU stand-in of a recipe's
check (tests/fixtures/checks/cpu_standin.py; the real one, recipes/checks/attention.py,
ran on the H200 machine). --assume-arch stands in for the GPU torch cannot see here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from _index_env import torch_env
from conftest import FIXTURES, run_wheelfactory
from wheelfactory.manifest import load_manifest
from wheelfactory.serve import start_server

RECIPE = FIXTURES / "gpu_probe_ext.toml"


def variant(tmp: Path, mode: str, timeout: int = 120) -> Path:
    """The fixture recipe with its stand-in check in another ``mode``."""
    folder = tmp / f"recipe-{mode}"
    (folder / "checks").mkdir(parents=True)
    shutil.copy(FIXTURES / "checks" / "cpu_standin.py", folder / "checks")
    text = RECIPE.read_text().replace('args = { mode = "ok" }', f'args = {{ mode = "{mode}" }}')
    text = text.replace("timeout = 120", f"timeout = {timeout}")
    (folder / "gpu_probe_ext.toml").write_text(text)
    return folder / "gpu_probe_ext.toml"


def pip_finds(python: Path, view: str) -> bool:
    proc = subprocess.run(
        [str(python), "-m", "pip", "download", "-q", "--no-deps", "--dest", "/tmp/wf-pip-probe",
         "--index-url", view, "gpu-probe-ext"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    return proc.returncode == 0


def gpu_check(recipe: Path, url: str, idx: Path, python: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_wheelfactory(
        "gpu-check", "--recipe", recipe, "--index-url", url, "--python", python, "--record", idx,
        "--assume-arch", "9.0", "--assume-gpu", "CPU stand-in", *extra,
    )  # fmt: skip


def test_gpu_check_gates_a_wheel_end_to_end(fixture_wheels, tmp_path: Path) -> None:
    wheel = fixture_wheels["gpu_probe_ext"]  # targets 9.0a and 12.0a
    idx = tmp_path / "idx"
    proc = run_wheelfactory("publish", wheel, "--index", idx, "--gpu-gate", "9.0")
    assert proc.returncode == 0, proc.stderr
    assert f"held {wheel.name}: awaiting a GPU check on sm_90" in proc.stdout
    python = torch_env() / "bin" / "python"
    with start_server(idx) as server:
        view = f"{server.url}cu130/torch2.14/simple/"
        assert not pip_finds(python, view)  # held: in no view
        # A check that crashes, hangs, returns NaN, prints no JSON or wrong numbers fails
        # in one line and the wheel stays held, with the reason.
        for mode, verdict, words in [
            ("crash", "error", "illegal memory access"),
            ("hang", "error", "timed out after 5 s"),
            ("nan", "fail", "cosine is not a number"),
            ("garbage", "error", "printed no result JSON"),
            ("wrong", "fail", "< 0.99"),
        ]:
            proc = gpu_check(variant(tmp_path, mode, timeout=5 if mode == "hang" else 120), server.url, idx, python)
            assert proc.returncode == 12, (mode, proc.stderr)
            errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
            assert len(errors) == 1 and f"{verdict}:" in errors[0] and words in errors[0], (mode, proc.stderr)
            entry = load_manifest(idx).by_filename[wheel.name]
            assert entry.held and words in entry.held, (mode, entry.held)
            assert not pip_finds(python, view)
        proc = gpu_check(RECIPE, server.url, idx, python, "--results", str(tmp_path / "r.json"))
        assert proc.returncode == 0, proc.stderr
        assert "| pass: 1 shapes, cosine >= 1.0000 |" in proc.stdout
        entry = load_manifest(idx).by_filename[wheel.name]
        assert entry.held is None
        assert [c.verdict for c in entry.gpu_checks] == ["pass"]  # one per (arch, torch)
        assert pip_finds(python, view)
        (result,) = json.loads((tmp_path / "r.json").read_text())["checks"]
        assert result["gpu"] == "CPU stand-in" and result["arch"] == "9.0"
        assert result["checker"].startswith("wheelfactory")
        landing = (idx / "index.html").read_text()
        assert "GPU-checked" in landing and "CPU stand-in" in landing


def test_gpu_check_refuses_a_recipe_without_a_check(tmp_path: Path) -> None:
    proc = run_wheelfactory(
        "gpu-check", "--recipe", FIXTURES / "quirky_ext.toml", "--wheels", tmp_path
    )
    assert proc.returncode == 2 and "has no [gpu-check]" in proc.stderr
    assert "Traceback" not in proc.stderr
