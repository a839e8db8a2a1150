"""The extended [gpu-check] (short lengths, a NaN anywhere fails) and the source check
(`gpu-check --source-variant`: a PTX build of a recipe's tree, reported apart from the
check of a shipped binary), driven on CPU: a real setup.py build of a tiny tree and a
stand-in check script that reads what the build and gpu-check handed it."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
from wheelfactory import cli, gpucheck
from wheelfactory.arch import parse_targets
from wheelfactory.errors import ConfigError, RecipeError
from wheelfactory.recipe import GpuCheckSpec, load_recipe, parse_recipe

REPO = Path(__file__).resolve().parents[2]
SPEC = GpuCheckSpec(script=Path("x.py"), args={}, min_cosine=0.99, max_abs_error=1.0)


def attention_script():
    spec = importlib.util.spec_from_file_location("attention_check", REPO / "recipes/checks/attention.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # torch is imported only inside main()
    return module


def out(*cases: dict) -> str:
    return json.dumps({"gpu": "G", "capability": "9.0", "torch": "2.11.0", "cases": list(cases)})


def case(shape: str, nonfinite: int = 0, cosine: float | None = 0.9995) -> dict:
    return {"shape": shape, "cosine": cosine, "max_abs_error": 0.01, "nonfinite": nonfinite, "runs": 4}


def test_a_nan_anywhere_fails_in_one_line_that_counts_them() -> None:
    cases = [case(f"s{n}-d128", nonfinite=3 if n in (1, 7, 63) else 0) for n in range(1, 66)]
    verdict, line, _ = gpucheck.judge(out(*cases), SPEC)
    assert verdict == "fail" and "\n" not in line
    assert line == "NaN/Inf in the output at 3 of 65 shapes (9 values): s1-d128, s7-d128, s63-d128"
    many = [case(f"s{n}", nonfinite=1) for n in range(1, 21)]
    assert gpucheck.judge(out(*many), SPEC)[1].endswith("s8 and 12 more")
    # every case finite: the pass line says so
    verdict, line, _ = gpucheck.judge(out(*(case(f"s{n}") for n in range(1, 66))), SPEC)
    assert (verdict, line) == ("pass", "65 shapes, cosine >= 0.9995, every value finite")


def test_attention_spec_expands_short_lengths_in_both_head_dims() -> None:
    a = attention_script()
    assert a.seq_list("1-3,7, 127") == [1, 2, 3, 7, 127]
    recipe = load_recipe(REPO / "recipes/sageattention-main.toml")
    shapes = a.short_shapes(recipe.gpu_check.args["short"])
    seqs = {s["seq"] for s in shapes}
    assert set(range(1, 66)) <= seqs and {127, 129} <= seqs
    assert {s["dim"] for s in shapes} == {64, 128} and {s["causal"] for s in shapes} == {False, True}
    assert all(s["repeats"] >= 2 and not s["timed"] for s in shapes)
    # calls inherit the spec's kwargs; a lone "call" is the default
    calls = a.calls_of({"call": "m:f", "kwargs": {"tensor_layout": "HND"},
                        "calls": [{"call": "m:g", "kwargs": {"pv_accum_dtype": "fp16"}}]})  # fmt: skip
    assert calls == [{"call": "m:g", "kwargs": {"tensor_layout": "HND", "pv_accum_dtype": "fp16"}}]
    assert a.label(calls[0], True) == "g[pv_accum_dtype=fp16]:"
    assert a.calls_of({"call": "m:f"}) == [{"call": "m:f", "kwargs": {}}]
    # a run with NaN makes the shape's cosine NaN (null in the JSON), whatever the other runs gave
    nan = float("nan")
    assert math.isnan(a.worse(a.worse(math.inf, 0.9999, low_is_bad=True), nan, low_is_bad=True))
    assert math.isnan(a.worse(nan, 0.9999, low_is_bad=True)) and math.isnan(a.worse(0.1, nan, low_is_bad=False))
    assert a.worse(a.worse(math.inf, 0.9999, low_is_bad=True), 0.998, low_is_bad=True) == 0.998


@pytest.mark.parametrize("name", ["sageattention", "sageattention-main"])
def test_per_torch_recipes_offer_a_source_check_of_their_ptx_kernels(name: str) -> None:
    source = load_recipe(REPO / f"recipes/{name}.toml").gpu_check.source
    assert [str(t) for t in source.archs] == ["8.0+PTX", "8.9+PTX"]
    called = {(c["arch"], c["call"]) for c in source.calls}
    assert called == {("8.0", "sageattention:sageattn_qk_int8_pv_fp16_cuda"),
                      ("8.9", "sageattention:sageattn_qk_int8_pv_fp8_cuda")}  # fmt: skip
    accum = {c["kwargs"]["pv_accum_dtype"] for c in source.calls}
    assert accum == {"fp32", "fp16+fp32", "fp16", "fp32+fp16", "fp32+fp32"}


RECIPE = """
[package]
name = "fakeattn"
version = "1.0.0"

