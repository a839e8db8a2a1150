"""The nvcc filter (resources/nvcc_filter.py): which -gencode entries a source file keeps."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from wheelfactory import arch, build, buildvars
from wheelfactory.ci import cibw
from wheelfactory.errors import RecipeError
from wheelfactory.recipe import parse_recipe

spec = importlib.util.spec_from_file_location("nvcc_filter", build.NVCC_FILTER)
assert spec and spec.loader
nvcc_filter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nvcc_filter)

RULES = {"csrc/qattn/*_sm90.cu": ["90a"]}
GENCODES = [
    "-gencode", "arch=compute_80,code=sm_80",
    "-gencode", "arch=compute_90a,code=sm_90a",
    "-gencode=arch=compute_120a,code=sm_120a",
    "-gencode", "arch=compute_89,code=compute_89",
]  # fmt: skip


def argv(source: str) -> list[str]:
    return ["-c", source, "-o", "x.o", "-O3", *GENCODES, "--threads=8"]


def test_a_matching_file_keeps_only_its_targets() -> None:
    out = nvcc_filter.filter_gencode(argv("/w/src/csrc/qattn/qk_int_sv_f8_cuda_sm90.cu"), RULES)
    assert out == ["-c", "/w/src/csrc/qattn/qk_int_sv_f8_cuda_sm90.cu", "-o", "x.o", "-O3",
                   "-gencode", "arch=compute_90a,code=sm_90a", "--threads=8"]  # fmt: skip


def test_other_files_compile_unchanged() -> None:
    other = argv("/w/src/csrc/qattn/qk_int_sv_f16_cuda_sm80.cu")
    assert nvcc_filter.filter_gencode(other, RULES) == other
    windows = argv("C:\\w\\csrc\\qattn\\qk_int_sv_f8_cuda_sm90.cu")
    assert len(nvcc_filter.filter_gencode(windows, RULES)) == len(windows) - 5  # 2 + 1 + 2 args


def test_a_file_left_with_no_target_compiles_unchanged() -> None:
    # (the build did not ask for the file's targets: nvcc then fails as upstream would)
    only_blackwell = ["-c", "a_sm90.cu", "-gencode", "arch=compute_120a,code=sm_120a"]
    assert nvcc_filter.filter_gencode(only_blackwell, {"a_sm90.cu": ["90a"]}) == only_blackwell


RECIPE = """
[package]
name = "demo"
version = "1.0"
[[targets]]
cuda = ">=12.8"
archs = ["9.0a", "12.0a"]
[build]
source-targets = {table}
"""


def test_recipe_source_targets_parse_and_reach_the_build_env(tmp_path: Path) -> None:
    recipe = parse_recipe(RECIPE.format(table='{ "csrc/*_sm90.cu" = ["9.0a"] }'), Path("r.toml"))
    assert recipe.build.source_targets == {"csrc/*_sm90.cu": arch.parse_targets(["9.0a"])}
    changes = buildvars.nvcc_filter_settings("/f/nvcc", "/cuda/bin/nvcc", recipe.build.source_targets)
    env = {c.name: c.value for c in changes}
    assert env["PYTORCH_NVCC"] == "/f/nvcc" and env["WHEELFACTORY_NVCC_REAL"] == "/cuda/bin/nvcc"
    assert json.loads(env["WHEELFACTORY_SOURCE_TARGETS"]) == {"csrc/*_sm90.cu": ["90a"]}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('{ "a.cu" = ["9.0x"] }', r"\[build.source-targets\] entry 'a.cu'"),
        ('{ "a.cu" = [] }', "must list targets"),
        ('["a.cu"]', "must be a table"),
    ],
)
def test_bad_source_targets_fail_in_one_line(table: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message) as err:
        parse_recipe(RECIPE.format(table=table), Path("r.toml"))
    assert "\n" not in str(err.value)


def test_ci_builds_write_and_use_the_filter() -> None:
    recipe = parse_recipe(RECIPE.format(table='{ "csrc/*_sm90.cu" = ["9.0a"] }'), Path("r.toml"))
    job = cibw.parse_job({
        "id": "demo-1.0-cu130-torch2.14-linux_x86_64", "recipe": "demo", "recipe_path": "r.toml",
        "version": "1.0", "torch": "2.14.1", "torch_label": "2.14", "cuda": "13.0", "os": "linux",
        "machine": "x86_64", "platform": "linux-x86_64", "runner": "ubuntu-24.04",
        "cibw_build": "cp312-manylinux_x86_64", "pythons": ["3.12"], "targets": "9.0a;12.0a",
    })  # fmt: skip
    env = cibw.cibw_env(job, recipe=recipe)
    write = "wheelfactory nvcc-filter --out /tmp/wheelfactory-nvcc-filter"
    assert write in env["CIBW_BEFORE_BUILD"]
    assert 'PYTORCH_NVCC="/tmp/wheelfactory-nvcc-filter/nvcc"' in env["CIBW_ENVIRONMENT"]
    assert 'WHEELFACTORY_NVCC_REAL="/usr/local/cuda/bin/nvcc"' in env["CIBW_ENVIRONMENT"]


def test_windows_wrapper_is_a_bat_that_runs_the_filter_with_this_python(tmp_path: Path, monkeypatch) -> None:
    """torch's ninja build on Windows runs PYTORCH_NVCC as a command: a .bat file there."""
    monkeypatch.setattr(build.os, "name", "nt")
    wrapper = build.write_nvcc_filter(tmp_path, "C:/Python312/python.exe")
    monkeypatch.undo()
    assert wrapper.name == "nvcc.bat"
    line = wrapper.read_bytes().decode()  # cmd.exe wants CRLF
    assert line == f'@"C:/Python312/python.exe" "{tmp_path / "nvcc-filter" / "nvcc_filter.py"}" %*\r\n'
    assert (tmp_path / "nvcc-filter" / "nvcc_filter.py").read_text() == build.NVCC_FILTER.read_text()
