"""wheelfactory unyank: undo a yank."""

from __future__ import annotations

import argparse

HELP = "unyank a published wheel: installers may pick it again"
EXAMPLE = (
    "wheelfactory unyank sageattention-2.2.0+cu128torch2.8-cp312-cp312-win_amd64.whl --index site/"
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the wheel's filename (as published)")
    parser.add_argument("--index", required=True, metavar="DIR", help="the index root folder")


def execute(args: argparse.Namespace) -> int:
    from wheelfactory.publish import set_yanked

    set_yanked(args.index, args.file, yanked=False)
    print(f"unyanked {args.file}")
    return 0
