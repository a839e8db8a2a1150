"""wheelfactory plan: which wheels must exist (and, with --missing, which are not built yet)."""

from __future__ import annotations

import argparse
import sys

from wheelfactory.cli import _matrix_args

HELP = "list the wheels (cells) the recipes need over the torch release table"
EXAMPLE = "wheelfactory plan recipes/sageattention.toml --torch 2.9 --cuda 13.0 --explain"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    _matrix_args.add_recipe_args(parser)
    _matrix_args.add_selection_args(parser)
    parser.add_argument(
        "--missing", action="store_true", help="only cells not yet published in --index"
    )
    parser.add_argument(
        "--index", metavar="DIR|URL", help="the index whose manifest --missing reads"
    )
    parser.add_argument(
        "--explain", action="store_true", help="also list every excluded combination and why"
    )
    parser.add_argument(
        "--format", choices=("table", "json", "github"), default="table", help="output format"
    )
    parser.add_argument(
        "--github-output",
        metavar="FILE",
        help="append matrices=<json> and count=<n> lines (for $GITHUB_OUTPUT)",
    )
    parser.add_argument(
        "--max-jobs", type=int, default=256, help="jobs per GitHub matrix (GitHub allows 256)"
    )


def execute(args: argparse.Namespace) -> int:
    import json

    from wheelfactory import plan as planning
    from wheelfactory import releases
    from wheelfactory.errors import ConfigError
    from wheelfactory.manifest import check_index_exists
    from wheelfactory.recipe import repo_root

    if args.missing and not args.index:
        raise ConfigError("--missing needs --index DIR|URL; name the index to compare against")
    if args.missing:
        check_index_exists(args.index)
    if not 1 <= args.max_jobs <= planning.GITHUB_MAX_JOBS:
        raise ConfigError(
            f"--max-jobs must be 1..{planning.GITHUB_MAX_JOBS}; GitHub refuses larger matrices"
        )
    recipes = _matrix_args.load_recipes(args)
    table = releases.load(args.table)
    table.check_selection(args.torch, _matrix_args.selection(args).torch)
    published = _matrix_args.load_published(args.index) if args.missing else None
    result = planning.plan(
        recipes,
        table,
        published,
        select=_matrix_args.selection(args),
        root=repo_root(),
    )

    matrices = result.github_matrices(args.max_jobs)
    if args.format == "json":
        sys.stdout.write(planning.to_json_text(result))
    elif args.format == "github":
        sys.stdout.write(json.dumps(matrices, separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(planning.table_text(result))
    if args.explain:
        # Keep stdout machine-readable for json/github.
        out = sys.stdout if args.format == "table" else sys.stderr
        out.write(f"\nexcluded ({len(result.excluded)}):\n")
        for e in result.excluded:
            out.write(f"  {e}\n")
        for cell in result.cells:
            for note in cell.notes:
                if note.startswith("dropped "):
                    out.write(f"  {cell.id}: {note}\n")
    if args.github_output:
        count = sum(len(m["include"]) for m in matrices["matrices"])
        with open(args.github_output, "a", encoding="utf-8") as f:
            f.write(f"matrices={json.dumps(matrices, separators=(',', ':'))}\n")
            f.write(f"count={count}\n")
    return 0
