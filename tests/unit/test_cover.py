"""cover.candidates: which published stable-ABI wheels `wheelfactory cover` import-checks
against a new torch. Below a wheel's floor it never tries (the import would fail, or worse,
pass on a torch the wheel was not checked against); at the floor and above it does."""

from __future__ import annotations

from pathlib import Path

import pytest
from _index_wheels import make_stable_abi_wheel, make_wheel
from _records import record_json
from wheelfactory import cover
from wheelfactory import publish as pub
from wheelfactory.manifest import load_manifest


def published(tmp_path: Path) -> Path:
    """An index with a stable-ABI wheel (floor 2.10) and a per-torch one."""
    idx = tmp_path / "idx"
    stable = make_stable_abi_wheel(tmp_path / "s")
    per_torch = make_wheel(tmp_path / "p", build_record=record_json())
    pub.publish([stable, per_torch], idx)
    return idx


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return published(tmp_path_factory.mktemp("cover"))  # read only: shared by the tests


def names(idx: Path, torch: str, cudas: list[str] | None = None) -> list[str]:
    return [f.filename for f in cover.candidates(load_manifest(idx).files, torch, cudas)]


STABLE = "demo_ext-1.0.0+cu130torchabi-cp310-abi3-any.whl"


@pytest.mark.parametrize("torch", ["2.9.1", "2.9.0+cu130", "1.13.1"])
def test_cover_never_tries_a_torch_below_the_floor(index: Path, torch: str) -> None:
    assert names(index, torch) == []


@pytest.mark.parametrize("torch", ["2.10.0", "2.10.1+cu130", "3.0.0"])
def test_cover_tries_the_floor_and_every_torch_above_it(index: Path, torch: str) -> None:
    assert names(index, torch) == [STABLE]


def test_cover_skips_what_is_covered_yanked_or_of_another_cuda(tmp_path: Path) -> None:
    index = published(tmp_path)
    assert names(index, "2.14.1") == []  # verified with 2.14 when published: covered already
    assert names(index, "2.15.0", cudas=["12.8"]) == []
    pub.set_yanked(index, STABLE, yanked=True, reason="wrong output")
    assert names(index, "2.15.0") == []


def test_a_wheel_that_imported_at_its_floor_is_listed_in_the_floors_view(tmp_path: Path) -> None:
    """What cover does after the import check passed, at the floor itself: 2.10's view lists
    the wheel (below the floor is refused; test_gpucheck covers that)."""
    index = published(tmp_path)
    assert pub.add_covers(index, STABLE, "2.10").covers == ("2.10", "2.14")
    assert STABLE in (index / "cu130/torch2.10/simple/demo-ext/index.html").read_text()
