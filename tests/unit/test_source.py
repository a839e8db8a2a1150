from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from wheelfactory import source
from wheelfactory.errors import SourceError
from wheelfactory.hashing import sha256_hex
from wheelfactory.recipe import Recipe, Source, load_recipe

ROOT = Path(__file__).resolve().parents[2]


def make_tree(path: Path) -> Path:
    (path / "pkg").mkdir(parents=True)
    (path / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    (path / "pkg" / "__init__.py").write_text("")
    (path / "build").mkdir()
    (path / "build" / "stale.o").write_text("old")
    return path


def make_tarball(path: Path, top: str = "dep-1.0") -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        data = b"#pragma once\n"
        info = tarfile.TarInfo(f"{top}/include/dep.h")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def test_local_tree_is_copied_without_build_outputs(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "user")
    recipe = Recipe(path=None, name="pkg", version=None, source=None)
    prepared = source.prepare_source(
        recipe, tmp_path / "work", local=tree, cache=tmp_path / "cache"
    )
    assert prepared.tree != tree and (prepared.tree / "setup.py").exists()
    assert not (prepared.tree / "build").exists()
    assert prepared.main.kind == "local" and prepared.main.pin == f"local:{tree.resolve()}"


def test_no_source_at_all_is_one_line_error(tmp_path: Path) -> None:
    recipe = Recipe(path=Path("r.toml"), name="pkg", version=None, source=None)
    with pytest.raises(SourceError, match=r"r.toml has no \[source\]: pass --source DIR"):
        source.prepare_source(recipe, tmp_path / "work", cache=tmp_path / "cache")


def test_extra_source_archive_is_checked_and_placed(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "user")
    (tree / "csrc" / "dep").mkdir(parents=True)  # a stale clone: the pinned source replaces it
    (tree / "csrc" / "dep" / "stale.h").write_text("")
    sha = make_tarball(tmp_path / "dep.tar.gz")
    extra = Source(url="dep.tar.gz", sha256=sha, name="dep", dest="csrc/dep")
    recipe = Recipe(
        path=tmp_path / "r.toml", name="pkg", version=None, source=None, extra_sources=(extra,)
    )
    prepared = source.prepare_source(
        recipe, tmp_path / "work", local=tree, cache=tmp_path / "cache"
    )
    assert (prepared.tree / "csrc/dep/include/dep.h").exists()
    assert not (prepared.tree / "csrc/dep/stale.h").exists()
    assert prepared.extras[0].sha256 == sha
    bad = Recipe(
        path=tmp_path / "r.toml",
        name="pkg",
        version=None,
        source=None,
        extra_sources=(Source(url="dep.tar.gz", sha256="0" * 64, name="dep", dest="csrc/dep"),),
    )
    with pytest.raises(SourceError, match=r"has sha256 [0-9a-f]{64}, not the pinned 0{64}"):
        source.prepare_source(bad, tmp_path / "work2", local=tree, cache=tmp_path / "cache")


def test_fixture_recipe_pins_the_committed_archive() -> None:
    recipe = load_recipe(ROOT / "tests/fixtures/gpu_probe_ext.toml")
    (extra,) = recipe.extra_sources
    assert sha256_hex(ROOT / "tests/fixtures" / extra.url) == extra.sha256


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_source_fetches_exact_commit(tmp_path: Path) -> None:
    repo = make_tree(tmp_path / "upstream")
    shutil.rmtree(repo / "build")

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args],
            check=True,
            capture_output=True,
            text=True,
            env={
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@t",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@t",
                "PATH": "/usr/bin:/bin",
            },
        ).stdout.strip()

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "one")
    first = git("rev-parse", "HEAD")
    (repo / "pkg" / "new.py").write_text("")
    git("add", ".")
    git("commit", "-q", "-m", "two")
    recipe = Recipe(
        path=None, name="pkg", version=None, source=Source(git=f"file://{repo}", commit=first)
    )
    prepared = source.prepare_source(recipe, tmp_path / "work", cache=tmp_path / "cache")
    assert prepared.main.commit == first and prepared.main.kind == "git"
    assert not (prepared.tree / "pkg" / "new.py").exists()
    missing = Recipe(
        path=None, name="pkg", version=None, source=Source(git=f"file://{repo}", commit="1" * 40)
    )
    with pytest.raises(SourceError):
        source.prepare_source(missing, tmp_path / "work3", cache=tmp_path / "cache")


