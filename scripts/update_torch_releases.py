#!/usr/bin/env python3
"""Regenerate tools/wheelfactory/resources/torch-releases.toml.

    scripts/update_torch_releases.py            # re-canonicalize after a hand edit
    scripts/update_torch_releases.py --check    # exit 1 if the file is not canonical
    scripts/update_torch_releases.py --watch    # = wheelfactory watch (PyPI + PyTorch's index)

Every write goes through wheelfactory.releases.dump, the table's one canonical writer.
"""

from __future__ import annotations

import argparse
import sys

from wheelfactory import releases, resources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--table", default=str(resources.TORCH_RELEASES))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="only check the file is canonical")
    group.add_argument(
        "--watch", action="store_true", help="run `wheelfactory watch --table TABLE`"
    )
    args, rest = parser.parse_known_args(argv)
    if args.watch:
        from wheelfactory.cli import main as cli_main

        return cli_main(["watch", "--table", args.table, *rest])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    with open(args.table, encoding="utf-8") as f:
        text = f.read()
    canonical = releases.dumps(releases.parse(text, args.table))
    if text == canonical:
        print(f"{args.table} is canonical")
        return 0
    if args.check:
        print(
            f"{args.table} is not canonical; run scripts/update_torch_releases.py", file=sys.stderr
        )
        return 1
    releases.dump(releases.parse(text, args.table), args.table)
    print(f"rewrote {args.table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
