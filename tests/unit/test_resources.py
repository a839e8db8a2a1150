"""resources.py names every data file under resources/, once, and only files that exist."""

from __future__ import annotations

from pathlib import Path

from wheelfactory import resources


def _named() -> dict[str, Path]:
    return {
        name: value
        for name, value in vars(resources).items()
        if name.isupper() and isinstance(value, Path) and name != "RESOURCES"
    }


def test_every_named_resource_exists() -> None:
    missing = {name: str(p) for name, p in _named().items() if not p.exists()}
    assert missing == {}


def test_every_shipped_data_file_is_named_once() -> None:
    named = list(_named().values())
    assert len(named) == len(set(named))
    covered = {p for p in named if p.is_file()}
    folders = [p for p in named if p.is_dir()]
    shipped = {
        p for p in resources.RESOURCES.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }  # fmt: skip
    unnamed = sorted(
        str(p.relative_to(resources.RESOURCES))
        for p in shipped - covered
        if not any(folder in p.parents for folder in folders)
    )
    assert unnamed == []
