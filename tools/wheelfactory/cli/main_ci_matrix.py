"""wheelfactory ci-matrix: split a `plan --format github` object over the workflow's matrix jobs."""

from __future__ import annotations

import argparse

HELP = "split `plan --format github` output into matrix0..N/count0..N outputs for build.yml's matrix jobs"
EXAMPLE = (
    "wheelfactory ci-matrix plan.json --limit 1"
    "  # plan.json: wheelfactory plan --format github > plan.json"
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", help="the JSON file `wheelfactory plan --format github` wrote ('-' for stdin)")
    parser.add_argument("--slots", type=int, default=4, help="how many matrix jobs the workflow has (default 4)")
    parser.add_argument("--limit", type=int, default=None, help="keep only the first N jobs (pull requests: 1)")
    parser.add_argument("--github-output", metavar="FILE", help="append the outputs to FILE ($GITHUB_OUTPUT)")


def execute(args: argparse.Namespace) -> int:
    import json
    import sys

    from wheelfactory.ci import matrix
    from wheelfactory.errors import ConfigError

    try:
        text = sys.stdin.read() if args.plan == "-" else open(args.plan, encoding="utf-8").read()
        plan = json.loads(text)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read the plan {args.plan} ({e}); write it with wheelfactory plan --format github") from e
    outputs = matrix.split_matrices(plan, slots=args.slots, limit=args.limit)
    text = matrix.render_outputs(outputs)
    if args.github_output:
        with open(args.github_output, "a", encoding="utf-8") as f:
            f.write(text)
    print(text, end="")
    return 0
