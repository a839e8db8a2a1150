"""A mistyped torch version, index folder or wheel path fails loudly through the real CLI
entry point: one ERROR line that names what is wrong and what exists, a non-zero exit, and
nothing written (issue 27, item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _index_wheels import make_wheel
from wheelfactory import cli
from wheelfactory.errors import ConfigError, PublishError

ROOT = Path(__file__).resolve().parents[2]
ATTN = ROOT / "tests" / "fixtures" / "plan" / "attn.toml"
# three torch releases, each with one CUDA 12.8 build for Linux x86_64 and Python 3.12
TABLE = "table-version = 1\n" + "".join(
    f'\n[[release]]\nversion = "{version}"\npythons = ["3.12"]\n\n'
    '[[release.variant]]\ncuda = "12.8"\nplatforms = ["linux-x86_64"]\n'
    for version in ("2.8.0", "2.9.0", "2.9.1")
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    """Exit code and the ERROR lines of `wheelfactory ARGV`."""
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.startswith("ERROR")]


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "torch-releases.toml"
    path.write_text(TABLE)
    return path


@pytest.mark.parametrize("command", ["plan", "coverage"])
@pytest.mark.parametrize(
    ("torch", "nearest"),
    [("2.91", "2.9.1, 2.9.0, 2.8.0"), ("2.10", "2.9.1, 2.9.0, 2.8.0"), (">=3.0", "2.9.1, 2.9.0, 2.8.0")],
)
def test_a_torch_selection_that_matches_no_release_names_the_nearest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, table: Path, command: str, torch: str,
    nearest: str,
) -> None:  # fmt: skip
    index = tmp_path / "site"
    index.mkdir()
    code, errors = run(capsys, command, str(ATTN), "--table", str(table), "--torch", torch,
                       "--index", str(index))  # fmt: skip
    assert code == ConfigError.return_code
    assert errors == [
        f"ERROR: --torch {torch!r} selects no torch release of the table (nearest: {nearest});"
        " pass one of those, or run `wheelfactory watch` if it came out after the release"
        " table was updated"
    ]


def test_a_torch_selection_that_matches_a_release_still_plans(
    capsys: pytest.CaptureFixture[str], table: Path
) -> None:
    assert cli.main(["plan", str(ATTN), "--table", str(table), "--torch", "2.9"]) == 0
    assert "torch2.9" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["coverage"], ["plan", "--missing"]])
def test_a_missing_index_folder_is_refused_naming_the_indexes_beside_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "manifest.json").write_text('{"version": 1, "files": []}')
    (tmp_path / "notes").mkdir()
    missing = tmp_path / "sitee"
    code, errors = run(capsys, *command, str(ATTN), "--index", str(missing))
    assert code == ConfigError.return_code
    assert errors == [
        f"ERROR: --index {missing}: no such folder ({tmp_path} holds site); pass the folder"
        " `wheelfactory publish --index` wrote, or its URL"
    ]
    assert not missing.exists()


def test_an_existing_index_folder_is_still_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "site").mkdir()  # no manifest yet: every wheel missing, the usual exit 11
    code, errors = run(capsys, "coverage", str(ATTN), "--index", str(tmp_path / "site"))
    assert code == 11 and errors[0].startswith("ERROR: ") and "missing from" in errors[0]


def test_publishing_a_missing_wheel_names_it_and_the_wheels_that_exist(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    real = make_wheel(tmp_path / "dist")
    index = tmp_path / "site"
    code, errors = run(capsys, "publish", "nosuch/x.whl", "--index", str(index))
    assert code == PublishError.return_code
    assert errors == [
        "ERROR: nosuch/x.whl: no such file (there is no folder nosuch; the current folder"
        " holds no wheels); pass the path of a built wheel"
    ]
    typo = f"dist/{real.name.replace('.whl', '-x.whl')}"
    code, errors = run(capsys, "publish", typo, "--index", str(index))
    assert code == PublishError.return_code
    assert errors == [f"ERROR: {typo}: no such file (dist holds {real.name}); pass the path of a built wheel"]
    # the good wheel beside the missing one is not published either: nothing is written
    code, _ = run(capsys, "publish", f"dist/{real.name}", "nosuch/x.whl", "--index", str(index))
    assert code == PublishError.return_code and not index.exists()
