"""wheelfactory serve: serve a static index on this machine (404s, PEP 691 negotiation)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from wheelfactory.serve import IDLE_TIMEOUT, MAX_CONNECTIONS, WORKERS  # stdlib only: cheap

HELP = "serve an index folder over HTTP for pip and uv (for testing and private networks)"
EXAMPLE = "wheelfactory serve site/ --port 8000"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="the index root folder")
    parser.add_argument("--port", type=port, default=8000, help="port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--max-connections", type=positive(int), default=MAX_CONNECTIONS, metavar="N",
        help=f"connections open at once; past it a new client gets a 503 (default {MAX_CONNECTIONS})",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=positive(int), default=WORKERS, metavar="N",
        help=f"requests answered at once; idle connections take none (default {WORKERS})",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=positive(float), default=IDLE_TIMEOUT, metavar="SECONDS",
        help="close a connection idle this long, or stalled within a request"
        f" (default {IDLE_TIMEOUT:g})",
    )  # fmt: skip

def execute(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wheelfactory.errors import ConfigError
    from wheelfactory.serve import Limits, serve_forever

    if not Path(args.directory).is_dir():
        raise ConfigError(f"{args.directory} is not a folder; pass the index root (wheelfactory publish --index)")
    try:
        limits = Limits(
            workers=args.workers, max_connections=args.max_connections, idle_timeout=args.timeout
        )
        serve_forever(args.directory, host=args.host, port=args.port, limits=limits)
    except OSError as e:
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({e}); pick another --port") from e
    return 0


def port(text: str) -> int:
    # argparse turns this ValueError into its one-line usage error
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port: use 0-65535 (0 picks a free one)")
    return port


def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        value = kind(text)  # a ValueError is argparse's one-line usage error
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not above 0; pass a positive number")
        return value

    return parse
