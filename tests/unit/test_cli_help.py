"""`wheelfactory --help` lists commands and CI steps apart, every command's --help shows a
working example, and a mistyped command gets one line that names the right one."""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path

import pytest
from wheelfactory import cli

ROOT = Path(__file__).resolve().parents[2]
NAMES = list(cli.COMMANDS)


def example_lines(name: str) -> list[str]:
    module = importlib.import_module(f"wheelfactory.cli.{cli.COMMANDS[name]}")
    return [line for line in getattr(module, "EXAMPLE", "").splitlines() if line.strip()]


def argv_of(line: str) -> list[str]:
    """The example's arguments after "wheelfactory", without comments or redirections."""
    words = shlex.split(line, comments=True)
    cut = next((i for i, w in enumerate(words) if w in (">", ">>", "|")), len(words))
    return words[1:cut]


def help_of(name: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_every_command_has_an_example_that_its_help_shows(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = example_lines(name)
    assert lines, f"cli/{cli.COMMANDS[name]}.py has no EXAMPLE"
    assert lines[0].startswith(f"wheelfactory {name}")
    assert all(line.startswith("wheelfactory ") for line in lines)
    out = help_of(name, capsys)
    for line in lines:
        assert f"  {line}\n" in out


@pytest.mark.parametrize("name", NAMES)
def test_every_example_parses_and_names_files_that_exist(name: str) -> None:
    parser = cli.make_parser()
    for line in example_lines(name):
        args = parser.parse_args(argv_of(line))  # a wrong option exits (fails) here
        assert args.command == name
        for word in argv_of(line):
            if word.startswith(("recipes/", "tests/")):
                assert (ROOT / word).exists(), f"{name}'s example names a missing {word}"


def test_main_help_lists_commands_then_ci_steps_under_their_headings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {cli.USAGE}\n")
    users, _, ci = out.partition(f"\n{cli.CI_HEADING}:\n")
    assert "\ncommands:\n" in users and ci
    listed_users = {line.split()[0] for line in users.split("\ncommands:\n")[1].splitlines()
                    if line.startswith("  ") and not line.startswith("   ")}  # fmt: skip
    listed_ci = {line.split()[0] for line in ci.split("\n\n")[0].splitlines()
                 if line.startswith("  ") and not line.startswith("   ")}  # fmt: skip
    assert listed_ci == set(cli.CI_STEPS) & set(NAMES)
    assert listed_users == set(NAMES) - cli.CI_STEPS
    assert {"build", "publish", "cache", "gpu-check"} <= listed_users


def test_ci_steps_are_all_commands() -> None:
    assert cli.CI_STEPS <= set(cli.COMMANDS)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["biuld"], "ERROR: unknown command 'biuld'; did you mean 'build'?\n"),
        (["-v", "pubish", "x.whl"], "ERROR: unknown command 'pubish'; did you mean 'publish'?\n"),
        (
            ["frobnicate"],
            "ERROR: unknown command 'frobnicate'; `wheelfactory --help` lists the commands\n",
        ),
    ],
)
def test_a_mistyped_command_is_one_line_and_exit_2(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", line)
