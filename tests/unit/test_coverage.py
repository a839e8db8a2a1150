from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from wheelfactory import cli, landing, naming, releases
from wheelfactory.errors import ConfigError
from wheelfactory.coverage import coverage, served_environments, to_json_text, to_markdown
from wheelfactory.manifest import Manifest, PublishedFile
from wheelfactory.plan import Selection, plan
from wheelfactory.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
ATTN = ROOT / "tests" / "fixtures" / "plan" / "attn.toml"
SEL = Selection(
    torch=SpecifierSet("==2.14.*"), cuda=SpecifierSet("==13.0"), python=SpecifierSet("==3.12")
)
LABEL = naming.TorchPin("2.14.1").labelled_version("2.2.0", "13.0")
LINUX = f"attn_demo-{LABEL}-cp312-cp312-manylinux_2_28_x86_64.whl"
ARM = f"attn_demo-{LABEL}-cp312-cp312-manylinux_2_28_aarch64.whl"
WIN = f"attn_demo-{LABEL}-cp312-cp312-win_amd64.whl"
OLD = f"attn_demo-{naming.TorchPin('2.8.0').labelled_version('2.2.0', '12.8')}-cp312-cp312-win_amd64.whl"


def entry(
    filename: str, *, yanked: bool = False, size: int = 9_500_000, held: str | None = None
) -> dict[str, object]:
    label = naming.parse_wheel(filename)
    return {
        "filename": filename,
        "project": label.project,
        "version": label.version,
        "sha256": "0" * 64,
        "size": size,
        "url": f"files/{filename}",
        "upload_time": "2026-11-02T10:00:00.000000Z",
        "yanked": yanked,
        "held": held,
    }


def manifest(*entries: dict[str, object]) -> Manifest:
    return Manifest(files=tuple(PublishedFile.from_json(e) for e in entries))


def cells():
    return plan([load_recipe(ATTN)], releases.load(), select=SEL).cells


def test_report_marks_published_and_missing() -> None:
    report = coverage(cells(), manifest(entry(LINUX), entry(WIN, yanked=True), entry(OLD)))
    status = {r.cell.platform: r for r in report.rows}
    assert status["linux-x86_64"].filename == LINUX and status["linux-x86_64"].size == 9_500_000
    assert not status["windows-amd64"].published  # yanked does not count
    assert not status["linux-aarch64"].published
    assert len(report.missing) == 2 and not report.complete
    assert report.unplanned == (OLD,)
    data = json.loads(to_json_text(report))
    assert data["version"] == 2 and (data["expected"], data["published"], data["missing"]) == (
        3,
        1,
        2,
    )
    md = to_markdown(report)
    assert (
        "1 of 3 planned environments are served" in md and "**MISSING**" in md and LINUX in md and "9.1 MiB" in md
    )
    assert "| 2.14 | 13.0 |" in md


def test_complete_report() -> None:
    report = coverage(cells(), manifest(*(entry(n) for n in (LINUX, ARM, WIN))))
    assert report.complete and "(complete)" in to_markdown(report)


@pytest.fixture
def index(tmp_path: Path) -> Path:
    d = tmp_path / "index"
    d.mkdir()
    return d


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "COMMANDS", {"coverage": "main_coverage"})
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_exit_code_and_formats(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], index: Path, tmp_path: Path
) -> None:
    base = [
        "coverage",
        str(ATTN),
        "--index",
        str(index),
        "--torch",
        "2.14",
        "--cuda",
        "13.0",
        "--python",
        "3.12",
    ]
    (index / "manifest.json").write_text(json.dumps({"version": 1, "files": [entry(LINUX)]}))
    code, out, err = run_cli(monkeypatch, capsys, *base, "--format", "json")
    assert code == 11 and json.loads(out)["missing"] == 2
    assert err.startswith("ERROR: 2 of 3 planned environments are missing from") and "plan --missing" in err
    summary = tmp_path / "summary.md"
    (index / "manifest.json").write_text(
        json.dumps({"version": 1, "files": [entry(n) for n in (LINUX, ARM, WIN)]})
    )
    code, out, _ = run_cli(monkeypatch, capsys, *base, "--output", str(summary))
    assert code == 0 and out.startswith("## Wheel coverage") and summary.read_text() == out


