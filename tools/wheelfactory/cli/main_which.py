"""``wheelfactory which``: the install command that fits this machine, or why none does."""

from __future__ import annotations

import argparse

HELP = "print the pip/uv command that installs the right wheel for this machine (or another)"
EXAMPLE = """
wheelfactory which sageattention --index-url http://127.0.0.1:8000/
wheelfactory which --os windows --gpu "RTX 5090" --torch 2.9.1+cu128 --python 3.12 --layout portable
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    # which.py is standard-library only and cheap to import; it owns its own flags so the
    # served copy (python which.py) and this subcommand take the same ones.
    from wheelfactory import which

    which.configure_parser(parser)


def execute(args: argparse.Namespace) -> int:
    from wheelfactory import which
    from wheelfactory.errors import ConfigError

    try:
        return which.run(args)
    except which.SetupError as e:  # which.py cannot import errors.py: one line, as ConfigError
        raise ConfigError(str(e)) from e
