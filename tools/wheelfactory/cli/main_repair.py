"""wheelfactory repair: cibuildwheel's repair step (the finish stage of `wheelfactory build`)."""

from __future__ import annotations

import argparse

HELP = "finish a freshly built wheel: import guard, repair without vendoring torch/CUDA, label (+cuXYZtorchA.B), build record"
EXAMPLE = (
    "wheelfactory repair build/sageattention-2.2.0-cp311-cp311-linux_x86_64.whl"
    " --out wheelhouse/ --recipe recipes/sageattention.toml --torch 2.9.1 --cuda 13.0"
    " --arch 9.0a --source-work build/work"
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("wheel", help="the wheel the build produced")
    parser.add_argument("--out", required=True, help="folder for the repaired, labelled wheel")
    parser.add_argument("--recipe", required=True, help="the recipe it was built from")
    parser.add_argument("--torch", required=True, help="torch it was built against, e.g. 2.14.1")
    parser.add_argument("--cuda", required=True, help="CUDA it was built with, e.g. 13.0")
    parser.add_argument("--arch", required=True, metavar="LIST", help="GPU targets it was built for, e.g. 9.0a,12.0a")
    parser.add_argument("--source-work", metavar="DIR", help="the work folder of `wheelfactory source` (its pins go in the build record)")
    parser.add_argument("--cell", help="plan job id (default: $WHEELFACTORY_CELL)")
    parser.add_argument("--build-python", metavar="PYTHON",
                        help="the interpreter that built the wheel, for the build record (default: this one; CI: `python`, the build's)")


def execute(args: argparse.Namespace) -> int:
    import os
    import sys
    import tempfile
    from pathlib import Path

    from wheelfactory import arch
    from wheelfactory.ci import cell
    from wheelfactory.recipe import load_recipe

    recipe_path = Path(args.recipe)
    recipe = load_recipe(recipe_path)
    source_work = Path(args.source_work) if args.source_work else None
    with tempfile.TemporaryDirectory(prefix="wf-repair-") as work:
        out = cell.repair_step(
            Path(args.wheel), Path(args.out), recipe=recipe,
            torch=args.torch, cuda=args.cuda, targets=arch.parse_targets(args.arch), work=Path(work),
            source_work=source_work if source_work and source_work.is_dir() else None,
            cell=args.cell or os.environ.get("WHEELFACTORY_CELL"),
            build_python=args.build_python or sys.executable,
        )  # fmt: skip
    print(out)
    return 0

