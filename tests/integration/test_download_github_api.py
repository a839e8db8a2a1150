"""wheelfactory download against a LOCAL HTTP server that IMITATES GitHub's REST API.

GitHub is unreachable here, so two servers on 127.0.0.1 stand in for it:
- "api": answers GET /repos/{o}/{r}/actions/runs/{id}/artifacts (paginated JSON),
  GET /repos/{o}/{r}/actions/artifacts/{id}/zip (302 to storage),
  GET /repos/{o}/{r}/releases/tags/{tag} (JSON with assets) and
  GET /repos/{o}/{r}/releases/assets/{id} with Accept: application/octet-stream (302 to
  storage, or 200 with the bytes), in the shapes docs.github.com documents;
- "storage": the signed blob host GitHub redirects to. It records the headers it gets,
  so the tests can check the token never reaches it.
Real HTTP, real redirects; nothing is mocked but GitHub itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest
from _local_http import serve_locally
from wheelfactory import download
from wheelfactory.cli import main
from wheelfactory.errors import NetworkError, PublishError

REPO = "owner/wheels"
TOKEN = "ghs_test_token_123"
W1 = "demo_ext-1.0+cu130torch2.14-cp311-cp311-manylinux_2_28_x86_64.whl"
W2 = "demo_ext-1.0+cu130torch2.14-cp312-cp312-manylinux_2_28_x86_64.whl"


def wheel_bytes(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("demo_ext/__init__.py", f"# {name}\n")
    return buf.getvalue()


def artifact_zip(names: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in names:
            zf.writestr(n, wheel_bytes(n))
    return buf.getvalue()


class Fake:
    """State shared by the two servers."""

    def __init__(self) -> None:
        self.api_requests: list[tuple[str, dict[str, str]]] = []
        self.storage_requests: list[tuple[str, dict[str, str]]] = []
        self.blobs: dict[str, bytes] = {}
        self.artifacts: list[dict] = []
        self.assets: list[dict] = []
        self.api_url = self.storage_url = ""
        self.fail_first = 0  # answer 502 this many times first


@pytest.fixture
def fake():
    state = Fake()

    class Storage(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def do_GET(self):
            state.storage_requests.append((self.path, dict(self.headers)))
            blob = state.blobs.get(urlsplit(self.path).path)
            if blob is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)

    class Api(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _json(self, obj, code=200):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _redirect(self, location):
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            state.api_requests.append((self.path, dict(self.headers)))
            if state.fail_first > 0:
                state.fail_first -= 1
                self.send_error(502)
                return
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._json({"message": "Bad credentials"}, 401)
                return
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            prefix = ["repos", *REPO.split("/")]
            if parts[:3] != prefix:
                self._json({"message": "Not Found"}, 404)
                return
            rest = parts[3:]
            if rest[:2] == ["actions", "runs"] and rest[3:] == ["artifacts"]:
                q = parse_qs(url.query)
                per_page, page = int(q.get("per_page", ["30"])[0]), int(q.get("page", ["1"])[0])
                arts = state.artifacts if rest[2] == "77" else []
                chunk = arts[(page - 1) * per_page : page * per_page]
                self._json({"total_count": len(arts), "artifacts": chunk})
            elif rest[:2] == ["actions", "artifacts"] and rest[3:] == ["zip"]:
                self._redirect(f"{state.storage_url}/artifact-blobs/{rest[2]}.zip?sig=abc")
            elif rest[:2] == ["releases", "tags"]:
                self._json({"tag_name": rest[2], "assets": state.assets})
            elif rest[:2] == ["releases", "assets"]:
                if self.headers.get("Accept") != "application/octet-stream":
                    self._json({"id": int(rest[2])})
                    return
                self._redirect(f"{state.storage_url}/asset-blobs/{rest[2]}?sig=xyz")
            else:
                self._json({"message": "Not Found"}, 404)

    api, state.api_url = serve_locally(Api)
    storage, state.storage_url = serve_locally(Storage)
    # Run 77: two artifacts (one with two wheels), plus a non-wheel artifact to ignore.
    # 120 filler artifacts make the listing span two pages of 100.
    names = {1: [W1], 2: [W2]}
    for art_id, wheels in names.items():
        state.blobs[f"/artifact-blobs/{art_id}.zip"] = artifact_zip(wheels)
    state.artifacts = [
        {"id": 1, "name": "wheels-demo-ext-1.0-cu130-torch2.14-cp311-linux_x86_64", "size_in_bytes": 10,
         "expired": False, "archive_download_url": f"{state.api_url}/repos/{REPO}/actions/artifacts/1/zip"},
        {"id": 3, "name": "logs", "size_in_bytes": 1, "expired": False,
         "archive_download_url": f"{state.api_url}/repos/{REPO}/actions/artifacts/3/zip"},
    ] + [{"id": 1000 + i, "name": f"other-{i}", "size_in_bytes": 1, "expired": False,
          "archive_download_url": ""} for i in range(120)] + [
        {"id": 2, "name": "wheels-demo-ext-1.0-cu130-torch2.14-cp312-linux_x86_64", "size_in_bytes": 10,
         "expired": False, "archive_download_url": f"{state.api_url}/repos/{REPO}/actions/artifacts/2/zip"},
    ]  # fmt: skip
    for asset_id, name in ((11, W1), (12, W2)):
        data = wheel_bytes(name)
        state.blobs[f"/asset-blobs/{asset_id}"] = data
        state.assets.append({
            "id": asset_id, "name": name, "size": len(data), "state": "uploaded",
            "url": f"{state.api_url}/repos/{REPO}/releases/assets/{asset_id}",
            "browser_download_url": f"https://github.com/{REPO}/releases/download/wheels/{name}",
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        })  # fmt: skip
    yield state
    api.shutdown()
    storage.shutdown()


def client(fake: Fake, **kw) -> download.GitHubClient:
    return download.GitHubClient(repo=REPO, api_url=fake.api_url, token=TOKEN, backoff=0.01, **kw)


def test_run_artifacts_download_paginates_redirects_and_keeps_the_token_home(fake, tmp_path):
    report = download.download_run(client(fake), 77, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [W1, W2]
    assert {f.status for f in report.files} == {"unchecked"}
    assert (tmp_path / "out" / W1).read_bytes() == wheel_bytes(W1)
    assert any("page=2" in path for path, _ in fake.api_requests)  # 123 artifacts: two pages
    assert fake.storage_requests, "the zip came through the storage redirect"
    for _, headers in fake.storage_requests:
        assert "Authorization" not in headers, "the token must never reach the storage host"
    assert all(h.get("Authorization") == f"Bearer {TOKEN}" for _, h in fake.api_requests)


def test_cell_filter(fake, tmp_path):
    download.download_run(client(fake), 77, tmp_path, cells=["cp312"])
    assert [p.name for p in tmp_path.iterdir()] == [W2]
    with pytest.raises(PublishError, match="no artifacts named wheels-"):
        download.download_run(client(fake), 77, tmp_path, cells=["cp399"])


def test_release_assets_download_and_digest_check(fake, tmp_path):
    report = download.download_release(client(fake), "wheels", tmp_path)
    assert sorted(f.path.name for f in report.files) == [W1, W2]
    accepts = [h.get("Accept") for p, h in fake.api_requests if "/releases/assets/" in p]
    assert accepts and set(accepts) == {"application/octet-stream"}
    assert all("Authorization" not in h for _, h in fake.storage_requests)
    fake.assets[0]["digest"] = "sha256:" + "0" * 64
    with pytest.raises(PublishError, match="differs from GitHub's digest"):
        download.download_release(client(fake), "wheels", tmp_path / "again")


def test_manifest_check_new_known_and_mismatch(fake, tmp_path):
    from wheelfactory.manifest import Manifest, PublishedFile, save_manifest

    index = tmp_path / "index"

    def entry(name: str, sha: str) -> PublishedFile:
        return PublishedFile(filename=name, project="demo-ext", version="1.0+cu130torch2.14", sha256=sha,
                             size=1, url=f"files/{name}", upload_time="2026-11-24T10:00:00.000000Z")  # fmt: skip

    save_manifest(index, Manifest(files=(entry(W1, hashlib.sha256(wheel_bytes(W1)).hexdigest()),)))
    report = download.download_run(client(fake), 77, tmp_path / "a", index=index)
    assert {f.path.name: f.status for f in report.files} == {W1: "known", W2: "new"}
    assert [f.path.name for f in report.new] == [W2]
    save_manifest(index, Manifest(files=(entry(W1, "f" * 64),)))
    with pytest.raises(PublishError, match="hash differs from the published file: " + re.escape(W1)):
        download.download_run(client(fake), 77, tmp_path / "b", index=index)


def test_cli_with_skip_known(fake, tmp_path, monkeypatch, capsys):
    from wheelfactory.manifest import Manifest, PublishedFile, save_manifest

    index = tmp_path / "index"
    save_manifest(index, Manifest(files=(PublishedFile(
        filename=W1, project="demo-ext", version="1.0+cu130torch2.14",
        sha256=hashlib.sha256(wheel_bytes(W1)).hexdigest(), size=1, url=f"files/{W1}",
        upload_time="2026-11-24T10:00:00.000000Z"),)))  # fmt: skip
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    out = tmp_path / "dist"
    rc = main(["download", "--run", "77", "--out", str(out), "--repo", REPO, "--api-url", fake.api_url,
               "--index", str(index), "--skip-known"])  # fmt: skip
    assert rc == 0
    assert [p.name for p in out.iterdir()] == [W2]
    assert "2 wheel(s), 1 new" in capsys.readouterr().out


def test_errors_are_one_line_with_the_fix(fake, tmp_path):
    bad = download.GitHubClient(repo=REPO, api_url=fake.api_url, token="wrong", backoff=0.01)
    with pytest.raises(NetworkError, match="HTTP 401; set GITHUB_TOKEN"):
        download.download_run(bad, 77, tmp_path)
    other = download.GitHubClient(repo="owner/missing", api_url=fake.api_url, token=TOKEN, backoff=0.01)
    with pytest.raises(NetworkError, match="HTTP 404; check --repo"):
        download.download_release(other, "wheels", tmp_path)


def test_transient_errors_are_retried_then_reported(fake, tmp_path):
    fake.fail_first = 2
    report = download.download_run(client(fake, tries=3), 77, tmp_path / "ok")
    assert len(report.files) == 2
    fake.fail_first = 10
    with pytest.raises(NetworkError, match="failed after 2 tries"):
        download.download_run(client(fake, tries=2), 77, tmp_path / "ko")


def test_token_is_refused_over_plain_http_to_a_remote_host():
    from wheelfactory.errors import ConfigError

    with pytest.raises(ConfigError, match="plain http"):
        download.GitHubClient(repo=REPO, api_url="http://api.example.com", token=TOKEN)
    with pytest.raises(ConfigError, match="OWNER/NAME"):
        download.GitHubClient(repo="no-slash", token=TOKEN)


def test_hostile_names_in_an_artifact_are_refused(fake, tmp_path):
    fake.blobs["/artifact-blobs/1.zip"] = artifact_zip(["../../evil-1.0-py3-none-any.whl"])
    report = download.download_run(client(fake), 77, tmp_path / "out", cells=["cp311"])
    # the path parts are dropped: the file lands inside --out, under its base name only
    assert [f.path for f in report.files] == [tmp_path / "out" / "evil-1.0-py3-none-any.whl"]
    assert not (tmp_path / "evil-1.0-py3-none-any.whl").exists()
