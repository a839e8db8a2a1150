"""Fetch built wheels from GitHub (a workflow run's artifacts, or a release's assets) and
check them against an index's manifest.

GitHub REST API shapes used (docs.github.com/en/rest/actions/artifacts and
/rest/releases/releases, /rest/releases/assets):
- ``GET /repos/{o}/{r}/actions/runs/{run_id}/artifacts?per_page=100&page=N`` ->
  ``{"total_count": n, "artifacts": [{"id", "name", "size_in_bytes", "expired",
  "archive_download_url"}]}``
- ``GET /repos/{o}/{r}/actions/artifacts/{id}/zip`` -> 302 to a short-lived storage URL
  that serves the zip
- ``GET /repos/{o}/{r}/releases/tags/{tag}`` -> ``{"assets": [{"id", "name", "size",
  "url", "browser_download_url", "digest": "sha256:..."}]}``
- ``GET /repos/{o}/{r}/releases/assets/{id}`` with ``Accept: application/octet-stream``
  -> 200 with the bytes, or 302 to storage.

The token (``GITHUB_TOKEN``) goes only to the API host: redirects are followed by hand
and the Authorization header is dropped on any other host (signed storage URLs must
not receive it, and must not leak it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wheelfactory import naming
from wheelfactory.errors import ConfigError, NetworkError, PublishError
from wheelfactory.hashing import sha256_hex

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
_MAX_REDIRECTS = 5
_CHUNK = 1 << 20


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
            raise ConfigError(f"{self.repo!r} is not OWNER/NAME; pass --repo like thu-ml/SageAttention")
        parsed = urllib.parse.urlsplit(self.api_url)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise ConfigError(f"{self.api_url!r} is not an http(s) URL; pass --api-url https://api.github.com")
        if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError(f"{self.api_url!r}: refusing to send a token over plain http; use https")
        object.__setattr__(self, "_opener", urllib.request.build_opener(_NoRedirect()))

    # -- transport

    def _is_api_host(self, url: str) -> bool:
        a, b = urllib.parse.urlsplit(self.api_url), urllib.parse.urlsplit(url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _open(self, url: str, accept: str) -> Any:
        """Open ``url``, following redirects by hand; the token goes to the API host only."""
        for _ in range(_MAX_REDIRECTS + 1):
            headers = {"Accept": accept, "User-Agent": "wheelfactory", "X-GitHub-Api-Version": API_VERSION}
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

    def _with_retries(self, what: str, func: Any) -> Any:
        delay = self.backoff
        for attempt in range(1, self.tries + 1):
            try:
                return func()
            except urllib.error.HTTPError as e:
                if e.code in (401, 403, 404):
                    hint = {
                        401: "set GITHUB_TOKEN to a token that can read this repository",
                        403: "the token lacks permission (actions: read / contents: read) or hit a rate limit",
                        404: "check --repo, the run id or tag, and that the token can see the repository",
                    }[e.code]
                    raise NetworkError(f"{what}: HTTP {e.code}; {hint}") from e
                err: Exception = e
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                err = e
            if attempt == self.tries:
                raise NetworkError(f"{what}: failed after {self.tries} tries ({err}); retry later or check --api-url") from err
            log.warning("%s: %s; retrying in %.1f s", what, err, delay)
            time.sleep(delay)
            delay *= 2
        raise AssertionError  # pragma: no cover

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
                while chunk := resp.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(tmp, dest)
            return digest.hexdigest()

        return self._with_retries(f"GET {url}", fetch)

    # -- endpoints

    def run_artifacts(self, run_id: int) -> list[dict[str, Any]]:
        artifacts: list[dict[str, Any]] = []
        page = 1
        while True:
            data = self.get_json(f"/repos/{self.repo}/actions/runs/{run_id}/artifacts?per_page=100&page={page}")
            batch = data.get("artifacts", [])
            artifacts += batch
            if not batch or len(artifacts) >= int(data.get("total_count", 0)):
                return artifacts
            page += 1

    def release_assets(self, tag: str) -> list[dict[str, Any]]:
        quoted = urllib.parse.quote(tag, safe="")
        data = self.get_json(f"/repos/{self.repo}/releases/tags/{quoted}")
        return list(data.get("assets", []))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True)
class Downloaded:
    path: Path
    sha256: str
    status: str  # "known" (in the manifest, hash matches), "new" (not in the manifest), "unchecked"


@dataclass(frozen=True, kw_only=True)
class DownloadReport:
    files: tuple[Downloaded, ...]

    @property
    def new(self) -> tuple[Downloaded, ...]:
        return tuple(f for f in self.files if f.status == "new")


def _matches_cells(filename: str, cells: Iterable[str]) -> bool:
    cells = list(cells)
    return not cells or any(c and c in filename for c in cells)


def _safe_wheel_name(name: str) -> str:
    """A wheel file name from an archive or the API, refused if it could escape --out."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if base != name.replace("\\", "/").split("/")[-1] or base in ("", ".", "..") or not base.endswith(".whl"):
        raise PublishError(f"refusing file name {name!r}; wheel names have no path parts")
    naming.parse_wheel(base)  # ConfigError with the expected form if it is not a wheel name
    return base


