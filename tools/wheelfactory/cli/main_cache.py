"""wheelfactory cache: list the build cache ($WHEELFACTORY_CACHE), remove or prune entries."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "list the build cache (build envs of ~5 GB each, downloads, stubs) and free space in it"
EXAMPLE = """\
wheelfactory cache
wheelfactory cache remove cp311-torch2.14.1-cu130
wheelfactory cache prune --older-than 30 --dry-run"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    # The action is optional (plain `cache` lists): say so, argparse's usage would not.
    parser.usage = "%(prog)s [-h] [list | remove NAME | prune [--older-than DAYS] [--dry-run]]"
    actions = parser.add_subparsers(dest="action", metavar="ACTION", prog=parser.prog)
    _action(actions, "list", "list the entries, their size and last use (the default)")
    remove = _action(actions, "remove", "remove one entry (a build env: under its lock)")
    remove.add_argument(
        "name", metavar="NAME", help="an entry as listed (envs/KEY, or an env's bare KEY)"
    )
    prune = _action(
        actions, "prune", "remove incomplete build envs (and, with --older-than, unused ones)"
    )
    prune.add_argument(
        "--older-than",
        type=_days,
        metavar="DAYS",
        help="also remove complete build envs not used for DAYS days",
    )
    prune.add_argument("--dry-run", action="store_true", help="show what would go; remove nothing")


def _action(actions: Any, name: str, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=text, description=text)
    return parser


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if days < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (e.g. 30)")
    return days


def execute(args: argparse.Namespace) -> int:
    from wheelfactory import cache
    from wheelfactory.cache import cache_dir

    root = cache_dir()
    if args.action == "remove":
        entry = cache.find_entry(cache.list_entries(root), args.name)
        freed = cache.remove(entry, root)
        print(f"removed {entry.name} ({cache.human_size(freed)})")
    elif args.action == "prune":
        results = cache.prune(root, older_than_days=args.older_than, dry_run=args.dry_run)
        _print_pruned(results, dry_run=args.dry_run, older_than=args.older_than)
    else:
        print(cache.format_listing(root, cache.list_entries(root)), end="")
    return 0


def _print_pruned(results: list, *, dry_run: bool, older_than: float | None) -> None:
    from wheelfactory.cache import human_size

    if not results:
        unused = f", none unused for {older_than:g} days" if older_than is not None else ""
        print(f"nothing to prune: no incomplete build env{unused}")
        return
    for r in results:
        verb = "would remove" if dry_run else "removed" if r.removed else "kept"
        why = f"{r.reason}; {r.skipped}" if r.skipped else r.reason
        print(f"{verb} {r.entry.name} ({human_size(r.entry.size)}): {why}")
    freed = sum(r.entry.size for r in results if r.removed or dry_run)
    print(f"{'would free' if dry_run else 'freed'} {human_size(freed)}")