def test_resume_keeps_compiled_objects_and_syncs_only_changed_files(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "user")
    (tree / "csrc" / "dep").mkdir(parents=True)  # replaced by the extra source below
    (tree / "csrc" / "dep" / "stale.h").write_text("")
    sha = make_tarball(tmp_path / "dep.tar.gz")
    extra = Source(url="dep.tar.gz", sha256=sha, name="dep", dest="csrc/dep")
    recipe = Recipe(
        path=tmp_path / "r.toml", name="pkg", version=None, source=None, extra_sources=(extra,)
    )
    work, cache = tmp_path / "work", tmp_path / "cache"
    first = source.prepare_source(recipe, work, local=tree, cache=cache)
    # what an interrupted build left: an object, and the untouched copy of a source
    (first.tree / "build").mkdir()
    (first.tree / "build" / "kernel.o").write_text("compiled")
    copied_init = first.tree / "pkg" / "__init__.py"
    ctime_before = copied_init.stat().st_ctime_ns
    (tree / "setup.py").write_text("from setuptools import setup\nsetup(name='pkg')\n")

    resumed = source.prepare_source(recipe, work, local=tree, cache=cache, resume=True)
    assert resumed.tree == first.tree
    assert (resumed.tree / "build" / "kernel.o").read_text() == "compiled"
    assert (resumed.tree / "setup.py").read_text().endswith("setup(name='pkg')\n")  # re-synced
    assert copied_init.stat().st_ctime_ns == ctime_before  # unchanged: not written again
    # the extra source placed over csrc/dep stays; the user's stale copy is not synced back
    assert (resumed.tree / "csrc/dep/include/dep.h").exists()
    assert not (resumed.tree / "csrc/dep/stale.h").exists()
    assert resumed.extras == first.extras and resumed.main.pin == first.main.pin

    # without --resume the work dir starts afresh
    fresh = source.prepare_source(recipe, work, local=tree, cache=cache)
    assert not (fresh.tree / "build").exists()


def test_resume_refuses_a_work_dir_of_other_sources(tmp_path: Path) -> None:
    recipe = Recipe(path=None, name="pkg", version=None, source=None)
    work, cache = tmp_path / "work", tmp_path / "cache"
    source.prepare_source(recipe, work, local=make_tree(tmp_path / "a"), cache=cache)
    other = make_tree(tmp_path / "b")
    with pytest.raises(
        SourceError,
        match=r"^--resume: .*work holds a build of local:.*/a, not local:.*/b .*: drop --resume"
        r" for a fresh build, or pass another --work-dir$",
    ):
        source.prepare_source(recipe, work, local=other, cache=cache, resume=True)
    # nothing to resume in an empty work dir: a fresh start, not an error
    prepared = source.prepare_source(
        recipe, tmp_path / "empty", local=other, cache=cache, resume=True
    )
    assert (prepared.tree / "setup.py").exists()


def test_cli_resume_without_a_work_dir_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wheelfactory.cli import main
    from wheelfactory.errors import ConfigError

    rc = main(
        ["build", str(ROOT / "recipes/sageattention.toml"), "--torch", "2.14.1", "--cuda", "13.0",
         "--out", str(tmp_path / "out"), "--resume"]
    )  # fmt: skip
    assert rc == ConfigError.return_code
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("ERROR")]
    assert err == ["ERROR: --resume needs --work-dir DIR: pass the work dir of the build to resume"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("url", "host", "reason"),
    [
        ("https://wheelfactory.invalid/thu-ml/x.git", "wheelfactory.invalid", "Could not resolve host"),
        ("http://127.0.0.1:{port}/x.git", "127.0.0.1", "Failed to connect"),  # nothing listens there
    ],
)
def test_an_unreachable_git_host_is_named_as_a_network_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, url: str, host: str, reason: str
) -> None:
    """DNS or connection failures are not a server refusing the shallow fetch (issue 27: a
    DNS failure was logged as "shallow fetch ... refused", then retried in full)."""
    import logging
    import socket

    from wheelfactory.errors import NetworkError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    caplog.set_level(logging.INFO, logger="wheelfactory")
    commit = "1" * 40
    with pytest.raises(NetworkError) as info:
        source.fetch_git(url.format(port=port), commit, tmp_path / "src")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"cannot reach {host} to fetch ") and f"(network or DNS: " in text
    assert reason in text
    assert text.endswith(f"or pass --source DIR with a checkout of commit {commit}")
    assert "refused" not in caplog.text
