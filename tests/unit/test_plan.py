"""The planner on the real release table and on small fixture recipes (pure, fast)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from wheelfactory import arch, naming, platforms, releases, resources
from wheelfactory.arch import GpuTarget
from wheelfactory.plan import Selection, plan, published_keys
from wheelfactory.recipe import Matrix, Recipe, TargetRule, load_recipe

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plan"
SCHEMA = json.loads((resources.PLAN_SCHEMA).read_text())
TABLE = releases.load()


def fixture(name: str) -> Recipe:
    return load_recipe(FIXTURES / f"{name}.toml")


def recipe(
    *, name: str = "demo", rules: dict[str, list[str]] | None = None, **matrix: object
) -> Recipe:
    """A Recipe built directly (bypassing the parser's own target checks)."""
    rules = rules or {"": ["8.0", "9.0a"]}
    return Recipe(
        path=None,
        name=name,
        version="1.0.0",
        source=None,
        matrix=Matrix(**matrix),  # type: ignore[arg-type]
        target_rules=tuple(
            TargetRule(cuda=SpecifierSet(spec), targets=arch.parse_targets(archs))
            for spec, archs in rules.items()
        ),
    )


def expected_combinations(
    r: Recipe, table: releases.ReleaseTable
) -> set[tuple[str, str, str, str]]:
    """(torch minor, cuda, platform, python) the recipe allows, computed independently."""
    out = set()
    for rel in table.planning_releases():
        if not r.matrix.torch.contains(rel.version):
            continue
        for cuda, platform, python in rel.builds():
            if not r.matrix.cuda.contains(cuda) or platform not in r.matrix.platforms:
                continue
            if python.endswith("t") and not r.matrix.free_threaded:
                continue
            if not r.matrix.python.contains(python.rstrip("t")):
                continue
            if not any(arch.why_not_buildable(t, cuda) is None for t in r.targets_for(cuda)):
                continue
            out.add((rel.minor, cuda, platform, python))
    return out


def test_cells_match_the_table_exactly_once() -> None:
    r = fixture("attn")
    result = plan([r], TABLE)
    got = [(c.torch_label, c.cuda, c.platform, c.python) for c in result.cells]
    assert len(got) == len(set(got))
    assert set(got) == expected_combinations(r, TABLE)
    # Counts per torch minor follow from the table (3 platforms x Pythons x CUDA >= 12.8).
    per_minor = {}
    for c in result.cells:
        per_minor[c.torch_label] = per_minor.get(c.torch_label, 0) + 1
    r28 = TABLE.get("2.8.0")
    assert r28 is not None
    want_28 = sum(
        1 for cu, _, py in r28.builds() if Version(cu) >= Version("12.8") and not py.endswith("t")
    )
    assert per_minor["2.8"] == want_28
    assert "2.7" not in per_minor  # matrix.torch >= 2.8


def test_cells_use_newest_patch_and_stable_ids() -> None:
    result = plan([fixture("attn")], TABLE)
    cell = next(
        c
        for c in result.cells
        if c.torch_label == "2.9"
        and c.cuda == "12.8"
        and c.python == "3.12"
        and c.platform == "linux-x86_64"
    )
    assert cell.torch == "2.9.1"
    assert cell.id == "attn-demo-2.2.0-cu128-torch2.9-cp312-linux_x86_64"
    assert cell.torch_requirement == "torch==2.9.*"
    data = cell.to_json()
    for key in ("recipe", "version", "torch", "cuda", "python", "os", "machine", "targets", "id"):
        assert key in data
    assert (data["os"], data["machine"]) == ("linux", "x86_64")


def test_known_exclusions_on_real_table() -> None:
    # A recipe that asks for every target under every CUDA: the planner must drop what a
    # CUDA cannot build (12.1a/10.3a need 12.9, 10.x/12.x need 12.8, 7.0 is gone in 13.0,
    # "a" targets came with 12.0)
    # and keep it where it can.
    everything = recipe(rules={"": ["7.0", "8.0", "9.0a", "10.0a", "10.3a", "12.0a", "12.1a"]})
    cells = plan([everything], TABLE).cells
    targets_by_cuda = {Version(c.cuda): set(c.targets) for c in cells}
    assert min(targets_by_cuda) < Version("12.8") < Version("12.9") < max(targets_by_cuda)
    for cuda, targets in targets_by_cuda.items():
        assert ("12.1a" in targets) == ("10.3a" in targets) == (cuda >= Version("12.9")), cuda
        assert ("12.0a" in targets) == ("10.0a" in targets) == (cuda >= Version("12.8")), cuda
        assert ("7.0" in targets) == (cuda < Version("13.0")), cuda
        assert ("9.0a" in targets) == (cuda >= Version("12.0")), cuda  # "a" targets: CUDA 12
        assert "8.0" in targets, cuda
    result = plan([fixture("attn"), fixture("fp4"), fixture("stable")], TABLE)
    fp4 = [c for c in result.cells if c.recipe == "fp4-demo"]
    assert fp4 and all(c.platform != "windows-amd64" for c in fp4)
    assert any(c.python.endswith("t") for c in fp4)
    assert not any(c.python in ("3.9", "3.10") for c in fp4)
    assert not any(c.cuda == "12.6" for c in fp4)
    reasons = [e.reason for e in result.excluded if e.recipe == "fp4-demo" and e.cuda == "12.6"]
    assert reasons and all("no [[targets]] rule covers CUDA 12.6" in r for r in reasons)
    # The stable recipe drops 7.0 on CUDA 13 through its rule; no cell carries it.
    assert not any(
        c.recipe == "stable-demo" and c.cuda.startswith("13") and "7.0" in c.targets
        for c in result.cells
    )


def test_unbuildable_targets_are_dropped_with_a_note() -> None:
    r = recipe(rules={"": ["7.0", "9.0a", "12.1a"]}, torch=SpecifierSet(">=2.8,<2.10"))
    result = plan([r], TABLE)
    by_cuda = {c.cuda: c for c in result.cells}
    assert by_cuda["12.8"].targets == ("7.0", "9.0a")
    assert any("12.1a" in n and "12.9" in n for n in by_cuda["12.8"].notes)
    assert by_cuda["12.9"].targets == ("7.0", "9.0a", "12.1a")
    assert by_cuda["13.0"].targets == ("9.0a", "12.1a")
    assert any("7.0" in n for n in by_cuda["13.0"].notes)


def test_cell_with_no_target_left_is_excluded() -> None:
    r = recipe(rules={"": ["12.1a"]}, torch=SpecifierSet("==2.8.*"))
    result = plan([r], TABLE)
    assert {c.cuda for c in result.cells} == {"12.9"}
    reasons = {e.cuda: e.reason for e in result.excluded}
    assert "no GPU target left" in reasons["12.6"] and "needs CUDA >= 12.9" in reasons["12.8"]


def test_abi3_cell_replaces_per_python_cells() -> None:
    r = recipe(
        abi3=True, free_threaded=True, torch=SpecifierSet("==2.9.*"), platforms=("linux-x86_64",)
    )
    result = plan([r], TABLE)
    pythons = sorted({c.python for c in result.cells})
    assert pythons == ["3.13t", "3.14t", "cp310-abi3"]
    abi3 = next(c for c in result.cells if c.abi3)
    assert abi3.wheel_tags == ("cp310", "abi3")
    assert abi3.id.endswith("-cp310-abi3-linux_x86_64")
    # A --python selection keeps the abi3 cell when it covers a selected CPython.
    sel = plan([r], TABLE, select=Selection(python=SpecifierSet("==3.12")))
    assert {c.python for c in sel.cells} == {"cp310-abi3"}


def test_stable_abi_cell_replaces_per_torch_cells() -> None:
    r = fixture("stable")
    result = plan([r], TABLE)
    labels = {c.torch_label for c in result.cells}
    assert labels == {"2.9", "abi"}
    abi = [c for c in result.cells if c.torch_label == "abi"]
    # One cell per (CUDA, platform) across every torch >= 2.10 that ships it.
    keys = [(c.cuda, c.platform) for c in abi]
    assert len(keys) == len(set(keys))
    want = {
        (cu, p)
        for rel in TABLE.planning_releases()
        if Version(rel.minor) >= Version("2.10")
        for cu, p, _ in rel.builds()
    }
    assert set(keys) == want
    cu130 = next(c for c in abi if c.cuda == "13.0" and c.platform == "linux-x86_64")
    assert cu130.torch == "2.10.0" and cu130.torch_requirement == "torch>=2.10"
    assert cu130.id == "stable-demo-0.1.0-cu130-torchabi-cp310-abi3-linux_x86_64"


def test_selection_narrows_and_is_explained() -> None:
    sel = Selection(
        torch=SpecifierSet("==2.14.*"),
        cuda=SpecifierSet("==13.0"),
        python=SpecifierSet("==3.12"),
        oses=("windows",),
    )
    result = plan([fixture("attn")], TABLE, select=sel)
    assert [c.id for c in result.cells] == ["attn-demo-2.2.0-cu130-torch2.14-cp312-windows_amd64"]
    assert any("--os windows" in e.reason for e in result.excluded)
    assert any("--torch" in e.reason for e in result.excluded)


def test_missing_skips_published_but_not_yanked() -> None:
    from types import SimpleNamespace

    r = recipe(
        torch=SpecifierSet("==2.14.*"),
        cuda=SpecifierSet("==13.0"),
        python=SpecifierSet("==3.12"),
        platforms=("linux-x86_64", "windows-amd64"),
    )
    full = plan([r], TABLE)
    assert len(full.cells) == 2
    label = naming.TorchPin("2.14.1").labelled_version("1.0.0", "13.0")
    files = [
        SimpleNamespace(
            filename=f"demo-{label}-cp312-cp312-manylinux_2_28_x86_64.whl", yanked=False
        ),
        SimpleNamespace(filename=f"demo-{label}-cp312-cp312-win_amd64.whl", yanked=True),
    ]
    result = plan([r], TABLE, SimpleNamespace(files=files))
    assert [c.platform for c in result.cells] == ["windows-amd64"]
    assert any("already published" in e.reason for e in result.excluded)
    # A wheel for another torch minor, CUDA or Python does not count.
    other = naming.TorchPin("2.13.0").labelled_version("1.0.0", "13.0")
    assert len(plan([r], TABLE, [f"demo-{other}-cp312-cp312-manylinux_2_28_x86_64.whl"]).cells) == 2
    assert published_keys(None) == {}


def test_missing_does_not_count_a_held_wheel_as_published() -> None:
    """A wheel held for a GPU check is in the manifest but in no view: users cannot install
    it, so its cell is still to do, and the plan says it is held and why."""
    from types import SimpleNamespace

    from wheelfactory.plan import table_text

    r = recipe(
        torch=SpecifierSet("==2.14.*"),
        cuda=SpecifierSet("==13.0"),
        python=SpecifierSet("==3.12"),
        platforms=("linux-x86_64", "windows-amd64"),
    )
    label = naming.TorchPin("2.14.1").labelled_version("1.0.0", "13.0")
    linux = f"demo-{label}-cp312-cp312-manylinux_2_28_x86_64.whl"
    windows = f"demo-{label}-cp312-cp312-win_amd64.whl"
    files = [
        SimpleNamespace(filename=linux, yanked=False, held="awaiting a GPU check on sm_90"),
        SimpleNamespace(filename=windows, yanked=False, held=None),
    ]
    result = plan([r], TABLE, SimpleNamespace(files=files))
    (cell,) = result.cells
    assert cell.platform == "linux-x86_64"
    assert any(n.startswith(f"held in the index: {linux} (awaiting a GPU check") for n in cell.notes)
    assert not any(linux in e.reason for e in result.excluded)
    assert f"1 of them held in the index, not published:\n  {cell.id}: held" in table_text(result)
    assert published_keys(SimpleNamespace(files=files)) == {
        k: windows for k in published_keys([windows])
    }


def test_json_and_github_outputs_match_schema() -> None:
    result = plan([fixture("attn"), fixture("fp4"), fixture("stable")], TABLE, root=ROOT)
    jsonschema.validate(result.to_json(), SCHEMA)
    github = result.github_matrices(max_jobs=40)
    jsonschema.validate(github, {**SCHEMA, "$ref": "#/$defs/github", "type": "object"})
    jobs = [j for m in github["matrices"] for j in m["include"]]
    assert all(len(m["include"]) <= 40 for m in github["matrices"])
    # Every cell is in exactly one job, and a job builds one wheel (one torch install).
    cells = [cid for j in jobs for cid in j["cells"]]
    assert sorted(cells) == sorted(result.ids())
    assert all(j["cells"] == [j["id"]] and len(j["pythons"]) == 1 for j in jobs)
    fp4 = [j for j in jobs if j["id"].startswith("fp4-demo-1.0.0-cu130-torch2.14-") and j["id"].endswith("-linux_aarch64")]
    assert {j["recipe"] for j in fp4} == {"tests/fixtures/plan/fp4.toml"}
    assert {j["runner"] for j in fp4} == {"ubuntu-24.04-arm"}
    assert [j["cibw_build"] for j in fp4] == [f"cp3{m}-manylinux_aarch64" for m in range(11, 15)] + [
        "cp314t-manylinux_aarch64"
    ]
    assert [p for j in fp4 for p in j["pythons"]] == ["3.11", "3.12", "3.13", "3.14", "3.14t"]
    assert {j["targets"] for j in fp4} == {"10.0a;12.0a;12.1a"}
    abi3_job = next(j for j in jobs if j["abi3"] and j["os"] == "windows")
    assert abi3_job["runner"] == "windows-2022" and abi3_job["cibw_build"].endswith("-win_amd64")


# ------------------------------------------------------------------ properties

targets_st = st.lists(
    st.sampled_from(sorted(arch.target_table())), min_size=1, max_size=5, unique=True
)
spec_st = st.sampled_from(["", ">=2.8", "<2.10", "==2.14.*", ">=2.12"])
cuda_spec_st = st.sampled_from(["", ">=12.8", "<13.0", "==12.9", ">=13.0"])
py_spec_st = st.sampled_from(["", ">=3.11", "<3.12", "==3.13"])
platforms_st = st.lists(st.sampled_from(platforms.names()), min_size=1, max_size=3, unique=True)


@st.composite
def recipes_st(draw: st.DrawFn) -> Recipe:
    return recipe(
        rules={"<13.0": draw(targets_st), ">=13.0": draw(targets_st)},
        torch=SpecifierSet(draw(spec_st)),
        cuda=SpecifierSet(draw(cuda_spec_st)),
        python=SpecifierSet(draw(py_spec_st)),
        platforms=tuple(draw(platforms_st)),
        free_threaded=draw(st.booleans()),
    )


@settings(max_examples=60, deadline=None)
@given(recipes_st())
def test_property_every_allowed_combination_once_and_no_rule_broken(r: Recipe) -> None:
    result = plan([r], TABLE)
    got = [(c.torch_label, c.cuda, c.platform, c.python) for c in result.cells]
    assert len(got) == len(set(got))
    assert set(got) == expected_combinations(r, TABLE)
    for c in result.cells:
        assert c.targets
        for t in c.targets:
            assert arch.why_not_buildable(GpuTarget.parse(t), c.cuda) is None
        rel = TABLE.get(c.torch)
        assert rel is not None and (c.cuda, c.platform, c.python) in set(rel.builds())
        assert rel == max(
            (x for x in TABLE.releases if x.minor == rel.minor), key=lambda x: x.parsed
        )


@settings(max_examples=30, deadline=None)
@given(recipes_st(), st.booleans(), st.sampled_from([None, "2.10", "2.12"]))
def test_property_deterministic(r: Recipe, abi3: bool, floor: str | None) -> None:
    from dataclasses import replace

    r = replace(r, matrix=replace(r.matrix, abi3=abi3, stable_abi_floor=floor))
    a, b = plan([r], TABLE), plan([r], TABLE)
    assert a == b
    assert json.dumps(a.to_json()) == json.dumps(b.to_json())
    ids = a.ids()
    assert len(ids) == len(set(ids))
    jsonschema.validate(a.to_json(), SCHEMA)


REPO_RECIPES = sorted((ROOT / "recipes").glob("*.toml"))


@pytest.mark.skipif(not REPO_RECIPES, reason="no recipes/*.toml in this checkout yet")
@pytest.mark.parametrize("path", REPO_RECIPES, ids=lambda p: p.stem)
def test_repo_recipes_on_real_table(path: Path) -> None:
    r = load_recipe(path)
    result = plan([r], TABLE, root=ROOT)
    assert result.cells, f"{path.name} plans no cell"
    jsonschema.validate(result.to_json(), SCHEMA)
    assert all(c.recipe_path == f"recipes/{path.name}" for c in result.cells)
    if not (r.matrix.abi3 or r.matrix.stable_abi_floor):
        got = [(c.torch_label, c.cuda, c.platform, c.python) for c in result.cells]
        assert len(got) == len(set(got)) and set(got) == expected_combinations(r, TABLE)
    for c in result.cells:
        for t in c.targets:
            assert arch.why_not_buildable(GpuTarget.parse(t), c.cuda) is None, c.id


def test_github_jobs_are_accepted_by_the_ci_job_parser() -> None:
    from wheelfactory.ci import cibw
    result = plan([fixture("attn"), fixture("fp4"), fixture("stable")], TABLE, root=ROOT)
    jobs = result.jobs()
    assert jobs
    for job in jobs:
        parsed = cibw.parse_job(job)
        assert parsed.cibw_build == job["cibw_build"]


def test_two_recipes_planning_the_same_wheel_are_refused() -> None:
    from dataclasses import replace

    from wheelfactory.errors import ConfigError

    a = fixture("attn")
    b = replace(a, path=FIXTURES / "attn-copy.toml")
    with pytest.raises(ConfigError, match="planned by both .*attn.toml and .*attn-copy.toml"):
        plan([a, b], TABLE, root=ROOT)
    assert plan([a, replace(b, version="2.2.1")], TABLE).cells
