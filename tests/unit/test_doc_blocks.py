"""The docs cannot drift: every command block of README.md and docs/users.md is either run
by tests/integration/test_doc_commands.py or listed with the reason it cannot run here; the
README's command list is the CLI's; the README's times are the measured ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _doc_blocks import CANNOT_RUN, RUNS, Block, blocks
from wheelfactory import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_block_is_run_or_says_why_it_cannot() -> None:
    found = blocks()
    assert {b.doc for b in found} == {"README.md", "docs/users.md"}
    unlisted = [f"{b.where}: {b.key!r}" for b in found if b.key not in RUNS and b.key not in CANNOT_RUN]
    assert not unlisted, (
        "new command blocks: add each (by its first command line) to RUNS in tests/_doc_blocks.py"
        f" with its local stand-ins, or to CANNOT_RUN with the reason: {unlisted}"
    )
    assert not set(RUNS) & set(CANNOT_RUN)
    stale = (set(RUNS) | set(CANNOT_RUN)) - {b.key for b in found}
    assert not stale, f"entries of tests/_doc_blocks.py no block has any more: {sorted(stale)}"


@pytest.mark.parametrize("block", [b for b in blocks() if b.key in RUNS], ids=lambda b: b.where)
def test_every_stand_in_replaces_text_of_its_block(block: Block) -> None:
    for old, _ in RUNS[block.key].stand_ins:
        assert old in block.text, f"{block.where} no longer says {old!r}: update its stand-ins"
    for test_file, text in RUNS[block.key].elsewhere:
        assert text in (ROOT / test_file).read_text(), f"{test_file} no longer runs {text!r}"


def test_blocks_are_keyed_by_their_first_command(tmp_path: Path) -> None:
    (tmp_path / "doc.md").write_text(
        "text\n```bash\n# a comment\nwheelfactory   plan  # every wheel\nmore\n```\n"
        "```toml\n[x]\n```\n"
        "```console\n$ wheelfactory cache\nenvs: 1\n```\n~~~powershell\nInvoke-WebRequest x\n~~~\n"
    )
    got = blocks(tmp_path, ("doc.md",))
    assert [(b.line, b.lang, b.key) for b in got] == [
        (2, "bash", "wheelfactory plan"),
        (10, "console", "wheelfactory cache"),
        (14, "powershell", "Invoke-WebRequest x"),
    ]
    assert got[0].commands == ["wheelfactory   plan  # every wheel", "more"]


def test_the_readme_lists_every_command_in_the_order_of_help() -> None:
    listed = re.search(r"`wheelfactory --help` lists every command \(([^)]*)\)", README)
    assert listed, "README.md: the sentence '`wheelfactory --help` lists every command (...)'"
    names = [n.strip() for n in listed.group(1).replace("\n", " ").split(",")]
    assert names == [n for n in cli.COMMANDS if n not in cli.CI_STEPS]


def test_the_readme_quotes_the_measured_times_with_the_machine() -> None:
    measured = json.loads((ROOT / "bench" / "results" / "readme-timings.json").read_text())
    cores = measured["machine"]["cores"]
    unit = measured["unit_tier"]
    quick = measured["quickstart"]
    assert unit["rc"] == 0 and quick["served"]
    assert quick["torch_env_cached"]  # the README says so; a first run adds the download
    assert f"{round(unit['seconds'])} s on {cores} cores" in README
    assert f"{round(quick['seconds'])} s, about {round(quick['seconds'] / 60)} minutes on {cores} cores" in README
    assert "bench/readme_timings.py" in README
    # no other time in the README: each one quoted must be one the script measured
    measured_figures = {f"{round(unit['seconds'])} s", f"{round(quick['seconds'])} s",
                        f"{round(quick['seconds'] / 60)} minutes"}  # fmt: skip
    quoted = re.findall(r"\b\d+(?:\.\d+)? (?:s|sec|seconds|min|minutes?|hours?)\b", README)
    assert set(quoted) <= measured_figures, quoted


def test_users_doc_leads_with_the_comfyui_portable_python() -> None:
    first = blocks(docs=("docs/users.md",))[0]
    assert first.lang == "powershell"
    assert "python_embeded\\python.exe which.py sageattention" in first.key
    users = (ROOT / "docs" / "users.md").read_text(encoding="utf-8")
    assert users.index("python_embeded\\python.exe") < users.index("python which.py")
