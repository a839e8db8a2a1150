"""wheelfactory serve: serve a static index on this machine (404s, PEP 691 negotiation)."""

from __future__ import annotations

import argparse

HELP = "serve an index folder over HTTP for pip and uv (for testing and private networks)"
EXAMPLE = "wheelfactory serve site/ --port 8000"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="the index root folder")
    parser.add_argument("--port", type=port, default=8000, help="port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")


def execute(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wheelfactory.errors import ConfigError
    from wheelfactory.serve import serve_forever

    if not Path(args.directory).is_dir():
        raise ConfigError(f"{args.directory} is not a folder; pass the index root (wheelfactory publish --index)")
    try:
        serve_forever(args.directory, host=args.host, port=args.port)
    except OSError as e:
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({e}); pick another --port") from e
    return 0


def port(text: str) -> int:
    # argparse turns this ValueError into its one-line usage error
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port: use 0-65535 (0 picks a free one)")
    return port
