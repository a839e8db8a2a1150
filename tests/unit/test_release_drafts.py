"""Wheels go to GitHub Releases as DRAFT -> assets -> published, and nothing is ever
uploaded into a published release (GitHub's immutable releases refuse it; without that
setting it would still change a release users already saw).

GitHub's API is the one LOCAL imitation, tests/_fake_github.py (GitHub cannot be reached
from the tests); the HTTP, the publishing and the wheels are real."""

from __future__ import annotations

import pytest
from _fake_github import FakeGitHub, fake_github
from _index_wheels import make_wheel
from wheelfactory import ghrelease
from wheelfactory import publish as pub
from wheelfactory.errors import PublishError
from wheelfactory.manifest import load_manifest

REPO, TOKEN = "owner/wheels", "ghs_draft_token"


@pytest.fixture
def fake():
    with fake_github(REPO, TOKEN) as gh:
        gh.immutable = True  # the repository's "immutable releases" setting is on
        yield gh


def stores(fake: FakeGitHub, tmp_path, tag: str):
    return ghrelease.store_from_spec(
        tmp_path / "idx", f"github:{REPO}@{tag}", api_url=fake.api_url, env={"GITHUB_TOKEN": TOKEN}
    )


def calls(fake: FakeGitHub, since: int = 0) -> list[tuple[str, str]]:
    """(method, path) of the changes the publish asked GitHub for, in order."""
    return [(m, p.split("?")[0]) for _, m, p, _ in fake.requests[since:] if m != "GET"]


def test_assets_go_into_a_draft_that_is_published_once_they_are_in(fake, tmp_path):
    new = make_wheel(tmp_path / "a")
    old = make_wheel(tmp_path / "b", cuda="128", torch="2.13")
    pub.publish([new, old], tmp_path / "idx", store=stores(fake, tmp_path, "wheels-{label}-41"))
    assert sorted(fake.releases) == ["wheels-cu128torch2.13-41", "wheels-cu130torch2.14-41"]
    assert all(r["draft"] is False for r in fake.releases.values()), "both were published"
    order = calls(fake)
    creates = [i for i, (m, _) in enumerate(order) if m == "POST" and _.endswith("/releases")]
    uploads = [i for i, (m, _) in enumerate(order) if m == "POST" and _.endswith("/assets")]
    publishes = [i for i, (m, _) in enumerate(order) if m == "PATCH"]
    assert len(creates) == 2 and len(uploads) == 4 and len(publishes) == 2, order
    # each upload went into a draft (immutable: a published release refuses them) and the
    # drafts were published only once every file was stored
    assert max(uploads) < min(publishes), order
    urls = {f.filename: f.url for f in load_manifest(tmp_path / "idx").files}
    assert urls[new.name] == ghrelease.download_url(REPO, "wheels-cu130torch2.14-41", new.name)


def test_a_later_publish_never_uploads_into_a_published_release(fake, tmp_path):
    first = make_wheel(tmp_path / "a")
    pub.publish([first], tmp_path / "idx", store=stores(fake, tmp_path, "wheels-{label}-41"))
    url = load_manifest(tmp_path / "idx").get(first.name).url
    fake.immutable = False  # GitHub would take it: the store must refuse by itself
    later = make_wheel(tmp_path / "b", version="1.0.1")
    n = len(fake.requests)
    with pytest.raises(PublishError) as e:
        pub.publish([later], tmp_path / "idx", store=stores(fake, tmp_path, "wheels-{label}-41"))
    assert str(e.value) == (
        f"refusing {later.name}: release wheels-cu130torch2.14-41 is already published, and a"
        " published release takes no new asset (immutable releases); publish to a new tag"
        " (publish.yml adds its run id to each tag)"
    )
    assert calls(fake, n) == [], "nothing uploaded, nothing changed"
    assert [f.filename for f in load_manifest(tmp_path / "idx").files] == [first.name]
    # The same file again (a re-run of that publish) is a no-op, not a refusal.
    pub.publish([first], tmp_path / "again", store=stores(fake, tmp_path, "wheels-{label}-41"))
    assert calls(fake, n) == []
    # The next publish run has its own tag; what was published keeps its URL.
    pub.publish([later], tmp_path / "idx", store=stores(fake, tmp_path, "wheels-{label}-42"))
    files = {f.filename: f.url for f in load_manifest(tmp_path / "idx").files}
    assert files == {
        first.name: url,
        later.name: ghrelease.download_url(REPO, "wheels-cu130torch2.14-42", later.name),
    }


def test_a_re_run_finishes_the_draft_its_failed_attempt_left(fake, tmp_path):
    done, missing = make_wheel(tmp_path / "a"), make_wheel(tmp_path / "b", version="1.0.1")
    draft = fake.add_release("wheels-cu130torch2.14-41", draft=True)
    fake.add_asset(draft["id"], done.name, done.read_bytes())  # uploaded before the failure
    pub.publish(
        [done, missing], tmp_path / "idx", store=stores(fake, tmp_path, "wheels-{label}-41")
    )
    assert list(fake.releases) == ["wheels-cu130torch2.14-41"], "no second release of that tag"
    assert draft["draft"] is False
    in_release = sorted(a["name"] for a in fake.assets.values() if a["_release"] == draft["id"])
    assert in_release == sorted(
        [done.name, done.name + ".metadata", missing.name, missing.name + ".metadata"]
    )