def test_a_held_wheel_is_not_published(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], index: Path
) -> None:
    """Held for a GPU check: in the manifest, in no view; coverage shows it as held."""
    files = [
        entry(LINUX, held="awaiting a GPU check on sm_90"),
        entry(ARM),
        entry(WIN),
    ]
    report = coverage(cells(), manifest(*files))
    row = next(r for r in report.rows if r.cell.platform == "linux-x86_64")
    assert not row.published and row.status == "held" and row.filename == LINUX
    assert not report.complete and len(report.held) == 1 and not report.missing
    data = json.loads(to_json_text(report))
    assert (data["published"], data["held"], data["missing"]) == (2, 1, 0)
    assert data["cells"][0]["status"] in ("held", "published")
    md = to_markdown(report)
    assert "2 of 3 planned environments are served (**1 held**)" in md
    assert f"`{LINUX}` **HELD**: awaiting a GPU check on sm_90" in md
    assert "| 2.14 | 13.0 | 1/1 ✅ | 0/1 ❌ | 1/1 ✅ |" in md
    (index / "manifest.json").write_text(json.dumps({"version": 1, "files": files}))
    code, out, err = run_cli(
        monkeypatch, capsys, "coverage", str(ATTN), "--index", str(index), "--torch", "2.14",
        "--cuda", "13.0", "--python", "3.12", "--format", "json",
    )  # fmt: skip
    assert code == 11 and json.loads(out)["held"] == 1
    assert err.startswith("ERROR: 1 of 3 planned environments are missing from") and LINUX in err
    assert len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- environments

from _stable_demo import STABLE_RECIPE  # noqa: E402  (shared with the integration tier)
STABLE_NAME = "demo_ext-1.0.0+cu130torchabi-cp310-abi3-manylinux_2_28_x86_64.whl"


def stable_index(tmp_path: Path, *, built_against: str = "2.12.1") -> tuple[Path, Path]:
    """(recipe, index): a real index that publish rendered, holding one stable-ABI cu130
    wheel (floor 2.10) built against ``built_against``, as publish lists it."""
    from _index_wheels import make_wheel
    from _records import record_json
    from wheelfactory import publish

    recipe = tmp_path / "demo-ext.toml"
    recipe.write_text(STABLE_RECIPE)
    wheel = make_wheel(
        tmp_path / "dist", torch="abi", requires_torch="torch>=2.10", python_tag="cp310",
        abi_tag="abi3", platform_tag="manylinux_2_28_x86_64",
        build_record=record_json(package_version="1.0.0+cu130torchabi", stable_abi_floor="2.10",
                                 torch=built_against, torch_requirement="torch>=2.10",
                                 python_tag="cp310-abi3"),
    )  # fmt: skip
    index = tmp_path / "index"
    publish.publish([wheel], index)
    return recipe, index


def cu130_pythons_from(floor: str) -> dict[str, list[str]]:
    """{torch minor >= floor: the CPythons >= 3.10, not free-threaded, it ships CUDA 13.0
    Linux x86_64 wheels for}: what the stable cell promises, read from the table."""
    from packaging.version import Version

    out: dict[str, list[str]] = {}
    for r in releases.load().planning_releases():
        for v in r.variants:
            if Version(r.minor) >= Version(floor) and v.cuda == "13.0" and "linux-x86_64" in v.platforms:
                out[r.minor] = [p for p in r.pythons_of(v)
                                if not p.endswith("t") and releases.python_key(p) >= (3, 10, 0)]
    return out


