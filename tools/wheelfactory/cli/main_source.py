"""wheelfactory source: put a recipe's pinned sources in place (the tree cibuildwheel builds)."""

from __future__ import annotations

import argparse

HELP = "fetch and check a recipe's pinned sources into a folder; print the tree to build"
EXAMPLE = "wheelfactory source recipes/sageattention.toml --out build/work"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file (recipes/<name>.toml)")
    parser.add_argument("--out", required=True, help="work folder (the tree goes under it)")
    parser.add_argument("--local", default="", metavar="DIR",
                        help="build this local tree instead of the recipe's [source] (empty: use [source])")
    parser.add_argument("--github-output", metavar="FILE", help="append tree=<path> to FILE ($GITHUB_OUTPUT)")


def execute(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wheelfactory.cache import cache_dir
    from wheelfactory.recipe import load_recipe
    from wheelfactory.source import prepare_source

    recipe = load_recipe(args.recipe)
    prepared = prepare_source(
        recipe, Path(args.out), local=Path(args.local) if args.local else None, cache=cache_dir() / "sources"
    )
    if args.github_output:
        with open(args.github_output, "a", encoding="utf-8") as f:
            f.write(f"tree={prepared.tree}\n")
    print(prepared.tree)
    return 0
