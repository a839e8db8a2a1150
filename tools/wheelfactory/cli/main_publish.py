"""wheelfactory publish: add built wheels to a static index and re-render what changed."""

from __future__ import annotations

import argparse
from pathlib import Path

from wheelfactory.cli import _options

HELP = "add wheels to a static index (store + manifest.json + PEP 503/691 pages)"
EXAMPLE = "wheelfactory publish dist/*.whl --index site/ --index-url https://example.org/wheels"


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
    _options.add_index_url(
        parser,
        "the index's public root URL; recorded in manifest.json and used by this and every"
        " later publish, yank and re-render",
    )
    parser.add_argument(
        "--gpu-gate",
        metavar="ARCHS",
        help="GPU archs the index's GPU checks run on, e.g. 9.0: new wheels that target one are"
        " held out of every view until `wheelfactory gpu-check` passes there (remembered in"
        " manifest.json; '' turns the gate off)",
    )
    parser.add_argument(
        "--gpu-checks",
        type=Path,
        metavar="FILE",
        help="record the results of `wheelfactory gpu-check --results FILE` after publishing",
    )
    parser.add_argument(
        "--provenance-url",
        action="append",
        default=[],
        metavar="FILENAME=URL",
        help="a PEP 740 provenance URL for a wheel (repeatable)",
    )


def execute(args: argparse.Namespace) -> int:
    import re

    from wheelfactory import publish as pub
    from wheelfactory.errors import ConfigError
    from wheelfactory.manifest import load_manifest

    provenance = {}
    for item in args.provenance_url:
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise ConfigError(f"--provenance-url {item!r}: write it as FILENAME=https://...")
        provenance[name] = url
    index_url = _options.index_url(args)  # None: keep what the manifest says
    gate = None
    if args.gpu_gate is not None:
        gate = tuple(a.strip() for a in args.gpu_gate.split(",") if a.strip())
        for a in gate:
            if not re.fullmatch(r"\d+\.\d", a):
                raise ConfigError(f"--gpu-gate {a!r} is not a GPU arch like 9.0; write e.g. --gpu-gate 9.0")
    checks = _read_checks(args.gpu_checks) if args.gpu_checks else None
    if not args.wheels:
        drift = pub.rerender(args.index, index_url=index_url)
        print(f"re-rendered {len(drift)} page(s)")
        if checks:
            pub.record_gpu_checks(args.index, checks)
            print(f"recorded {len(checks)} GPU check(s)")
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
        args.wheels, args.index, store=store, provenance_urls=provenance, index_url=index_url,
        gpu_gate=gate,
    )  # fmt: skip
    for name in result.added:
        print(f"published {name}")
    for name in result.unchanged:
        print(f"already published {name}")
    print(f"{len(result.pages_written)} page(s) written")
    if checks:
        pub.record_gpu_checks(args.index, checks)
        print(f"recorded {len(checks)} GPU check(s)")
    held = [f for f in load_manifest(args.index).files if f.held and f.filename in result.added]
    for f in held:
        print(f"held {f.filename}: {f.held}")
    return 0


def _read_checks(path: Path) -> list:
    import json

    from wheelfactory.errors import ConfigError
    from wheelfactory.manifest import GpuCheck

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read GPU check results ({e}); pass gpu-check's --results file") from e
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("checks"), list):
        raise ConfigError(f"{path} is not gpu-check's results (version 1); pass gpu-check's --results file")
    return [GpuCheck.from_json(c) for c in data["checks"]]
