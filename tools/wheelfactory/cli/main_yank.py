"""wheelfactory yank: mark a published wheel as yanked (PEP 592)."""

from __future__ import annotations

import argparse

HELP = "yank a published wheel: installers skip it unless a request pins its version with =="
EXAMPLE = (
    "wheelfactory yank sageattention-2.2.0+cu128torch2.8-cp312-cp312-win_amd64.whl"
    ' --index site/ --reason "black output on sm_120 (issue 42)"'
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the wheel's filename (as published)")
    parser.add_argument("--index", required=True, metavar="DIR", help="the index root folder")
    parser.add_argument("--reason", required=True, help="why, shown to users by pip and uv")


def execute(args: argparse.Namespace) -> int:
    from wheelfactory.publish import set_yanked

    set_yanked(args.index, args.file, yanked=True, reason=args.reason)
    print(f"yanked {args.file}")
    return 0