def _unpack_wheels(zip_path: Path, out: Path, *, artifact: str) -> list[Path]:
    """Extract the .whl members of an artifact zip into ``out`` (flat), safely."""
    got = []
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for info in zf.infolist():
                if info.is_dir() or not info.filename.endswith(".whl"):
                    continue
                name = _safe_wheel_name(info.filename.rsplit("/", 1)[-1])
                target = out / name
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                got.append(target)
    except zipfile.BadZipFile as e:
        raise PublishError(f"artifact {artifact}: not a zip ({e}); download it again") from e
    return got


def _check_against_manifest(paths: Iterable[Path], manifest_hashes: Mapping[str, str] | None) -> DownloadReport:
    files = []
    mismatches = []
    for path in paths:
        sha = sha256_hex(path)
        if manifest_hashes is None:
            status = "unchecked"
        elif path.name in manifest_hashes:
            if manifest_hashes[path.name] != sha:
                mismatches.append(f"{path.name} (manifest {manifest_hashes[path.name][:12]}..., got {sha[:12]}...)")
            status = "known"
        else:
            status = "new"
        files.append(Downloaded(path=path, sha256=sha, status=status))
    if mismatches:
        msg = (
            f"hash differs from the published file: {', '.join(mismatches)}; a published wheel never changes:"
            " bump the build tag or version instead of rebuilding under the same name"
        )
        raise PublishError(msg)
    for f in files:
        log.info("%s %s sha256=%s", f.status, f.path.name, f.sha256)
    return DownloadReport(files=tuple(files))


def manifest_hashes(index: str | os.PathLike[str]) -> dict[str, str]:
    from wheelfactory.manifest import load_manifest

    return {f.filename: f.sha256 for f in load_manifest(index).files}


def download_run(
    client: GitHubClient,
    run_id: int,
    out: Path,
    *,
    cells: Iterable[str] = (),
    prefix: str = "wheels-",
    index: str | os.PathLike[str] | None = None,
) -> DownloadReport:
    """Download the wheel artifacts (named ``<prefix><cell id>``) of workflow run ``run_id``."""
    cells = list(cells)
    out.mkdir(parents=True, exist_ok=True)
    artifacts = [a for a in client.run_artifacts(run_id) if str(a.get("name", "")).startswith(prefix)]
    artifacts = [a for a in artifacts if _matches_cells(str(a["name"])[len(prefix) :], cells)]
    expired = [a["name"] for a in artifacts if a.get("expired")]
    if expired:
        raise PublishError(f"run {run_id}: artifacts expired: {', '.join(expired)}; re-run the build")
    if not artifacts:
        raise PublishError(f"run {run_id} has no artifacts named {prefix}*{' matching ' + ', '.join(cells) if cells else ''}; check the run id and --cell")
    paths: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="wf-artifacts-") as tmp:
        for a in artifacts:
            url = a.get("archive_download_url") or f"{client.api_url.rstrip('/')}/repos/{client.repo}/actions/artifacts/{a['id']}/zip"
            zpath = Path(tmp) / f"{a['id']}.zip"
            log.info("downloading artifact %s (%s bytes)", a["name"], a.get("size_in_bytes", "?"))
            client.download(url, zpath, accept="application/vnd.github+json")
            paths += _unpack_wheels(zpath, out, artifact=str(a["name"]))
    hashes = manifest_hashes(index) if index is not None else None
    return _check_against_manifest(paths, hashes)


