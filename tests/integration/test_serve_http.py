"""wheelfactory.serve over real HTTP on 127.0.0.1: 404s, content types, PEP 691 negotiation."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from _index_wheels import make_wheel
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
    from urllib.parse import urlsplit

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
