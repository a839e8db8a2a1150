"""wheelfactory cibw-env: print the CIBW_* settings of one planned job for $GITHUB_ENV."""

from __future__ import annotations

import argparse

HELP = "print the cibuildwheel settings (CIBW_*) of one planned CI job, as $GITHUB_ENV lines"
EXAMPLE = (
    """wheelfactory cibw-env --job "$(jq -c '.matrices[0].include[0]' plan.json)" --format json"""
    "  # plan.json: wheelfactory plan --format github > plan.json"
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job", required=True, help="one job of `plan --format github` (JSON), e.g. ${{ toJSON(matrix) }}")
    parser.add_argument(
        "--recipe-root", default=".", help="folder the job's recipe path is relative to (default: the current one)"
    )
    parser.add_argument("--format", choices=("github-env", "json"), default="github-env")


def execute(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from wheelfactory.ci import cibw
    from wheelfactory.recipe import load_recipe

    job = cibw.parse_job(args.job)
    recipe = load_recipe(Path(args.recipe_root) / job.recipe)
    env = cibw.cibw_env(job, recipe=recipe)
    if args.format == "json":
        print(json.dumps(env, indent=2, sort_keys=True))
    else:
        print(cibw.render_github_env(env), end="")
    return 0
