"""The ``wheelfactory`` command: one thin module per subcommand, one error handler.

Each ``main_<cmd>.py`` has ``HELP``, ``configure_parser(parser)`` and
``execute(args) -> int``, importing anything heavy inside ``execute``. Adding a
subcommand is adding a module and one line to COMMANDS.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from wheelfactory import __version__, _log
from wheelfactory.errors import WheelfactoryError

# subcommand -> module under wheelfactory.cli
COMMANDS: dict[str, str] = {
    "publish": "main_publish",
    "yank": "main_yank",
    "unyank": "main_unyank",
    "serve": "main_serve",
    "upload": "main_upload",
    "build": "main_build",
    "verify": "main_verify",
    "plan": "main_plan",
    "coverage": "main_coverage",
    "watch": "main_watch",
    "which": "main_which",
    "cibw-env": "main_cibw_env",
    "ci-matrix": "main_ci_matrix",
    "summary": "main_summary",
    "download": "main_download",
    "release-check": "main_release_check",
    "smoke": "main_smoke",
    "provenance": "main_provenance",
    "source": "main_source",
    "repair": "main_repair",
    "gpu-shim": "main_gpu_shim",
    "nvcc-filter": "main_nvcc_filter",
    "gpu-check": "main_gpu_check",
    "cover": "main_cover",
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wheelfactory",
        description="Build, check and publish prebuilt CUDA wheels of PyTorch extensions.",
    )
    parser.add_argument("--version", action="version", version=f"wheelfactory {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument(
        "--debug-traceback", action="store_true", help="show a traceback for wheelfactory errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"wheelfactory.cli.{module_name}")
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure_parser(cmd)
        cmd.set_defaults(_execute=module.execute)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    _log.configure(args.verbose)
    try:
        return int(args._execute(args) or 0)
    except WheelfactoryError as e:
        if args.debug_traceback:
            traceback.print_exc()
        print(f"ERROR: {e}", file=sys.stderr)
        if e.tip:
            print(f"TIP: {e.tip}", file=sys.stderr)
        return e.return_code
    except OSError as e:
        # The machine, not the input: a full disk, a path that vanished, no permission.
        # Index writes are journaled, so the next publish/yank finishes or undoes this one.
        if args.debug_traceback:
            traceback.print_exc()
        where = f": {e.filename}" if e.filename else ""
        print(f"ERROR: {e.strerror or e}{where}; free disk space or fix the path or its"
              " permissions, then run the command again", file=sys.stderr)  # fmt: skip
        return 74  # EX_IOERR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
