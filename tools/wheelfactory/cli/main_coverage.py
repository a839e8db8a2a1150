"""wheelfactory coverage: which planned user environments an index serves, and which not."""

from __future__ import annotations

import argparse
import sys

from wheelfactory.cli import _matrix_args

HELP = "check that every planned (torch, CUDA, Python, OS) environment installs a wheel from the index (exit 11 on a gap)"
EXAMPLE = "wheelfactory coverage --index site/ --torch 2.14"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    _matrix_args.add_recipe_args(parser)
    _matrix_args.add_selection_args(parser)
    parser.add_argument("--index", metavar="DIR|URL", required=True, help="the index to check")
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    parser.add_argument(
        "--output", metavar="FILE", help="also append the report here (e.g. $GITHUB_STEP_SUMMARY)"
    )


def execute(args: argparse.Namespace) -> int:
    from wheelfactory import coverage as cov
    from wheelfactory import plan as planning
    from wheelfactory import releases
    from wheelfactory.errors import CoverageError
    from wheelfactory.manifest import check_index_exists

    check_index_exists(args.index)
    table = releases.load(args.table)
    table.check_selection(args.torch, _matrix_args.selection(args).torch)
    recipes = _matrix_args.load_recipes(args)
    result = planning.plan(recipes, table, select=_matrix_args.selection(args))
    report = cov.coverage(result.cells, _matrix_args.load_published(args.index), table)
    text = cov.to_json_text(report) if args.format == "json" else cov.to_markdown(report)
    sys.stdout.write(text)
    if args.output:
        with open(args.output, "a", encoding="utf-8") as f:
            f.write(text)
    if report.unpublished:
        gaps = report.unpublished
        held = f", {len(report.held)} of them only held for a GPU check" if report.held else ""
        msg = (
            f"{len(gaps)} of {len(report.rows)} planned environments are missing from"
            f" {args.index}{held} (torch {', '.join(report.gap_torches())}; first: {gaps[0].gap});"
            " every gap is listed in the report: build what is missing (wheelfactory plan --missing"
            f" --index {args.index}), cover new torches (wheelfactory cover) or GPU-check held wheels"
        )
        raise CoverageError(msg)
    return 0
