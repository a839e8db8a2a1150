"""`wheelfactory cache`: listing, remove and prune on a temporary $WHEELFACTORY_CACHE of
small fake entries (real files and folders, no mocks)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from filelock import FileLock
from wheelfactory import cache, cli
from wheelfactory.cache import CACHE_ENV, READY_MARK

DAY = 24 * 60 * 60
NOW = time.time()


@pytest.fixture(autouse=True)
def only_my_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    # Other subcommands may be mid-development in this tree; load only this one.
    monkeypatch.setattr(cli, "COMMANDS", {"cache": "main_cache"})


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    root.mkdir()
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


def make_env(
    root: Path, key: str, *, size: int = 1000, ready: bool = True, age_days: float = 0
) -> Path:
    """A fake build env: one file of ``size`` bytes, the ready mark when ``ready``, all
    dated ``age_days`` ago."""
    env = root / "envs" / key
    (env / "lib").mkdir(parents=True)
    (env / "lib" / "torch.so").write_bytes(b"x" * size)
    (root / "envs" / f"{key}.lock").touch()  # buildenv leaves one beside each env
    when = NOW - age_days * DAY
    if ready:
        (env / READY_MARK).write_text("{}")
        os.utime(env / READY_MARK, (when, when))
    os.utime(env, (when, when))
    return env


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["cache", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_each_env_other_folders_sizes_state_and_location(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_env(root, "cp311-torch2.14.1-cu130", size=2_500_000)
    make_env(root, "cp312-torch2.14.1-cu130", size=1000, ready=False)
    (root / "downloads" / "ab12").mkdir(parents=True)
    (root / "downloads" / "ab12" / "src.tar.gz").write_bytes(b"y" * 3000)

    code, out, _ = run(capsys)

    assert code == 0
    assert f"Build cache: {root} (set WHEELFACTORY_CACHE to move it)" in out
    rows = {line.split()[0]: line for line in out.splitlines()[3:]}
    assert set(rows) == {
        "envs/cp311-torch2.14.1-cu130", "envs/cp312-torch2.14.1-cu130", "downloads", "total",
    }  # fmt: skip
    assert "2.5 MB" in rows["envs/cp311-torch2.14.1-cu130"]
    assert rows["envs/cp311-torch2.14.1-cu130"].endswith("complete")
    assert "INCOMPLETE" in rows["envs/cp312-torch2.14.1-cu130"]
    assert "3.0 kB" in rows["downloads"]
    assert "(today)" in rows["downloads"]
    assert "2.5 MB" in rows["total"]  # 2.5 MB + 1 kB + 3 kB + the marks' bytes


def test_list_of_an_empty_or_missing_cache(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "envs").mkdir()
    (root / "envs" / "cp311-torch2.14.1-cu130.lock").touch()  # a lock alone is no entry
    assert run(capsys)[1].endswith("empty\n")
    monkeypatch.setenv(CACHE_ENV, str(root / "nowhere"))
    assert run(capsys, "list")[1].endswith("empty\n")


def test_last_used_is_the_ready_marks_time(root: Path) -> None:
    make_env(root, "cp311-torch2.14.1-cu130", age_days=40)
    (entry,) = cache.list_entries(root)
    assert NOW - entry.last_used == pytest.approx(40 * DAY, abs=5)


def test_human_size() -> None:
    assert [cache.human_size(n) for n in (0, 999, 1000, 5_400_000_000, 2 * 10**12)] == [
        "0 B", "999 B", "1.0 kB", "5.4 GB", "2.0 TB",
    ]  # fmt: skip


def test_remove_by_listed_name_or_bare_key(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_env(root, "cp311-torch2.14.1-cu130")
    b = make_env(root, "cp312-torch2.14.1-cu130")

    code, out, _ = run(capsys, "remove", "envs/cp311-torch2.14.1-cu130")
    assert (code, out) == (0, "removed envs/cp311-torch2.14.1-cu130 (1.0 kB)\n")
    assert not a.exists() and b.exists()

    assert run(capsys, "remove", "cp312-torch2.14.1-cu130")[0] == 0
    assert not b.exists()


def test_remove_of_an_unknown_name_is_one_line_with_the_nearest_names(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_env(root, "cp311-torch2.14.1-cu130")
    make_env(root, "cp311-torch2.13.0-cu128")

    code, out, err = run(capsys, "remove", "cp311-torch2.14-cu130")

    assert code == 2 and out == ""
    assert err == (
        "ERROR: no cache entry 'cp311-torch2.14-cu130'; did you mean"
        " 'envs/cp311-torch2.14.1-cu130' or 'envs/cp311-torch2.13.0-cu128'?\n"
    )
    assert len(cache.list_entries(root)) == 2

    code, _, err = run(capsys, "remove", "zzz")
    assert code == 2
    assert err == "ERROR: no cache entry 'zzz'; `wheelfactory cache` lists the entries\n"


def test_remove_refuses_an_env_that_another_process_is_creating(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = make_env(root, "cp311-torch2.14.1-cu130", ready=False)
    with FileLock(str(root / "envs" / "cp311-torch2.14.1-cu130.lock")):
        code, _, err = run(capsys, "remove", "cp311-torch2.14.1-cu130")
    assert code == 2 and "locked by another wheelfactory process" in err
    assert env.exists()


def test_prune_removes_incomplete_envs_and_with_older_than_old_ones_only(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = make_env(root, "cp311-torch2.14.1-cu130", age_days=1)
    old = make_env(root, "cp311-torch2.13.0-cu128", age_days=45)
    broken = make_env(root, "cp312-torch2.14.1-cu130", ready=False)
    (root / "downloads").mkdir()
    os.utime(root / "downloads", (NOW - 90 * DAY, NOW - 90 * DAY))

    code, out, _ = run(capsys, "prune")
    assert code == 0
    assert out.splitlines() == [
        "removed envs/cp312-torch2.14.1-cu130 (1.0 kB):"
        " incomplete (no ready mark: a failed or interrupted install)",
        "freed 1.0 kB",
    ]
    assert not broken.exists() and fresh.exists() and old.exists()

    code, out, _ = run(capsys, "prune", "--older-than", "30")
    assert code == 0
    assert "removed envs/cp311-torch2.13.0-cu128 (1.0 kB): not used for 45 days" in out
    assert not old.exists() and fresh.exists()
    assert (root / "downloads").exists()  # prune leaves everything but envs alone

    assert run(capsys, "prune", "--older-than", "30")[1] == (
        "nothing to prune: no incomplete build env, none unused for 30 days\n"
    )


def test_prune_dry_run_removes_nothing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = make_env(root, "cp312-torch2.14.1-cu130", size=2000, ready=False)
    old = make_env(root, "cp311-torch2.13.0-cu128", size=3000, age_days=45)

    code, out, _ = run(capsys, "prune", "--older-than", "30", "--dry-run")

    assert code == 0
    assert "would remove envs/cp312-torch2.14.1-cu130 (2.0 kB)" in out
    assert "would remove envs/cp311-torch2.13.0-cu128 (3.0 kB)" in out
    assert out.endswith("would free 5.0 kB\n")
    assert broken.exists() and old.exists()


def test_prune_skips_an_env_being_created(root: Path) -> None:
    env = make_env(root, "cp312-torch2.14.1-cu130", ready=False)
    with FileLock(str(root / "envs" / "cp312-torch2.14.1-cu130.lock")):
        (result,) = cache.prune(root)
    assert not result.removed and "locked" in result.skipped
    assert env.exists()


def test_links_are_listed_never_followed_and_removing_one_keeps_its_target(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "lib").mkdir(parents=True)
    (outside / "lib" / "precious.so").write_bytes(b"z" * 5000)
    (root / "envs").mkdir()
    try:
        (root / "envs" / "cp311-torch2.14.1-cu130").symlink_to(outside, target_is_directory=True)
        (root / "stubs").mkdir()
        (root / "stubs" / "libcuda.so").symlink_to(outside / "lib" / "precious.so")
    except OSError as e:  # Windows without symlink rights
        pytest.skip(f"cannot make symlinks here: {e}")

    entries = {e.name: e for e in cache.list_entries(root)}
    assert entries["envs/cp311-torch2.14.1-cu130"].is_link
    assert entries["envs/cp311-torch2.14.1-cu130"].size == 0
    assert entries["stubs"].size == 0  # the link inside, not its 5 kB target

    assert cache.prune(root, older_than_days=0) == []  # links are never pruned
    assert run(capsys, "remove", "stubs")[0] == 0
    assert run(capsys, "remove", "cp311-torch2.14.1-cu130")[0] == 0
    assert not (root / "stubs").exists()
    assert not (root / "envs" / "cp311-torch2.14.1-cu130").is_symlink()
    assert (outside / "lib" / "precious.so").read_bytes() == b"z" * 5000


def test_a_linked_envs_folder_is_one_entry_and_not_entered(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "big-disk-envs"
    make_env(tmp_path / "big-disk", "cp311-torch2.14.1-cu130", ready=False)
    (tmp_path / "big-disk" / "envs").rename(outside)
    try:
        (root / "envs").symlink_to(outside, target_is_directory=True)
    except OSError as e:
        pytest.skip(f"cannot make symlinks here: {e}")

    (entry,) = cache.list_entries(root)
    assert (entry.name, entry.is_env, entry.is_link, entry.size) == ("envs", False, True, 0)
    assert cache.prune(root) == []
    assert (outside / "cp311-torch2.14.1-cu130").exists()


def test_remove_refuses_a_path_outside_the_cache(root: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    entry = cache.Entry(name="../victim", path=victim, size=0, last_used=NOW,
                        is_env=False, is_link=False, complete=True)  # fmt: skip
    with pytest.raises(cache.ConfigError, match="not an entry of the cache"):
        cache.remove(entry, root)
    assert victim.exists()
