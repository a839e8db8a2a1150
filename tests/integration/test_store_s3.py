"""Publishing to an S3-compatible bucket, against moto's S3 server on 127.0.0.1.

No cloud bucket is reachable here, so moto's server (a real HTTP server speaking the S3
API, run in a thread) IMITATES S3; boto3, the publish code and pip are real. The bucket
gets a public-read policy, as a bucket behind a public index has.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from _index_wheels import make_wheel
from wheelfactory.cli import main
from wheelfactory.manifest import load_manifest
from wheelfactory.serve import start_server

BUCKET = "wheels"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    """An empty bucket on a fresh moto server; yields its endpoint URL."""
    import boto3  # the [publish] extra
    from moto.server import ThreadedMotoServer  # the [test] extra

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto accepts any key; boto3 needs some to sign with
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    # Public reads, as a bucket behind an index is set up (a bucket policy, not object ACLs,
    # which new AWS buckets refuse).
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{BUCKET}/*"}],
    }  # fmt: skip
    client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    yield endpoint
    server.stop()


def publish(wheel: Path, index: Path, endpoint: str) -> int:
    argv = ["publish", str(wheel), "--index", str(index), "--store", f"s3://{BUCKET}/pub"]
    return main([*argv, "--endpoint-url", endpoint])


def test_publish_to_s3_then_pip_downloads_from_the_bucket(s3: str, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w")
    index = tmp_path / "index"
    assert publish(wheel, index, s3) == 0

    record = load_manifest(index).get(wheel.name)
    assert record is not None
    assert record.url == f"{s3}/{BUCKET}/pub/{wheel.name.replace('+', '%2B')}"
    assert not (index / "files").exists()  # nothing stored beside the pages
    with urllib.request.urlopen(record.url) as resp:  # what an installer fetches
        assert hashlib.sha256(resp.read()).hexdigest() == record.sha256
    with urllib.request.urlopen(record.url + ".metadata") as resp:
        assert resp.read().startswith(b"Metadata-Version:")

    # Publishing the same bytes again changes nothing.
    assert publish(wheel, index, s3) == 0

    # pip follows the page's absolute link to the bucket and checks #sha256.
    with start_server(index) as pages:
        out = tmp_path / "dl"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
             "--index-url", f"{pages.url}cu130/torch2.14/simple/", "-d", str(out), "demo-ext"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [p.name for p in out.iterdir()] == [wheel.name]
    assert (out / wheel.name).read_bytes() == wheel.read_bytes()


def test_other_bytes_under_a_stored_name_are_refused(
    s3: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bucket itself guards its files: a second index (or one whose manifest lost the
    file in a crash) cannot overwrite an object with other bytes."""
    first = make_wheel(tmp_path / "a")
    assert publish(first, tmp_path / "index-a", s3) == 0
    # Same filename, other content: a rebuild that must get a new build tag or version.
    other = make_wheel(tmp_path / "b", extra_files={"demo_ext/extra.txt": b"changed"})
    assert other.name == first.name and other.read_bytes() != first.read_bytes()
    capsys.readouterr()

    assert publish(other, tmp_path / "index-b", s3) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds other content" in err[0], err
    assert "bump the build tag or the version" in err[0]
    assert not (tmp_path / "index-b" / "manifest.json").exists()
    url = load_manifest(tmp_path / "index-a").get(first.name).url
    with urllib.request.urlopen(url) as resp:  # the published bytes are untouched
        assert resp.read() == first.read_bytes()