def test_a_stable_wheel_covers_only_the_torch_views_that_list_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Issue 22: a stable-ABI wheel published for torch 2.12 is in cu130/torch2.12 only; the
    users of every other torch >= its floor get nothing from their command, and coverage
    says so, naming those torches. Listed in every such view (cover's add_covers), it is
    complete."""
    from wheelfactory import publish

    recipe, index = stable_index(tmp_path)
    promised = cu130_pythons_from("2.10")
    minors, total = list(promised), sum(len(p) for p in promised.values())
    assert "2.11" in minors and "2.12" in minors  # the table the issue was measured on
    argv = ["coverage", str(recipe), "--index", str(index), "--python", "3.12"]
    code, out, err = run_cli(monkeypatch, capsys, *argv)
    others = [m for m in minors if m != "2.12"]
    assert code == 11 and len(err.strip().splitlines()) == 1
    assert f"(torch {', '.join(others)};" in err
    assert f"{len(promised['2.12'])} of {total} planned environments are served" in out
    assert ("- demo-ext 1.0.0: torch 2.11, CUDA 13.0, Python 3.12, linux-x86_64: no wheel in"
            f" cu130/torch2.11 view (stable-ABI {STABLE_NAME} is listed for torch 2.12 only") in out
    n, m = len(promised["2.12"]), len(promised["2.11"])
    assert f"| 2.12 | 13.0 | {n}/{n} ✅ |" in out and f"| 2.11 | 13.0 | 0/{m} ❌ |" in out
    for minor in others:
        publish.add_covers(index, STABLE_NAME, minor)
        assert (index / f"cu130/torch{minor}/simple/demo-ext/index.html").is_file()
    code, out, err = run_cli(monkeypatch, capsys, *argv, "--format", "json")
    data = json.loads(out)
    assert code == 0 and err == "" and data["gaps"] == []
    assert data["published"] == data["expected"] == total
    assert {e["torch"] for e in data["environments"]} == set(minors)
    assert {e["filename"] for e in data["environments"]} == {STABLE_NAME}


def test_an_abi3_wheel_serves_every_cpython_from_its_tag_but_not_free_threaded(
    tmp_path: Path,
) -> None:
    """pip's tags: a cp310-abi3 wheel installs on CPython 3.10 to 3.14, so the plan's one
    cell promises (and is counted as) one environment per CPython its torch ships."""
    from wheelfactory.manifest import load_manifest

    recipe, index = stable_index(tmp_path)
    cells_ = plan([load_recipe(recipe)], releases.load(),
                  select=Selection(torch=SpecifierSet("==2.12.*"))).cells  # fmt: skip
    report = coverage(cells_, load_manifest(index))
    pythons = [r.environment.python for r in report.rows]
    assert len(cells_) == 1 and report.complete and len(pythons) > 1
    assert pythons[0] == "3.10" and not any(p.endswith("t") for p in pythons)


def test_requires_python_and_tags_decide_as_pip_does(tmp_path: Path) -> None:
    """A wheel in the right view that pip would not install is a gap, named: its
    Requires-Python, or tags of another CPython or platform; a yanked one too."""
    from dataclasses import replace

    one = cells()  # attn-demo 2.2.0, torch 2.14, CUDA 13.0, CPython 3.12, three platforms
    m = manifest(entry(LINUX), entry(ARM), entry(WIN))
    m = replace(m, files=(replace(m.files[0], requires_python=">=3.13"), *m.files[1:]))
    report = coverage(one, m)
    gap = {r.environment.platform: r.why for r in report.unpublished}
    assert gap == {"linux-aarch64": f"Requires-Python >=3.13 of {ARM}"}
    arm311 = ARM.replace("cp312-cp312", "cp311-cp311")
    musl = WIN.replace("win_amd64", "musllinux_1_2_x86_64")
    report = coverage(one, manifest(entry(arm311), entry(musl), entry(WIN, yanked=True)))
    why = {r.environment.platform: r.why for r in report.rows}
    assert why == {
        "linux-aarch64": f"no wheel in cu130/torch2.14 view installs on CPython 3.12 linux-aarch64 (it has {arm311})",
        "linux-x86_64": f"no wheel in cu130/torch2.14 view installs on CPython 3.12 linux-x86_64 (it has {arm311})",
        "windows-amd64": f"only yanked wheel {WIN}"}  # fmt: skip
    assert set(report.unplanned) == {musl, arm311}


def test_a_wheel_needing_a_newer_glibc_than_torch_does_not_count() -> None:
    """manylinux_2_34 does not install where torch's own manylinux_2_28 wheels do."""
    newer = LINUX.replace("manylinux_2_28", "manylinux_2_34")
    report = coverage(cells(), manifest(entry(newer), entry(ARM), entry(WIN)))
    assert [r.environment.platform for r in report.unpublished] == ["linux-x86_64"]


def test_users_of_a_newer_glibc_can_be_counted_and_a_bad_glibc_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """WHEELFACTORY_USER_GLIBC (the rehearsal on a machine whose toolchain tags wheels
    manylinux_2_34): the same wheel then serves; a value that is no glibc is refused."""
    newer = LINUX.replace("manylinux_2_28", "manylinux_2_34")
    monkeypatch.setenv("WHEELFACTORY_USER_GLIBC", "2.36")
    assert coverage(cells(), manifest(entry(newer), entry(ARM), entry(WIN))).complete
    monkeypatch.setenv("WHEELFACTORY_USER_GLIBC", "2.33")
    assert not coverage(cells(), manifest(entry(newer), entry(ARM), entry(WIN))).complete
    monkeypatch.setenv("WHEELFACTORY_USER_GLIBC", "glibc-2.36")
    with pytest.raises(ConfigError, match="WHEELFACTORY_USER_GLIBC='glibc-2.36' is not a glibc version"):
        coverage(cells(), manifest(entry(newer)))


class _Matrix(HTMLParser):
    """(project, torch, CUDA, platform) of every cell of the landing page's coverage matrix
    that holds a badge."""

    def __init__(self) -> None:
        super().__init__()
        self.project, self.heads, self.cells = "", [], set()
        self.torch = self.cuda = ""
        self.col, self._head = -1, False

    def handle_starttag(self, tag, attrs) -> None:
        d = dict(attrs)
        if tag == "table" and "data-project" in d:
            self.project, self.heads = d["data-project"], []
        elif tag == "thead":
            self._head = True
        elif tag == "th" and self._head:
            self.heads.append(d.get("data-platform", ""))
        elif tag == "tr":
            self.col = -1
        elif tag in ("td", "th") and not self._head:
            self.col += 1
            if "data-torch" in d:
                self.torch, self.cuda = d["data-torch"], d["data-cuda"]
        elif tag == "a" and "py" in (d.get("class") or "").split() and self.project:
            self.cells.add((self.project, self.torch, self.cuda, self.heads[self.col]))

    def handle_endtag(self, tag) -> None:
        if tag == "thead":
            self._head = False
        elif tag == "table":
            self.project = ""


def landing_cells(m: Manifest) -> set[tuple[str, str, str, str]]:
    parser = _Matrix()
    parser.feed(landing.render_landing(m, "")["index.html"].decode())
    return parser.cells


def served_cells(m: Manifest) -> set[tuple[str, str, str, str]]:
    served = served_environments(m.files, landing.PYTHONS)
    return {(e.package, e.torch, e.cuda, e.platform) for e in served}


def test_the_landing_matrix_shows_a_stable_wheel_under_the_torches_that_serve_it(
    tmp_path: Path,
) -> None:
    """The page counts as coverage does: the stable-ABI wheel published for torch 2.12 sits
    in the 2.12 row (no row of its own), and in 2.11's once that view lists it."""
    from wheelfactory import publish
    from wheelfactory.manifest import load_manifest

    _, index = stable_index(tmp_path)
    page = landing.render_landing(load_manifest(index), "")["index.html"].decode()
    assert landing_cells(load_manifest(index)) == {("demo-ext", "2.12", "13.0", "linux-x86_64")}
    assert "stable ABI</th>" not in page
    publish.add_covers(index, STABLE_NAME, "2.11")
    m = load_manifest(index)
    assert landing_cells(m) == served_cells(m) == {
        ("demo-ext", t, "13.0", "linux-x86_64") for t in ("2.11", "2.12")}


def test_the_landing_matrix_and_coverage_count_the_full_plan_alike() -> None:
    from _full_plan import full_plan_manifest, plan_cells

    m = full_plan_manifest()
    cells_ = landing_cells(m)
    assert cells_ == served_cells(m)
    report = coverage(plan_cells(), m)
    assert {(r.environment.package, r.environment.torch, r.environment.cuda,
             r.environment.platform) for r in report.rows if r.published} == cells_  # fmt: skip


@pytest.mark.parametrize("abi3", [True, False])
def test_a_stable_cell_promises_every_torch_from_its_floor(tmp_path: Path, abi3: bool) -> None:
    """One compiled stable-ABI cell, one environment per torch minor >= floor (as the
    table ships CUDA 13.0 CPython 3.12 for Linux x86_64), abi3 or one CPython."""
    from wheelfactory.coverage import planned_environments

    recipe = tmp_path / "demo-ext.toml"
    recipe.write_text(STABLE_RECIPE if abi3 else STABLE_RECIPE.replace('abi3 = "cp310"\n', ""))
    cells_ = plan([load_recipe(recipe)], releases.load(),
                  select=Selection(python=SpecifierSet("==3.12"))).cells  # fmt: skip
    envs = [e for _, e in planned_environments(cells_, releases.load())]
    assert len(cells_) == 1 and cells_[0].abi3 == abi3
    assert sorted({e.torch for e in envs if e.python == "3.12"}, key=Version) == list(
        cu130_pythons_from("2.10"))
