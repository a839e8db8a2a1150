"""wheelfactory coverage: which planned wheels an index has, and which are missing."""

from __future__ import annotations

import argparse
import sys

from wheelfactory.cli import _matrix_args

HELP = "compare the planned wheels with an index's manifest (exit 11 when any is missing)"
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
    report = cov.coverage(result.cells, _matrix_args.load_published(args.index))
    text = cov.to_json_text(report) if args.format == "json" else cov.to_markdown(report)
    sys.stdout.write(text)
    if args.output:
        with open(args.output, "a", encoding="utf-8") as f:
            f.write(text)
    if report.missing:
        first = report.missing[0].cell.id
        held = f", and {len(report.held)} held for a GPU check" if report.held else ""
        msg = (
            f"{len(report.missing)} of {len(report.rows)} required wheels are missing from"
            f" {args.index} (first: {first}){held}; build them: wheelfactory plan --missing --index {args.index}"
        )
        raise CoverageError(msg)
    if report.held:
        row = report.held[0]
        msg = (
            f"{len(report.held)} of {len(report.rows)} required wheels are held out of {args.index}"
            f" (first: {row.filename}: {' '.join(str(row.held).split())[:120]}); run their GPU"
            " check (wheelfactory gpu-check), or yank them and publish a fixed build"
        )
        raise CoverageError(msg)
    return 0
