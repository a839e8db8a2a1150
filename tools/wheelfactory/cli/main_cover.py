"""wheelfactory cover: list the published stable-ABI wheels in a new torch's views, no rebuild."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "import-check the index's stable-ABI wheels against a torch release and list them in its views"
EXAMPLE = "wheelfactory cover --index site/ --torch 2.15.0"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, type=Path, metavar="DIR", help="the index root folder")
    parser.add_argument("--torch", required=True, metavar="VERSION", help="the torch release to cover, e.g. 2.15.0")
    parser.add_argument("--cuda", action="append", default=None, metavar="X.Y",
                        help="only wheels for this CUDA (repeatable; default: every CUDA of the index's stable wheels)")
    parser.add_argument("--python", default=None, metavar="3.11|PATH", help="Python for the import check (default: this one)")
    parser.add_argument(
        "--torch-index-url", metavar="URL", default=None,
        help="index serving that torch (default: PyTorch's for each CUDA; '' = pip's configuration)",
    )  # fmt: skip


def execute(args: argparse.Namespace) -> int:
    import sys

    from wheelfactory import buildenv, cache, cover, naming
    from wheelfactory.errors import VerifyError

    naming.torch_minor(args.torch)  # a version, or one line saying what to write
    python = buildenv.resolve_python(args.python or f"{sys.version_info[0]}.{sys.version_info[1]}")
    results = cover.cover(
        args.index, args.torch, python=python, torch_index_url=args.torch_index_url,
        cache=cache.cache_dir(), cudas=args.cuda,
    )  # fmt: skip
    for r in results:
        print(f"{'covered' if r.ok else 'NOT covered'} {r.filename}: {r.detail}")
    if not results:
        print(f"no stable-ABI wheel to add to torch {args.torch}'s views")
    failed = [r for r in results if not r.ok]
    if failed:
        raise VerifyError(f"{failed[0].filename}: {failed[0].detail} ({len(failed)} of {len(results)} not covered)")
    return 0