[matrix]
cuda = ">=12.8"

[[targets]]
archs = ["9.0a"]

[gpu-check]
script = "checks/standin.py"
args = {{ call = "fakeattn:attn", kwargs = {{ layout = "HND" }} }}
min-cosine = 0.99

[gpu-check.source]
{source}
"""
SOURCE = """archs = ["8.0+PTX", "8.9+PTX"]
calls = [
    { arch = "8.0", call = "fakeattn:attn80", kwargs = { accum = "fp32" } },
    { arch = "8.9", call = "fakeattn:attn89" },
]"""

# The tree's setup.py "builds" a module that records what the build was given.
SETUP = """import os, pathlib
from setuptools import setup
pathlib.Path("fakeattn/_built.py").write_text("ARCH_LIST = %r\\nNAN = %r\\n" % (
    os.environ["TORCH_CUDA_ARCH_LIST"], "kNoFill" in pathlib.Path("kernel.cuh").read_text()))
setup(name="fakeattn", version="1.0.0", packages=[])
"""
# The stand-in check: one case per call, NaN where the tree says so; echoes what it got.
STANDIN = """import json, sys
spec = json.loads(sys.argv[1])
from fakeattn import _built
cases = [{"shape": c["call"] + ":s7-d128", "cosine": 0.9995, "max_abs_error": 0.01,
          "nonfinite": 5 if _built.NAN else 0, "runs": 4, "kwargs": c.get("kwargs", {})}
         for c in spec["calls"]]
print(json.dumps({"arch_list": _built.ARCH_LIST, "cases": cases}))
"""


def fake(tmp: Path, *, nan: bool, source: str = SOURCE) -> tuple[Path, Path]:
    (tmp / "recipes/checks").mkdir(parents=True)
    (tmp / "recipes/checks/standin.py").write_text(STANDIN)
    recipe = tmp / "recipes/fakeattn.toml"
    recipe.write_text(RECIPE.format(source=source))
    tree = tmp / "tree"
    (tree / "fakeattn").mkdir(parents=True)
    (tree / "fakeattn/__init__.py").write_text("")
    (tree / "setup.py").write_text(SETUP)
    (tree / "kernel.cuh").write_text("load<kNoFill>();\n" if nan else "load<kFillZero>();\n")
    return recipe, tree


# the recipe's fix, as a [[patch]]: what the source check applies unless --without-patches
PATCH = """Zero-fill, for the test.

diff --git a/kernel.cuh b/kernel.cuh
--- a/kernel.cuh
+++ b/kernel.cuh
@@ -1 +1 @@
-load<kNoFill>();
+load<kFillZero>();
"""


def with_patch(recipe: Path) -> Path:
    import hashlib

    (recipe.parent / "patches/fakeattn").mkdir(parents=True)
    (recipe.parent / "patches/fakeattn/0001-zero-fill.patch").write_text(PATCH)
    sha = hashlib.sha256(PATCH.encode()).hexdigest()
    text = recipe.read_text().replace("[matrix]", f"""[[patch]]
file = "patches/fakeattn/0001-zero-fill.patch"
sha256 = "{sha}"
why = "NaN at short lengths"
mirrors = "woct0rdho/SageAttention#98"

