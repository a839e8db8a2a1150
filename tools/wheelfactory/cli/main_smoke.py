"""wheelfactory smoke: import torch, then the wheel's extension modules (CPU only, no driver
needed), in another Python: the one the wheel is installed in."""

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
    parser.add_argument("--python", default="python", metavar="PYTHON",
                        help="the interpreter the wheel is installed in (default: `python` on PATH, cibuildwheel's test venv)")


def execute(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from wheelfactory.ci import cell

    with tempfile.TemporaryDirectory(prefix="wf-smoke-") as work:
        report = cell.smoke(Path(args.wheel), modules=args.modules, python=args.python, work=Path(work))
    print(f"imported {len(report.imported)} module(s): {', '.join(report.imported)}")
    for module, why in report.not_imported.items():
        print(f"not imported: {module}: {why}")
    return 0
