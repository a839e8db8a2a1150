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
