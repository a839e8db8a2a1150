"""``wheelfactory gpu-shim``: write the no-GPU shim (a sitecustomize.py) for CI builds."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write the no-GPU shim for setup.py files that ask torch.cuda for the GPU (CI before-build)"
EXAMPLE = "wheelfactory gpu-shim --out /tmp/wheelfactory-gpu-shim"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder to put on PYTHONPATH"
    )


def execute(args: argparse.Namespace) -> int:
    from wheelfactory.build import write_gpu_shim
    from wheelfactory.buildvars import GPU_SHIM_ENV

    out = args.out.resolve()
    shim = write_gpu_shim(out.parent, name=out.name)
    print(f"wrote {shim / 'sitecustomize.py'}; active while {GPU_SHIM_ENV} names a capability")
    return 0
