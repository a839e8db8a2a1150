"""Flags and input loading shared by `plan`, `coverage` and `watch` (recipes, table, selection)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from wheelfactory import platforms

if TYPE_CHECKING:
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
    from wheelfactory.recipe import load_recipe, repo_root

    paths = [Path(p) for p in args.recipes]
    if not paths:
        recipes_dir = repo_root() / "recipes"
        paths = sorted(recipes_dir.glob("*.toml"))
        if not paths:
            msg = f"no recipes found in {recipes_dir}; pass recipe files or run from the repository"
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


def load_published(index: str):  # noqa: ANN201 - a wheelfactory.manifest.Manifest
    """The index's manifest (wheelfactory.manifest); the plain reader below only stands in
    while that module is absent from a checkout."""
    try:
        from wheelfactory.manifest import load_manifest
    except ImportError:  # pragma: no cover - manifest.py is written by the publish work
        return _read_manifest_json(index)
    return load_manifest(index)


def _read_manifest_json(index: str):  # noqa: ANN202
    import json
    import urllib.request
    from types import SimpleNamespace

    from wheelfactory.errors import NetworkError, PublishError

    try:
        if index.startswith(("http://", "https://")):
            with urllib.request.urlopen(index.rstrip("/") + "/manifest.json", timeout=30) as r:  # noqa: S310
                data = json.loads(r.read())
        else:
            path = Path(index) / "manifest.json"
            data = json.loads(path.read_text()) if path.exists() else {"version": 1, "files": []}
    except OSError as e:
        raise NetworkError(f"cannot read the manifest of {index} ({e}); check --index") from e
    if not isinstance(data, dict) or data.get("version") != 1:
        raise PublishError(f"{index}: manifest.json is not a version 1 manifest; check --index")
    files = tuple(
        SimpleNamespace(
            filename=f["filename"],
            yanked=bool(f.get("yanked", False)),
            size=f.get("size"),
            upload_time=f.get("upload_time"),
        )
        for f in data.get("files", [])
    )
    return SimpleNamespace(files=files)
