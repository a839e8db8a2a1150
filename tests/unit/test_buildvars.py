"""buildvars: one rule for a build's variables, applied locally and quoted for CI alike."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from wheelfactory import arch, buildvars, platforms
from wheelfactory.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]


def host(name: str = "linux-x86_64") -> buildvars.BuildHost:
    p = platforms.get(name)
    return buildvars.BuildHost(
        platform=p, cuda_home=p.cuda_home or None, driver_stubs=p.driver_stubs or None,
        gpu_shim_dir=p.gpu_shim_dir, nvcc_filter=p.nvcc_filter_path, real_nvcc=p.nvcc,
    )  # fmt: skip


@pytest.mark.parametrize("recipe_file", ["recipes/sageattention-main.toml", "recipes/sageattn3.toml"])
@pytest.mark.parametrize("base", [{}, {"NVCC_APPEND_FLAGS": "--threads 4", "LIBRARY_PATH": "/x"}])
def test_local_and_ci_environments_agree(recipe_file: str, base: dict[str, str]) -> None:
    """What `wheelfactory build` applies and what cibuildwheel evaluates from cibw-env's
    words are the same variables with the same values."""
    from cibuildwheel.environment import parse_environment

    recipe = load_recipe(ROOT / recipe_file)
    changes = buildvars.build_changes(
        recipe, torch="2.14.1", cuda="13.0", python="3.12",
        targets=recipe.targets_for("13.0"), jobs=4, host=host(),
    )  # fmt: skip
    _, local = buildvars.apply(base, changes, pathsep=":")
    words = buildvars.cibw_words(changes, pathsep=":")
    text = " ".join(f"{k}={v}" for k, v in words.items())
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # python
    ci = parse_environment(text).as_dictionary({"PATH": path, **base})
    assert {k: ci[k] for k in local} == local


def test_compression_follows_the_cuda_table_and_the_recipe() -> None:
    recipe = load_recipe(ROOT / "recipes/sageattention-main.toml")
    assert buildvars.compress_mode(recipe, "13.0") == "size"
    assert buildvars.compress_mode(recipe, "12.8") is None  # r525 drivers stay supported
    assert buildvars.compress_mode(recipe, "12.6") is None


def test_plain_arch_list_strips_the_arch_suffix() -> None:
    from dataclasses import replace

    recipe = load_recipe(ROOT / "recipes/sageattention-main.toml")
    targets = arch.parse_targets("8.0,8.9+PTX,9.0a,12.0a")
    assert buildvars.arch_list(recipe, targets) == "8.0;8.9+PTX;9.0a;12.0a"
    plain = replace(recipe, build=replace(recipe.build, plain_arch_list=True))
    assert buildvars.arch_list(plain, targets) == "8.0;8.9+PTX;9.0;12.0"


def test_windows_gets_msvc_flags_and_no_driver_stub() -> None:
    recipe = load_recipe(ROOT / "recipes/sageattention-main.toml")
    changes = buildvars.build_changes(
        recipe, torch="2.14.1", cuda="13.0", python="3.12",
        targets=recipe.targets_for("13.0"), jobs=4, host=host("windows-amd64"),
    )  # fmt: skip
    _, env = buildvars.apply({}, changes, pathsep=";")
    assert env["CL"].startswith("/permissive-") and env["DISTUTILS_USE_SDK"] == "1"
    assert "LIBRARY_PATH" not in env and "CUDA_HOME" not in env
    assert env["_LINK_"] == "cuda.lib"
    assert env["PYTORCH_NVCC"] == "C:/wheelfactory-nvcc-filter/nvcc.bat"
