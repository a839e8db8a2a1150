from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from wheelfactory import cli, naming, releases
from wheelfactory.coverage import coverage, to_json_text, to_markdown
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
    assert err.startswith("ERROR: 2 of 3 planned environments get no wheel") and "plan --missing" in err
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
    assert err.startswith("ERROR: 1 of 3 planned environments get no wheel") and LINUX in err
    assert len(err.strip().splitlines()) == 1
