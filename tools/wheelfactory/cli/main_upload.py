"""wheelfactory upload: push wheels to a private registry with twine."""

from __future__ import annotations

import argparse

HELP = "upload wheels to a private registry (pypiserver, devpi, ...) after twine check"
EXAMPLE = "wheelfactory upload dist/*.whl --repository-url http://127.0.0.1:8080/ --skip-existing"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("wheels", nargs="+", metavar="WHEEL", help="wheels to upload")
    parser.add_argument(
        "--repository-url", required=True, metavar="URL", help="the registry's upload URL"
    )
    parser.add_argument("--username", help="default: $TWINE_USERNAME")
    parser.add_argument("--password", help="default: $TWINE_PASSWORD (prefer the variable)")
    parser.add_argument(
        "--skip-existing", action="store_true", help="do not fail on files already there"
    )


def execute(args: argparse.Namespace) -> int:
    from wheelfactory.upload import upload

    upload(
        args.wheels,
        args.repository_url,
        username=args.username,
        password=args.password,
        skip_existing=args.skip_existing,
    )
    return 0
