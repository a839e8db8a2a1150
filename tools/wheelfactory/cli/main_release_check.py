"""wheelfactory release-check: the last checks before wheels become release assets."""

from __future__ import annotations

import argparse

HELP = "check downloaded wheels before release: 2 GiB asset limit, tags, label, RECORD and SASS vs build record"
EXAMPLE = "wheelfactory release-check dist/"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="WHEEL_OR_DIR", help="wheels, or folders searched for *.whl")
    parser.add_argument("--no-sass", action="store_true", help="skip the cuobjdump SASS check")


def execute(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from wheelfactory.ci import release, summary
    from wheelfactory.errors import ConfigError, ToolMissingError, VerifyError

    wheels = summary.find_wheels(Path(p) for p in args.paths)
    if not wheels:
        raise ConfigError(f"no wheels in {' '.join(args.paths)}; download the build's artifacts first")
    release.check_release_assets(wheels)
    cuobjdump = None
    if not args.no_sass:
        from wheelfactory.verify import find_cuobjdump

        try:
            cuobjdump = find_cuobjdump()
        except ToolMissingError as e:
            raise ToolMissingError(f"{e} (or pass --no-sass)") from e
    failures = [f for w in wheels for f in release.verify_release(w, cuobjdump=cuobjdump)]
    if failures:
        for f in failures[1:]:
            print(f"FAIL {f}")
        raise VerifyError(f"{failures[0]} ({len(failures)} problem(s)); rebuild the cell before publishing")
    logging.getLogger(__name__).info("%d wheel(s) ready for release", len(wheels))
    return 0
