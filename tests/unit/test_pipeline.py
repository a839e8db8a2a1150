from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from _records import record
from wheelfactory import arch, finish, label, pipeline, wheelfile
from wheelfactory.errors import ConfigError
from wheelfactory.recipe import default_recipe, load_recipe

ROOT = Path(__file__).resolve().parents[2]


def request(recipe, targets: str | None, cuda: str = "13.0") -> pipeline.BuildRequest:
    return pipeline.BuildRequest(
        recipe=recipe,
        source_dir=None,
        torch="2.14.1",
        cuda=cuda,
        python=Path("python3"),
        targets=arch.parse_targets(targets) if targets else None,
        out_dir=Path("out"),
        torch_index_url=None,
        cache=Path("cache"),
    )


def test_targets_from_arch_else_recipe_and_checked() -> None:
    recipe = load_recipe(ROOT / "tests/fixtures/quirky_ext.toml")
    assert pipeline.resolve_targets(request(recipe, None)) == arch.parse_targets("9.0a,12.0a")
    assert pipeline.resolve_targets(request(recipe, "12.0a")) == arch.parse_targets("12.0a")
    with pytest.raises(
        ConfigError,
        match=r"^10.0a \(.*\) needs CUDA >= 12.8, not 12.6: drop it or choose another --cuda$",
    ):
        pipeline.resolve_targets(request(default_recipe("x"), "10.0a", cuda="12.6"))
    with pytest.raises(ConfigError, match="pass --arch"):
        pipeline.resolve_targets(request(default_recipe("x"), None))


def test_label_edits_write_version_requirement_and_record(tmp_path: Path) -> None:
    wheel = tmp_path / "x-1.0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("x/__init__.py", "")
        z.writestr("x-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: x\nVersion: 1.0\n")
        z.writestr("x-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: cp311-cp311-linux_x86_64\n")
    rec = record(package="x", package_version="1.0+cu130torch2.14")
    out = label.relabel(
        wheel, finish.label_edits(rec, strip_debug=False), tmp_path / "o", work=tmp_path / "w"
    )
    assert out.name == "x-1.0+cu130torch2.14-cp311-cp311-linux_x86_64.whl"
    read = wheelfile.read_wheel(out)
    assert read.build_record == rec
    assert [str(r) for r in read.requires("torch")] == ["torch==2.14.*"]


def test_published_version_checks_what_the_source_built() -> None:
    from wheelfactory.errors import BuildError
    from wheelfactory.recipe import Recipe, default_recipe

    assert finish.published_version(default_recipe("demo"), "1.2") == "1.2"
    pinned = Recipe(path=None, name="demo", version="1.2", source=None)
    assert finish.published_version(pinned, "1.2.0") == "1.2"
    snapshot = Recipe(path=None, name="demo", version="1.2.post20260115", upstream_version="1.2", source=None)
    assert finish.published_version(snapshot, "1.2") == "1.2.post20260115"
    with pytest.raises(BuildError, match=r"builds version 1.3, the recipe expects 1.2: update \[package\].upstream-version"):
        finish.published_version(snapshot, "1.3")
