"""finish.new_record: what a wheel's build record says about its build."""

from __future__ import annotations

import json
from pathlib import Path

from wheelfactory import arch, finish
from wheelfactory.recipe import load_recipe
from wheelfactory.record import BuildRecord

ROOT = Path(__file__).resolve().parents[2]


def new_record(recipe: str, *, torch: str, cuda: str, python_tag: str, targets: str) -> BuildRecord:
    """The record of a local linux-x86_64 build of recipes/<recipe> from upstream 2.2.0."""
    loaded = load_recipe(ROOT / "recipes" / recipe)
    return finish.new_record(
        loaded,
        upstream_version="2.2.0",
        builder="local",
        platform="linux-x86_64",
        torch=loaded.torch_pin(torch),
        cuda=cuda,
        python_tag=python_tag,
        targets=arch.parse_targets(targets),
        changes=[],
        fixes=[],
    )


def test_the_record_says_what_was_built() -> None:
    record = new_record("sageattention.toml", torch="2.9.1+cu128", cuda="12.8",
                        python_tag="cp312-cp312", targets="9.0a,12.0a")
    assert record.targets == ("9.0a", "12.0a")
    assert (record.torch, record.cuda, record.python_tag) == ("2.9.1", "12.8", "cp312-cp312")
    assert record.torch_requirement == "torch==2.9.*"
    assert record.package_version.endswith("+cu128torch2.9")
    assert record.recipe == "recipes/sageattention.toml" and record.recipe_sha256
    assert BuildRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


def test_a_stable_abi_record_names_its_floor() -> None:
    floor = load_recipe(ROOT / "recipes" / "sageattention-stable.toml").matrix.stable_abi_floor
    record = new_record("sageattention-stable.toml", torch="2.14.1", cuda="13.0",
                        python_tag="cp310-abi3", targets="9.0a")
    assert record.stable_abi_floor == floor
    assert record.torch_requirement == f"torch>={floor}"
    assert record.package_version.endswith("+cu130torchabi")
