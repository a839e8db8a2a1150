"""Fault injection: kill publish, yank and unyank before each change they make to an
index's folder, at every one of them, and check what a crash leaves and what recovers.

WHEELFACTORY_CRASH_AT=N makes the real CLI (a subprocess) die with os._exit just before
its N-th change (publish.py's _before_change: each stored file and its rename, each temp
page, the journal's states, each rename into place, the journal's removal). For every N:
- the crashed tree is a valid index: every page parses, every link resolves, and every
  file a page links exists with the sha256 the page promises (and its .metadata too);
- running the same command again gives, byte for byte, the tree an uninterrupted run
  gives, with no temp files left.
N counts up until the command no longer crashes: that is all of its changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import urllib.parse
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _index_wheels import index_tree, make_wheel
from wheelfactory import _proc
from wheelfactory.publish import CRASH_ENV

ENV = dict(os.environ, SOURCE_DATE_EPOCH="1798761600")  # same upload times in every run


@pytest.fixture(autouse=True)
def _private_tmpdir(tmp_path_factory) -> None:
    # A killed publish cannot remove its wheel snapshots: keep them out of the real /tmp.
    ENV["TMPDIR"] = str(tmp_path_factory.mktemp("killed-runs-tmp"))


def wf(*args: str, crash_at: int | None = None) -> int:
    env = dict(ENV, **({CRASH_ENV: str(crash_at)} if crash_at else {}))
    cmd = [sys.executable, "-m", "wheelfactory", *args]
    return _proc.run(cmd, env=env, check=False, echo=False).returncode


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and dict(attrs).get("href"):
            self.links.append(dict(attrs))


def _resolve(index: Path, page: Path, url: str) -> Path | None:
    """The file a relative link names (None: an absolute URL, outside the index)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme or parts.netloc:
        return None
    target = (page.parent / urllib.parse.unquote(parts.path)).resolve()
    assert target.is_relative_to(index.resolve()), (page, url)
    return target / "index.html" if url.split("#")[0].endswith("/") or target.is_dir() else target


def _check_file(target: Path, sha256: str | None, where: str) -> None:
    assert target.is_file(), f"{where} links {target}, which is missing"
    if sha256:
        assert hashlib.sha256(target.read_bytes()).hexdigest() == sha256, where


