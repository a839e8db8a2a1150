"""wheelfactory watch: read torch releases from PyPI and PyTorch's index, update the table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from wheelfactory.cli import _matrix_args

HELP = (
    "update the torch release table from PyPI and PyTorch's index; print cells that became missing"
)
EXAMPLE = "wheelfactory watch --dry-run"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    _matrix_args.add_recipe_args(parser)
    parser.add_argument("--pypi-url", default="https://pypi.org", metavar="URL")
    parser.add_argument(
        "--pytorch-index-url", default="https://download.pytorch.org", metavar="URL"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    parser.add_argument("--index", metavar="DIR|URL", help="count cells published here as built")
    parser.add_argument("--tries", type=int, default=4, help="tries per request (default 4)")
    parser.add_argument(
        "--backoff", type=float, default=1.0, help="first retry delay in seconds, doubled each try"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument(
        "--proposal-branch", metavar="BRANCH",
        help="compare the written table with this branch's copy on GitHub ($GITHUB_REPOSITORY,"
        " $GITHUB_TOKEN): propose only a table the branch does not hold yet",
    )  # fmt: skip
    parser.add_argument(
        "--github-output", metavar="FILE",
        help="append propose=true|false to FILE ($GITHUB_OUTPUT): true when the table changed"
        " and (with --proposal-branch) that branch does not hold it yet",
    )  # fmt: skip


def execute(args: argparse.Namespace) -> int:
    from wheelfactory import plan as planning
    from wheelfactory import releases, resources, watch
    from wheelfactory.errors import ConfigError

    if args.tries < 1 or args.backoff < 0:
        raise ConfigError("--tries must be >= 1 and --backoff >= 0; fix the option")
    path = Path(args.table) if args.table else resources.TORCH_RELEASES
    table = releases.load(path)
    fetcher = watch.Fetcher(tries=args.tries, backoff=args.backoff, timeout=args.timeout)
    obs = watch.observe(
        table, pypi_url=args.pypi_url, pytorch_url=args.pytorch_index_url, fetcher=fetcher
    )
    new = watch.update_table(table, obs)

    out = sys.stdout
    out.write(
        f"probed {len(obs.probed)} CUDA backends ({' '.join(obs.probed)}); found {' '.join(obs.found) or 'none'}\n"
    )
    changes = watch.table_diff(table, new)
    propose = False
    if not changes:
        out.write("torch release table is up to date\n")
    else:
        out.write(f"torch release table changes ({path}):\n")
        for line in changes:
            out.write(f"  {line}\n")
        if args.dry_run:
            out.write("dry run: table not written\n")
        else:
            releases.dump(new, path)
            out.write(f"wrote {path}\n")
            propose = _proposal_is_new(path, args.proposal_branch, out)
    if args.github_output:
        with open(args.github_output, "a", encoding="utf-8") as f:
            f.write(f"propose={'true' if propose else 'false'}\n")

    try:
        recipes = _matrix_args.load_recipes(args)
    except ConfigError as e:
        out.write(f"no plan diff: {e}\n")
        return 0
    published = _matrix_args.load_published(args.index) if args.index else None
    try:
        before = planning.plan(recipes, table, published)
        after = planning.plan(recipes, new, published)
    except ConfigError as e:  # the table is already written; the diff is only a report
        out.write(f"no plan diff: {e}\n")
        return 0
    diff = watch.plan_diff(before, after)
    out.write(f"cells that became missing: {len(diff.added)}\n")
    for cell in diff.added:
        out.write(f"  + {cell.id}\n")
    if diff.removed:
        out.write(f"cells no longer planned: {len(diff.removed)}\n")
        for cell in diff.removed:
            out.write(f"  - {cell.id}\n")
    return 0


def _proposal_is_new(table: Path, branch: str | None, out: TextIO) -> bool:
    """True unless ``branch`` on GitHub already holds the table just written."""
    if not branch:
        return True
    from wheelfactory import download, watch

    held = download.client_from_env(None, None).file_at(watch.repo_path(table, Path.cwd()), branch)
    if watch.proposal_is_new(table.read_bytes(), held):
        out.write(f"proposal branch {branch}: {'new' if held is None else 'changed'}; propose it\n")
        return True
    out.write(f"proposal branch {branch} already holds this table: nothing to push or build\n")
    return False
