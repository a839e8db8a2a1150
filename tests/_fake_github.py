"""One LOCAL imitation of GitHub's REST API, for every test that talks to GitHub.

GitHub cannot be reached from the test machines, so three servers on 127.0.0.1 stand in
for it, answering in the shapes docs.github.com documents (rest/actions/artifacts,
rest/releases/releases, rest/releases/assets):
- "api":
  GET /repos/{o}/{r}/actions/runs/{id}/artifacts (paginated, with total_count),
  GET /repos/{o}/{r}/actions/artifacts/{id}/zip (302 to storage),
  GET /repos/{o}/{r}/actions/artifacts?name=NAME (every run's, newest first, paginated,
  each with its ``workflow_run``: id, repository_id, head_repository_id, head_branch),
  GET /repos/{o}/{r}/contents/{path}?ref=BRANCH (raw media type; 404 without the file),
  GET /repos/{o}/{r}/releases/tags/{tag} (404 until created, and for a draft, as on GitHub),
  GET /repos/{o}/{r}/releases (newest first, drafts included), POST /repos/{o}/{r}/releases
  (``draft`` honoured), PATCH /repos/{o}/{r}/releases/{id} (``{"draft": false}`` publishes),
  GET /repos/{o}/{r}/releases/{id}/assets (paginated),
  GET and DELETE /repos/{o}/{r}/releases/assets/{id} (with Accept:
  application/octet-stream, the bytes: 302 to storage);
- "uploads": POST /repos/{o}/{r}/releases/{id}/assets?name=NAME. Like GitHub, a raw "+"
  in the query arrives as a space and the imitation renames it to "." (what
  github/rest-api-description#2968 reports), and it records a sha256 "digest"; with
  ``immutable`` set (GitHub's "immutable releases" setting) it refuses an upload into a
  published release with 422, as GitHub does;
- "storage": the signed blob host downloads are redirected to; it records the headers it
  gets, so tests can check the token never reaches it.
Real HTTP and real redirects: only GitHub itself is imitated. Every request is recorded
as (server, method, path, headers) in ``requests``. Only a request with the token gets
an answer from "api" and "uploads" (401 otherwise).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from _local_http import serve_locally

if TYPE_CHECKING:
    from wheelfactory.download import GitHubClient


def wheel_bytes(name: str) -> bytes:
    """A small zip standing in for the wheel ``name``: its bytes differ per name, and
    are the same on every call (a fixed member date, not the clock's)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("demo_ext/__init__.py", (1980, 1, 1, 0, 0, 0)), f"# {name}\n")
    return buf.getvalue()


def artifact_zip(names: list[str]) -> bytes:
    """A workflow artifact as actions/upload-artifact stores it: a zip of the files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in names:
            zf.writestr(n, wheel_bytes(n))
    return buf.getvalue()


class FakeGitHub:
    """The state the three servers share; tests arrange it and read it."""

    def __init__(self, repo: str, token: str) -> None:
        self.repo, self.token = repo, token
        self.api_url = self.upload_url = self.storage_url = ""
        self.requests: list[tuple[str, str, str, dict[str, str]]] = []
        self.runs: dict[int, list[dict[str, Any]]] = {}  # run id -> its artifacts
        self.artifacts: list[dict[str, Any]] = []  # every run's, oldest first
        self.artifact_zips: dict[int, bytes] = {}  # artifact id -> the zip storage serves
        self.releases: dict[str, dict[str, Any]] = {}  # tag -> release
        self.branches: dict[str, dict[str, bytes]] = {}  # branch -> {path: bytes}
        self.assets: dict[int, dict[str, Any]] = {}  # id -> asset (+ "_release", "_data")
        self.next_id = 100
        self.digests = True  # newer GitHub assets carry "digest"; older ones do not
        self.immutable = False  # the repository's "immutable releases" setting
        self.fail_first = 0  # "api" answers 502 this many times first
        self.redirect_to: str | None = None  # where downloads are sent instead of storage
        self.claimed_total: int | None = None  # the artifact listing's total_count, if a lie
        self.endless_listing = False  # artifact pages never run out, whatever page is asked
        self.on_storage_get: Callable[[str], None] | None = None  # called with each path asked

    # -- arranging

    def add_artifact(
        self, run_id: int, artifact_id: int, name: str, zip_bytes: bytes | None = None,
        *, branch: str = "main", fork: bool = False,
    ) -> dict[str, Any]:
        """An artifact of run ``run_id``, a run on ``branch`` of this repository (or, with
        ``fork``, a pull request's run from a fork)."""
        artifact = {
            "id": artifact_id, "name": name, "size_in_bytes": len(zip_bytes or b""), "expired": False,
            "archive_download_url": f"{self.api_url}/repos/{self.repo}/actions/artifacts/{artifact_id}/zip",
            "workflow_run": {"id": run_id, "repository_id": 1, "head_repository_id": 2 if fork else 1,
                             "head_branch": branch},
        }  # fmt: skip
        self.runs.setdefault(run_id, []).append(artifact)
        self.artifacts.append(artifact)
        if zip_bytes is not None:
            self.artifact_zips[artifact_id] = zip_bytes
        return artifact

    def add_release(self, tag: str, *, draft: bool = False) -> dict[str, Any]:
        rid = len(self.releases) + 1
        release = {
            "id": rid, "tag_name": tag, "name": tag, "draft": draft,
            "upload_url": f"{self.upload_url}/repos/{self.repo}/releases/{rid}/assets{{?name,label}}",
        }  # fmt: skip
        self.releases[tag] = release
        return release

    def add_asset(
        self,
        release_id: int,
        name: str,
        data: bytes,
        *,
        asset_id: int | None = None,
        state: str = "uploaded",
    ) -> dict[str, Any]:
        if asset_id is None:
            self.next_id += 1
            asset_id = self.next_id
        asset = {
            "id": asset_id, "name": name, "size": len(data), "state": state,
            "content_type": "application/octet-stream",
            "url": f"{self.api_url}/repos/{self.repo}/releases/assets/{asset_id}",
            "browser_download_url": f"https://github.com/{self.repo}/releases/download/x/{name}",
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "_release": release_id, "_data": data,
        }  # fmt: skip
        self.assets[asset_id] = asset
        return asset

    def public(self, asset: dict[str, Any]) -> dict[str, Any]:
        """An asset as the API shows it."""
        out = {k: v for k, v in asset.items() if not k.startswith("_")}
        if not self.digests:
            out.pop("digest", None)
        return out

    def release_assets(self, release_id: int) -> list[dict[str, Any]]:
        return [self.public(a) for a in self.assets.values() if a["_release"] == release_id]

    def requests_to(self, server: str) -> list[tuple[str, str, str, dict[str, str]]]:
        return [r for r in self.requests if r[0] == server]


def _handlers(gh: FakeGitHub) -> dict[str, type[BaseHTTPRequestHandler]]:
    class Base(BaseHTTPRequestHandler):
        server_name = ""

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _record(self) -> None:
            gh.requests.append((self.server_name, self.command, self.path, dict(self.headers)))

        def _json(self, obj: object, code: int = 200) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", gh.redirect_to or location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {gh.token}":
                self._json({"message": "Bad credentials"}, 401)
                return False
            return True

        def _rest(self) -> list[str] | None:
            """The path after /repos/{o}/{r}/, or None (answered 404) for another repo."""
            parts = urlsplit(self.path).path.strip("/").split("/")
            if parts[:3] != ["repos", *gh.repo.split("/")]:
                self._json({"message": "Not Found"}, 404)
                return None
            return parts[3:]

        def _page(self, items: list[Any]) -> tuple[list[Any], int]:
            q = parse_qs(urlsplit(self.path).query)
            per, page = int(q.get("per_page", ["30"])[0]), int(q.get("page", ["1"])[0])
            return items[(page - 1) * per : page * per], per

    class Api(Base):
        server_name = "api"

        def do_GET(self) -> None:  # noqa: N802
            self._record()
            if gh.fail_first > 0:
                gh.fail_first -= 1
                self.send_error(502)
                return
            if not self._authorized() or (rest := self._rest()) is None:
                return
            if rest[:2] == ["actions", "runs"] and rest[3:] == ["artifacts"]:
                artifacts = gh.runs.get(int(rest[2]), [])
                chunk, per = self._page(artifacts)
                if gh.endless_listing:  # a broken or hostile API: full pages, forever
                    chunk = [dict(artifacts[0], id=n) for n in range(per)]
                total = len(artifacts) if gh.claimed_total is None else gh.claimed_total
                self._json({"total_count": total, "artifacts": chunk})
            elif rest == ["actions", "artifacts"]:
                name = parse_qs(urlsplit(self.path).query).get("name", [None])[0]
                named = [a for a in reversed(gh.artifacts) if name is None or a["name"] == name]
                self._json({"total_count": len(named), "artifacts": self._page(named)[0]})
            elif rest[:2] == ["actions", "artifacts"] and rest[3:] == ["zip"]:
                self._redirect(f"{gh.storage_url}/artifacts/{rest[2]}.zip?sig=abc")
            elif rest[0] == "contents":  # the raw media type only: what wheelfactory asks for
                ref = parse_qs(urlsplit(self.path).query).get("ref", [""])[0]
                blob = gh.branches.get(ref, {}).get(unquote("/".join(rest[1:])))
                if blob is None or self.headers.get("Accept") != "application/vnd.github.raw+json":
                    self._json({"message": "Not Found"}, 404)
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/vnd.github.raw+json")
                    self.send_header("Content-Length", str(len(blob)))
                    self.end_headers()
                    self.wfile.write(blob)
            elif rest == ["releases"]:  # newest first, as GitHub lists them
                listed = [{**r, "assets": gh.release_assets(r["id"])} for r in reversed(gh.releases.values())]
                self._json(self._page(listed)[0])
            elif rest[:2] == ["releases", "tags"]:
                release = gh.releases.get(unquote("/".join(rest[2:])))
                if release is None or release.get("draft"):  # GitHub finds drafts by listing only
                    self._json({"message": "Not Found"}, 404)
                else:
                    self._json({**release, "assets": gh.release_assets(release["id"])})
            elif rest[0] == "releases" and rest[2:] == ["assets"]:
                self._json(self._page(gh.release_assets(int(rest[1])))[0])
            elif rest[:2] == ["releases", "assets"]:
                asset = gh.assets.get(int(rest[2]))
                if asset is None:
                    self._json({"message": "Not Found"}, 404)
                elif self.headers.get("Accept") == "application/octet-stream":
                    self._redirect(f"{gh.storage_url}/assets/{asset['id']}?sig=xyz")
                else:
                    self._json(gh.public(asset))
            else:
                self._json({"message": "Not Found"}, 404)

        def do_POST(self) -> None:  # noqa: N802
            self._record()
            if not self._authorized() or (rest := self._rest()) is None:
                return
            if rest != ["releases"]:
                self._json({"message": "Not Found"}, 404)
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            release = gh.add_release(body["tag_name"], draft=bool(body.get("draft", False)))
            self._json({**release, "assets": []}, 201)

        def do_PATCH(self) -> None:  # noqa: N802
            self._record()
            if not self._authorized() or (rest := self._rest()) is None:
                return
            found = [r for r in gh.releases.values() if rest[:1] == ["releases"] and rest[1:] == [str(r["id"])]]
            if not found:
                self._json({"message": "Not Found"}, 404)
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            found[0].update({k: v for k, v in body.items() if k in ("draft", "name", "body")})
            self._json({**found[0], "assets": gh.release_assets(found[0]["id"])})

        def do_DELETE(self) -> None:  # noqa: N802
            self._record()
            if not self._authorized() or (rest := self._rest()) is None:
                return
            if rest[:2] == ["releases", "assets"]:
                gh.assets.pop(int(rest[2]), None)
                self.send_response(204)
                self.end_headers()
            else:
                self._json({"message": "Not Found"}, 404)

    class Uploads(Base):
        server_name = "uploads"

        def do_POST(self) -> None:  # noqa: N802
            self._record()
            if not self._authorized():
                return
            m = re.match(rf"^/repos/{gh.repo}/releases/(\d+)/assets$", urlsplit(self.path).path)
            if not m or self.headers.get("Content-Type") != "application/octet-stream":
                self._json({"message": "Bad request"}, 400)
                return
            # parse_qs turns a raw "+" into a space, as GitHub does; GitHub then renames
            # characters it does not allow in asset names to "."
            name = re.sub(r"[^A-Za-z0-9._+-]", ".", parse_qs(urlsplit(self.path).query)["name"][0])
            data = self.rfile.read(int(self.headers["Content-Length"]))
            release_id = int(m.group(1))
            published = any(r["id"] == release_id and not r.get("draft") for r in gh.releases.values())
            if gh.immutable and published:
                self._json({"message": "Cannot upload assets to an immutable release."}, 422)
                return
            if any(a["name"] == name and a["_release"] == release_id for a in gh.assets.values()):
                self._json(
                    {"message": "Validation Failed", "errors": [{"code": "already_exists"}]}, 422
                )
                return
            self._json(gh.public(gh.add_asset(release_id, name, data)), 201)

    class Storage(Base):
        server_name = "storage"

        def do_GET(self) -> None:  # noqa: N802
            self._record()
            path = urlsplit(self.path).path
            if gh.on_storage_get is not None:
                gh.on_storage_get(path)
            if m := re.match(r"^/artifacts/(\d+)\.zip$", path):
                blob = gh.artifact_zips.get(int(m.group(1)))
            elif m := re.match(r"^/assets/(\d+)$", path):
                blob = gh.assets.get(int(m.group(1)), {}).get("_data")
            else:
                blob = None
            if blob is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)

    return {"api_url": Api, "upload_url": Uploads, "storage_url": Storage}


@contextmanager
def fake_github(repo: str, token: str) -> Iterator[FakeGitHub]:
    """The three servers running on 127.0.0.1 for the block's duration."""
    gh = FakeGitHub(repo, token)
    servers: list[ThreadingHTTPServer] = []
    try:
        for attr, handler in _handlers(gh).items():
            server, url = serve_locally(handler)
            servers.append(server)
            setattr(gh, attr, url)
        yield gh
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


# The demo project both download test files fetch: two wheels, one per CPython.
DEMO_REPO = "owner/wheels"
DEMO_TOKEN = "ghs_test_token_123"
W1 = "demo_ext-1.0+cu130torch2.14-cp311-cp311-manylinux_2_28_x86_64.whl"
W2 = "demo_ext-1.0+cu130torch2.14-cp312-cp312-manylinux_2_28_x86_64.whl"
CP311 = "wheels-demo-ext-1.0-cu130-torch2.14-cp311-linux_x86_64"
CP312 = "wheels-demo-ext-1.0-cu130-torch2.14-cp312-linux_x86_64"


@contextmanager
def demo_github(fillers: int) -> Iterator[FakeGitHub]:
    """GitHub holding the demo wheels twice. Run 77: the cp311 artifact, ``fillers``
    non-wheel artifacts, then the cp312 artifact (past 98 fillers the listing spans two
    pages of 100). Release "wheels": the same two wheels as assets 11 and 12."""
    with fake_github(DEMO_REPO, DEMO_TOKEN) as gh:
        gh.add_artifact(77, 1, CP311, artifact_zip([W1]))
        for i in range(fillers):
            gh.add_artifact(77, 1000 + i, f"logs-{i}")
        gh.add_artifact(77, 2, CP312, artifact_zip([W2]))
        release = gh.add_release("wheels")
        for asset_id, name in ((11, W1), (12, W2)):
            gh.add_asset(release["id"], name, wheel_bytes(name), asset_id=asset_id)
        yield gh


def demo_client(gh: FakeGitHub, **kw: Any) -> GitHubClient:
    """download's client for the demo repository, with the token, retrying quickly."""
    from wheelfactory.download import GitHubClient

    return GitHubClient(repo=DEMO_REPO, api_url=gh.api_url, token=DEMO_TOKEN, backoff=0.01, **kw)
