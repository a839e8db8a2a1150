"""The index when every cell the real recipes plan is built: one small fake wheel per cell
(right name, tags, metadata and build record), published by the real publish code, so
each manifest entry holds what publish writes (a stable-ABI wheel's ``covers``: the torch
it was built against, never the plan's list). For the landing page's size and layout
tests and for coverage's count of a full release."""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

from _index_wheels import make_wheel
from _records import record_json
from wheelfactory import index, naming, platforms, publish, releases
from wheelfactory import plan as planning
from wheelfactory.manifest import Manifest, load_manifest
from wheelfactory.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]
INDEX_URL = "https://wheels.example.org/idx"
UPLOAD_TIME = "2026-11-24T10:00:00.000000Z"
# The platform tag a repaired wheel of each OS/CPU carries.
PLATFORM_TAGS = {"linux-x86_64": "manylinux_2_28_x86_64",
                 "linux-aarch64": "manylinux_2_28_aarch64", "windows-amd64": "win_amd64"}


def plan_cells() -> tuple[planning.Cell, ...]:
    recipes = [load_recipe(p) for p in sorted((REPO / "recipes").glob("*.toml"))]
    return planning.plan(recipes, releases.load(), root=REPO).cells


def cell_wheel(cell: planning.Cell, out_dir: Path) -> Path:
    """A wheel file as the build of ``cell`` names and labels it (no binaries)."""
    interp, abi = cell.wheel_tags
    version = cell.pin.labelled_version(cell.version, cell.cuda)
    floor = {"stable_abi_floor": cell.stable_abi_floor} if cell.stable_abi_floor else {}
    record = record_json(
        package=cell.recipe, package_version=version, upstream_version=cell.version,
        platform=cell.platform, torch=cell.torch, torch_requirement=cell.torch_requirement,
        cuda=cell.cuda, python_tag=f"{interp}-{abi}", targets=list(cell.targets),
        index_url=INDEX_URL, **floor,
    )  # fmt: skip
    return make_wheel(
        out_dir, name=cell.recipe.replace("-", "_"), version=cell.version,
        cuda=naming.cuda_tag(cell.cuda)[2:], torch=cell.torch_label, python_tag=interp,
        abi_tag=abi, platform_tag=PLATFORM_TAGS[platforms.get(cell.platform).name],
        requires_python=None, requires_torch=cell.torch_requirement, build_record=record,
    )  # fmt: skip


# Publishing ~330 wheels fsyncs and removes a few thousand files: 15 s on this disk, 2 s
# in memory. Publish's own scratch folders (tempfile) go there too while it runs.
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def publish_cells(cells: tuple[planning.Cell, ...]) -> Manifest:
    """The manifest publish writes for a wheel of each of ``cells``."""
    saved = tempfile.tempdir
    tempfile.tempdir = SCRATCH or saved
    try:
        with tempfile.TemporaryDirectory(prefix="full-plan-") as tmp:
            wheels = [cell_wheel(c, Path(tmp) / "dist") for c in cells]
            # the plain index renderer: the landing page is rendered by the tests themselves
            publish.publish(wheels, Path(tmp) / "index", hooks=index.Hooks(),
                            upload_time=lambda: UPLOAD_TIME, index_url=INDEX_URL)  # fmt: skip
            return load_manifest(Path(tmp) / "index")
    finally:
        tempfile.tempdir = saved


@cache
def full_plan_manifest() -> Manifest:
    return publish_cells(plan_cells())
