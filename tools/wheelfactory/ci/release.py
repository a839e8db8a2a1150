"""The publish job (publish.yml): check a run's wheels before they become release assets.

- ``check_release_assets``: GitHub refuses release assets over 2 GiB; say so before upload;
- ``verify_release``: offline checks of each wheel against its own build record;
- ``set_provenance``: record the attestation URL of published files in the manifest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from wheelfactory import verify, wheelfile
from wheelfactory.errors import ConfigError, PublishError

RELEASE_ASSET_LIMIT = 2 * 1024**3  # GitHub Release assets: "each file must be under 2 GiB"


def check_release_assets(wheels: Iterable[Path], *, limit: int = RELEASE_ASSET_LIMIT) -> None:
    """Refuse any wheel GitHub would refuse as a release asset (over 2 GiB)."""
    too_big = [(w, w.stat().st_size) for w in wheels if w.stat().st_size >= limit]
    if too_big:
        names = ", ".join(f"{w.name} ({size / 1024**3:.2f} GiB)" for w, size in too_big)
        msg = (
            f"over GitHub's 2 GiB release-asset limit: {names}; strip debug info, drop targets,"
            " or make sure no torch/CUDA library was vendored"
        )
        raise PublishError(msg)


def verify_release(wheel: Path, *, cuobjdump: Path | None) -> list[str]:
    """The chain's offline checks of a downloaded wheel against its own build record (the
    release-check links of verify.CHAIN; with cuobjdump, Linux SASS promised == present).
    Returns the failures ([] when all pass)."""
    try:
        read = wheelfile.read_wheel(wheel)
    except wheelfile.WheelError as e:
        return [str(e)]
    record = read.build_record
    if record is None:
        return [f"{wheel.name}: no build record; rebuild it with wheelfactory"]
    expect = verify.Expectation.of(record)
    # cuobjdump reads ELF files: a Windows wheel's SASS is checked on its runner
    sass_tool = None if expect.platform.is_windows else cuobjdump
    checks = verify.run_chain("release-check", verify.Subject(wheel=read, expect=expect, cuobjdump=sass_tool))
    return [f"{wheel.name}: {c.name}: {c.detail}" for c in checks if not c.ok]


def set_provenance(index: str | os.PathLike[str], filenames: Iterable[str], url: str) -> list[str]:
    """Record ``url`` (an attestation) as the provenance of ``filenames`` in the index's
    manifest; return the files changed. Unknown files are an error."""
    from wheelfactory.manifest import load_manifest, save_manifest

    if not url.startswith("https://"):
        raise ConfigError(f"provenance URL {url!r} is not https; pass the attestation URL from actions/attest")
    manifest = load_manifest(index)
    wanted = set(filenames)
    unknown = sorted(wanted - {f.filename for f in manifest.files})
    if unknown:
        raise PublishError(f"not in the manifest: {', '.join(unknown)}; publish them before attaching provenance")
    changed = []
    files = []
    for f in manifest.files:
        if f.filename in wanted and f.provenance_url != url:
            f = replace(f, provenance_url=url)
            changed.append(f.filename)
        files.append(f)
    if changed:
        save_manifest(index, replace(manifest, files=tuple(files)))
    return changed
