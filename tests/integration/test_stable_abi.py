"""Stable-ABI builds for real: the stable_ext fixture (the abi3_stable port's quirks) built
once for every torch from its floor, and what verify refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import FIXTURES, SETTINGS, BuiltWheel, build_args, run_wheelfactory
from wheelfactory import naming, wheelfile


def test_stable_ext_is_one_abi3_wheel_for_every_torch_from_its_floor(fixture_builds: dict[str, BuiltWheel]) -> None:
    built = fixture_builds["stable_ext"]
    info = naming.parse_wheel(built.wheel.name)
    assert info.version == f"0.2.0+{naming.local_label(SETTINGS.cuda, naming.STABLE_ABI)}"
    assert info.python_tags == ("cp310",) and info.abi_tags == ("abi3",)
    read = wheelfile.read_wheel(built.wheel)
    record = read.build_record
    assert record is not None and record.stable_abi_floor == "2.10"
    assert record.torch_requirement == "torch>=2.10"
    assert [str(r) for r in read.requires("torch")] == ["torch>=2.10"]
    # the port's quirks were met by the recipe: plain arch list, USE_CUDA, the floor's ABI
    assert record.env["TORCH_CUDA_ARCH_LIST"] == "9.0;12.0"
    assert "-DUSE_CUDA=1" in record.env["NVCC_APPEND_FLAGS"]
    assert "-DTORCH_TARGET_VERSION=0x020a000000000000" in record.env["CXX_APPEND_FLAGS"]
    report = json.loads(Path(built.outcome["verify_report"]).read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["stable ABI _C.abi3.so"]["ok"] and checks["floor torch 2.10 _C.abi3.so"]["ok"]
    assert checks["SASS targets"]["ok"] and report["ok"]


def test_a_stable_abi_recipe_on_a_source_that_is_not_one_fails_in_one_line(tmp_path: Path) -> None:
    """quirky_ext is a pybind11 module built on ATen: a recipe that asks for a stable-ABI
    build of it gets a one-line verify error naming a torch C++ symbol, and no wheel."""
    recipe = tmp_path / "quirky_ext.toml"
    text = (FIXTURES / "quirky_ext.toml").read_text()
    recipe.write_text(text.replace('torch = ">=2.10"', 'torch = ">=2.10"\nstable-abi-floor = "2.10"\nabi3 = "cp310"'))
    out = tmp_path / "out"
    args = build_args("quirky_ext", out)
    args[1] = str(recipe)
    proc = run_wheelfactory(*args)
    assert proc.returncode == 8, proc.stderr[-2000:]
    (error,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
    assert ": stable ABI _driver" in error or ": stable ABI _kernels" in error, error
    assert "imports" in error and "torch C++ symbol(s) (_Z" in error, error
    assert not list(out.glob("*.whl"))
    shutil.rmtree(out, ignore_errors=True)
