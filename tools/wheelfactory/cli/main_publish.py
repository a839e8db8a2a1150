"""wheelfactory publish: add built wheels to a static index and re-render what changed."""

from __future__ import annotations

import argparse

HELP = "add wheels to a static index (store + manifest.json + PEP 503/691 pages)"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "wheels",
        nargs="*",
        metavar="WHEEL",
        help="wheels to publish; none: finish an interrupted publish and re-render drifted pages",
    )
    parser.add_argument("--index", required=True, metavar="DIR", help="the index root folder")
    parser.add_argument(
        "--store",
        default="local",
        metavar="SPEC",
        help="where wheel files go: local (DIR/files/, the default), github:OWNER/NAME@TAG"
        " (release assets; token from $GITHUB_TOKEN) or s3://BUCKET[/PREFIX] (credentials"
        " from boto3's usual chain)",
    )
    parser.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="S3-compatible endpoint for an s3: store (R2, MinIO; default: $AWS_ENDPOINT_URL,"
        " else AWS)",
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="where readers fetch an s3: store's objects (default:"
        " $WHEELFACTORY_S3_PUBLIC_URL, else the endpoint's URL of the bucket)",
    )
    parser.add_argument(
        "--api-url",
        metavar="URL",
        help="GitHub API root for a github: store (default: $GITHUB_API_URL or"
        " https://api.github.com)",
    )
    parser.add_argument(
        "--upload-url",
        metavar="URL",
        help="GitHub upload root for a github: store (default: $WHEELFACTORY_GITHUB_UPLOAD_URL,"
        " else the release's upload_url)",
    )
    parser.add_argument(
        "--index-url",
        metavar="URL",
        help="the index's public root URL (default: $WHEELFACTORY_INDEX_URL); recorded in"
        " manifest.json and used by this and every later publish, yank and re-render",
    )
    parser.add_argument(
        "--provenance-url",
        action="append",
        default=[],
        metavar="FILENAME=URL",
        help="a PEP 740 provenance URL for a wheel (repeatable)",
    )


def execute(args: argparse.Namespace) -> int:
    import os

    from wheelfactory import publish as pub
    from wheelfactory.errors import ConfigError

    provenance = {}
    for item in args.provenance_url:
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise ConfigError(f"--provenance-url {item!r}: write it as FILENAME=https://...")
        provenance[name] = url
    # An empty variable (CI before the first publish) means: keep what the manifest says.
    index_url = args.index_url or os.environ.get("WHEELFACTORY_INDEX_URL") or None
    if not args.wheels:
        drift = pub.rerender(args.index, index_url=index_url)
        print(f"re-rendered {len(drift)} page(s)")
        return 0
    store = pub.make_store(
        args.store,
        args.index,
        api_url=args.api_url,
        upload_url=args.upload_url,
        endpoint_url=args.endpoint_url,
        public_url=args.public_url,
    )
    result = pub.publish(
        args.wheels, args.index, store=store, provenance_urls=provenance, index_url=index_url
    )
    for name in result.added:
        print(f"published {name}")
    for name in result.unchanged:
        print(f"already published {name}")
    print(f"{len(result.pages_written)} page(s) written")
    return 0
