"""Zip bombs against `wheelfactory verify` and `wheelfactory publish`: time and peak memory.

Builds, in a temp folder, wheels of about 1 MB that inflate to 1 GiB (deflate's best ratio
is about 1,030x) and one of 67 KB whose RECORD inflates to 64 MiB, then runs the real CLI
(`python -m wheelfactory verify WHEEL` and `python -m wheelfactory publish WHEEL --index
DIR`) on each as a subprocess, and reports its exit code, its one ERROR line, wall time
and peak resident memory. The memory is the child's own ru_maxrss, from os.wait4 (the
per-child form of resource.getrusage(RUSAGE_CHILDREN), so one run's peak does not hide
the next). Each child runs under an address-space limit (--mem-limit-mb), so a reader
without caps fails on its own instead of taking the machine with it.

    python bench/zip_bomb.py                    # all bombs, verify and publish
    python bench/zip_bomb.py --json results.json

The bombs:
- record-1gib: RECORD inflates to 1 GiB (its rows, then blank lines);
- member-1gib: a package file inflates to 1 GiB, listed in RECORD with its real hash;
- record-64mib: the 67 KB wheel whose RECORD inflates to 64 MiB (issue 25);
- members-100k: 100,000 empty files, each in RECORD (issue 25: the check took 3 min);
- members-19k: the same with 19,000, just under the member cap: a sound wheel, checked in
  full (every member hashed), to show the check is linear at the cap.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

NAME = "demo_ext"
VERSION = "1.0.0+cu130torch2.14"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
FILENAME = f"{NAME}-{VERSION}-py3-none-any.whl"
METADATA = (
    f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\nRequires-Dist: torch==2.14.*\n\n"
)
WHEEL = "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
CHUNK = 1 << 20


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_bomb(out: Path, kind: str) -> Path:
    """A wheel in ``out`` whose RECORD (record-*) or a package file (member-1gib) inflates,
    or with many members (members-<N>k)."""
    out.mkdir(parents=True)
    path = out / FILENAME
    small = {
        f"{NAME}/__init__.py": b"",
        f"{DIST_INFO}/METADATA": METADATA.encode(),
        f"{DIST_INFO}/WHEEL": WHEEL.encode(),
    }
    if kind.startswith("members-"):  # members-100k: many empty files, each in RECORD
        count = int(kind.removeprefix("members-").removesuffix("k")) * 1000
        small.update({f"{NAME}/m{i}.py": b"" for i in range(count)})
    rows = [f"{n},{_hash(d)},{len(d)}\n".encode() for n, d in small.items()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in small.items():
            zf.writestr(name, data)
        if kind == "member-1gib":
            block = b"\0" * CHUNK
            digest = hashlib.sha256()
            with zf.open(f"{NAME}/weights.bin", "w") as fh:
                for _ in range(1024):
                    fh.write(block)
                    digest.update(block)
            b64 = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
            rows.append(f"{NAME}/weights.bin,sha256={b64},{1 << 30}\n".encode())
        record = b"".join(rows) + f"{DIST_INFO}/RECORD,,\n".encode()
        size = {"record-1gib": 1 << 30, "record-64mib": 64 << 20}.get(kind, len(record))
        with zf.open(f"{DIST_INFO}/RECORD", "w") as fh:
            fh.write(record)
            block = b"\n" * CHUNK  # blank lines: a CSV reader takes each as an empty row
            left = size - len(record)
            while left > 0:
                fh.write(block[:left])
                left -= len(block[:left])
    return path


def run_measured(argv: list[str], mem_limit_mb: int) -> dict[str, object]:
    """Run ``argv``; its exit code, last stderr line, wall seconds and peak RSS in MB."""

    def limit() -> None:
        cap = mem_limit_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=limit)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
        err.seek(0)
        lines = [line for line in err.read().decode(errors="replace").splitlines() if line.strip()]
    return {
        "exit": proc.returncode,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "error": lines[-1][:160] if lines else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bombs", default="record-1gib,member-1gib,record-64mib,members-100k,members-19k"
    )
    parser.add_argument("--mem-limit-mb", type=int, default=2048, help="address-space cap per run")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--make", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        wheel = make_bomb(Path(args.make[1]), args.make[0])
        with zipfile.ZipFile(wheel) as zf:
            print(f"{wheel}\t{sum(i.file_size for i in zf.infolist())}")
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="wf-zip-bomb-") as tmp:
        for kind in args.bombs.split(","):
            # built in a child: a forked child starts with its parent's peak RSS on Linux,
            # so this process stays small for the measured runs it forks
            made = [sys.executable, __file__, "--make", kind, str(Path(tmp) / kind)]
            out = subprocess.run(made, check=True, capture_output=True, text=True).stdout
            wheel, inflated = Path(out.split("\t")[0]), int(out.split("\t")[1])
            size = wheel.stat().st_size
            commands = {
                "verify": ["verify", str(wheel)],
                "publish": ["publish", str(wheel), "--index", str(Path(tmp) / f"index-{kind}")],
            }
            for command, cli_args in commands.items():
                argv = [sys.executable, "-m", "wheelfactory", *cli_args]
                row = {"bomb": kind, "command": command, "wheel_bytes": size}
                row["inflated_bytes"] = inflated
                row.update(run_measured(argv, args.mem_limit_mb))
                results.append(row)
                print(
                    f"{kind:13} {command:8} {size / 1e6:6.2f} MB -> {inflated / 2**20:6.0f} MiB"
                    f"  exit {row['exit']:>3}  {row['wall_s']:6.2f} s  {row['peak_rss_mb']:7.1f} MB"
                    f"  {row['error']}"
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
