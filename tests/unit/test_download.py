"""download's two digest checks at the unit tier, over real HTTP on 127.0.0.1 against a
small stand-in for GitHub's REST API (GitHub itself is unreachable from tests; the full
stand-in, with redirects, paging and tokens, is tests/integration/test_download_github_api.py):

- a release asset whose bytes differ from the sha256 GitHub states for it is refused;
- a downloaded wheel whose name is published with other bytes is refused (a published
  wheel never changes)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from _local_http import serve_locally
from wheelfactory import download
from wheelfactory.errors import PublishError
from wheelfactory.manifest import Manifest, PublishedFile, save_manifest

REPO = "owner/wheels"
W1 = "demo_ext-1.0+cu130torch2.14-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL = b"PK\x05\x06" + b"\x00" * 18  # the bytes GitHub serves (an empty zip)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class GitHub:
    """What the stand-in answers: one release asset, one run artifact holding the wheel."""

    def __init__(self) -> None:
        self.digest = "sha256:" + sha(WHEEL)
        self.url = ""

    def routes(self) -> dict[str, tuple[str, bytes]]:
        artifact = io.BytesIO()
        with zipfile.ZipFile(artifact, "w") as zf:
            zf.writestr(W1, WHEEL)
        asset = {"id": 11, "name": W1, "size": len(WHEEL), "digest": self.digest,
                 "url": f"{self.url}/repos/{REPO}/releases/assets/11"}  # fmt: skip
        art = {"id": 1, "name": "wheels-cu130-torch2.14-cp311", "expired": False, "size_in_bytes": 1,
               "archive_download_url": f"{self.url}/repos/{REPO}/actions/artifacts/1/zip"}  # fmt: skip
        return {
            f"/repos/{REPO}/releases/tags/wheels": ("application/json", json.dumps({"assets": [asset]}).encode()),
            f"/repos/{REPO}/releases/assets/11": ("application/octet-stream", WHEEL),
            f"/repos/{REPO}/actions/runs/7/artifacts?per_page=100&page=1": (
                "application/json", json.dumps({"total_count": 1, "artifacts": [art]}).encode()),
            f"/repos/{REPO}/actions/artifacts/1/zip": ("application/zip", artifact.getvalue()),
        }  # fmt: skip


@pytest.fixture
def github() -> Iterator[GitHub]:
    state = GitHub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            found = state.routes().get(self.path)
            if found is None:
                self.send_error(404)
                return
            ctype, body = found
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server, state.url = serve_locally(Handler)
    yield state
    server.shutdown()


def client(github: GitHub) -> download.GitHubClient:
    return download.GitHubClient(repo=REPO, api_url=github.url, tries=1, backoff=0.01)


def published(index: Path, sha256: str) -> Path:
    save_manifest(index, Manifest(files=(PublishedFile(
        filename=W1, project="demo-ext", version="1.0+cu130torch2.14", sha256=sha256, size=len(WHEEL),
        url=f"files/{W1}", upload_time="2026-11-24T10:00:00.000000Z"),)))  # fmt: skip
    return index


def test_a_release_asset_that_differs_from_githubs_digest_is_refused(github: GitHub, tmp_path: Path) -> None:
    report = download.download_release(client(github), "wheels", tmp_path / "ok")
    assert [(f.path.name, f.sha256) for f in report.files] == [(W1, sha(WHEEL))]
    github.digest = "sha256:" + sha(b"other bytes")  # GitHub stored something else
    with pytest.raises(PublishError, match=re.escape(f"{W1}: sha256 {sha(WHEEL)[:12]}... differs from GitHub's digest")) as e:
        download.download_release(client(github), "wheels", tmp_path / "bad")
    assert "\n" not in str(e.value) and str(e.value).endswith("download again")


@pytest.mark.parametrize("source", ["release", "run"])
def test_a_wheel_published_with_other_bytes_is_refused(github: GitHub, tmp_path: Path, source: str) -> None:
    def fetch(out: Path, index: Path) -> download.DownloadReport:
        if source == "release":
            return download.download_release(client(github), "wheels", out, index=index)
        return download.download_run(client(github), 7, out, index=index)

    same = published(tmp_path / "same", sha(WHEEL))
    assert [f.status for f in fetch(tmp_path / "a", same).files] == ["known"]
    other = published(tmp_path / "other", sha(b"the published bytes"))
    with pytest.raises(PublishError, match=re.escape(f"hash differs from the published file: {W1} (manifest")) as e:
        fetch(tmp_path / "b", other)
    assert "\n" not in str(e.value) and "never changes" in str(e.value)
