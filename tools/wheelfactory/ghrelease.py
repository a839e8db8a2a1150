"""A publish store that keeps wheel files as GitHub Release assets (``github:OWNER/NAME@TAG``).

Each wheel and its PEP 658 ``<wheel>.metadata`` file become assets of the release TAG;
``put`` returns the asset's public URL
``https://github.com/OWNER/NAME/releases/download/TAG/<name>``, percent-encoded, which
goes into the manifest's ``url`` (installers fetch ``<url>.metadata`` beside it).

Releases are made DRAFT first, take their assets, and are published by ``finish`` (which
publish calls once every file is stored): with GitHub's immutable releases a published
release takes no asset at all, so a store never uploads into one; a new asset for a
published release is refused (publish.yml gives each publish run its own tags). A
release's draft left by a failed attempt is found and finished by the re-run.

GitHub REST API shapes used (docs.github.com/en/rest/releases/releases, /releases/assets):
- ``GET /repos/{o}/{r}/releases/tags/{tag}`` -> ``{"id", "upload_url", "draft", ...}``
  or 404 (also for a draft: drafts are found only by listing);
- ``GET /repos/{o}/{r}/releases?per_page=100`` -> the newest releases, drafts included;
- ``POST /repos/{o}/{r}/releases`` ``{"tag_name", "name", "body", "draft": true}`` -> 201
  with the release;
- ``PATCH /repos/{o}/{r}/releases/{id}`` ``{"draft": false}`` -> 200: published;
- ``GET /repos/{o}/{r}/releases/{id}/assets?per_page=100&page=N`` -> ``[{"id", "name",
  "size", "state", "digest": "sha256:..." (newer assets), "url", "browser_download_url"}]``;
- ``POST {upload}/repos/{o}/{r}/releases/{id}/assets?name=NAME`` with the raw bytes and
  ``Content-Type: application/octet-stream`` -> 201 with the asset;
- ``DELETE /repos/{o}/{r}/releases/assets/{id}`` (a "starter" asset a failed upload left).

Asset names: GitHub renames characters it does not allow, and a ``+`` left raw in the
query string arrives as a space, which becomes ``.`` (github/rest-api-description#2968);
a ``%2B`` keeps the ``+``. A renamed wheel would not install (pip reads the version from
the file name), so an answer with another name is refused. Assets are limited to 2 GiB,
and a release to 1000 assets (GitHub answers 422 "file_count limited to 1000 assets"):
with a wheel and its .metadata per file, one release holds 500 wheels, under half of the
planned matrix. A tag with ``{label}`` (``github:OWNER/NAME@wheels-{label}``) puts
each wheel in the release of its local label (``wheels-cu130torch2.14``), the same split
as the index's pages; a full release is refused before anything is uploaded.

The token (``$GITHUB_TOKEN`` or ``$GH_TOKEN``) is sent to the API and upload hosts only,
never to the storage hosts that downloads are redirected to.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wheelfactory.github import API_VERSION, DEFAULT_API_URL, GitHubClient
from wheelfactory.errors import ConfigError, NetworkError, PublishError
from wheelfactory.hashing import sha256_hex
from wheelfactory.naming import parse_wheel

log = logging.getLogger(__name__)

MAX_ASSET_SIZE = 2 * 1024**3  # GitHub: "each file included in a release must be under 2 GiB"
MAX_ASSETS_PER_RELEASE = 1000  # GitHub: 422 "file_count limited to 1000 assets"
LABEL_FIELD = "{label}"  # in a tag: the wheel's local version label
DEFAULT_DOWNLOAD_URL = "https://github.com"
_SPEC_RE = re.compile(
    r"^github:(?P<repo>[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100})"
    r"@(?P<tag>[^\s@~^:?*\[\\]+)$"
)
RELEASE_BODY = "Wheel files of the wheelfactory index. Install from the index, not from here."


def parse_spec(spec: str) -> tuple[str, str]:
    """``github:OWNER/NAME@TAG`` -> (``OWNER/NAME``, ``TAG``)."""
    m = _SPEC_RE.match(spec)
    if not m or m.group("tag").startswith("/") or ".." in m.group("tag"):
        msg = f"store {spec!r} is not github:OWNER/NAME@TAG; write it like github:me/wheels@wheels"
        raise ConfigError(msg)
    return m.group("repo"), m.group("tag")


def download_url(repo: str, tag: str, name: str, *, base: str = DEFAULT_DOWNLOAD_URL) -> str:
    """The public URL of a release asset; ``+`` -> ``%2B`` (S3-style hosts read "+" as space)."""
    q = urllib.parse.quote
    return f"{base.rstrip('/')}/{repo}/releases/download/{q(tag, safe='')}/{q(name, safe='')}"


@dataclass(kw_only=True)
class GitHubReleaseStore:
    """Wheel files as assets of one release. Not frozen: it caches the release and its
    asset list between the ``put`` calls of one publish."""

    repo: str
    tag: str
    token: str
    api_url: str = DEFAULT_API_URL
    upload_url: str | None = None  # None: the upload_url the API gives for the release
    download_base: str = DEFAULT_DOWNLOAD_URL
    tries: int = 3
    backoff: float = 1.0
    timeout: float = 600.0
    _client: GitHubClient = field(init=False, repr=False)
    _release: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _assets: dict[str, dict[str, Any]] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.token:
            raise ConfigError(
                "no GitHub token: set GITHUB_TOKEN (contents: write) to upload assets"
            )
        self._client = GitHubClient(
            repo=self.repo,
            api_url=self.api_url,
            token=self.token,
            tries=self.tries,
            backoff=self.backoff,
            timeout=self.timeout,
        )
        if self.upload_url is not None:
            GitHubClient(repo=self.repo, api_url=self.upload_url, token=self.token)  # checks it

    # -- transport

    def _token_host(self, url: str) -> bool:
        allowed = [self.api_url] + ([self.upload_url] if self.upload_url else [])
        if self._release and self.upload_url is None:
            allowed.append(str(self._release.get("upload_url", "")))
        netloc = urllib.parse.urlsplit(url)[:2]
        return any(urllib.parse.urlsplit(a)[:2] == netloc for a in allowed)

    def _send(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> Any:
        """One request (no redirects followed); JSON answer or None. Retries 5xx/network."""

        def attempt() -> Any:
            data = body
            if hasattr(data, "seek"):
                data.seek(0)
            h = {
                "Accept": "application/vnd.github+json",
                "User-Agent": "wheelfactory",
                "X-GitHub-Api-Version": API_VERSION,
                **dict(headers or {}),
            }
            if self._token_host(url):
                h["Authorization"] = f"Bearer {self.token}"
            req = urllib.request.Request(url, data=data, method=method, headers=h)
            try:
                resp = self._client._opener.open(req, timeout=self.timeout)
            except urllib.error.HTTPError as e:
                if 400 <= e.code < 500 and e.code not in (401, 403, 404):  # not worth a retry
                    detail = e.read()[:300].decode("utf-8", "replace").replace("\n", " ")
                    raise NetworkError(
                        f"{method} {url}: HTTP {e.code} {detail}; check the release and --store"
                    ) from e
                raise
            with resp:
                if resp.status not in ok:
                    raise NetworkError(f"{method} {url}: HTTP {resp.status}; check --api-url")
                raw = resp.read()
            return json.loads(raw) if raw.strip() else None

        return self._client._with_retries(f"{method} {urllib.parse.urlsplit(url).path}", attempt)

    def _api(self, path: str) -> str:
        return self.api_url.rstrip("/") + path

    # -- release and assets

    def release(self) -> dict[str, Any]:
        """The release of ``tag``: the published one, else this tag's draft (a run that
        failed before ``finish``), else a new DRAFT: assets go in before it is published,
        as an immutable release takes none after."""
        if self._release is None:
            tag = urllib.parse.quote(self.tag, safe="")
            try:
                self._release = self._client.get_json(f"/repos/{self.repo}/releases/tags/{tag}")
            except NetworkError as e:
                if "HTTP 404" not in str(e):
                    raise
                self._release = self._draft() or self._create_draft()
        assert self._release is not None
        return self._release

    def _draft(self) -> dict[str, Any] | None:
        """This tag's draft, if any. GitHub finds drafts by listing only (not by tag); the
        newest 100 releases hold a draft left by this publish's failed attempt."""
        newest = self._client.get_json(f"/repos/{self.repo}/releases?per_page=100")
        return next((r for r in newest if r.get("draft") and r.get("tag_name") == self.tag), None)

    def _create_draft(self) -> dict[str, Any]:
        log.info("creating release %s of %s (a draft until its assets are in)", self.tag, self.repo)
        payload = {"tag_name": self.tag, "name": self.tag, "body": RELEASE_BODY, "draft": True}
        created: dict[str, Any] = self._send(
            "POST",
            self._api(f"/repos/{self.repo}/releases"),
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            ok=(201,),
        )
        return created

    def finish(self) -> None:
        """Publish the draft this store uploaded into (nothing to do for a release that
        was already published, or when nothing was stored)."""
        if self._release is None or not self._release.get("draft"):
            return
        log.info("publishing release %s of %s", self.tag, self.repo)
        self._release = self._send(
            "PATCH",
            self._api(f"/repos/{self.repo}/releases/{self._release['id']}"),
            body=json.dumps({"draft": False}).encode(),
            headers={"Content-Type": "application/json"},
        )

    def assets(self) -> dict[str, dict[str, Any]]:
        if self._assets is None:
            rid = self.release()["id"]
            found: dict[str, dict[str, Any]] = {}
            page = 1
            while True:
                batch = self._client.get_json(
                    f"/repos/{self.repo}/releases/{rid}/assets?per_page=100&page={page}"
                )
                for a in batch:
                    found[str(a["name"])] = a
                if len(batch) < 100:
                    break
                page += 1
            self._assets = found
        return self._assets

    def _upload_base(self) -> str:
        if self.upload_url:
            return (
                self.upload_url.rstrip("/")
                + f"/repos/{self.repo}/releases/{self.release()['id']}/assets"
            )
        template = str(self.release().get("upload_url") or "")
        base = template.split("{", 1)[0]
        if not base:
            raise NetworkError("the release has no upload_url; pass --upload-url")
        return base

    def _same_content(self, asset: Mapping[str, Any], sha: str, size: int) -> bool:
        if int(asset.get("size", -1)) != size:
            return False
        digest = asset.get("digest")
        if isinstance(digest, str) and digest.startswith("sha256:"):
            return digest[len("sha256:") :] == sha
        # Older assets carry no digest: download and compare.
        with tempfile.TemporaryDirectory(prefix="wf-asset-") as tmp:
            url = asset.get("url") or self._api(f"/repos/{self.repo}/releases/assets/{asset['id']}")
            return self._client.download(str(url), Path(tmp) / "asset") == sha

    # -- the Store protocol

    def put(self, filename: str, source: Path | bytes, sha256: str | None = None) -> str:
        size = len(source) if isinstance(source, bytes) else source.stat().st_size
        url = download_url(self.repo, self.tag, filename, base=self.download_base)
        if size >= MAX_ASSET_SIZE:
            msg = (
                f"refusing {filename}: {size / 2**30:.2f} GiB is over GitHub's 2 GiB limit for"
                " release assets; build fewer GPU targets per wheel or use another store"
            )
            raise PublishError(msg)
        sha = sha256 or sha256_hex(source)
        existing = self.assets().get(filename)
        if existing is not None and existing.get("state") == "uploaded":
            if self._same_content(existing, sha, size):
                log.info("asset %s already uploaded (same sha256)", filename)
                return url
            msg = (
                f"refusing {filename}: release {self.tag} already has an asset of that name with"
                f" other content (size {existing.get('size')},"
                f" {existing.get('digest') or 'no digest'});"
                " a published file never changes: bump the build tag or the version"
            )
            raise PublishError(msg)
        if not self.release().get("draft"):
            msg = (
                f"refusing {filename}: release {self.tag} is already published, and a published"
                " release takes no new asset (immutable releases); publish to a new tag"
                " (publish.yml adds its run id to each tag)"
            )
            raise PublishError(msg)
        if existing is None and len(self.assets()) >= MAX_ASSETS_PER_RELEASE:
            msg = (
                f"refusing {filename}: release {self.tag} already holds {len(self.assets())}"
                f" assets, GitHub's limit; publish with a tag per label"
                f" (--store github:{self.repo}@wheels-{LABEL_FIELD})"
            )
            raise PublishError(msg)
        if existing is not None:  # "starter": a failed upload left it; GitHub says delete it
            self._send("DELETE", self._api(f"/repos/{self.repo}/releases/assets/{existing['id']}"))
        target = (
            self._upload_base()
            + "?"
            + urllib.parse.urlencode({"name": filename}, quote_via=urllib.parse.quote)
        )
        with io.BytesIO(source) if isinstance(source, bytes) else source.open("rb") as fh:
            asset = self._send(
                "POST",
                target,
                body=fh,
                ok=(201,),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )
        if asset.get("name") != filename:
            msg = (
                f"GitHub stored {filename} as {asset.get('name')!r}; installers need the exact"
                " wheel name: delete that asset and rename the file to its PEP 427 name"
            )
            raise PublishError(msg)
        digest = asset.get("digest")
        if isinstance(digest, str) and digest.startswith("sha256:") and digest[7:] != sha:
            msg = (
                f"GitHub's sha256 of {filename} differs from the file's; delete the asset and retry"
            )
            raise PublishError(msg)
        self.assets()[filename] = asset
        log.info("uploaded %s to release %s (%d bytes)", filename, self.tag, size)
        return url