GPU_CHECKS_ARTIFACT = "gpu-checks"  # build.yml's gpu-check job uploads gpu-checks.json so


def download_gpu_checks(client: GitHubClient, run_id: int, dest: Path) -> bool:
    """The results of the run's GPU check job, written to ``dest``; False when the run has
    none (no GPU runner is configured: the wheels are published not GPU-checked)."""
    found = [a for a in client.run_artifacts(run_id) if a.get("name") == GPU_CHECKS_ARTIFACT]
    if not found or found[0].get("expired"):
        log.info("run %s has no %s artifact: the wheels are not GPU-checked", run_id, GPU_CHECKS_ARTIFACT)
        return False
    a = found[0]
    url = a.get("archive_download_url") or f"{client.api_url.rstrip('/')}/repos/{client.repo}/actions/artifacts/{a['id']}/zip"
    with tempfile.TemporaryDirectory(prefix="wf-gpu-checks-") as tmp:
        zpath = Path(tmp) / "gpu-checks.zip"
        client.download(url, zpath, accept="application/vnd.github+json")
        with zipfile.ZipFile(zpath) as z:
            names = [n for n in z.namelist() if n.endswith(".json")]
            if len(names) != 1:
                raise PublishError(f"artifact {GPU_CHECKS_ARTIFACT} of run {run_id} holds {len(names)} JSON files, not 1; re-run its gpu-check job")
            dest.write_bytes(z.read(names[0]))
    return True


def download_release(
    client: GitHubClient,
    tag: str,
    out: Path,
    *,
    cells: Iterable[str] = (),
    index: str | os.PathLike[str] | None = None,
) -> DownloadReport:
    """Download the wheel assets of release ``tag``; check GitHub's own digest when given."""
    cells = list(cells)
    out.mkdir(parents=True, exist_ok=True)
    assets = [a for a in client.release_assets(tag) if str(a.get("name", "")).endswith(".whl")]
    assets = [a for a in assets if _matches_cells(str(a["name"]), cells)]
    if not assets:
        raise PublishError(f"release {tag} has no wheel assets{' matching ' + ', '.join(cells) if cells else ''}; check the tag and --cell")
    paths = []
    for a in assets:
        name = _safe_wheel_name(str(a["name"]))
        url = a.get("url") or f"{client.api_url.rstrip('/')}/repos/{client.repo}/releases/assets/{a['id']}"
        log.info("downloading asset %s (%s bytes)", name, a.get("size", "?"))
        sha = client.download(str(url), out / name)
        digest = a.get("digest")
        if isinstance(digest, str) and digest.startswith("sha256:") and digest[7:] != sha:
            raise PublishError(f"{name}: sha256 {sha[:12]}... differs from GitHub's digest {digest[7:19]}...; download again")
        paths.append(out / name)
    hashes = manifest_hashes(index) if index is not None else None
    return _check_against_manifest(paths, hashes)


def client_from_env(repo: str | None, api_url: str | None, *, env: Mapping[str, str] = os.environ) -> GitHubClient:
    """A client for ``repo`` (default $GITHUB_REPOSITORY) at ``api_url`` (default
    $GITHUB_API_URL, else api.github.com), token from $GITHUB_TOKEN (or $GH_TOKEN)."""
    repo = repo or env.get("GITHUB_REPOSITORY")
    if not repo:
        raise ConfigError("no repository given; pass --repo OWNER/NAME or set GITHUB_REPOSITORY")
    return GitHubClient(
        repo=repo,
        api_url=api_url or env.get("GITHUB_API_URL") or DEFAULT_API_URL,
        token=env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or None,
    )


__all__ = [
    "Downloaded",
    "DownloadReport",
    "GitHubClient",
    "client_from_env",
    "download_release",
    "download_run",
]
