#!/usr/bin/env python3
"""The times the README quotes, measured: the unit tier and the quickstart, with the machine.

    python bench/readme_timings.py [--skip-unit] [--skip-quickstart] [--json FILE]

- unit tier: `python -m pytest -q tests/unit`, wall time and its pass/fail line;
- quickstart: `bash examples/quickstart.sh` (OUT and PORT in a temp dir / a free port) from
  its start to the line "serving ...", when the wheel is built, published and served; also
  the longest time between two lines of its output (a silent step shows there) and whether
  the torch build environment was already cached (the first run also downloads ~5 GB).

Each figure comes with the machine: CPU model and count, and the load average before and
after (the dev machine is shared: a loaded machine gives longer times, and says so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
    }


def load() -> float:
    return round(os.getloadavg()[0], 1)


def time_unit_tier() -> dict[str, object]:
    before = load()
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/unit", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - start
    summary = (proc.stdout.strip().splitlines() or [""])[-1]
    return {"command": "python -m pytest -q tests/unit", "seconds": round(seconds, 1),
            "rc": proc.returncode, "summary": summary, "load_before": before, "load_after": load()}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _torch_env_cached(torch: str) -> bool:
    from wheelfactory import buildenv

    envs = buildenv.cache_dir() / "envs"
    return any(envs.glob(f"*-torch{torch}-*")) if envs.is_dir() else False


def time_quickstart(limit: float) -> dict[str, object]:
    torch = os.environ.get("TORCH", "2.14.1")
    cached = _torch_env_cached(torch)
    before = load()
    with tempfile.TemporaryDirectory(prefix="readme-timings-") as tmp:
        # wheelfactory from this interpreter's environment, as after the README's first line
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = dict(os.environ, OUT=f"{tmp}/out", PORT=str(_free_port()), PATH=path)
        start = time.monotonic()
        proc = subprocess.Popen(
            ["bash", str(ROOT / "examples" / "quickstart.sh")], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        last, longest_gap, served, tail = start, 0.0, False, []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                now = time.monotonic()
                longest_gap = max(longest_gap, now - last)
                last = now
                tail = [*tail[-20:], line.rstrip()]
                print(f"  [{now - start:6.0f} s] {line.rstrip()}", file=sys.stderr)
                if line.startswith("serving "):
                    served = True
                    break
                if now - start > limit:
                    break
        finally:
            seconds = time.monotonic() - start
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    return {"command": "bash examples/quickstart.sh", "seconds": round(seconds, 1),
            "served": served, "longest_silence_s": round(longest_gap, 1),
            "torch_env_cached": cached, "load_before": before, "load_after": load(),
            "tail": tail if not served else []}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-unit", action="store_true")
    ap.add_argument("--skip-quickstart", action="store_true")
    ap.add_argument("--quickstart-limit", type=float, default=1800, help="seconds")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    result: dict[str, object] = {"date": time.strftime("%Y-%m-%d"), "machine": machine()}
    if not args.skip_unit:
        result["unit_tier"] = time_unit_tier()
    if not args.skip_quickstart:
        result["quickstart"] = time_quickstart(args.quickstart_limit)
    text = json.dumps(result, indent=2) + "\n"
    sys.stdout.write(text)
    if args.json:
        args.json.write_text(text)
    failed = [k for k in ("unit_tier", "quickstart") if k in result
              and (result[k].get("rc", 0) != 0 or result[k].get("served") is False)]  # type: ignore[union-attr]  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
