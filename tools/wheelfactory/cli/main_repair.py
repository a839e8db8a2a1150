"""wheelfactory repair: cibuildwheel's repair step (repair, then label like `build` does)."""

from __future__ import annotations

import argparse

HELP = "repair a freshly built wheel without vendoring torch/CUDA, then label it (+cuXYZtorchA.B, build record)"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("wheel", help="the wheel the build produced")
    parser.add_argument("--out", required=True, help="folder for the repaired, labelled wheel")
    parser.add_argument("--recipe", help="the recipe it was built from (recorded in the build record)")
    parser.add_argument("--torch", required=True, help="torch it was built against, e.g. 2.14.1")
    parser.add_argument("--cuda", required=True, help="CUDA it was built with, e.g. 13.0")
    parser.add_argument("--arch", required=True, metavar="LIST", help="GPU targets it was built for, e.g. 9.0a,12.0a")
    parser.add_argument("--cell", help="plan job id (default: $WHEELFACTORY_CELL)")


def execute(args: argparse.Namespace) -> int:
    import os
    import tempfile
    from pathlib import Path

    from wheelfactory import arch, ci
    from wheelfactory.recipe import load_recipe

    recipe = load_recipe(args.recipe) if args.recipe else None
    targets = arch.parse_targets([t for t in args.arch.replace(";", ",").split(",") if t])
    with tempfile.TemporaryDirectory(prefix="wf-repair-") as work:
        out = ci.repair_and_label(
            Path(args.wheel), Path(args.out), recipe=recipe, torch=args.torch, cuda=args.cuda, targets=targets,
            cell=args.cell or os.environ.get("WHEELFACTORY_CELL"), work=Path(work),
        )  # fmt: skip
    print(out)
    return 0
