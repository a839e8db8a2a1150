"""Benchmark the index renderer (run on demand, not a test).

    .venv/bin/python bench/index_render.py [--wheels 10000] [--out DIR]

1. builds a synthetic manifest of N wheels with realistic names across projects,
   versions, torch, CUDA, Python and OS, and renders the whole index with the landing
   page at its root, as publish does (wheels/s);
2. writes that index to disk with publish's atomic commit;
3. publishes one more real wheel into it and reports the time and the pages written.
Targets: >= 5,000 wheels/s for a full render; O(1) pages for one more wheel.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from wheelfactory import landing
from wheelfactory import publish as pub
from wheelfactory.index import render_index
from wheelfactory.manifest import Manifest, PublishedFile, save_manifest
from wheelfactory.record import RECORD_NAME, BuildRecord

PROJECTS = ["sageattention", "sageattn3", "flash-attn", "flashinfer-python", "xformers-ext",
            "spargeattn", "causal-conv1d", "mamba-ssm"]
VERSIONS = ["2.1.1", "2.2.0", "2.2.1"]
TORCH = ["2.6", "2.7", "2.8", "2.9", "2.10", "2.11", "2.12", "2.13", "2.14", "2.15"]
CUDA = ["126", "128", "130"]
PYTHON = ["cp310", "cp311", "cp312", "cp313", "cp314"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "win_amd64"]
INDEX_URL = "https://example.github.io/wheelfactory/"


def synthetic(n: int) -> Manifest:
    files = []
    combos = itertools.product(VERSIONS, PROJECTS, TORCH, CUDA, PYTHON, PLATFORMS)
    for i, (ver, proj, torch, cuda, py, plat) in enumerate(itertools.islice(combos, n)):
        name = proj.replace("-", "_")
        filename = f"{name}-{ver}+cu{cuda}torch{torch}-{py}-{py}-{plat}.whl"
        digest = hashlib.sha256(filename.encode()).hexdigest()
        files.append(
            PublishedFile(
                filename=filename,
                project=proj,
                version=f"{ver}+cu{cuda}torch{torch}",
                sha256=digest,
                size=20_000_000 + i,
                url=f"files/{filename}",
                requires_python=">=3.10",
                metadata_sha256=digest[::-1],
                upload_time=f"2026-0{1 + i % 9}-1{i % 10}T12:00:00.{i % 1000000:06d}Z",
                yanked=(i % 997 == 0),
                yank_reason="bad output" if i % 997 == 0 else None,
                build_record={"cuda": cuda, "torch": torch, "runner": "ubuntu-24.04"},
            )
        )
    return Manifest(files=tuple(files), index_url=INDEX_URL)


def _record(name: str, version: str) -> BuildRecord:
    return BuildRecord(
        package=name, package_version=version, upstream_version=version.split("+")[0],
        recipe=None, recipe_sha256=None, builder="bench", platform="linux-x86_64",
        torch="2.14.1", torch_requirement="torch==2.14.*", cuda="13.0", python_tag="cp312-cp312",
        targets=("9.0a",),
    )  # fmt: skip


def tiny_wheel(out: Path, public_version: str = "2.2.2") -> Path:
    name, version = "sageattention", f"{public_version}+cu130torch2.14"
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"",
        f"{dist}/METADATA": (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                             "Requires-Python: >=3.10\nRequires-Dist: torch==2.14.*\n").encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: false\n"
                         b"Tag: cp312-cp312-manylinux_2_28_x86_64\n",
        # a build record, as real wheels have: the landing page serves it as records/<wheel>.json
        f"{dist}/{RECORD_NAME}": _record(name, version).dumps().encode(),
    }
    rec = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}"
           for p, d in files.items()]
    files[f"{dist}/RECORD"] = ("\n".join([*rec, f"{dist}/RECORD,,"]) + "\n").encode()
    path = out / f"{name}-{version}-cp312-cp312-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", type=int, default=10_000)
    ap.add_argument("--out", type=Path, help="index folder (default: a temp folder)")
    ap.add_argument("--repeat", type=int, default=3, help="full renders to time (best is reported)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="wf-bench-"))

    t = time.perf_counter()
    manifest = synthetic(args.wheels)
    build_s = time.perf_counter() - t

    best = float("inf")
    for _ in range(args.repeat):
        hooks = landing.landing_hooks()  # fresh: no page cached from the previous round
        t = time.perf_counter()
        pages = render_index(manifest, hooks=hooks)
        best = min(best, time.perf_counter() - t)
    plain = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        render_index(manifest)
        plain = min(plain, time.perf_counter() - t)
    total_bytes = sum(map(len, pages.values()))
    again = render_index(manifest, hooks=landing.landing_hooks())
    assert again == pages, "render is not deterministic"

    idx = out / "index"
    t = time.perf_counter()
    pub._commit(idx, pages, manifest)  # the same atomic write publish uses
    write_s = time.perf_counter() - t

    wheel = tiny_wheel(out)
    t = time.perf_counter()
    result = pub.publish([wheel], idx)
    one_s = time.perf_counter() - t
    assert pub.index_drift(idx) == [], "incremental publish left pages that differ from a full render"

    print(f"python {sys.version.split()[0]}, {len(manifest.files)} wheels, {len(pages)} pages,"
          f" {total_bytes / 1e6:.1f} MB of pages")
    print(f"build manifest objects : {build_s:.2f} s")
    print(f"full render (best of {args.repeat}) : {best:.3f} s = {len(manifest.files) / best:,.0f} wheels/s"
          " (landing page at the root)")
    print(f"  plain root page      : {plain:.3f} s = {len(manifest.files) / plain:,.0f} wheels/s")
    print(f"write full index       : {write_s:.2f} s (atomic: temp files + journal + os.replace)")
    print(f"publish one more wheel : {one_s:.3f} s, {len(result.pages_written)} pages written:"
          f" {', '.join(result.pages_written)}")
    print("check: index on disk == full render of the final manifest: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
