"""bench/serve_load.py runs end to end (small numbers): the figures it prints come from a
real server process, real keep-alive connections and sha256-checked downloads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "serve_load.py"


def test_serve_load_bench_runs(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    args = ["--connections", "3", "--requests", "40", "--downloads", "3", "--wheel-mb", "8"]
    run = subprocess.run([sys.executable, str(BENCH), *args, "--json", str(out)], check=False)
    assert run.returncode == 0
    results = json.loads(out.read_text())
    assert results["pages"]["requests"] == 120 and results["pages"]["errors"] == 0
    assert results["downloads"]["ok"] == 3
    assert results["downloads"]["server_peak_rss_mb_after"] > 0
