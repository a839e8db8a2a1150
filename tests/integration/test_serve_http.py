"""wheelfactory.serve over real HTTP on 127.0.0.1: 404s, content types, PEP 691 negotiation."""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from _index_wheels import make_wheel
from wheelfactory import serve
from wheelfactory.manifest import load_manifest
from wheelfactory.publish import publish
from wheelfactory.serve import JSON_V1, start_server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("serve")
    publish([make_wheel(tmp / "w")], tmp / "index")
    (tmp / "index" / "cu130" / "empty-dir").mkdir()
    with start_server(tmp / "index") as server:
        yield server, tmp / "index"


def get(url: str, accept: str | None = None, method: str = "GET"):
    headers = {"Accept": accept} if accept else {}
    req = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


PROJECT = "cu130/torch2.14/simple/demo-ext/"


def test_pages_and_negotiation(served) -> None:
    server, idx = served
    status, headers, body = get(server.url + PROJECT)
    assert (status, headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert body == (idx / PROJECT / "index.html").read_bytes()
    assert headers["Vary"] == "Accept"
    pip_accept = f"{JSON_V1}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
    status, headers, body = get(server.url + PROJECT, accept=pip_accept)
    assert (status, headers["Content-Type"]) == (200, JSON_V1)
    assert json.loads(body)["name"] == "demo-ext"
    status, headers, _ = get(server.url + "cu130/torch2.14/simple/", accept=JSON_V1)
    assert headers["Content-Type"] == JSON_V1
    status, headers, body = get(server.url + PROJECT + "index.json")
    assert (status, headers["Content-Type"]) == (200, JSON_V1)


def test_files_and_content_types(served) -> None:
    server, idx = served
    (f,) = load_manifest(idx).files
    status, headers, body = get(server.url + f.url.replace("+", "%2B"))
    assert (status, headers["Content-Type"]) == (200, "application/octet-stream")
    assert body == (idx / f.url).read_bytes()
    status, headers, body = get(server.url + f.metadata_url)
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b"Name: demo_ext" in body
    status, headers, body = get(server.url + PROJECT, method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


@pytest.mark.parametrize(
    "path",
    [
        "cu130/torch2.14/simple/no-such-project/",
        "cu130/simple/nope/index.html",
        "cu130/empty-dir/",  # a folder without index.html: 404, never 403 or a listing
        "files/",
        ".wheelfactory.lock",
        "files/../.wheelfactory.lock",
        "%2e%2e/%2e%2e/etc/passwd",
    ],
)
def test_unknown_is_404(served, path: str) -> None:
    server, _ = served
    assert get(server.url + path)[0] == 404


def test_folder_without_slash_redirects(served) -> None:
    server, _ = served
    req = urllib.request.Request(server.url + PROJECT.rstrip("/"))
    with urllib.request.urlopen(req) as resp:  # follows the redirect
        assert resp.url.endswith(PROJECT)
        assert resp.status == 200


def test_load_manifest_over_http(served) -> None:
    server, idx = served
    assert load_manifest(server.url) == load_manifest(idx)
    assert load_manifest(server.url.rstrip("/")) == load_manifest(idx)


def _raw(url: str, path: str) -> tuple[int, dict[str, str], bytes]:
    import http.client

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def test_hostile_paths_answer_in_http_never_a_redirect_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "index" / "cu130").mkdir(parents=True)
    (tmp_path / "index" / "cu130" / "index.html").write_text("ok")
    with start_server(tmp_path / "index") as server:
        for path in ("/\\evil.example/..", "/%5Cevil.example/..", "//evil.example/..", "/cu130/..//evil/.."):
            status, headers, _ = _raw(server.url, path)
            location = headers.get("Location", "")
            assert not location.startswith(("//", "/\\")), (path, status, location)
        status, headers, _ = _raw(server.url, "/cu130")
        assert status == 301 and headers["Location"] == "/cu130/"
        # far too long: 414; long enough for the filesystem to refuse: 404, no dropped connection
        assert _raw(server.url, "/" + "a" * 5000)[0] == 414
        assert _raw(server.url, "/" + "a" * 300 + "/" + "b" * 300)[0] == 404


def test_large_files_stream_with_flat_memory(tmp_path: Path) -> None:
    import tracemalloc

    root = tmp_path / "index" / "files"
    root.mkdir(parents=True)
    big = root / "big-1.0+cu130torch2.14-py3-none-any.whl"
    with big.open("wb") as f:
        f.truncate(200 << 20)  # 200 MiB, sparse
    with start_server(tmp_path / "index") as server:
        tracemalloc.start()
        status, headers, body = _raw(server.url, f"/files/{big.name}")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert status == 200 and len(body) == 200 << 20 and headers["Content-Length"] == str(200 << 20)
    # the client holds the 200 MiB body; the server's share stays a few 1 MiB blocks
    assert peak < (200 << 20) + (16 << 20), peak


def test_responses_are_sent_without_nagle_delay(tmp_path: Path) -> None:
    import socket

    from wheelfactory import serve

    seen: list[int] = []
    original = serve.IndexRequestHandler.setup

    def spy(self) -> None:
        original(self)
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    (tmp_path / "index").mkdir()
    serve.IndexRequestHandler.setup = spy  # type: ignore[method-assign]
    try:
        with start_server(tmp_path / "index") as server:
            _raw(server.url, "/")
    finally:
        serve.IndexRequestHandler.setup = original  # type: ignore[method-assign]
    assert seen and all(seen)


# -- bounds: connections, time, and a log line for each connection dropped


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (reading any answer)."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_answers_a_new_client_within_1s_while_1000_idle_connections_are_open(tmp_path: Path) -> None:
    import resource
    import threading
    import time

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2500:  # 1,000 client sockets and the server's 1,000, in this one process
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    (tmp_path / "index" / "cu130").mkdir(parents=True)
    (tmp_path / "index" / "cu130" / "index.html").write_text("ok")
    threads_before = threading.active_count()
    idle: list[socket.socket] = []
    try:
        with start_server(tmp_path / "index") as server:
            idle = [_connect(server.url) for _ in range(1000)]
            time.sleep(0.5)  # let the server accept them all
            threads = threading.active_count() - threads_before
            start = time.monotonic()
            status, _, body = _raw(server.url, "/cu130/")
            latency = time.monotonic() - start
            print(f"GET with 1000 idle connections open: {latency * 1000:.1f} ms, {threads} server threads")
            assert (status, body) == (200, b"ok")
            assert latency < 1.0, latency
            # idle connections take no thread: the pool and the loop, not one per socket
            assert threads <= serve.WORKERS + 1, threads
    finally:
        for s in idle:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_an_idle_connection_is_closed_after_the_timeout_and_logged(tmp_path: Path, caplog) -> None:
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "index.html").write_text("root")
    limits = serve.Limits(idle_timeout=1.0)
    with caplog.at_level(logging.INFO, logger="wheelfactory.serve"), start_server(tmp_path / "index", limits=limits) as server:
        silent = _connect(server.url)  # never sends a byte
        kept = _connect(server.url)  # one request, then keeps the connection open
        kept.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        stalled = _connect(server.url)  # a request line that never ends
        stalled.sendall(b"GET / HT")
        assert _closed_by_server(silent, within=5)
        assert _closed_by_server(kept, within=5)
        assert _closed_by_server(stalled, within=5)
        fresh = _connect(server.url)  # a new client is still answered
        fresh.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert fresh.recv(4096).startswith(b"HTTP/1.1 200")
        fresh.close()
    dropped = [r.getMessage() for r in caplog.records if "connection from 127.0.0.1:" in r.getMessage()]
    ports = {s.getsockname()[1] for s in (silent, kept, stalled)}
    for port in ports:
        assert any(f"127.0.0.1:{port}" in m for m in dropped), (port, dropped)
    assert sum("closed idle connection" in m and "no request for 1 s" in m for m in dropped) >= 2
    assert any("dropped connection" in m and "timed out" in m for m in dropped), dropped


