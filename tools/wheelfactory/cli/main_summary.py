"""wheelfactory summary: a Markdown table of built wheels for the Actions job summary."""

from __future__ import annotations

import argparse

HELP = "print a Markdown table (cell, wheel, size, time, targets) of wheels, from their build records"
EXAMPLE = 'wheelfactory summary dist/ --title "Wheels built" >> "$GITHUB_STEP_SUMMARY"'


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="WHEEL_OR_DIR", help="wheels, or folders searched for *.whl")
    parser.add_argument("--title", default="Wheels built")


def execute(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wheelfactory.ci import summary

    wheels = summary.find_wheels(Path(p) for p in args.paths)
    print(summary.render_summary(summary.summary_rows(wheels), title=args.title), end="")
    return 0
