"""The ``wheelfactory`` command: one thin module per subcommand, one error handler.

Each ``main_<cmd>.py`` has ``HELP``, ``EXAMPLE`` (a working command line, shown by its
``--help``), ``configure_parser(parser)`` and ``execute(args) -> int``, importing anything
heavy inside ``execute``. Adding a subcommand is adding a module and one line to COMMANDS
(and its name to CI_STEPS when only the workflows run it).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import shutil
import sys
import textwrap
import traceback
from collections.abc import Sequence
from typing import Any

from wheelfactory import __version__, _log
from wheelfactory.errors import WheelfactoryError

# subcommand -> module under wheelfactory.cli, in the order --help lists them
COMMANDS: dict[str, str] = {
    "build": "main_build",
    "verify": "main_verify",
    "publish": "main_publish",
    "yank": "main_yank",
    "unyank": "main_unyank",
    "serve": "main_serve",
    "upload": "main_upload",
    "download": "main_download",
    "plan": "main_plan",
    "coverage": "main_coverage",
    "watch": "main_watch",
    "cover": "main_cover",
    "gpu-check": "main_gpu_check",
    "which": "main_which",
    "cache": "main_cache",
    "cibw-env": "main_cibw_env",
    "ci-matrix": "main_ci_matrix",
    "source": "main_source",
    "repair": "main_repair",
    "smoke": "main_smoke",
    "gpu-shim": "main_gpu_shim",
    "nvcc-filter": "main_nvcc_filter",
    "summary": "main_summary",
    "release-check": "main_release_check",
    "provenance": "main_provenance",
}
# Steps of .github/workflows and of the cibuildwheel hooks they set up: listed apart in
# --help, so that a person looking for a command sees the dozen meant for people first.
CI_STEPS: frozenset[str] = frozenset({
    "cibw-env", "ci-matrix", "source", "repair", "smoke", "gpu-shim", "nvcc-filter",
    "summary", "release-check", "provenance",
})  # fmt: skip
CI_HEADING = "CI steps (run by .github/workflows; rarely by hand)"
USAGE = "wheelfactory [-h] [--version] [-v] [--debug-traceback] COMMAND ..."


def make_parser() -> argparse.ArgumentParser:
    modules = {
        name: importlib.import_module(f"wheelfactory.cli.{module_name}")
        for name, module_name in COMMANDS.items()
    }
    parser = argparse.ArgumentParser(
        prog="wheelfactory",
        usage=USAGE,
        description=_overview(modules),
        epilog="`wheelfactory COMMAND --help` shows a command's options and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wheelfactory {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument(
        "--debug-traceback", action="store_true", help="show a traceback for wheelfactory errors"
    )
    # The overview above lists the commands in two groups; argparse's own list is one.
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, prog="wheelfactory",
        help=argparse.SUPPRESS,
    )  # fmt: skip
    for name, module in modules.items():
        cmd = sub.add_parser(
            name,
            description=_wrap(module.HELP, width=_width()),
            epilog=_example_epilog(getattr(module, "EXAMPLE", "")),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure_parser(cmd)
        cmd.set_defaults(_execute=module.execute)
    return parser


def _width() -> int:
    # argparse wraps to the terminal too; past 100 columns lines get hard to read.
    return max(60, min(100, shutil.get_terminal_size().columns - 2))


def _wrap(text: str, *, width: int, indent: str = "") -> str:
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent)


def _overview(modules: dict[str, Any]) -> str:
    """The description of `wheelfactory --help`: the commands, then the CI steps."""
    users = [n for n in modules if n not in CI_STEPS]
    ci = [n for n in modules if n in CI_STEPS]
    column = max((len(n) for n in modules), default=0) + 4
    parts = ["Build, check and publish prebuilt CUDA wheels of PyTorch extensions."]
    for heading, names in (("commands:", users), (f"{CI_HEADING}:", ci)):
        if names:
            rows = [_command_row(n, modules[n].HELP, column) for n in names]
            parts.append("\n".join([heading, *rows]))
    return "\n\n".join(parts)


def _command_row(name: str, help_text: str, column: int) -> str:
    """One line of the overview ("  build    build, repair, ..."), its help wrapped under
    its own column."""
    text = _wrap(help_text, width=_width(), indent=" " * column)
    return f"  {name}".ljust(column) + text[column:]


def _example_epilog(example: str) -> str | None:
    lines = [line for line in example.strip().splitlines() if line.strip()]
    if not lines:
        return None
    heading = "example:" if len(lines) == 1 else "examples:"
    return "\n".join([heading, *(f"  {line}" for line in lines)])


def _unknown_command(argv: Sequence[str]) -> str | None:
    """One line for a mistyped command, else None.

    The command is the first word that is not an option: no top-level option takes a value.
    """
    word = next((a for a in argv if not a.startswith("-")), None)
    if word is None or word in COMMANDS:
        return None
    near = difflib.get_close_matches(word, COMMANDS, n=1)
    if near:
        return f"unknown command '{word}'; did you mean '{near[0]}'?"
    return f"unknown command '{word}'; `wheelfactory --help` lists the commands"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    unknown = _unknown_command(argv)
    if unknown is not None:
        print(f"ERROR: {unknown}", file=sys.stderr)
        return 2  # argparse's code for a command-line mistake
    parser = make_parser()
    args = parser.parse_args(argv)
    _log.configure(args.verbose)
    try:
        return int(args._execute(args) or 0)
    except WheelfactoryError as e:
        if args.debug_traceback:
            traceback.print_exc()
        print(f"ERROR: {e}", file=sys.stderr)
        if e.tip:
            print(f"TIP: {e.tip}", file=sys.stderr)
        return e.return_code
    except OSError as e:
        # The machine, not the input: a full disk, a path that vanished, no permission.
        # Index writes are journaled, so the next publish/yank finishes or undoes this one.
        if args.debug_traceback:
            traceback.print_exc()
        where = f": {e.filename}" if e.filename else ""
        print(f"ERROR: {e.strerror or e}{where}; free disk space or fix the path or its"
              " permissions, then run the command again", file=sys.stderr)  # fmt: skip
        return 74  # EX_IOERR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
