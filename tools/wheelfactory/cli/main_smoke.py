"""wheelfactory smoke: import torch, then the wheel's extension modules (CPU only)."""

from __future__ import annotations

import argparse

HELP = "import torch and then each extension module of an installed wheel (the CI test step)"
EXAMPLE = (
    "wheelfactory smoke dist/sageattention-2.2.0+cu130torch2.9-cp311-cp311-*.whl"
    "  # after pip install-ing it and its torch"
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("wheel", help="the wheel that is installed in this interpreter")
    parser.add_argument("--import", dest="modules", action="append", default=[], metavar="MODULE",
                        help="module to import (repeatable); default: every extension module in the wheel")


def execute(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wheelfactory.ci import cell

    names = cell.smoke(Path(args.wheel), modules=args.modules)
    print(f"imported {len(names)} module(s): {', '.join(names)}")
    return 0
