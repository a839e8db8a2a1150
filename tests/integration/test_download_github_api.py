"""wheelfactory download against a LOCAL HTTP server that IMITATES GitHub's REST API.

GitHub is unreachable here, so tests/_fake_github.py stands in for it on 127.0.0.1: the
API (a run's artifacts, paginated; a release's assets; 302s to storage, in the shapes
docs.github.com documents) and the storage host it redirects to, which records the
headers it gets, so the tests can check the token never reaches it.
Real HTTP, real redirects; nothing is mocked but GitHub itself.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from _fake_github import (
    DEMO_REPO,
    DEMO_TOKEN,
    W1,
    W2,
    FakeGitHub,
    artifact_zip,
    demo_client,
    demo_github,
    wheel_bytes,
)
from wheelfactory import download
from wheelfactory.cli import main
from wheelfactory.errors import NetworkError, PublishError

REPO, TOKEN = DEMO_REPO, DEMO_TOKEN


@pytest.fixture
def fake():
    # 120 filler artifacts make the listing span two pages of 100; "logs" is one more
    # non-wheel artifact to ignore.
    with demo_github(fillers=120) as gh:
        gh.add_artifact(77, 3, "logs")
        yield gh


def api_requests(fake: FakeGitHub) -> list[tuple[str, dict[str, str]]]:
    return [(path, headers) for _, _, path, headers in fake.requests_to("api")]


def storage_requests(fake: FakeGitHub) -> list[tuple[str, dict[str, str]]]:
    return [(path, headers) for _, _, path, headers in fake.requests_to("storage")]


def test_run_artifacts_download_paginates_redirects_and_keeps_the_token_home(fake, tmp_path):
    report = download.download_run(demo_client(fake), 77, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [W1, W2]
    assert {f.status for f in report.files} == {"unchecked"}
    assert (tmp_path / "out" / W1).read_bytes() == wheel_bytes(W1)
    assert any("page=2" in path for path, _ in api_requests(fake))  # 123 artifacts: two pages
    assert storage_requests(fake), "the zip came through the storage redirect"
    for _, headers in storage_requests(fake):
        assert "Authorization" not in headers, "the token must never reach the storage host"
    assert all(h.get("Authorization") == f"Bearer {TOKEN}" for _, h in api_requests(fake))


def test_cell_filter(fake, tmp_path):
    download.download_run(demo_client(fake), 77, tmp_path, cells=["cp312"])
    assert [p.name for p in tmp_path.iterdir()] == [W2]
    with pytest.raises(PublishError, match="no artifacts named wheels-"):
        download.download_run(demo_client(fake), 77, tmp_path, cells=["cp399"])


def test_release_assets_download_and_digest_check(fake, tmp_path):
    report = download.download_release(demo_client(fake), "wheels", tmp_path)
    assert sorted(f.path.name for f in report.files) == [W1, W2]
    accepts = [h.get("Accept") for p, h in api_requests(fake) if "/releases/assets/" in p]
    assert accepts and set(accepts) == {"application/octet-stream"}
    assert all("Authorization" not in h for _, h in storage_requests(fake))
    fake.assets[11]["digest"] = "sha256:" + "0" * 64
    with pytest.raises(PublishError, match="differs from GitHub's digest"):
        download.download_release(demo_client(fake), "wheels", tmp_path / "again")


def test_manifest_check_new_known_and_mismatch(fake, tmp_path):
    from wheelfactory.manifest import Manifest, PublishedFile, save_manifest

    index = tmp_path / "index"

    def entry(name: str, sha: str) -> PublishedFile:
        return PublishedFile(filename=name, project="demo-ext", version="1.0+cu130torch2.14", sha256=sha,
                             size=1, url=f"files/{name}", upload_time="2026-11-24T10:00:00.000000Z")  # fmt: skip

    save_manifest(index, Manifest(files=(entry(W1, hashlib.sha256(wheel_bytes(W1)).hexdigest()),)))
    report = download.download_run(demo_client(fake), 77, tmp_path / "a", index=index)
    assert {f.path.name: f.status for f in report.files} == {W1: "known", W2: "new"}
    assert [f.path.name for f in report.new] == [W2]
    save_manifest(index, Manifest(files=(entry(W1, "f" * 64),)))
    with pytest.raises(PublishError, match="hash differs from the published file: " + re.escape(W1)):
        download.download_run(demo_client(fake), 77, tmp_path / "b", index=index)


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
    report = download.download_run(demo_client(fake, tries=3), 77, tmp_path / "ok")
    assert len(report.files) == 2
    fake.fail_first = 10
    with pytest.raises(NetworkError, match="failed after 2 tries"):
        download.download_run(demo_client(fake, tries=2), 77, tmp_path / "ko")


def test_token_is_refused_over_plain_http_to_a_remote_host():
    from wheelfactory.errors import ConfigError

    with pytest.raises(ConfigError, match="plain http"):
        download.GitHubClient(repo=REPO, api_url="http://api.example.com", token=TOKEN)
    with pytest.raises(ConfigError, match="OWNER/NAME"):
        download.GitHubClient(repo="no-slash", token=TOKEN)


def test_hostile_names_in_an_artifact_are_refused(fake, tmp_path):
    fake.artifact_zips[1] = artifact_zip(["../../evil-1.0-py3-none-any.whl"])
    report = download.download_run(demo_client(fake), 77, tmp_path / "out", cells=["cp311"])
    # the path parts are dropped: the file lands inside --out, under its base name only
    assert [f.path for f in report.files] == [tmp_path / "out" / "evil-1.0-py3-none-any.whl"]
    assert not (tmp_path / "evil-1.0-py3-none-any.whl").exists()
