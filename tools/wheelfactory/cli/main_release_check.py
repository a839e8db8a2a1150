"""wheelfactory release-check: refuse wheels GitHub would refuse as release assets."""

from __future__ import annotations

import argparse

HELP = "check wheels fit GitHub's 2 GiB release-asset limit before uploading them"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="WHEEL_OR_DIR", help="wheels, or folders searched for *.whl")


def execute(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from wheelfactory import ci
    from wheelfactory.errors import ConfigError

    wheels = ci.find_wheels(Path(p) for p in args.paths)
    if not wheels:
        raise ConfigError(f"no wheels in {' '.join(args.paths)}; download the build's artifacts first")
    ci.check_release_assets(wheels)
    logging.getLogger(__name__).info("%d wheel(s) fit the release-asset limit", len(wheels))
    return 0
