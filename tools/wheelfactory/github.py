"""A minimal GitHub REST client: GET JSON, download bytes, bounded retries (retry.py).
Used by `download` (a run's artifacts, a release's assets) and the github: store
(ghrelease.py).

The token (``GITHUB_TOKEN``) goes only to the API host: redirects are followed by hand
and the Authorization header is dropped on any other host (signed storage URLs must
not receive it, and must not leak it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from wheelfactory.errors import ConfigError, NetworkError
from wheelfactory.retry import with_retries

T = TypeVar("T")

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
_MAX_REDIRECTS = 5
CHUNK = 1 << 20
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
PER_PAGE = 100
MAX_PAGES = 100  # of a listing: 10,000 artifacts, far more than a run holds


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # let the 3xx surface as HTTPError; GitHubClient follows it itself


@dataclass(frozen=True, kw_only=True)
class GitHubClient:
    """A minimal GitHub REST client: GET JSON, download bytes, bounded retries."""

    repo: str
    api_url: str = DEFAULT_API_URL
    token: str | None = None
    tries: int = 3
    backoff: float = 1.0
    timeout: float = 60.0
    _opener: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not _REPO_RE.match(self.repo):
            raise ConfigError(
                f"{self.repo!r} is not OWNER/NAME; pass --repo like thu-ml/SageAttention"
            )
        parsed = urllib.parse.urlsplit(self.api_url)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise ConfigError(
                f"{self.api_url!r} is not an http(s) URL; pass --api-url https://api.github.com"
            )
        if parsed.scheme == "http" and parsed.hostname not in _LOOPBACK:
            raise ConfigError(
                f"{self.api_url!r}: refusing to send a token over plain http; use https"
            )
        object.__setattr__(self, "_opener", urllib.request.build_opener(_NoRedirect()))

    # -- transport

    def _is_api_host(self, url: str) -> bool:
        a, b = urllib.parse.urlsplit(self.api_url), urllib.parse.urlsplit(url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _open(self, url: str, accept: str) -> Any:
        """Open ``url``, following redirects by hand; the token goes to the API host only."""
        for _ in range(_MAX_REDIRECTS + 1):
            if not _fetchable(url):
                # a redirect to file:// would store a local file as a download
                raise NetworkError(
                    f"refusing to fetch {url[:200]!r}: only https URLs are followed (plain http"
                    " only to 127.0.0.1); check --api-url and the asset's URL"
                )
            headers = {
                "Accept": accept,
                "User-Agent": "wheelfactory",
                "X-GitHub-Api-Version": API_VERSION,
            }
            if self.token and self._is_api_host(url):
                headers["Authorization"] = f"Bearer {self.token}"
            request = urllib.request.Request(url, headers=headers)
            try:
                return self._opener.open(request, timeout=self.timeout)
            except urllib.error.HTTPError as e:
                if e.code in (301, 302, 303, 307, 308) and e.headers.get("Location"):
                    url = urllib.parse.urljoin(url, e.headers["Location"])
                    e.close()
                    continue
                raise
        raise NetworkError(f"{url}: more than {_MAX_REDIRECTS} redirects; check --api-url")

    def _with_retries(self, what: str, func: Callable[[], T]) -> T:
        return with_retries(
            what, func, tries=self.tries, backoff=self.backoff,
            fix="retry later or check --api-url", on_http_error=lambda e: _http_hint(what, e),
        )  # fmt: skip

    def get_json(self, path: str) -> Any:
        url = self.api_url.rstrip("/") + path

        def fetch() -> Any:
            with self._open(url, "application/vnd.github+json") as resp:
                return json.loads(resp.read())

        return self._with_retries(f"GET {path}", fetch)

    def download(self, url: str, dest: Path, *, accept: str = "application/octet-stream") -> str:
        """Stream ``url`` to ``dest``; return its sha256."""

        def fetch() -> str:
            digest = hashlib.sha256()
            tmp = dest.with_name(dest.name + ".part")
            with self._open(url, accept) as resp, open(tmp, "wb") as out:
                while chunk := resp.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(tmp, dest)
            return digest.hexdigest()

        return self._with_retries(f"GET {url}", fetch)

    # -- endpoints

    def run_artifacts(self, run_id: int) -> list[dict[str, Any]]:
        artifacts: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            data = self.get_json(
                f"/repos/{self.repo}/actions/runs/{run_id}/artifacts?per_page={PER_PAGE}&page={page}"
            )
            batch = data.get("artifacts", [])
            artifacts += batch
            # a short page is the last one, whatever total_count says
            if len(batch) < PER_PAGE or len(artifacts) >= int(data.get("total_count", 0)):
                return artifacts
        msg = (
            f"run {run_id}: the artifact listing did not end after {MAX_PAGES} pages of"
            f" {PER_PAGE} (total_count {data.get('total_count')!r});"
            " check --api-url is GitHub's API"
        )
        raise NetworkError(msg)

    def newest_artifact(self, name: str, branch: str) -> dict[str, Any] | None:
        """The newest unexpired artifact ``name`` that a run on ``branch`` of this very
        repository made; None if there is none. A pull request's run may upload an artifact
        of any name, but its head is another branch or a fork: it is never taken."""
        q = urllib.parse.quote(name, safe="")
        for page in range(1, MAX_PAGES + 1):
            query = f"name={q}&per_page={PER_PAGE}&page={page}"
            data = self.get_json(f"/repos/{self.repo}/actions/artifacts?{query}")
            batch = data.get("artifacts", [])
            for a in batch:  # newest first
                run = a.get("workflow_run") or {}
                home = run.get("repository_id")
                ours = home is not None and run.get("head_repository_id") == home  # not a fork
                wanted = a.get("name") == name and not a.get("expired")
                if wanted and ours and run.get("head_branch") == branch:
                    return dict(a)
            if len(batch) < PER_PAGE:
                return None
        return None

    def file_at(self, path: str, ref: str) -> bytes | None:
        """The bytes of ``path`` on branch ``ref`` (the contents API, read fresh: no CDN
        between), or None when the branch or the file is not there."""
        q = urllib.parse.quote
        where = f"/repos/{self.repo}/contents/{q(path)}?ref={q(ref, safe='')}"
        url = self.api_url.rstrip("/") + where

        def fetch() -> bytes | None:
            try:
                with self._open(url, "application/vnd.github.raw+json") as resp:
                    return bytes(resp.read())
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    return None
                raise

        return self._with_retries(f"GET {path} of {ref}", fetch)

    def release_assets(self, tag: str) -> list[dict[str, Any]]:
        quoted = urllib.parse.quote(tag, safe="")
        data = self.get_json(f"/repos/{self.repo}/releases/tags/{quoted}")
        return list(data.get("assets", []))


def _fetchable(url: str) -> bool:
    """https anywhere; plain http only to this machine (where tests imitate GitHub)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.netloc:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)


def _http_hint(what: str, e: urllib.error.HTTPError) -> str | None:
    hint = {
        401: "set GITHUB_TOKEN to a token that can read this repository",
        403: "the token lacks permission (actions: read / contents: read) or hit a rate limit",
        404: "check --repo, the run id or tag, and that the token can see the repository",
    }.get(e.code)
    return f"{what}: HTTP {e.code}; {hint}" if hint else None
