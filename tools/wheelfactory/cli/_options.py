"""Options more than one command takes, read and checked in one place."""

from __future__ import annotations

import argparse
import os

from wheelfactory import naming


def add_index_url(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--index-url", metavar="URL", help=f"{help} (default: ${naming.INDEX_URL_ENV})")


def index_url(args: argparse.Namespace) -> str | None:
    """--index-url, else $WHEELFACTORY_INDEX_URL, checked as a URL; None when neither is
    set (an empty variable, as CI has before the first publish, counts as unset)."""
    if args.index_url:
        return naming.index_url(args.index_url, given_as="--index-url")
    value = os.environ.get(naming.INDEX_URL_ENV)
    return naming.index_url(value, given_as=f"${naming.INDEX_URL_ENV}") if value else None
