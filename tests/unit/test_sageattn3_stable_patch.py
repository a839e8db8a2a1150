"""recipes/sageattn3-stable.toml's patch series (0001-0003 of the abi3 recipe, then the port
0004) applied with the factory's own git apply to the pinned tree, and what the port
promises, read from the patched sources: only stable torch headers, upstream's op schemas
unchanged, a CUDA and a Meta kernel for every op, and the stable-ABI compile flags.

The pinned tree is upstream code, so it is not in this repository: WHEELFACTORY_UPSTREAM_SA3
names a local copy of the pin's sageattention3_blackwell/ (woct0rdho/SageAttention 93128b9),
e.g. `git archive 93128b9 sageattention3_blackwell | tar -x`. Without it the test is skipped;
tests/integration/test_sageattn3_stable.py fetches the pin and compiles part of it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from wheelfactory import source
from wheelfactory.recipe import load_recipe

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "sageattn3-stable.toml"
PINNED = os.environ.get("WHEELFACTORY_UPSTREAM_SA3")
SOURCES = ("csrc/blackwell/api.cu", "csrc/quantization/fp4_quantization_4d.cu")

pytestmark = pytest.mark.skipif(not PINNED, reason="WHEELFACTORY_UPSTREAM_SA3 (the pinned tree) is not set")


def _schemas(tree: Path) -> dict[str, str]:
    """namespace::op -> the schema string each m.def(...) registers, from the sources."""
    out = {}
    for rel in SOURCES:
        text = (tree / rel).read_text()
        for lib in re.finditer(r"TORCH_LIBRARY\((\w+), m\) \{(.*?)\n\}", text, re.S):
            for d in re.finditer(r'm\.def\(((?:\s*"[^"]*")+)\s*\);', lib.group(2)):
                schema = "".join(re.findall(r'"([^"]*)"', d.group(1)))
                out[f"{lib.group(1)}::{schema.split('(', 1)[0]}"] = schema
    return out


def _impls(tree: Path, key: str) -> set[str]:
    out = set()
    for rel in SOURCES:
        text = (tree / rel).read_text()
        for lib in re.finditer(rf"STABLE_TORCH_LIBRARY_IMPL\((\w+), {key}, m\) \{{(.*?)\n\}}", text, re.S):
            out |= {f"{lib.group(1)}::{op}" for op in re.findall(r'm\.impl\("(\w+)", TORCH_BOX\(', lib.group(2))}
    return out


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the pinned tree as fetched, the same with the recipe's patches applied)."""
    assert PINNED is not None
    base = tmp_path_factory.mktemp("sa3")
    pinned, patched = base / "pinned", base / "patched"
    shutil.copytree(PINNED, pinned)
    shutil.copytree(PINNED, patched)
    applied = source.apply_patches(patched, load_recipe(RECIPE).patches_for("linux"), base)
    assert [Path(a.file).name for a in applied][-1] == "0004-stable-abi.patch"
    return pinned, patched


def test_the_series_applies_and_leaves_only_stable_torch_headers(trees: tuple[Path, Path]) -> None:
    pinned, patched = trees

    def torch_includes(tree: Path) -> set[str]:
        return {m for f in (tree / "csrc").rglob("*") if f.suffix in (".h", ".cu", ".cuh")
                for m in re.findall(r"#include\s*<((?:torch|ATen|c10)/[^>]+)>", f.read_text())}  # fmt: skip

    stable = ("torch/csrc/stable/", "torch/headeronly/", "torch/csrc/inductor/aoti_torch/c/")
    assert any(not i.startswith(stable) for i in torch_includes(pinned))  # upstream: ATen
    assert torch_includes(patched) and all(i.startswith(stable) for i in torch_includes(patched))
    setup = (patched / "setup.py").read_text()
    # TORCH_STABLE_ONLY makes any other torch header a compile error; the floor's ABI
    for flag in ('"-DTORCH_STABLE_ONLY"', '"-DTORCH_TARGET_VERSION=0x020a000000000000"', '"-DUSE_CUDA=1"'):
        assert flag in setup, flag


def test_the_port_keeps_upstreams_schemas_and_adds_a_meta_kernel_for_every_op(trees: tuple[Path, Path]) -> None:
    pinned, patched = trees
    upstream, ported = _schemas(pinned), _schemas(patched)
    assert len(upstream) == 4 and ported == upstream
    assert "STABLE_TORCH_LIBRARY(" in (patched / SOURCES[0]).read_text()
    assert _impls(patched, "CUDA") == _impls(patched, "Meta") == set(upstream)
