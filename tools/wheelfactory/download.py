"""Fetch built wheels from GitHub (a workflow run's artifacts, or a release's assets) and
check them against an index's manifest.

GitHub REST API shapes used (docs.github.com/en/rest/actions/artifacts and
/rest/releases/releases, /rest/releases/assets):
- ``GET /repos/{o}/{r}/actions/runs/{run_id}/artifacts?per_page=100&page=N`` ->
  ``{"total_count": n, "artifacts": [{"id", "name", "size_in_bytes", "expired",
  "archive_download_url"}]}``
- ``GET /repos/{o}/{r}/actions/artifacts/{id}/zip`` -> 302 to a short-lived storage URL
  that serves the zip
- ``GET /repos/{o}/{r}/actions/artifacts?name=NAME&per_page=100&page=N`` -> every run's
  artifacts of that name, newest first, each with ``"workflow_run": {"id",
  "repository_id", "head_repository_id", "head_branch"}`` (``--last-manifest``)
- ``GET /repos/{o}/{r}/releases/tags/{tag}`` -> ``{"assets": [{"id", "name", "size",
  "url", "browser_download_url", "digest": "sha256:..."}]}``
- ``GET /repos/{o}/{r}/releases/assets/{id}`` with ``Accept: application/octet-stream``
  -> 200 with the bytes, or 302 to storage.

The GitHub client (token only to the API host, redirects by hand) is github.py.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from wheelfactory import naming
from wheelfactory.errors import ConfigError, PublishError
from wheelfactory.github import CHUNK, DEFAULT_API_URL, GitHubClient
from wheelfactory.hashing import sha256_hex

log = logging.getLogger(__name__)

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


def _unpack_wheels(zip_path: Path, out: Path, *, artifact: str, taken: dict[str, str]) -> list[Path]:
    """Extract the .whl members of an artifact zip into ``out`` (flat), safely. ``taken``
    maps each wheel name already extracted to its artifact: a second copy is refused, as
    it would silently replace the first."""
    got = []
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for info in zf.infolist():
                if info.is_dir() or not info.filename.endswith(".whl"):
                    continue
                name = _safe_wheel_name(info.filename.rsplit("/", 1)[-1])
                if name in taken:
                    holders = f"artifact {artifact} holds two" if taken[name] == artifact else (
                        f"artifacts {taken[name]} and {artifact} both hold"
                    )
                    msg = (
                        f"{holders} {name}; one would replace the other: pick one with --cell,"
                        " or delete the stale artifact"
                    )
                    raise PublishError(msg)
                taken[name] = artifact
                target = out / name
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
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
    taken: dict[str, str] = {}  # wheel name -> the artifact it came from
    with tempfile.TemporaryDirectory(prefix="wf-artifacts-") as tmp:
        for a in artifacts:
            url = _artifact_url(client, a)
            zpath = Path(tmp) / f"{a['id']}.zip"
            log.info("downloading artifact %s (%s bytes)", a["name"], a.get("size_in_bytes", "?"))
            client.download(url, zpath, accept="application/vnd.github+json")
            paths += _unpack_wheels(zpath, out, artifact=str(a["name"]), taken=taken)
            zpath.unlink()  # peak disk ~1x the wheels, not 2x: a zip is done once unpacked
    hashes = manifest_hashes(index) if index is not None else None
    return _check_against_manifest(paths, hashes)


GPU_CHECKS_ARTIFACT = "gpu-checks"  # build.yml's gpu-check job uploads gpu-checks.json so
MANIFEST_ARTIFACT = "wheelfactory-manifest"  # publish.yml uploads the manifest it made so


def restore_manifest(
    client: GitHubClient, branch: str, out: Path, *, fallback_index: str | None = None
) -> str:
    """Write into ``out`` the manifest.json the last publish on ``branch`` left as artifact
    wheelfactory-manifest, read through the API (the Pages CDN may serve a copy up to
    10 minutes old: a publish right after another would drop the other's files). With no
    such artifact left (the first publish, or the last one is older than its retention)
    the CDN copy is current: read ``fallback_index``'s, or start empty. Returns where the
    manifest came from, for the log."""
    from wheelfactory.manifest import MANIFEST_NAME, Manifest, load_manifest, save_manifest

    out.mkdir(parents=True, exist_ok=True)
    artifact = client.newest_artifact(MANIFEST_ARTIFACT, branch)
    if artifact is not None:
        run = (artifact.get("workflow_run") or {}).get("id")
        with tempfile.TemporaryDirectory(prefix="wf-manifest-") as tmp:
            zpath = Path(tmp) / "manifest.zip"
            url = _artifact_url(client, artifact)
            client.download(url, zpath, accept="application/vnd.github+json")
            try:
                with zipfile.ZipFile(zpath) as z:
                    z.extract(MANIFEST_NAME, tmp)
            except (zipfile.BadZipFile, KeyError) as e:
                msg = (
                    f"artifact {MANIFEST_ARTIFACT} of run {run} holds no {MANIFEST_NAME} ({e});"
                    " delete that artifact, or re-run that publish"
                )
                raise PublishError(msg) from e
            manifest = load_manifest(tmp)
        source = f"artifact {MANIFEST_ARTIFACT} of run {run}"
    elif fallback_index:
        manifest = load_manifest(fallback_index)
        source = f"{fallback_index} (no {MANIFEST_ARTIFACT} artifact left on {branch})"
    else:
        manifest = Manifest()
        source = f"none (no {MANIFEST_ARTIFACT} artifact on {branch}, no index): starts empty"
    save_manifest(out, manifest)
    return f"{source}: {len(manifest.files)} file(s)"


def _artifact_url(client: GitHubClient, artifact: Mapping[str, object]) -> str:
    api = client.api_url.rstrip("/")
    fallback = f"{api}/repos/{client.repo}/actions/artifacts/{artifact['id']}/zip"
    return str(artifact.get("archive_download_url") or fallback)


def download_gpu_checks(client: GitHubClient, run_id: int, dest: Path) -> bool:
    """The results of the run's GPU check job, written to ``dest``; False when the run has
    none (no GPU runner is configured: the wheels are published not GPU-checked)."""
    found = [a for a in client.run_artifacts(run_id) if a.get("name") == GPU_CHECKS_ARTIFACT]
    if not found or found[0].get("expired"):
        log.info("run %s has no %s artifact: the wheels are not GPU-checked", run_id, GPU_CHECKS_ARTIFACT)
        return False
    url = _artifact_url(client, found[0])
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
    "MANIFEST_ARTIFACT",
    "Downloaded",
    "DownloadReport",
    "GitHubClient",
    "client_from_env",
    "download_release",
    "download_run",
    "restore_manifest",
]
