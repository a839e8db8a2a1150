"""``wheelfactory nvcc-filter``: write the nvcc wrapper for [build] source-targets (CI)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write the nvcc wrapper that limits -gencode per source file (CI before-build)"
EXAMPLE = "wheelfactory nvcc-filter --out /tmp/wheelfactory-nvcc-filter"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder for the wrapper"
    )


def execute(args: argparse.Namespace) -> int:
    from wheelfactory.build import write_nvcc_filter

    out = args.out.resolve()
    wrapper = write_nvcc_filter(out.parent, sys.executable, name=out.name)
    print(f"wrote {wrapper}; active while PYTORCH_NVCC names it")
    return 0
