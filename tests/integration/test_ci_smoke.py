"""The CI test step on a real torch extension that links the driver (the quirky_ext fixture,
links-driver = true), on this machine, which has no NVIDIA driver, like a hosted runner:
`wheelfactory smoke` runs in the factory's Python and imports in another one that holds
the wheel and its torch, as cibuildwheel's test venv does."""

from __future__ import annotations

import subprocess

import pytest
from conftest import SETTINGS, run_wheelfactory
from wheelfactory import buildenv, verify, wheelfile


def test_smoke_imports_a_driver_linked_wheel_on_a_runner_without_a_driver(fixture_wheels, tmp_path):
    if verify.driver_installed():
        pytest.skip("this machine has an NVIDIA driver: nothing to stand in for")
    wheel = fixture_wheels["quirky_ext"]
    env = buildenv.prepare_env(
        python=buildenv.resolve_python(SETTINGS.python), torch=SETTINGS.torch, cuda=SETTINGS.cuda,
        index_url=SETTINGS.index_url or None,
    )  # fmt: skip
    # cibuildwheel's test venv: the wheel and its torch (seen through a .pth, no copy)
    python = verify.make_import_venv(env, tmp_path / "test-venv")
    subprocess.run([env.python, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel], check=True)
    modules = wheelfile.read_wheel(wheel).extension_modules()
    assert modules
    # What every hosted runner saw: the module NEEDs libcuda.so.1, and there is none.
    plain = subprocess.run([python, "-c", verify.import_statement(modules[0])], capture_output=True, text=True, cwd=tmp_path)
    assert plain.returncode != 0 and "libcuda.so.1" in plain.stderr, plain.stderr[-2000:]
    proc = run_wheelfactory("smoke", wheel, "--python", python)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"imported {len(modules)} module(s): {', '.join(modules)}" in proc.stdout
