"""wheelfactory download: fetch built wheels from a workflow run or a release."""

from __future__ import annotations

import argparse

HELP = "download wheels from a GitHub Actions run's artifacts or a release's assets, checked against an index"
EXAMPLE = (
    "wheelfactory download --run 123456789 --out dist/ --repo OWNER/NAME"
    " --index site/ --skip-known"
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--run", type=int, metavar="ID", help="workflow run id whose wheels-* artifacts to fetch")
    where.add_argument("--release", metavar="TAG", help="release tag whose .whl assets to fetch")
    where.add_argument("--last-manifest", metavar="BRANCH",
                       help="instead of wheels: write to --out the manifest.json the last"
                       " publish on BRANCH left (artifact wheelfactory-manifest), read"
                       " fresh through the API")
    parser.add_argument("--cell", action="append", default=[], metavar="ID",
                        help="only this cell (substring of the artifact/wheel name); repeatable")
    parser.add_argument("--out", required=True, help="folder to put the wheels in")
    parser.add_argument("--repo", help="OWNER/NAME (default: $GITHUB_REPOSITORY)")
    parser.add_argument("--api-url", help="GitHub API root (default: $GITHUB_API_URL or https://api.github.com)")
    parser.add_argument("--index", help="index folder or URL: check hashes against its manifest (new files are listed)")
    parser.add_argument("--gpu-checks", metavar="FILE",
                        help="with --run: also write the run's GPU check results (artifact gpu-checks) here, if it has them")
    parser.add_argument("--skip-known", action="store_true",
                        help="with --index: delete wheels already published (same hash), keep only the new ones")
    parser.add_argument("--fallback-index", metavar="URL",
                        help="with --last-manifest: where no such artifact is left, read"
                        " URL/manifest.json (else the index starts empty)")


def execute(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wheelfactory import download

    client = download.client_from_env(args.repo, args.api_url)
    out = Path(args.out)
    if args.last_manifest is not None:
        source = download.restore_manifest(
            client, args.last_manifest, out, fallback_index=args.fallback_index
        )
        print(f"manifest from {source}")
        return 0
    if args.run is not None:
        report = download.download_run(client, args.run, out, cells=args.cell, index=args.index)
    else:
        report = download.download_release(client, args.release, out, cells=args.cell, index=args.index)
    if args.skip_known:
        if not args.index:
            from wheelfactory.errors import ConfigError

            raise ConfigError("--skip-known needs --index DIR|URL; name the index to compare against")
        for f in report.files:
            if f.status == "known":
                f.path.unlink()
    if args.gpu_checks and args.run is not None:
        got = download.download_gpu_checks(client, args.run, Path(args.gpu_checks))
        print(f"GPU check results: {args.gpu_checks}" if got else "GPU check results: none in this run")
    for f in report.files:
        print(f"{f.status:9} {f.path.name}  sha256={f.sha256}")
    print(f"{len(report.files)} wheel(s), {len(report.new)} new")
    return 0
