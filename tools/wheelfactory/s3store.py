"""Wheel files in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO, ...).

``--store s3://BUCKET[/PREFIX]``: each file goes to ``PREFIX/<filename>`` with its sha256 in
the object's metadata, and the index links it by an absolute URL under the bucket's
public address (``--public-url``; default: the endpoint's path-style URL). Credentials come
from boto3's usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, a role);
``--endpoint-url`` (or $AWS_ENDPOINT_URL) points at a non-AWS service.

Like a release asset, a stored file never changes: the same bytes again are a no-op (a
publish that crashed after the upload is simply re-run), other bytes under the name are
refused.
"""

from __future__ import annotations

import io
import logging
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wheelfactory.errors import ConfigError, PublishError
from wheelfactory.hashing import sha256_hex

log = logging.getLogger(__name__)

SHA256_KEY = "sha256"  # object metadata key (sent as x-amz-meta-sha256)


def parse_spec(spec: str) -> tuple[str, str]:
    """"s3://bucket/some/prefix" -> ("bucket", "some/prefix")."""
    parsed = urllib.parse.urlsplit(spec)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    if parsed.scheme != "s3" or not bucket or parsed.query or parsed.fragment:
        raise ConfigError(f"store {spec!r}: write an S3 store as s3://BUCKET or s3://BUCKET/PREFIX")
    return bucket, prefix


@dataclass(frozen=True, kw_only=True)
class S3Store:
    bucket: str
    prefix: str
    public_url: str  # where readers fetch objects: <public_url>/<key>
    client: Any = field(repr=False)  # a boto3 S3 client

    def key(self, filename: str) -> str:
        return f"{self.prefix}/{filename}" if self.prefix else filename

    def url(self, filename: str) -> str:
        return f"{self.public_url.rstrip('/')}/{urllib.parse.quote(self.key(filename))}"

    def _stored_sha256(self, key: str) -> str | None:
        """The sha256 recorded on an existing object, "" if it has none, None if absent."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise PublishError(f"s3://{self.bucket}/{key}: {err}; check the credentials") from err
        return head.get("Metadata", {}).get(SHA256_KEY, "")

    def put(self, filename: str, source: Path | bytes, sha256: str | None = None) -> str:
        key = self.key(filename)
        sha = sha256 or sha256_hex(source)
        stored = self._stored_sha256(key)
        if stored == sha:
            log.info("s3://%s/%s already stored (same sha256)", self.bucket, key)
            return self.url(filename)
        if stored is not None:
            msg = (
                f"refusing {filename}: s3://{self.bucket}/{key} already holds other content"
                f" (sha256 {stored or 'not recorded'}); a published file never changes:"
                " bump the build tag or the version"
            )
            raise PublishError(msg)
        extra = {"ContentType": "application/octet-stream", "Metadata": {SHA256_KEY: sha}}
        # upload_fileobj streams, in parts for large wheels (S3 caps one PUT at 5 GB)
        with io.BytesIO(source) if isinstance(source, bytes) else source.open("rb") as fh:
            self.client.upload_fileobj(fh, self.bucket, key, ExtraArgs=extra)
        log.info("uploaded s3://%s/%s", self.bucket, key)
        return self.url(filename)


def store_from_spec(
    index: Path,
    spec: str,
    *,
    endpoint_url: str | None = None,
    public_url: str | None = None,
    env: Mapping[str, str] = os.environ,
    **_: Any,
) -> S3Store:
    """The store for ``s3://BUCKET[/PREFIX]``; endpoint from the argument or $AWS_ENDPOINT_URL."""
    try:
        import boto3
    except ImportError as err:
        msg = "an s3:// store needs boto3: pip install 'wheelfactory[publish]'"
        raise ConfigError(msg) from err
    bucket, prefix = parse_spec(spec)
    endpoint = endpoint_url or env.get("AWS_ENDPOINT_URL") or None
    if endpoint:  # S3-compatible services serve path-style URLs
        default_public = f"{endpoint.rstrip('/')}/{bucket}"
    else:
        default_public = f"https://{bucket}.s3.amazonaws.com"
    client = boto3.client("s3", endpoint_url=endpoint)
    return S3Store(
        bucket=bucket,
        prefix=prefix,
        public_url=public_url or env.get("WHEELFACTORY_S3_PUBLIC_URL") or default_public,
        client=client,
    )


__all__ = ["S3Store", "parse_spec", "store_from_spec"]
