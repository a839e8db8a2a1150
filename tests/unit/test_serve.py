from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from wheelfactory.serve import HTML_V1, JSON_V1, TEXT_HTML, negotiate, start_server

PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1,"
    " text/html; q=0.01"
)


@pytest.mark.parametrize(
    ("accept", "form"),
    [
        (PIP_ACCEPT, JSON_V1),
        (None, TEXT_HTML),
        ("", TEXT_HTML),
        ("text/html", TEXT_HTML),
        ("*/*", TEXT_HTML),
        ("application/vnd.pypi.simple.latest+json", JSON_V1),
        ("application/vnd.pypi.simple.v1+html", HTML_V1),
        ("text/html, application/vnd.pypi.simple.v1+json", TEXT_HTML),  # tie: client order
        ("text/html;q=0.5, application/vnd.pypi.simple.v1+json;q=0.9", JSON_V1),
        ("application/vnd.pypi.simple.v1+json;q=0", TEXT_HTML),
        ("image/png", TEXT_HTML),
    ],
)
def test_negotiate(accept: str | None, form: str) -> None:
    assert negotiate(accept) == form


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_a_symlink_that_leaves_the_root_is_never_served(tmp_path: Path) -> None:
    """Real HTTP on 127.0.0.1: a link in the served folder to a file or a folder outside it
    answers 404 like any name that is not there; a link that stays inside is served."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("private key\n")
    (outside / "index.html").write_text("outside page\n")
    root = tmp_path / "index"
    (root / "files").mkdir(parents=True)
    (root / "files" / "real.whl").write_bytes(b"wheel bytes")
    (root / "files" / "alias.whl").symlink_to("real.whl")
    (root / "files" / "leak.whl").symlink_to(outside / "secret.txt")  # absolute
    (root / "files" / "rel.txt").symlink_to("../../outside/secret.txt")  # relative
    (root / "cu130").symlink_to(outside, target_is_directory=True)
    with start_server(root) as server:
        for path in ("files/leak.whl", "files/rel.txt", "cu130/", "cu130", "cu130/secret.txt", "cu130/index.html"):
            status, body = get(server.url + path)
            assert status == 404 and b"private" not in body and b"outside" not in body, path
        assert get(server.url + "files/alias.whl") == (200, b"wheel bytes")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
