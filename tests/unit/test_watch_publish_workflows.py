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
    proc = subprocess.run(["bash", "-e", str(script)], cwd=out, env=env, capture_output=True, text=True)
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
        for k, v in {"GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": gh.api_url, "GITHUB_TOKEN": TOKEN}.items():
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
    assert "--proposal-branch" in watch_step["run"] and '--github-output "$GITHUB_OUTPUT"' in watch_step["run"]
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
            env={"PATH": os.environ["PATH"], "HAS_PR_TOKEN": has, "GITHUB_STEP_SUMMARY": str(summary)},
            check=True, capture_output=True,
        )  # fmt: skip
        written = summary.read_text() if summary.exists() else ""
        assert ("checks will not run" in written) is expect, (has, written)
