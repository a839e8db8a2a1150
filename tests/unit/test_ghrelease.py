"""The GitHub Release store without a network: spec parsing, asset URLs, dispatch, and
the refusals that come before any request (tests/integration/test_store_github.py runs
it against an imitation of GitHub's API)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from wheelfactory import ghrelease
from wheelfactory import publish as pub
from wheelfactory.errors import ConfigError, PublishError

WHEEL = "sageattention-2.2.0+cu130torch2.14-cp312-cp312-manylinux_2_28_x86_64.whl"


@pytest.mark.parametrize(
    ("spec", "repo", "tag"),
    [("github:thu-ml/wheels@wheels", "thu-ml/wheels", "wheels"),
     ("github:o/r.x@v2.2.0+cu130", "o/r.x", "v2.2.0+cu130"),
     ("github:o/r@wheels/cu130", "o/r", "wheels/cu130")],
)
def test_spec(spec: str, repo: str, tag: str) -> None:
    assert ghrelease.parse_spec(spec) == (repo, tag)


@pytest.mark.parametrize("spec", ["github:o/r", "github:o@t", "github:o/r@", "github:o/r@a b",
                                  "github:o/r@../x", "github:-o/r@t"])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(ConfigError, match="github:OWNER/NAME@TAG"):
        ghrelease.parse_spec(spec)


def test_download_url_encodes_plus_and_round_trips() -> None:
    url = ghrelease.download_url("o/r", "v1+x", WHEEL)
    assert url == ("https://github.com/o/r/releases/download/v1%2Bx/"
                   + WHEEL.replace("+", "%2B"))
    # pip takes the file name from the URL's last segment, unquoted
    assert unquote(urlsplit(url).path.rsplit("/", 1)[1]) == WHEEL
    assert ghrelease.download_url("o/r", "t", WHEEL + ".metadata") == (
        ghrelease.download_url("o/r", "t", WHEEL) + ".metadata")


def test_dispatch_reads_token_and_urls_from_env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "t0k")
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9/api")
    store = pub.make_store("github:o/r@wheels", tmp_path, upload_url="http://127.0.0.1:9/up",
                           api_url=None)
    assert isinstance(store, ghrelease.GitHubReleaseStore)
    assert (store.repo, store.tag, store.token) == ("o/r", "wheels", "t0k")
    assert store.api_url == "http://127.0.0.1:9/api" and store.upload_url == "http://127.0.0.1:9/up"
    with pytest.raises(ConfigError, match="plain http"):
        pub.make_store("github:o/r@wheels", tmp_path, api_url="http://api.example.com")


def test_over_2_gib_is_refused_before_any_request(tmp_path: Path) -> None:
    big = tmp_path / WHEEL
    with big.open("wb") as fh:  # sparse: no 2 GiB written to disk
        fh.truncate(ghrelease.MAX_ASSET_SIZE)
    # Port 9 (discard) on 127.0.0.1: any request would fail with a NetworkError instead.
    store = ghrelease.GitHubReleaseStore(repo="o/r", tag="t", token="x", tries=1,
                                         api_url="http://127.0.0.1:9")
    with pytest.raises(PublishError, match="over GitHub's 2 GiB limit"):
        store.put(WHEEL, big)


def test_labelled_tag_names_each_wheels_release() -> None:
    spec = "github:thu-ml/wheels@wheels-{label}"
    env = {"GITHUB_TOKEN": "t"}
    stores = ghrelease.store_from_spec(Path("idx"), spec, env=env)
    assert isinstance(stores, ghrelease.LabelledReleaseStores)
    assert stores.tag_for(WHEEL) == "wheels-cu130torch2.14"
    assert stores.tag_for(WHEEL + ".metadata") == "wheels-cu130torch2.14"
    abi = WHEEL.replace("torch2.14", "torchabi")
    assert stores.tag_for(abi) == "wheels-cu130torchabi"
    with pytest.raises(PublishError, match=r"has no \+cuXYZtorchX\.Y label for the \{label\}"):
        stores.tag_for("demo-1.0-py3-none-any.whl")
    with pytest.raises(ConfigError, match="no GitHub token"):
        ghrelease.store_from_spec(Path("idx"), spec, env={})
