"""The code a Windows runner and a Windows user run, run here with the POSIX-only modules
taken away (no Windows machine is reachable from this project; mypy --platform win32 in
.ci/run checks the same modules' types as Windows sees them).

Each CI step that build-cells.yml runs on windows-2022 is driven through the real CLI in
a fresh interpreter where importing fcntl, pwd, grp, resource or termios fails, as it
does on Windows, and where WHEELFACTORY_PLATFORM=windows-amd64 makes wheelfactory build,
repair and label for Windows. delvewheel itself is a stand-in here (a script on PATH that
records its argv and copies the wheel): its real run needs Windows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _index_wheels import make_wheel

ROOT = Path(__file__).resolve().parents[2]
POSIX_ONLY = ("fcntl", "pwd", "grp", "resource", "termios")
# Every module a Windows job or a Windows user imports: the CLI (it imports every
# subcommand module to build its parser), the CI steps, which.py and the import guard.
WINDOWS_MODULES = (
    "wheelfactory.cli", "wheelfactory.ci.cibw", "wheelfactory.ci.cell", "wheelfactory.ci.summary",
    "wheelfactory.ci.release", "wheelfactory.source", "wheelfactory.build", "wheelfactory.finish",
    "wheelfactory.repair", "wheelfactory.which", "wheelfactory.guard", "wheelfactory.gpucheck",
    "wheelfactory.publish", "wheelfactory.buildenv",
)  # fmt: skip
_BLOCK = f"import sys\nfor _m in {POSIX_ONLY!r}:\n    sys.modules[_m] = None\n"


def as_windows(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter without the POSIX-only modules."""
    full = {**os.environ, "WHEELFACTORY_PLATFORM": "windows-amd64", **env}
    return subprocess.run(
        [sys.executable, "-c", _BLOCK + code], capture_output=True, text=True, cwd=tmp_path, env=full,
        check=False, timeout=300,
    )  # fmt: skip


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return as_windows(f"from wheelfactory.cli import main\nsys.exit(main({list(args)!r}))", tmp_path, **env)


@pytest.mark.parametrize("module", WINDOWS_MODULES)
def test_module_imports_without_posix_modules(module: str, tmp_path: Path) -> None:
    proc = as_windows(f"import {module}", tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_posix_modules_are_really_blocked(tmp_path: Path) -> None:
    proc = as_windows("import fcntl", tmp_path)
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


WINDOWS_JOB = {
    "id": "sageattention-2.2.0.post20260324-cu130-torchabi-windows_amd64", "recipe": "recipes/sageattention-stable.toml",
    "version": "2.2.0.post20260324", "torch": "2.10.0", "cuda": "13.0", "os": "windows", "machine": "amd64",
    "runner": "windows-2022", "pythons": ["3.10"], "cibw_build": "cp310-win_amd64",
    "targets": "8.0;8.9;9.0a;10.0a;12.0a;12.1a",
}  # fmt: skip


def test_cibw_env_step(tmp_path: Path) -> None:
    proc = cli(tmp_path, "cibw-env", "--job", json.dumps(WINDOWS_JOB), "--recipe-root", str(ROOT))
    assert proc.returncode == 0, proc.stderr
    env = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line and "<<" not in line)
    assert env["CIBW_ARCHS"] == "AMD64" and "delvewheel" in env["CIBW_BEFORE_ALL"]
    assert 'CL="/permissive- /Zc:__cplusplus /Zc:preprocessor /Brepro"' in env["CIBW_ENVIRONMENT"]
    assert 'TORCH_CUDA_ARCH_LIST="8.0;8.9;9.0;10.0;12.0;12.1"' in env["CIBW_ENVIRONMENT"]  # plain list
    assert env["WHEELFACTORY_WINDOWS_CUDA"] == "13.0.2"


def test_source_gpu_shim_and_nvcc_filter_steps(tmp_path: Path) -> None:
    proc = cli(tmp_path, "source", str(ROOT / "tests/fixtures/quirky_ext.toml"), "--out", "work",
               "--local", str(ROOT / "tests/fixtures/quirky_ext"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "work" / "src" / "setup.py").is_file()
    assert cli(tmp_path, "gpu-shim", "--out", "shim").returncode == 0
    assert (tmp_path / "shim" / "sitecustomize.py").is_file()
    proc = cli(tmp_path, "nvcc-filter", "--out", "filter")
    assert proc.returncode == 0, proc.stderr
    # On Windows the wrapper is a .bat that runs the filter script with this Python.
    assert "nvcc" in proc.stdout


def fake_delvewheel(tmp_path: Path) -> Path:
    """A `delvewheel` on PATH that records its argv and 'repairs' by copying the wheel."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "delvewheel"
    script.write_text(
        f"#!{sys.executable}\nimport json, shutil, sys\n"
        f"open({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "out = sys.argv[sys.argv.index('-w') + 1]\nshutil.copy(sys.argv[-1], out)\n"
    )
    script.chmod(0o755)
    return bin_dir


def test_repair_step_runs_delvewheel_and_labels(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "dist", name="quirky_ext", version="0.3.1", cuda="", python_tag="cp312", abi_tag="cp312",
        platform_tag="win_amd64", requires_torch="", extra_files={"quirky_ext/_kernels.cp312-win_amd64.pyd": b"MZ"},
    )  # fmt: skip
    path = f"{fake_delvewheel(tmp_path)}{os.pathsep}{os.environ['PATH']}"
    proc = cli(tmp_path, "repair", str(wheel), "--out", "out", "--recipe", str(ROOT / "tests/fixtures/quirky_ext.toml"),
               "--torch", "2.14.1", "--cuda", "13.0", "--arch", "9.0a,12.0a", PATH=path, CUDA_PATH="C:/CUDA/v13.0")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[:2] == ["repair", "--exclude"] and "c10*.dll" in argv[2] and "torch*.dll" in argv[2]
    assert argv[argv.index("--add-path") + 1] == "C:/CUDA/v13.0/bin"
    (out,) = (tmp_path / "out").glob("*.whl")
    assert out.name == "quirky_ext-0.3.1+cu130torch2.14-cp312-cp312-win_amd64.whl"
    from wheelfactory import wheelfile

    record = wheelfile.read_build_record(out)
    assert record and record.platform == "windows-amd64" and record.repair and record.repair.tool == "delvewheel"
    assert record.env["DISTUTILS_USE_SDK"] == "1" and "LIBRARY_PATH" not in record.env
    assert not record.strip_debug or "strip" not in proc.stderr  # GNU strip is never run on a .pyd


def test_smoke_and_summary_steps(tmp_path: Path) -> None:
    (tmp_path / "torch.py").write_text("LOADED = True\n")  # smoke imports torch first
    pkg = tmp_path / "demo_ext"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_k.py").write_text("import torch\n")
    wheel = make_wheel(tmp_path / "dist", python_tag="cp312", abi_tag="cp312", platform_tag="win_amd64")
    proc = cli(tmp_path, "smoke", str(wheel), "--import", "demo_ext._k", PYTHONPATH=str(tmp_path))
    assert proc.returncode == 0 and "imported 1 module(s)" in proc.stdout, proc.stderr
    proc = cli(tmp_path, "summary", str(tmp_path / "dist"))
    assert proc.returncode == 0 and wheel.name in proc.stdout