def test_past_max_connections_a_client_gets_503_and_the_drop_is_logged(tmp_path: Path, caplog) -> None:
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "index.html").write_text("root")
    limits = serve.Limits(max_connections=5)
    with caplog.at_level(logging.INFO, logger="wheelfactory.serve"), start_server(tmp_path / "index", limits=limits) as server:
        held = [_connect(server.url) for _ in range(5)]
        over = _connect(server.url)
        over.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = over.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert _closed_by_server(over, within=5)
        held[0].close()  # a slot frees: a new client is answered again
        for _ in range(50):
            status = _raw(server.url, "/")[0]
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200
        for s in held[1:]:
            s.close()
    port = over.getsockname()[1]
    assert any(
        f"dropped connection from 127.0.0.1:{port}: 5 connections open" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


def test_pipelined_requests_on_one_connection_are_all_answered(tmp_path: Path) -> None:
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "index.html").write_text("root")
    with start_server(tmp_path / "index") as server:
        sock = _connect(server.url)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)  # one write: the reader holds 2
        got = b""
        while got.count(b"HTTP/1.1 200") < 3:
            chunk = sock.recv(4096)
            assert chunk, got
            got += chunk
        sock.close()


def test_out_of_file_descriptors_on_accept_is_logged(tmp_path: Path) -> None:
    """The server process uses up its descriptors; a client then arrives: it waits in the
    backlog, and the server says why instead of timing it out in silence."""
    import subprocess
    import sys

    (tmp_path / "index").mkdir()
    script = f"""
import logging, os, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
from wheelfactory.serve import Limits, start_server
server = start_server({str(tmp_path / "index")!r}, limits=Limits(workers=2))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
print(server.url, flush=True)
time.sleep(30)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read()
        client = _connect(url)
        time.sleep(1.5)
        client.close()
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert "cannot accept a connection: Too many open files" in err, err
    assert "raise the file limit (ulimit -n)" in err


def test_a_symlink_that_leaves_the_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("private")
    (tmp_path / "index" / "files").mkdir(parents=True)
    (tmp_path / "index" / "files" / "inside.txt").write_text("public")
    (tmp_path / "index" / "files" / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (tmp_path / "index" / "files" / "ok.txt").symlink_to(tmp_path / "index" / "files" / "inside.txt")
    with start_server(tmp_path / "index") as server:
        assert _raw(server.url, "/files/leak.txt")[0] == 404
        assert _raw(server.url, "/files/ok.txt")[::2] == (200, b"public")
