"""wheelfactory provenance: link published files to their attestation in the manifest."""

from __future__ import annotations

import argparse

HELP = "record an attestation URL as the provenance of published wheels (manifest provenance_url)"
EXAMPLE = (
    "wheelfactory provenance dist/ --index site/"
    " --url https://github.com/OWNER/NAME/attestations/1234567"
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="WHEEL_OR_DIR", help="the attested wheels (names are looked up)")
    parser.add_argument("--index", required=True, help="the local index folder whose manifest to update")
    parser.add_argument("--url", required=True, help="the attestation URL (actions/attest's attestation-url output)")


def execute(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from wheelfactory.ci import release, summary

    wheels = summary.find_wheels(Path(p) for p in args.paths)
    changed = release.set_provenance(args.index, [w.name for w in wheels], args.url)
    logging.getLogger(__name__).info("provenance set on %d file(s)", len(changed))
    return 0
