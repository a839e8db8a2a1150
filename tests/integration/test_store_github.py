"""Publishing to GitHub Release assets against LOCAL HTTP servers that IMITATE GitHub.

GitHub is unreachable here, so three servers on 127.0.0.1 stand in for it, answering in
the shapes docs.github.com documents (rest/releases/releases, rest/releases/assets):
- "api": GET /repos/{o}/{r}/releases/tags/{tag} (404 until created),
  POST /repos/{o}/{r}/releases, GET /repos/{o}/{r}/releases/{id}/assets (paginated),
  GET and DELETE /repos/{o}/{r}/releases/assets/{id} (the bytes: 302 to storage);
- "uploads": POST /repos/{o}/{r}/releases/{id}/assets?name=NAME. Like GitHub, a raw "+"
  in the query arrives as a space and the imitation renames it to "." (what
  github/rest-api-description#2968 reports), and it records a sha256 "digest";
- "storage": where asset downloads are redirected; it must never see the token.
Real HTTP and real publishing; only GitHub itself is imitated.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from _index_wheels import make_wheel
from _local_http import serve_locally
from wheelfactory import ghrelease
from wheelfactory import publish as pub
from wheelfactory.cli import main
from wheelfactory.errors import PublishError
from wheelfactory.manifest import load_manifest

REPO, TAG, TOKEN = "owner/wheels", "wheels", "ghs_store_token"


class Fake:
    def __init__(self) -> None:
        self.releases: dict[str, dict] = {}
        self.assets: dict[int, dict] = {}  # id -> asset (+ "_data")
        self.next_id = 100
        self.requests: list[tuple[str, str, str, dict]] = []  # (server, method, path, headers)
        self.digests = True  # newer GitHub assets carry "digest"; older ones do not
        self.api_url = self.upload_url = self.storage_url = ""

    def public(self, a: dict) -> dict:
        out = {k: v for k, v in a.items() if not k.startswith("_")}
        if not self.digests:
            out.pop("digest", None)
        return out


@pytest.fixture
def fake():
    state = Fake()

    class Base(BaseHTTPRequestHandler):
        server_name = ""

        def log_message(self, *a):
            pass

        def _record(self) -> None:
            state.requests.append((self.server_name, self.command, self.path, dict(self.headers)))

        def _json(self, obj, code=200):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._json({"message": "Bad credentials"}, 401)
                return False
            return True

    class Api(Base):
        server_name = "api"

        def _parts(self):
            parts = urlsplit(self.path).path.strip("/").split("/")
            if parts[:3] != ["repos", *REPO.split("/")]:
                return None
            return parts[3:]

        def do_GET(self):
            self._record()
            rest = self._parts()
            if rest is None or not self._authorized():
                return None if rest is not None else self._json({"message": "Not Found"}, 404)
            if rest[:2] == ["releases", "tags"]:
                tag = unquote("/".join(rest[2:]))
                rel = state.releases.get(tag)
                return self._json(rel) if rel else self._json({"message": "Not Found"}, 404)
            if rest[0] == "releases" and rest[2:] == ["assets"]:
                q = parse_qs(urlsplit(self.path).query)
                per, page = int(q.get("per_page", ["30"])[0]), int(q.get("page", ["1"])[0])
                mine = [
                    state.public(a) for a in state.assets.values() if a["_release"] == int(rest[1])
                ]
                return self._json(mine[(page - 1) * per : page * per])
            if rest[:2] == ["releases", "assets"]:
                a = state.assets.get(int(rest[2]))
                if a is None:
                    return self._json({"message": "Not Found"}, 404)
                if self.headers.get("Accept") == "application/octet-stream":
                    self.send_response(302)
                    self.send_header("Location", f"{state.storage_url}/blob/{a['id']}?sig=1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return self._json(state.public(a))
            return self._json({"message": "Not Found"}, 404)

        def do_POST(self):
            self._record()
            rest = self._parts()
            if rest != ["releases"] or not self._authorized():
                return self._json({"message": "Not Found"}, 404) if rest != ["releases"] else None
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            rid = len(state.releases) + 1
            rel = {
                "id": rid,
                "tag_name": body["tag_name"],
                "name": body.get("name"),
                "draft": False,
                "assets": [],
                "upload_url": f"{state.upload_url}/repos/{REPO}/releases/{rid}/assets"
                "{?name,label}",
            }
            state.releases[body["tag_name"]] = rel
            return self._json(rel, 201)

        def do_DELETE(self):
            self._record()
            rest = self._parts()
            if rest and rest[:2] == ["releases", "assets"] and self._authorized():
                state.assets.pop(int(rest[2]), None)
                self.send_response(204)
                self.end_headers()

    class Uploads(Base):
        server_name = "uploads"

        def do_POST(self):
            self._record()
            if not self._authorized():
                return None
            m = re.match(rf"^/repos/{REPO}/releases/(\d+)/assets$", urlsplit(self.path).path)
            if not m or self.headers.get("Content-Type") != "application/octet-stream":
                return self._json({"message": "Bad request"}, 400)
            # parse_qs turns a raw "+" into a space, as GitHub does; GitHub then renames
            # characters it does not allow in asset names to "."
            name = re.sub(r"[^A-Za-z0-9._+-]", ".", parse_qs(urlsplit(self.path).query)["name"][0])
            data = self.rfile.read(int(self.headers["Content-Length"]))
            if any(
                a["name"] == name and a["_release"] == int(m.group(1))
                for a in state.assets.values()
            ):
                return self._json(
                    {"message": "Validation Failed", "errors": [{"code": "already_exists"}]}, 422
                )
            state.next_id += 1
            aid = state.next_id
            asset = {
                "id": aid,
                "name": name,
                "size": len(data),
                "state": "uploaded",
                "content_type": "application/octet-stream",
                "url": f"{state.api_url}/repos/{REPO}/releases/assets/{aid}",
                "browser_download_url": f"https://github.com/{REPO}/releases/download/x/{name}",
                "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
                "_release": int(m.group(1)),
                "_data": data,
            }
            state.assets[aid] = asset
            return self._json(state.public(asset), 201)

    class Storage(Base):
        server_name = "storage"

        def do_GET(self):
            self._record()
            aid = int(urlsplit(self.path).path.rsplit("/", 1)[1])
            data = state.assets[aid]["_data"]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    servers = []
    for cls, attr in ((Api, "api_url"), (Uploads, "upload_url"), (Storage, "storage_url")):
        server, url = serve_locally(cls)
        servers.append(server)
        setattr(state, attr, url)
    yield state
    for s in servers:
        s.shutdown()


def store(fake: Fake, **kw) -> ghrelease.GitHubReleaseStore:
    return ghrelease.GitHubReleaseStore(
        repo=REPO, tag=TAG, token=TOKEN, api_url=fake.api_url, backoff=0.01, **kw
    )


def names(fake: Fake) -> list[str]:
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
    fake.assets[5] = {
        "id": 5,
        "name": w.name,
        "size": 0,
        "state": "starter",
        "_release": rid,
        "_data": b"",
        "url": f"{fake.api_url}/repos/{REPO}/releases/assets/5",
    }
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


def test_cli_with_api_and_upload_urls(fake, tmp_path, monkeypatch, capsys):
    fake.releases[TAG] = {
        "id": 7,
        "tag_name": TAG,
        "upload_url": "https://uploads.invalid/x{?name}",
    }
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    w = make_wheel(tmp_path / "w")
    rc = main(
        [
            "publish",
            str(w),
            "--index",
            str(tmp_path / "idx"),
            "--store",
            f"github:{REPO}@{TAG}",
            "--api-url",
            fake.api_url,
            "--upload-url",
            fake.upload_url,
            "--index-url",
            "https://owner.github.io/wheels/",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert f"published {w.name}" in capsys.readouterr().out
    assert names(fake) == [w.name, w.name + ".metadata"]
    assert load_manifest(tmp_path / "idx").files[0].url.startswith("https://github.com/")
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    w2 = make_wheel(tmp_path / "w", version="1.0.1")
    rc = main(
        [
            "publish",
            str(w2),
            "--index",
            str(tmp_path / "idx"),
            "--store",
            f"github:{REPO}@{TAG}",
            "--api-url",
            fake.api_url,
        ]
    )
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
        fake.assets[10_000 + i] = {"id": 10_000 + i, "name": f"old-{i}.whl", "size": 1,
                                   "state": "uploaded", "_release": rid, "_data": b"x"}  # fmt: skip
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
