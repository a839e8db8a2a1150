"""Publishing to GitHub Release assets against LOCAL HTTP servers that IMITATE GitHub.

GitHub is unreachable here, so tests/_fake_github.py stands in for it on 127.0.0.1, in
the shapes docs.github.com documents (rest/releases/releases, rest/releases/assets): the
API (releases, paginated asset lists, asset bytes as a 302 to storage), the uploads host
(which, like GitHub, renames a raw "+" in the name to "." and records a sha256 "digest")
and the storage host, which must never see the token.
Real HTTP and real publishing; only GitHub itself is imitated.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path
from urllib.parse import unquote

import pytest
from _fake_github import FakeGitHub, fake_github
from _index_wheels import make_wheel
from wheelfactory import ghrelease
from wheelfactory import publish as pub
from wheelfactory.cli import main
from wheelfactory.errors import PublishError
from wheelfactory.manifest import load_manifest

REPO, TAG, TOKEN = "owner/wheels", "wheels", "ghs_store_token"


@pytest.fixture
def fake():
    with fake_github(REPO, TOKEN) as gh:
        yield gh


def store(fake: FakeGitHub, **kw) -> ghrelease.GitHubReleaseStore:
    return ghrelease.GitHubReleaseStore(
        repo=REPO, tag=TAG, token=TOKEN, api_url=fake.api_url, backoff=0.01, **kw
    )


def names(fake: FakeGitHub) -> list[str]:
    return sorted(a["name"] for a in fake.assets.values())


def test_publish_uploads_wheel_and_metadata_and_links_them(fake, tmp_path):
    w = make_wheel(tmp_path / "w")
    result = pub.publish([w], tmp_path / "idx", store=store(fake))
    assert result.added == (w.name,)
    assert TAG in fake.releases, "the release was created"
    assert names(fake) == [w.name, w.name + ".metadata"], "'+' kept: it went as %2B"
    (entry,) = load_manifest(tmp_path / "idx").files
    assert entry.url == f"https://github.com/{REPO}/releases/download/{TAG}/" + w.name.replace(
        "+", "%2B"
    )
    assert unquote(entry.url.rsplit("/", 1)[1]) == w.name
    assert not (tmp_path / "idx" / "files").exists(), "nothing in the local store"
    page = (tmp_path / "idx/cu130/torch2.14/simple/demo-ext/index.html").read_text()
    assert f'href="{entry.url}#sha256={entry.sha256}"' in page
    with zipfile.ZipFile(w) as zf:
        meta = zf.read("demo_ext-1.0.0+cu130torch2.14.dist-info/METADATA")
    by_name = {a["name"]: a for a in fake.assets.values()}
    assert by_name[w.name + ".metadata"]["_data"] == meta
    assert hashlib.sha256(meta).hexdigest() == entry.metadata_sha256
    assert by_name[w.name]["_data"] == w.read_bytes()
    # The token went to the API and upload hosts, with the documented headers.
    uploads = [r for r in fake.requests if r[0] == "uploads"]
    assert len(uploads) == 2 and all(r[3]["Authorization"] == f"Bearer {TOKEN}" for r in uploads)
    assert all("%2B" in r[2] and "+" not in r[2] for r in uploads)


def test_same_asset_again_is_a_noop_other_content_is_refused(fake, tmp_path):
    w = make_wheel(tmp_path / "a")
    pub.publish([w], tmp_path / "idx1", store=store(fake))
    before = dict(fake.assets)
    # A second index (e.g. a fresh manifest) publishing the same file: no upload.
    pub.publish([w], tmp_path / "idx2", store=store(fake))
    assert fake.assets.keys() == before.keys()
    # Without GitHub's digest the store downloads the asset (through the storage
    # redirect, without the token) and compares.
    fake.digests = False
    n = len(fake.requests)
    pub.publish([w], tmp_path / "idx3", store=store(fake))
    assert fake.assets.keys() == before.keys()
    storage = [r for r in fake.requests[n:] if r[0] == "storage"]
    assert storage and all("Authorization" not in r[3] for r in storage)
    clash = make_wheel(tmp_path / "b", requires_python=">=3.11")  # same name, other bytes
    assert clash.name == w.name
    with pytest.raises(PublishError, match="bump the build tag"):
        pub.publish([clash], tmp_path / "idx4", store=store(fake))
    assert load_manifest(tmp_path / "idx4").files == ()


def test_a_starter_asset_is_replaced(fake, tmp_path):
    w = make_wheel(tmp_path / "w")
    s = store(fake)
    rid = s.release()["id"]
    fake.add_asset(rid, w.name, b"", asset_id=5, state="starter")
    pub.publish([w], tmp_path / "idx", store=s)
    assert 5 not in fake.assets and names(fake) == [w.name, w.name + ".metadata"]


def test_a_renamed_asset_is_refused(fake, tmp_path, monkeypatch):
    # Simulate a client that sends "+" raw: the imitation (like GitHub) renames it to ".".
    monkeypatch.setattr(
        ghrelease.urllib.parse, "quote", lambda s, *args, **kw: s.replace(" ", "%20")
    )
    w = make_wheel(tmp_path / "w")
    with pytest.raises(PublishError, match="installers need the exact wheel name"):
        store(fake).put(w.name, w)


def publish_cli(fake: FakeGitHub, wheel: Path, index: Path, *more: str) -> int:
    """`wheelfactory publish` of one wheel to the release TAG on the imitated GitHub."""
    return main(
        ["publish", str(wheel), "--index", str(index), "--store", f"github:{REPO}@{TAG}",
         "--api-url", fake.api_url, *more]
    )  # fmt: skip


def test_cli_with_api_and_upload_urls(fake, tmp_path, monkeypatch, capsys):
    fake.releases[TAG] = {  # a draft: a published release takes no new asset
        "id": 7,
        "tag_name": TAG,
        "draft": True,
        "upload_url": "https://uploads.invalid/x{?name}",
    }
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    w = make_wheel(tmp_path / "w")
    rc = publish_cli(
        fake, w, tmp_path / "idx",
        "--upload-url", fake.upload_url, "--index-url", "https://owner.github.io/wheels/",
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert f"published {w.name}" in capsys.readouterr().out
    assert names(fake) == [w.name, w.name + ".metadata"]
    assert load_manifest(tmp_path / "idx").files[0].url.startswith("https://github.com/")
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    w2 = make_wheel(tmp_path / "w", version="1.0.1")
    rc = publish_cli(fake, w2, tmp_path / "idx")
    err = capsys.readouterr().err
    assert rc == 10 and err.startswith("ERROR: ") and "HTTP 401" in err
    assert len(err.strip().splitlines()) == 1
    assert [f.filename for f in load_manifest(tmp_path / "idx").files] == [w.name]


def test_a_tag_with_label_gives_one_release_per_label(fake, tmp_path):
    """1080 wheels and their .metadata would not fit one release (1000 assets at most)."""
    stores = ghrelease.store_from_spec(
        tmp_path / "idx",
        f"github:{REPO}@wheels-{{label}}",
        api_url=fake.api_url,
        env={"GITHUB_TOKEN": TOKEN},
    )
    new = make_wheel(tmp_path / "a")
    old = make_wheel(tmp_path / "b", cuda="128", torch="2.13")
    pub.publish([new, old], tmp_path / "idx", store=stores)
    assert sorted(fake.releases) == ["wheels-cu128torch2.13", "wheels-cu130torch2.14"]
    by_release = {
        tag: sorted(a["name"] for a in fake.assets.values() if a["_release"] == rel["id"])
        for tag, rel in fake.releases.items()
    }
    assert by_release["wheels-cu130torch2.14"] == [new.name, new.name + ".metadata"]
    assert by_release["wheels-cu128torch2.13"] == [old.name, old.name + ".metadata"]
    urls = {f.filename: f.url for f in load_manifest(tmp_path / "idx").files}
    assert urls[old.name].startswith(
        f"https://github.com/{REPO}/releases/download/wheels-cu128torch2.13/"
    )


def test_a_full_release_is_refused_before_any_upload(fake, tmp_path):
    s = store(fake)
    rid = s.release()["id"]
    for i in range(ghrelease.MAX_ASSETS_PER_RELEASE):
        fake.add_asset(rid, f"old-{i}.whl", b"x", asset_id=10_000 + i)
    n = len(fake.requests)
    w = make_wheel(tmp_path / "w")
    with pytest.raises(
        PublishError,
        match=rf"^refusing {re.escape(w.name)}: release {TAG} already holds 1000 assets,"
        rf" GitHub's limit; publish with a tag per label"
        rf" \(--store github:{REPO}@wheels-\{{label\}}\)$",
    ):
        pub.publish([w], tmp_path / "idx", store=s)
    assert not [r for r in fake.requests[n:] if r[0] == "uploads"]
    assert load_manifest(tmp_path / "idx").files == ()
