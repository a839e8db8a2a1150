"""wheelfactory cover: list the published stable-ABI wheels in the view of every torch they load on."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "check the index's stable-ABI wheels against torch releases and list them in the views they load in"
EXAMPLE = "wheelfactory cover --index site/"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, type=Path, metavar="DIR", help="the index root folder")
    parser.add_argument(
        "--torch", action="append", default=None, metavar="VERSION",
        help="a torch release to cover, e.g. 2.15.0 (repeatable; default: every torch minor of the"
        " release table at or above each wheel's floor, not decided for it yet)",
    )  # fmt: skip
    parser.add_argument(
        "--table", metavar="PATH", help="torch release table (default: the packaged resources/torch-releases.toml)"
    )
    parser.add_argument("--cuda", action="append", default=None, metavar="X.Y",
                        help="only wheels for this CUDA (repeatable; default: every CUDA of the index's stable wheels)")
    parser.add_argument("--python", default=None, metavar="3.11|PATH", help="Python for the import check (default: this one)")
    parser.add_argument(
        "--wheels", type=Path, metavar="DIR",
        help="local copies of published wheels (the publish job's dist/), used instead of their URLs",
    )  # fmt: skip
    parser.add_argument(
        "--github-output", metavar="FILE",
        help="append changed=true|false, covered=N and gaps=N (for $GITHUB_OUTPUT: deploy only on a change)",
    )  # fmt: skip
    parser.add_argument(
        "--torch-index-url", metavar="URL", default=None,
        help="index serving that torch (default: PyTorch's for each CUDA; '' = pip's configuration)",
    )  # fmt: skip


def execute(args: argparse.Namespace) -> int:
    import sys

    from wheelfactory import buildenv, cache, cover, naming, releases

    for torch in args.torch or ():
        naming.torch_minor(torch)  # a version, or one line saying what to write
    table = releases.load(args.table)
    python = buildenv.resolve_python(args.python or f"{sys.version_info[0]}.{sys.version_info[1]}")
    results = cover.cover(
        args.index, args.torch, table=table, python=python, torch_index_url=args.torch_index_url,
        cache=cache.cache_dir(), cudas=args.cuda, wheels=args.wheels,
    )  # fmt: skip
    for r in results:
        # one line per verdict; a gap is recorded in the manifest and left for `coverage` to
        # report: the wheel stays listed wherever it loads, so publishing goes on
        verdict = "covered" if r.ok else "NOT covered"
        print(f"{verdict} {r.filename}: {r.detail}")
    if not results:
        print("every stable-ABI wheel is decided for every torch it could serve: nothing to check")
    if args.github_output:
        covered = sum(r.ok for r in results)
        with open(args.github_output, "a", encoding="utf-8") as f:
            f.write(f"changed={'true' if results else 'false'}\ncovered={covered}\ngaps={len(results) - covered}\n")
    return 0
