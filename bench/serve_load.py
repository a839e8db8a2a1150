"""Load test of `wheelfactory serve` on 127.0.0.1: latency under many keep-alive
connections, and the server's memory while large wheels download at once.

The server runs as its own process (`python -m wheelfactory serve DIR --port 0`), so its
peak resident memory (VmHWM in /proc/PID/status) is the server's alone. Two phases:

1. pages: C connections, each sending R requests on one kept-alive connection (as pip
   and uv do), for the PEP 503 and PEP 691 pages of a project, a 404 and a redirect;
   reports requests, errors, p50/p99/max latency and requests per second.
2. downloads: D clients fetch a W MB wheel at once, reading in 1 MB blocks; checks each
   download's sha256 and reports the server's peak memory before and after (a server
   that read whole files into memory would grow by about D x W MB).

    python bench/serve_load.py                       # 20 x 100 requests, 8 x 256 MB
    python bench/serve_load.py --connections 50 --requests 200 --downloads 16 --wheel-mb 512
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path


def make_index(root: Path, wheel_mb: int) -> tuple[str, str]:
    """A small static index: one project with one large wheel; returns (wheel path, sha256)."""
    name = "demo_ext-1.0.0+cu130torch2.14-py3-none-any.whl"
    files = root / "files"
    files.mkdir(parents=True)
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with (files / name).open("wb") as fh:
        for _ in range(wheel_mb):
            fh.write(block)
            digest.update(block)
    project = root / "simple" / "demo-ext"
    project.mkdir(parents=True)
    sha = digest.hexdigest()
    link = f"../../files/{name}#sha256={sha}"
    (project / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="{link}">{name}</a></body></html>\n'
    )
    files_json = [{"filename": name, "url": f"../../files/{name}", "hashes": {"sha256": sha}}]
    (project / "index.json").write_text(
        json.dumps({"meta": {"api-version": "1.1"}, "name": "demo-ext", "files": files_json})
    )
    return f"/files/{name}", sha


def start_server(root: Path) -> tuple[subprocess.Popen[str], str, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wheelfactory", "-v", "serve", str(root), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if m := re.search(r"http://([\d.]+):(\d+)/", line):
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining
            return proc, m.group(1), int(m.group(2))
    raise SystemExit("the server exited before it listened")


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def page_client(host: str, port: int, requests: int, out: list[float], errors: list[str]) -> None:
    paths = [
        ("/simple/demo-ext/", "text/html"),
        ("/simple/demo-ext/", "application/vnd.pypi.simple.v1+json"),
        ("/simple/no-such-project/", "text/html"),  # 404, as for any unknown project
        ("/simple/Demo_Ext/", "text/html"),  # redirect to the normalized name
    ]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    for i in range(requests):
        path, accept = paths[i % len(paths)]
        start = time.perf_counter()
        try:
            conn.request("GET", path, headers={"Accept": accept})
            resp = conn.getresponse()
            resp.read()
            if resp.status not in (200, 301, 404):
                errors.append(f"{path}: {resp.status}")
        except (OSError, http.client.HTTPException) as e:
            errors.append(f"{path}: {e}")
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
            continue
        out.append(time.perf_counter() - start)
    conn.close()


def download(host: str, port: int, path: str, sha: str, results: list[bool]) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=120)
    conn.request("GET", urllib.parse.quote(path))
    resp = conn.getresponse()
    digest = hashlib.sha256()
    while block := resp.read(1 << 20):
        digest.update(block)
    results.append(resp.status == 200 and digest.hexdigest() == sha)
    conn.close()


def run_concurrently(target: Callable[..., None], args: tuple, count: int) -> float:
    """Run ``target(*args)`` in ``count`` threads at once; return the seconds until all end."""
    threads = [threading.Thread(target=target, args=args) for _ in range(count)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--requests", type=int, default=100, help="per connection")
    parser.add_argument("--downloads", type=int, default=8, help="concurrent large downloads")
    parser.add_argument("--wheel-mb", type=int, default=256)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wf-serve-load-") as tmp:
        wheel_path, sha = make_index(Path(tmp), args.wheel_mb)
        proc, host, port = start_server(Path(tmp))
        try:
            latencies: list[float] = []
            errors: list[str] = []
            page_args = (host, port, args.requests, latencies, errors)
            pages_s = run_concurrently(page_client, page_args, args.connections)
            rss_before = peak_rss_mb(proc.pid)
            ok: list[bool] = []
            downloads_s = run_concurrently(
                download, (host, port, wheel_path, sha, ok), args.downloads
            )
            rss_after = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    ms = sorted(x * 1000 for x in latencies)
    results = {
        "pages": {
            "connections": args.connections,
            "requests": len(latencies) + len(errors),
            "errors": len(errors),
            "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
            "max_ms": round(ms[-1], 2),
            "requests_per_s": round(len(ms) / pages_s),
        },
        "downloads": {
            "concurrent": args.downloads,
            "wheel_mb": args.wheel_mb,
            "ok": sum(ok),
            "seconds": round(downloads_s, 2),
            "mb_per_s": round(args.downloads * args.wheel_mb / downloads_s),
            "server_peak_rss_mb_before": round(rss_before, 1),
            "server_peak_rss_mb_after": round(rss_after, 1),
        },
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    failed = errors or sum(ok) != args.downloads
    if errors:
        print(f"errors, first: {errors[0]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
