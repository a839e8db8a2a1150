"""download's refusals against the one LOCAL imitation of GitHub's REST API
(tests/_fake_github.py; GitHub cannot be reached from the tests): a digest that differs,
a redirect away from https, two artifacts holding one wheel name, and an artifact listing
that never ends. Real HTTP on 127.0.0.1 and real files; only GitHub is imitated."""

from __future__ import annotations

import re

import pytest
from _fake_github import CP311, CP312, W1, W2, artifact_zip, demo_client, demo_github, wheel_bytes
from wheelfactory import download, github
from wheelfactory.errors import NetworkError, PublishError


@pytest.fixture
def fake():
    with demo_github(fillers=128) as gh:  # 130 artifacts: two pages of 100
        yield gh


def test_a_digest_that_differs_from_githubs_is_refused(fake, tmp_path):
    report = download.download_release(demo_client(fake), "wheels", tmp_path / "ok")
    assert sorted(f.path.name for f in report.files) == [W1, W2]
    fake.assets[12]["digest"] = "sha256:" + "0" * 64
    refused = rf"^{re.escape(W2)}: sha256 \w{{12}}\.\.\. differs from GitHub's digest 0{{12}}\.\.\.;"
    with pytest.raises(PublishError, match=refused + " download again$"):
        download.download_release(demo_client(fake), "wheels", tmp_path / "ko")


def test_a_redirect_to_a_local_file_is_refused(fake, tmp_path):
    """An asset or artifact that redirects to file:// (or to plain http elsewhere) must
    not be stored as a wheel: only https is followed (http only to 127.0.0.1, for tests)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not a wheel")
    for target in (secret.as_uri(), "http://example.invalid/x.whl", "ftp://127.0.0.1/x.whl"):
        fake.redirect_to = target
        out = tmp_path / f"out-{len(fake.requests)}"
        with pytest.raises(NetworkError, match=r"^refusing to fetch .*: only https URLs are followed") as err:
            download.download_release(demo_client(fake), "wheels", out, cells=["cp311"])
        assert target in str(err.value) and len(str(err.value).splitlines()) == 1
        assert list(out.iterdir()) == [], "nothing stored"
        with pytest.raises(NetworkError, match="only https URLs are followed"):
            download.download_run(demo_client(fake), 77, out, cells=["cp311"])
        assert list(out.iterdir()) == []


def test_two_artifacts_holding_one_wheel_name_are_refused(fake, tmp_path):
    fake.artifact_zips[2] = artifact_zip([W1])  # the cp312 artifact holds the cp311 wheel too
    with pytest.raises(
        PublishError,
        match=rf"^artifacts {CP311} and {CP312} both hold {re.escape(W1)}; one would replace"
        r" the other: pick one with --cell",
    ):
        download.download_run(demo_client(fake), 77, tmp_path / "out")
    assert (tmp_path / "out" / W1).read_bytes() == wheel_bytes(W1), "the first copy stays"
    # one artifact holding two members of one name (in two folders)
    fake.artifact_zips[1] = artifact_zip([f"a/{W1}", f"b/{W1}"])
    with pytest.raises(PublishError, match=rf"^artifact {CP311} holds two {re.escape(W1)}"):
        download.download_run(demo_client(fake), 77, tmp_path / "again", cells=["cp311"])


def test_a_listing_that_never_ends_is_bounded(fake, tmp_path):
    import threading

    def listing_requests(since: int) -> list[str]:
        return [p for server, _, p, _ in fake.requests[since:] if server == "api" and "/runs/77/artifacts?" in p]

    # total_count claims more than there is: the short second page is the last one asked
    fake.claimed_total = 10**9
    before = len(fake.requests)
    assert len(download.download_run(demo_client(fake), 77, tmp_path / "ok").files) == 2
    assert len(listing_requests(before)) == 2
    # full pages whatever page is asked: refused after MAX_PAGES, never paged without end
    fake.endless_listing = True
    before = len(fake.requests)
    errors: list[Exception] = []

    def run() -> None:
        try:
            download.download_run(demo_client(fake), 77, tmp_path / "ko")
        except Exception as e:  # noqa: BLE001 - the test reads it below
            errors.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), f"still paging after 60 s: {len(listing_requests(before))} pages"
    assert len(errors) == 1 and isinstance(errors[0], NetworkError), errors
    assert re.fullmatch(
        rf"run 77: the artifact listing did not end after {github.MAX_PAGES} pages of 100"
        r" \(total_count 1000000000\); check --api-url is GitHub's API",
        str(errors[0]),
    ), errors[0]
    assert len(listing_requests(before)) == github.MAX_PAGES


def _published(index, name: str, sha256: str):
    from wheelfactory.manifest import Manifest, PublishedFile, save_manifest

    save_manifest(index, Manifest(files=(PublishedFile(
        filename=name, project="demo-ext", version="1.0+cu130torch2.14", sha256=sha256,
        size=len(wheel_bytes(name)), url=f"files/{name}", upload_time="2026-11-24T10:00:00.000000Z"),)))  # fmt: skip
    return index


@pytest.mark.parametrize("source", ["release", "run"])
def test_a_wheel_published_with_other_bytes_is_refused(fake, tmp_path, source):
    """A published wheel never changes: a download whose bytes differ from the manifest's
    hash for that name is refused, from a release and from a run."""
    import hashlib

    def fetch(out, index):
        if source == "release":
            return download.download_release(demo_client(fake), "wheels", out, index=index)
        return download.download_run(demo_client(fake), 77, out, index=index)

    same = _published(tmp_path / "same", W1, hashlib.sha256(wheel_bytes(W1)).hexdigest())
    assert {f.path.name: f.status for f in fetch(tmp_path / "a", same).files}[W1] == "known"
    other = _published(tmp_path / "other", W1, hashlib.sha256(b"the published bytes").hexdigest())
    with pytest.raises(PublishError, match=re.escape(f"hash differs from the published file: {W1} (manifest")) as e:
        fetch(tmp_path / "b", other)
    assert "\n" not in str(e.value) and "never changes" in str(e.value)


def test_each_artifact_zip_is_removed_once_unpacked(fake, tmp_path, monkeypatch):
    """A run's artifacts are as large as its wheels: keeping every zip until all are
    unpacked needs ~2x the disk. Each zip goes as soon as its wheels are out."""
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where download keeps its zips
    zips_on_disk: list[list[str]] = []  # the zips held when storage is asked for the next one
    fake.on_storage_get = lambda path: zips_on_disk.append(sorted(p.name for p in scratch.rglob("*.zip")))
    report = download.download_run(demo_client(fake), 77, tmp_path / "out")
    assert sorted(f.path.name for f in report.files) == [W1, W2]
    assert (tmp_path / "out" / W1).read_bytes() == wheel_bytes(W1)
    assert zips_on_disk == [[], []], "the first artifact's zip was still on disk at the second download"
    assert list(scratch.rglob("*.zip")) == []
