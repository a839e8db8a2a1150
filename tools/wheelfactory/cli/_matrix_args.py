"""Flags and input loading shared by `plan`, `coverage` and `watch` (recipes, table, selection)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from wheelfactory import platforms

if TYPE_CHECKING:
    from wheelfactory.manifest import Manifest
    from wheelfactory.plan import Selection
    from wheelfactory.recipe import Recipe


def add_recipe_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "recipes",
        nargs="*",
        metavar="RECIPE",
        help="recipe files (default: every recipes/*.toml of the repository)",
    )
    parser.add_argument(
        "--table",
        metavar="PATH",
        help="torch release table (default: the packaged resources/torch-releases.toml)",
    )


def add_selection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--torch", metavar="SPEC", default="", help='torch versions: ">=2.8" or "2.9"'
    )
    parser.add_argument(
        "--cuda", metavar="SPEC", default="", help='CUDA versions: ">=12.8" or "13.0"'
    )
    parser.add_argument(
        "--python", metavar="SPEC", default="", help='CPython versions: ">=3.11" or "3.12"'
    )
    parser.add_argument(
        "--os",
        dest="oses",
        action="append",
        choices=platforms.oses(),
        default=[],
        help="only this OS (repeatable)",
    )


def load_recipes(args: argparse.Namespace) -> list[Recipe]:
    from wheelfactory.errors import ConfigError
    from wheelfactory.recipe import RECIPES_ENV, load_recipe, recipe_dirs

    paths = [Path(p) for p in args.recipes]
    if not paths:
        looked = recipe_dirs()
        paths = next((found for d in looked if (found := sorted(d.glob("*.toml")))), [])
        if not paths:
            where = " or ".join(str(d) for d in looked)
            msg = f"no recipes in {where}: pass recipe files, or set {RECIPES_ENV}=DIR"
            raise ConfigError(msg)
    return [load_recipe(p) for p in paths]


def _spec(text: str, flag: str, *, wildcard_minor: bool = False) -> object:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    from wheelfactory.errors import ConfigError

    text = text.strip()
    if text and text[0].isdigit():
        # A bare version: "2.9" means every 2.9.x; "12.8" means exactly 12.8.
        text = f"=={text}.*" if wildcard_minor and text.count(".") == 1 else f"=={text}"
    try:
        return SpecifierSet(text)
    except InvalidSpecifier as e:
        raise ConfigError(
            f"{flag} {text!r} is not a version range; write e.g. {flag} '>=2.8'"
        ) from e


def selection(args: argparse.Namespace) -> Selection:
    from wheelfactory.plan import Selection

    return Selection(
        torch=_spec(args.torch, "--torch", wildcard_minor=True),  # type: ignore[arg-type]
        cuda=_spec(args.cuda, "--cuda"),  # type: ignore[arg-type]
        python=_spec(args.python, "--python"),  # type: ignore[arg-type]
        oses=tuple(args.oses),
    )


def load_published(index: str) -> Manifest:
    """The manifest of the index at ``index`` (a folder or the URL of its root)."""
    from wheelfactory.manifest import load_manifest

    return load_manifest(index)