[matrix]""")
    recipe.write_text(text)
    return recipe


def machine(capability: tuple[int, int] = (9, 0)) -> gpucheck.Machine:
    return gpucheck.Machine(python=Path(sys.executable), python_version="3.12", torch="2.11.0+cu130",
                            torch_cuda="13.0", gpu="NVIDIA H200", capability=capability)  # fmt: skip


def test_source_check_builds_the_ptx_variant_and_runs_what_it_reaches(tmp_path: Path) -> None:
    recipe, tree = fake(tmp_path, nan=False)
    work = tmp_path / "work"
    work.mkdir()
    result = gpucheck.check_source(tree, load_recipe(recipe), machine(), work=work, jobs=2)
    assert (result.verdict, result.detail) == ("pass", "2 shapes, cosine >= 0.9995, every value finite")
    assert result.kind == "source check (PTX 8.0/8.9 via JIT on sm_90, no patches)"
    assert result.targets == ("8.0+PTX", "8.9+PTX")
    # every reachable entry point was handed to the script, with its own kwargs
    assert [c["kwargs"] for c in result.cases] == [{"accum": "fp32"}, {}]
    assert not (tree / "fakeattn/_built.py").exists()  # built in a copy, never in the tree given
    data = result.to_json()
    assert data["check"] == result.kind and data["build_seconds"] is not None and data["version"] == 1
    # publish --gpu-checks takes shipped-binary results only: a source check vouches for no wheel
    from wheelfactory.cli.main_publish import _read_checks

    (tmp_path / "source.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="is not gpu-check's results"):
        _read_checks(tmp_path / "source.json")


def test_source_check_fails_a_tree_whose_kernels_give_nan(tmp_path: Path) -> None:
    recipe, tree = fake(tmp_path, nan=True)
    work = tmp_path / "work"
    work.mkdir()
    result = gpucheck.check_source(tree, load_recipe(recipe), machine(), work=work, jobs=2)
    assert result.verdict == "fail"
    assert result.detail == "NaN/Inf in the output at 2 of 2 shapes (10 values): fakeattn:attn80:s7-d128, fakeattn:attn89:s7-d128"


def test_source_check_builds_only_the_targets_this_gpu_runs(tmp_path: Path) -> None:
    recipe, tree = fake(tmp_path, nan=False)
    (work := tmp_path / "w1").mkdir()
    ampere = gpucheck.check_source(tree, load_recipe(recipe), machine((8, 6)), work=work, jobs=2)
    assert ampere.targets == ("8.0+PTX",) and [c["shape"] for c in ampere.cases] == ["fakeattn:attn80:s7-d128"]
    assert ampere.kind == "source check (PTX 8.0 via JIT on sm_86, no patches)"
    (work := tmp_path / "w2").mkdir()
    only = gpucheck.check_source(tree, load_recipe(recipe), machine(), work=work, jobs=2, only=parse_targets("8.9+PTX"))
    assert only.targets == ("8.9+PTX",) and len(only.cases) == 1
    with pytest.raises(ConfigError, match=r"--source-arch 9.0\+PTX is not in .*: use some of 8.0\+PTX, 8.9\+PTX"):
        gpucheck.check_source(tree, load_recipe(recipe), machine(), work=work, jobs=2, only=parse_targets("9.0+PTX"))
    with pytest.raises(ConfigError, match="run the source check on a GPU at least as new"):
        gpucheck.check_source(tree, load_recipe(recipe), machine((7, 5)), work=work, jobs=2)


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ('archs = ["8.0", "8.9+PTX"]\ncalls = [{ arch = "8.9", call = "m:f" }]', "must list X.Y+PTX targets"),
        ('archs = ["8.0+PTX"]\ncalls = [{ arch = "8.9", call = "m:f" }]', "needs arch = one of ['8.0']"),
        ('archs = ["8.0+PTX"]\ncalls = [{ arch = "8.0", call = "nocolon" }]', 'call = "module:function"'),
        ('archs = ["8.0+PTX"]\ncalls = []', "must be a list of kernel entry points"),
        ('archs = ["8.0+PTX"]\ncalls = [{ arch = "8.0", call = "m:f" }]\nbogus = 1', "bogus"),
    ],
)
def test_a_bad_source_table_is_one_line(tmp_path: Path, source: str, words: str) -> None:
    recipe, _ = fake(tmp_path, nan=False, source=source)
    with pytest.raises(RecipeError) as e:
        parse_recipe(recipe.read_text(), recipe)
    assert words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--source-variant", "x"], "--source-variant needs --recipe"),
        (["--source-variant", "x", "--recipe", "recipes/sageattention-main.toml", "--record", "idx"],
         "--record takes shipped-binary checks only"),
    ],
)
def test_source_variant_cli_refuses_before_probing(argv: list[str], words: str, capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    assert cli.main(["gpu-check", *argv]) == ConfigError.return_code
    assert words in capsys.readouterr().err


def test_source_check_applies_the_recipes_patches_unless_told_not_to(tmp_path: Path) -> None:
    recipe, tree = fake(tmp_path, nan=True)
    recipe = load_recipe(with_patch(recipe))
    (work := tmp_path / "w1").mkdir()
    patched = gpucheck.check_source(tree, recipe, machine(), work=work, jobs=2)
    assert patched.verdict == "pass" and patched.patches == ("0001-zero-fill.patch",)
    assert patched.kind == "source check (PTX 8.0/8.9 via JIT on sm_90, 1 patch(es))"
    (work := tmp_path / "w2").mkdir()
    upstream = gpucheck.check_source(tree, recipe, machine(), work=work, jobs=2, with_patches=False)
    assert upstream.verdict == "fail" and upstream.patches == () and "NaN/Inf" in upstream.detail
    assert "kNoFill" in (tree / "kernel.cuh").read_text()  # the tree given is never patched