@dataclass(kw_only=True)
class LabelledReleaseStores:
    """``github:OWNER/NAME@PREFIX{label}SUFFIX``: each wheel (and its .metadata) goes to the
    release named after its local version label, one GitHubReleaseStore per release."""

    tag_template: str
    make: Callable[[str], GitHubReleaseStore]  # tag -> the store of that release
    _stores: dict[str, GitHubReleaseStore] = field(default_factory=dict, init=False)

    def tag_for(self, filename: str) -> str:
        label = parse_wheel(filename.removesuffix(".metadata"))
        if not label.is_labelled:
            raise PublishError(
                f"refusing {filename}: it has no +cuXYZtorchX.Y label for the {LABEL_FIELD}"
                f" in release tag {self.tag_template}; publish labelled wheels (wheelfactory build)"
            )
        local = label.version.split("+", 1)[1]
        return self.tag_template.replace(LABEL_FIELD, local)

    def put(self, filename: str, source: Path | bytes, sha256: str | None = None) -> str:
        tag = self.tag_for(filename)
        if tag not in self._stores:
            self._stores[tag] = self.make(tag)
        return self._stores[tag].put(filename, source, sha256)

    def finish(self) -> None:
        for store in self._stores.values():
            store.finish()


def store_from_spec(
    index: Path,
    spec: str,
    *,
    api_url: str | None = None,
    upload_url: str | None = None,
    env: Mapping[str, str] = os.environ,
    **_: Any,
) -> GitHubReleaseStore | LabelledReleaseStores:
    """The store for ``github:OWNER/NAME@TAG``; URLs from the arguments, else
    $GITHUB_API_URL / $WHEELFACTORY_GITHUB_UPLOAD_URL, else GitHub's own. A TAG with
    ``{label}`` gives one release per local version label."""
    repo, tag = parse_spec(spec)

    def make(release_tag: str) -> GitHubReleaseStore:
        return GitHubReleaseStore(
            repo=repo,
            tag=release_tag,
            token=env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or "",
            api_url=api_url or env.get("GITHUB_API_URL") or DEFAULT_API_URL,
            upload_url=upload_url or env.get("WHEELFACTORY_GITHUB_UPLOAD_URL") or None,
            download_base=env.get("GITHUB_SERVER_URL") or DEFAULT_DOWNLOAD_URL,
        )

    if LABEL_FIELD in tag:
        make(tag.replace(LABEL_FIELD, "x"))  # a missing token fails now, not at the first put
        return LabelledReleaseStores(tag_template=tag, make=make)
    return make(tag)


__all__ = [
    "GitHubReleaseStore",
    "LabelledReleaseStores",
    "MAX_ASSETS_PER_RELEASE",
    "MAX_ASSET_SIZE",
    "download_url",
    "parse_spec",
    "store_from_spec",
]