def assert_valid_index(index: Path) -> None:
    json.loads((index / "manifest.json").read_bytes())
    for page in index.rglob("index.json"):
        data = json.loads(page.read_bytes())  # strict: a torn page would not parse
        for f in data.get("files", []):
            target = _resolve(index, page, f["url"])
            if target is not None:
                _check_file(target, f["hashes"]["sha256"], str(page))
                meta = f.get("core-metadata")
                if isinstance(meta, dict):
                    sidecar = target.with_name(target.name + ".metadata")
                    _check_file(sidecar, meta["sha256"], str(page))
    for page in index.rglob("index.html"):
        text = page.read_text(encoding="utf-8")
        assert text.rstrip().endswith("</html>"), f"{page} is cut short"
        parser = _Links()
        parser.feed(text)
        for link in parser.links:
            href = str(link["href"])
            target = _resolve(index, page, href)
            if target is None or href.startswith("#"):
                continue
            fragment = urllib.parse.urlsplit(href).fragment
            _check_file(target, fragment.removeprefix("sha256=") if fragment else None, str(page))
            meta = link.get("data-dist-info-metadata") or link.get("data-core-metadata")
            if meta and meta.startswith("sha256="):
                _check_file(target.with_name(target.name + ".metadata"), meta[7:], str(page))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An index with demo-ext 1.0.0 for torch 2.14 and 1.0.1 for torch 2.13 (yanked), and
    two new wheels to publish into it."""
    tmp = tmp_path_factory.mktemp("crash")
    old = [
        make_wheel(tmp / "w", version="1.0.0", torch="2.14"),
        make_wheel(tmp / "w", version="1.0.1", torch="2.13"),
    ]
    index = tmp / "index"
    assert wf("publish", *map(str, old), "--index", str(index)) == 0
    assert wf("yank", old[1].name, "--index", str(index), "--reason", "broken") == 0
    return {
        "index": index,
        "old": old[0],
        "yanked": old[1],
        "new_a": make_wheel(tmp / "w", version="1.1.0", torch="2.14"),
        # a new project in a new view: lists must not link its pages before they exist
        "new_b": make_wheel(tmp / "w", name="other_ext", version="0.1.0", torch="2.12"),
    }


OPERATIONS: dict[str, Callable[[dict[str, Path]], list[str]]] = {
    "publish": lambda b: ["publish", str(b["new_a"]), str(b["new_b"])],
    "yank": lambda b: ["yank", b["old"].name, "--reason", "wrong numbers on sm_90"],
    "unyank": lambda b: ["unyank", b["yanked"].name],
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_crash_before_any_change_recovers(
    operation: str, base: dict[str, Path], tmp_path: Path
) -> None:
    args = OPERATIONS[operation](base)
    uninterrupted = tmp_path / "uninterrupted"
    shutil.copytree(base["index"], uninterrupted)
    assert wf(*args, "--index", str(uninterrupted)) == 0
    expected = index_tree(uninterrupted)
    assert expected != index_tree(base["index"]), (
        f"{operation} changed nothing: the test proves nothing"
    )

    crash_points = 0
    for n in range(1, 500):
        index = tmp_path / f"crash-{n}"
        shutil.copytree(base["index"], index)
        code = wf(*args, "--index", str(index), crash_at=n)
        if code == 0:  # n is past the last change: the command ran to its end
            assert index_tree(index) == expected
            break
        assert code == 86, f"{operation} crashed at change {n} with {code}, not the injected 86"
        crash_points += 1
        assert_valid_index(index)
        assert wf(*args, "--index", str(index)) == 0, f"{operation} again after crash {n}"
        assert index_tree(index) == expected, f"{operation}: recovery after crash {n} differs"
        assert not list(index.rglob(".*.tmp")), f"{operation}: temp files after crash {n}"
        shutil.rmtree(index)
    else:
        pytest.fail(f"{operation} still crashed after 500 changes")
    # publish stores 2 wheels and 2 metadata files (write + rename each) and commits pages
    # for two views; yank and unyank commit a handful of pages.
    assert crash_points >= (20 if operation == "publish" else 5), crash_points
    print(f"{operation}: {crash_points} crash points, all recovered")


@pytest.mark.parametrize(
    "ops",
    [
        [["delete", "../victim"]],
        [["replace", "index.html", "../victim"]],
        [["delete", "index.html"], ["delete", "/tmp/../victim"]],  # checked before any is run
    ],
    ids=["delete", "replace", "second-op"],
)
def test_a_journal_that_leaves_the_index_is_refused(
    ops: list[list[str]], base: dict[str, Path], tmp_path: Path
) -> None:
    """A crash leaves a journal that the next run follows: one rewritten to name paths outside
    the index is refused with one line, and neither the index nor the outside is touched."""
    index = tmp_path / "index"
    shutil.copytree(base["index"], index)
    victim = tmp_path / "victim"
    victim.write_text("outside the index")
    ops = [[op, *(str(victim) if a == "/tmp/../victim" else a for a in args)] for op, *args in ops]
    (index / ".wheelfactory-journal.json").write_text(json.dumps({"state": "commit", "ops": ops}))
    before = index_tree(index)
    cmd = [sys.executable, "-m", "wheelfactory", "publish", str(base["new_a"]), "--index", str(index)]
    done = _proc.run(cmd, env=ENV, check=False, echo=False)
    errors = [line for line in done.stdout.splitlines() if line.startswith("ERROR: ")]
    assert done.returncode == 9 and len(errors) == 1 and "journal" in errors[0], done.stdout
    assert "Traceback" not in done.stdout  # stdout holds stderr too (_proc.run merges them)
    assert victim.read_text() == "outside the index"
    assert index_tree(index) == before
