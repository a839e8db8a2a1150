"""A manifest with one published wheel for every cell the real recipes plan (the index
when every planned cell is built), for the landing page's size and layout tests."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from wheelfactory import naming, platforms, releases
from wheelfactory import plan as planning
from wheelfactory.manifest import Manifest, PublishedFile
from wheelfactory.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]
INDEX_URL = "https://wheels.example.org/idx"
# The platform tag a repaired wheel of each OS/CPU carries.
PLATFORM_TAGS = {"linux-x86_64": "manylinux_2_28_x86_64",
                 "linux-aarch64": "manylinux_2_28_aarch64", "windows-amd64": "win_amd64"}


def plan_cells() -> tuple[planning.Cell, ...]:
    recipes = [load_recipe(p) for p in sorted((REPO / "recipes").glob("*.toml"))]
    return planning.plan(recipes, releases.load(), root=REPO).cells


def cell_file(cell: planning.Cell) -> PublishedFile:
    interp, abi = cell.wheel_tags
    version = cell.pin.labelled_version(cell.version, cell.cuda)
    tag = PLATFORM_TAGS[platforms.get(cell.platform).name]
    name = f"{cell.recipe.replace('-', '_')}-{version}-{interp}-{abi}-{tag}.whl"
    record = {"targets": list(cell.targets), "torch": cell.torch, "cuda": cell.cuda}
    if cell.stable_abi_floor:
        record["stable_abi_floor"] = cell.stable_abi_floor
    stable = cell.torch_label == naming.STABLE_ABI
    return PublishedFile(
        filename=name, project=cell.recipe, version=version,
        sha256=hashlib.sha256(name.encode()).hexdigest(), size=23_700_000,
        url=f"files/{name}", upload_time="2026-11-24T10:00:00.000000Z", build_record=record,
        # as publish lists it: for the torch it was built and verified against (a plan
        # cell's `covers` is another thing: the CPythons and torch minors it serves)
        covers=(naming.torch_minor(cell.torch),) if stable else (),
    )


@cache
def full_plan_manifest() -> Manifest:
    return Manifest(files=tuple(cell_file(c) for c in plan_cells()), index_url=INDEX_URL)
