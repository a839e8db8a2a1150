"""watch.yml and publish.yml, the parts that decide what happens on GitHub: the watch
step's exit status (run under bash as GitHub runs it), the proposal only when the
proposal branch does not hold the table yet, the pull request token, and publish's
manifest read from the previous publish instead of the Pages CDN.

GitHub's API is the one LOCAL imitation, tests/_fake_github.py (GitHub cannot be reached
from the tests); wheelfactory, bash, git and the HTTP are real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _fake_github import fake_github
from wheelfactory import cli, releases

ROOT = Path(__file__).resolve().parents[2]
WATCH = yaml.safe_load((ROOT / ".github/workflows/watch.yml").read_text())
REPO, TOKEN = "owner/factory", "ghs_watch_token"
TABLE_PATH = "tools/wheelfactory/resources/torch-releases.toml"


def step(workflow: dict, name_start: str) -> dict:
    (found,) = [
        s for job in workflow["jobs"].values() for s in job.get("steps", [])
        if s.get("name", "").startswith(name_start)
    ]  # fmt: skip
    return found


# --------------------------------------------------------------------------- watch


def test_a_failing_watch_fails_its_step(tmp_path):
    """GitHub runs a step's script with ``bash -e`` (no pipefail unless the step says
    ``shell: bash``): ``watch | tee`` then has tee's status and a failure passes."""
    watch_step = step(WATCH, "Read PyPI")
    assert "shell" not in watch_step  # so GitHub's default applies: bash -e {0}
    script = tmp_path / "step.sh"
    script.write_text(watch_step["run"])
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "wheelfactory").symlink_to(Path(sys.executable).with_name("wheelfactory"))
    out = tmp_path / "github"
    out.mkdir()
    env = {
        **os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "BRANCH": "wheelfactory/torch-releases", "GITHUB_OUTPUT": str(out / "output"),
        "GITHUB_STEP_SUMMARY": str(out / "summary"),
    }  # fmt: skip
    # The checkout here holds no table: watch fails at once (no network needed).
    proc = subprocess.run(
        ["bash", "-e", str(script)], cwd=out, env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "ERROR" in proc.stderr and TABLE_PATH in proc.stderr


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A checkout of main holding the table, as the watch job sees it; GitHub is the
    imitation, reached through the environment the job gives wheelfactory."""
    from test_watch import TABLE

    table = tmp_path / TABLE_PATH
    table.parent.mkdir(parents=True)
    releases.dump(releases.parse(TABLE), table)
    monkeypatch.chdir(tmp_path)
    with fake_github(REPO, TOKEN) as gh:
        for k, v in {
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_API_URL": gh.api_url,
            "GITHUB_TOKEN": TOKEN,
        }.items():
            monkeypatch.setenv(k, v)
        yield gh, table


def run_watch(monkeypatch, capsys, table: Path, output: Path) -> tuple[str, str]:
    from test_watch import Server

    with Server() as srv:
        code = cli.main([
            "watch", "--table", TABLE_PATH, "--pypi-url", srv.url, "--pytorch-index-url", srv.url,
            "--backoff", "0.01", "--proposal-branch", "wheelfactory/torch-releases",
            "--github-output", str(output),
        ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    lines = output.read_text().splitlines()
    output.unlink()
    return lines[-1], out


def test_a_proposal_is_made_once_per_change_not_once_a_day(checkout, monkeypatch, capsys, tmp_path):
    gh, table = checkout
    main_table = table.read_bytes()
    output = tmp_path / "github_output"
    # Day 1: a new torch; no proposal branch yet -> propose (push, pull request, build).
    propose, out = run_watch(monkeypatch, capsys, table, output)
    assert propose == "propose=true" and "wheelfactory/torch-releases: new" in out
    proposed = table.read_bytes()
    assert proposed != main_table
    gh.branches["wheelfactory/torch-releases"] = {TABLE_PATH: proposed}  # what the job pushed
    # Day 2: main still lacks it (the pull request is open), the branch holds it: nothing.
    table.write_bytes(main_table)
    propose, out = run_watch(monkeypatch, capsys, table, output)
    assert propose == "propose=false", out
    assert "already holds this table: nothing to push or build" in out
    assert table.read_bytes() == proposed, "the table is still written, only not proposed"
    # Day 3: upstream added more than the branch holds -> propose again.
    gh.branches["wheelfactory/torch-releases"] = {TABLE_PATH: main_table + b"# older proposal\n"}
    table.write_bytes(main_table)
    propose, out = run_watch(monkeypatch, capsys, table, output)
    assert propose == "propose=true" and "wheelfactory/torch-releases: changed" in out
    reads = [r for r in gh.requests if "/contents/" in r[2]]
    assert len(reads) == 3 and all(r[3]["Authorization"] == f"Bearer {TOKEN}" for r in reads)


def test_the_propose_step_runs_only_on_propose_and_says_when_checks_will_not_run(tmp_path):
    watch_step, propose_step = step(WATCH, "Read PyPI"), step(WATCH, "Propose")
    assert (
        "--proposal-branch" in watch_step["run"]
        and '--github-output "$GITHUB_OUTPUT"' in watch_step["run"]
    )
    assert propose_step["if"] == f"steps.{watch_step['id']}.outputs.propose == 'true'"
    token = propose_step["env"]["GH_TOKEN"]
    assert token == "${{ secrets.WHEELFACTORY_PR_TOKEN || github.token }}"
    assert "$HAS_PR_TOKEN" in propose_step["run"] and "checks will not run" in propose_step["run"]
    # The fallback's warning reaches the run's summary when the secret is empty.
    warning_block = propose_step["run"].split("fi\n", 1)[0] + "fi\n"
    assert warning_block.startswith('if [ "$HAS_PR_TOKEN" != "true" ]')
    for has, expect in (("false", True), ("true", False)):
        summary = tmp_path / f"summary-{has}"
        subprocess.run(
            ["bash", "-e", "-c", warning_block],
            env={"PATH": os.environ["PATH"], "HAS_PR_TOKEN": has,
                 "GITHUB_STEP_SUMMARY": str(summary)},
            check=True, capture_output=True,
        )  # fmt: skip
        written = summary.read_text() if summary.exists() else ""
        assert ("checks will not run" in written) is expect, (has, written)


# --------------------------------------------------------------------------- publish

PUBLISH = yaml.safe_load((ROOT / ".github/workflows/publish.yml").read_text())


@pytest.fixture
def pages(tmp_path):
    """The Pages CDN: a plain HTTP server over a folder, updated only when a test says so
    (the real one may lag a deploy by up to 10 minutes)."""
    import functools
    from http.server import SimpleHTTPRequestHandler

    from _local_http import serve_locally

    folder = tmp_path / "pages"
    folder.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server, url = serve_locally(functools.partial(Quiet, directory=str(folder)))  # type: ignore[arg-type]
    try:
        yield folder, url + "/"
    finally:
        server.shutdown()
        server.server_close()


def manifest_zip(index: Path) -> bytes:
    """The artifact actions/upload-artifact makes of ``path: site/manifest.json``."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(index / "manifest.json", "manifest.json")
    return buf.getvalue()


def restore_step(site: Path, gh, index_url: str) -> str:
    """publish.yml's restore step, its script run by bash as GitHub runs it."""
    script = step(PUBLISH, "Restore the index's manifest")["run"]
    env = {
        **os.environ, "GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": gh.api_url,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_REF_NAME": "main", "INDEX_URL": index_url,
    }  # fmt: skip
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(
        ["bash", "-e", "-c", script], cwd=site, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def published(index: Path) -> list[str]:
    from wheelfactory.manifest import load_manifest

    return sorted(f.filename for f in load_manifest(index).files)


def test_a_second_publish_right_after_the_first_keeps_every_entry(tmp_path, pages):
    """Two publishes in a row: the second starts from the manifest the first made, read
    through the API, while the CDN still serves the one from before the first."""
    from _index_wheels import make_wheel
    from wheelfactory import publish as pub

    cdn, index_url = pages
    w0, w1, w2 = (make_wheel(tmp_path / f"w{i}", version=f"1.0.{i}") for i in range(3))
    pub.publish([w0], cdn)  # long ago: the CDN serves it
    with fake_github(REPO, TOKEN) as gh:
        # publish 1 (run 501): no manifest artifact yet -> the CDN's, which is current
        run1 = tmp_path / "run1"
        run1.mkdir()
        out = restore_step(run1, gh, index_url)
        assert "no wheelfactory-manifest artifact left on main" in out and "1 file(s)" in out
        pub.publish([w1], run1 / "site")
        gh.add_artifact(501, 9001, "wheelfactory-manifest", manifest_zip(run1 / "site"))
        # ... deployed, but the CDN still serves the old manifest for a while
        # a pull request's run and a fork's may upload an artifact of that name: ignored
        bogus = tmp_path / "bogus"
        pub.publish([w2], bogus)
        gh.add_artifact(502, 9002, "wheelfactory-manifest", manifest_zip(bogus), branch="feature")
        gh.add_artifact(
            503, 9003, "wheelfactory-manifest", manifest_zip(bogus), fork=True, branch="main"
        )
        # publish 2 (run 504), right after
        run2 = tmp_path / "run2"
        run2.mkdir()
        out = restore_step(run2, gh, index_url)
        assert "artifact wheelfactory-manifest of run 501: 2 file(s)" in out
        pub.publish([w2], run2 / "site")
    assert published(run2 / "site") == sorted([w0.name, w1.name, w2.name])
    assert published(cdn) == [w0.name], "the CDN's copy would have dropped publish 1's file"


def test_publish_keeps_its_manifest_and_tags_its_releases_with_the_run_id():
    names = [s.get("name", s.get("uses", "")) for s in PUBLISH["jobs"]["publish"]["steps"]]
    restore = names.index("Restore the index's manifest from the last publish")
    keep = step(PUBLISH, "Keep the manifest for the next publish")
    assert keep["uses"].startswith("actions/upload-artifact@")
    assert (
        keep["with"]["name"] == "wheelfactory-manifest"
        and keep["with"]["path"] == "site/manifest.json"
    )
    upload = step(PUBLISH, "Upload the wheels as release assets")
    assert restore < names.index(upload["name"]) < names.index(keep["name"])
    assert '--store "github:$GITHUB_REPOSITORY@$TAG-$GITHUB_RUN_ID"' in upload["run"]
    assert "curl" not in step(PUBLISH, "Restore the index's manifest")["run"]
