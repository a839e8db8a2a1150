"""`wheelfactory plan` through the real CLI entry point (main), on fixture recipes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from wheelfactory import cli, naming, resources

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plan"
SCHEMA = json.loads((resources.PLAN_SCHEMA).read_text())


@pytest.fixture(autouse=True)
def only_my_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    # Other subcommands may be mid-development in this tree; load only these.
    monkeypatch.setattr(cli, "COMMANDS", {"plan": "main_plan"})
    monkeypatch.chdir(ROOT)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def manifest(index: Path, *filenames: str, yanked: bool = False) -> None:
    files = [
        {
            "filename": f,
            "project": naming.parse_wheel(f).project,
            "version": naming.parse_wheel(f).version,
            "sha256": "0" * 64,
            "size": 1234,
            "url": f"files/{f}",
            "upload_time": "2026-11-01T00:00:00.000000Z",
            "yanked": yanked,
        }
        for f in filenames
    ]
    index.mkdir(exist_ok=True)
    (index / "manifest.json").write_text(json.dumps({"version": 1, "files": files}))


def test_json_output_is_a_schema_valid_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "plan", str(FIXTURES / "attn.toml"), "--torch", "2.8", "--format", "json"
    )
    assert code == 0
    cells = json.loads(out)
    jsonschema.validate(cells, SCHEMA)
    assert cells and {c["torch"] for c in cells} == {"2.8.0"}
    assert cells[0]["id"] == "attn-demo-2.2.0-cu128-torch2.8-cp39-linux_x86_64"
    assert cells[0]["targets"] == ["8.0", "8.9", "9.0a", "10.0a", "12.0a"]


def test_github_output_and_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    gh = tmp_path / "gh.txt"
    code, out, _ = run(
        capsys,
        "plan",
        str(FIXTURES / "fp4.toml"),
        "--format",
        "github",
        "--max-jobs",
        "5",
        "--github-output",
        str(gh),
    )
    assert code == 0
    data = json.loads(out)
    jsonschema.validate(data, {**SCHEMA, "$ref": "#/$defs/github", "type": "object"})
    assert all(len(m["include"]) <= 5 for m in data["matrices"]) and len(data["matrices"]) > 1
    lines = gh.read_text().splitlines()
    assert lines[0].startswith("matrices=") and json.loads(lines[0][len("matrices=") :]) == data
    assert lines[1] == f"count={sum(len(m['include']) for m in data['matrices'])}"


def test_explain_lists_exclusions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", str(FIXTURES / "fp4.toml"), "--explain", "--os", "linux")
    assert code == 0
    assert "no [[targets]] rule covers CUDA 12.6" in out
    assert "recipe's matrix.torch '>=2.9' excludes 2.8.0" in out
    assert "windows" not in "".join(line for line in out.splitlines() if line.startswith("fp4-demo"))


def test_missing_reads_the_index_manifest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = [
        "plan",
        str(FIXTURES / "attn.toml"),
        "--torch",
        "2.14",
        "--cuda",
        "13.0",
        "--python",
        "3.12",
        "--format",
        "json",
    ]
    _, out, _ = run(capsys, *args)
    everything = [c["id"] for c in json.loads(out)]
    assert len(everything) == 3
    label = naming.TorchPin("2.14.1").labelled_version("2.2.0", "13.0")
    manifest(tmp_path / "index", f"attn_demo-{label}-cp312-cp312-manylinux_2_28_x86_64.whl")
    code, out, _ = run(capsys, *args, "--missing", "--index", str(tmp_path / "index"))
    assert code == 0
    missing = [c["id"] for c in json.loads(out)]
    assert missing == [i for i in everything if not i.endswith("linux_x86_64")]
    # A yanked wheel does not count as published.
    manifest(
        tmp_path / "index", f"attn_demo-{label}-cp312-cp312-manylinux_2_28_x86_64.whl", yanked=True
    )
    _, out, _ = run(capsys, *args, "--missing", "--index", str(tmp_path / "index"))
    assert [c["id"] for c in json.loads(out)] == everything


def test_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", str(FIXTURES / "attn.toml"), "--missing")
    assert code == 2 and err.startswith("ERROR: --missing needs --index") and err.count("\n") == 1
    code, _, err = run(capsys, "plan", str(FIXTURES / "attn.toml"), "--cuda", "twelve")
    assert code == 2 and "--cuda" in err
