"""The landing page as the index root of every publish/yank/unyank/re-render, the index's
public URL recorded in the manifest, and incremental writes with per-file root files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from _index_wheels import make_wheel
from _records import record_json
from wheelfactory import landing, resources
from wheelfactory import publish as pub
from wheelfactory.cli import main
from wheelfactory.errors import ConfigError
from wheelfactory.index import render_index
from wheelfactory.manifest import MANIFEST_NAME, Manifest, load_manifest

URL = "https://owner.example.org/wheelfactory/"
T0 = "2026-05-01T12:00:00.000000Z"


def snapshot(index: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(index)): p.read_bytes()
        for p in sorted(index.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(index).parts)
    }


def record(n: int) -> dict:
    return record_json(targets=["9.0a"], timings={"build": float(n)})


def test_index_url_is_recorded_remembered_and_rendered(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    w = make_wheel(tmp_path / "w", build_record=record(1))
    pub.publish([w], idx, index_url=URL.rstrip("/"), upload_time=lambda: T0)
    m = load_manifest(idx)
    assert m.index_url == URL  # normalized: one trailing slash
    raw = json.loads((idx / MANIFEST_NAME).read_bytes())
    jsonschema.validate(raw, json.loads(resources.MANIFEST_SCHEMA.read_text()))
    assert raw["index_url"] == URL
    root = URL.rstrip("/")
    page = (idx / "index.html").read_text()
    assert f"wf-root\">{root}</span>/cu130/torch2.14/simple/" in page and '"root":"' + root in page
    assert f"INDEX_ROOT = {root!r}" in (idx / "which.py").read_text()
    # A later yank (no URL given) keeps it: the rendering is a function of the manifest.
    pub.set_yanked(idx, w.name, yanked=True, reason="bad")
    assert load_manifest(idx).index_url == URL
    assert f"INDEX_ROOT = {root!r}" in (idx / "which.py").read_text()
    assert snapshot(idx) == {
        **{k: v for k, v in snapshot(idx).items() if k.startswith("files/") or k == MANIFEST_NAME},
        **render_index(load_manifest(idx), hooks=landing.landing_hooks(URL)),
    }


def test_no_index_url_renders_a_page_that_asks_the_browser(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    pub.publish([make_wheel(tmp_path / "w")], idx)
    assert load_manifest(idx).index_url == ""
    assert "index_url" not in json.loads((idx / MANIFEST_NAME).read_bytes())
    page = (idx / "index.html").read_text()
    assert '<span class="wf-root">&lt;index URL&gt;</span>' in page and '"root":""' in page
    assert landing.INDEX_ROOT_LINE in (idx / "which.py").read_text()  # asks for --index-url


def test_same_manifest_same_bytes(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "w", build_record=record(1))
    for name in ("a", "b"):
        pub.publish([w], tmp_path / name, index_url=URL, upload_time=lambda: T0)
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def test_one_more_wheel_writes_only_new_and_changed_files(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    first = [
        make_wheel(tmp_path / "w", version=f"1.0.{i}", build_record=record(i)) for i in range(5)
    ]
    pub.publish(first, idx, index_url=URL)
    before = snapshot(idx)
    new = make_wheel(tmp_path / "w", version="1.0.9", build_record=record(9))
    result = pub.publish([new], idx)
    after = snapshot(idx)
    changed = {p for p in after if before.get(p) != after[p]}
    assert set(result.pages_written) == changed - {MANIFEST_NAME, f"files/{new.name}",
                                                  f"files/{new.name}.metadata"}
    assert set(result.pages_written) == {
        "cu130/torch2.14/simple/demo-ext/index.html",
        "cu130/torch2.14/simple/demo-ext/index.json",
        "cu130/simple/demo-ext/index.html",
        "cu130/simple/demo-ext/index.json",
        "index.html",
        f"records/{new.name}.json",  # the new file's record only, not the other five
    }
    assert pub.index_drift(idx) == []


def test_changing_the_url_rewrites_only_what_shows_it(tmp_path: Path, monkeypatch, capsys) -> None:
    idx = tmp_path / "idx"
    w = make_wheel(tmp_path / "w", build_record=record(1))
    pub.publish([w], idx)
    before = snapshot(idx)
    monkeypatch.setenv("WHEELFACTORY_INDEX_URL", URL)
    assert main(["publish", "--index", str(idx)]) == 0  # no wheels: re-render
    after = snapshot(idx)
    assert {p for p in after if before.get(p) != after[p]} == {"index.html", "which.py",
                                                               MANIFEST_NAME}
    assert load_manifest(idx).index_url == URL
    # An empty variable (CI before the first publish) keeps the recorded URL.
    monkeypatch.setenv("WHEELFACTORY_INDEX_URL", "")
    assert main(["publish", "--index", str(idx)]) == 0
    assert load_manifest(idx).index_url == URL
    # --index-url beats the variable; the same wheel again only moves the URL.
    other = "https://mirror.example.net/idx/"
    assert main(["publish", str(w), "--index", str(idx), "--index-url", other]) == 0
    assert load_manifest(idx).index_url == other
    assert "already published" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "ftp://x/", "https://h/a?b=1",
                                 'https://h/"><script>', "not a url"])
def test_bad_index_urls_are_refused(tmp_path: Path, bad: str, capsys) -> None:
    with pytest.raises(ConfigError, match="fix --index-url"):
        Manifest().with_index_url(bad)
    w = make_wheel(tmp_path / "w")
    assert main(["publish", str(w), "--index", str(tmp_path / "idx"), "--index-url", bad]) == 2
    assert "fix --index-url" in capsys.readouterr().err
    assert not (tmp_path / "idx" / MANIFEST_NAME).exists()


def test_landing_is_rendered_once_per_manifest(tmp_path: Path, monkeypatch) -> None:
    calls: list[int] = []
    real = landing.render_landing

    def counting(manifest, root):
        calls.append(len(landing._files(manifest)))
        return real(manifest, root)

    monkeypatch.setattr(landing, "render_landing", counting)
    idx = tmp_path / "idx"
    pub.publish([make_wheel(tmp_path / "w", version="1.0.0")], idx)
    # the new manifest once: not once per root file, and the old one not at all
    assert calls == [1]
    calls.clear()
    pub.publish([make_wheel(tmp_path / "w", version="1.0.1")], idx)
    assert calls == [2]
    calls.clear()
    render_index(load_manifest(idx), hooks=landing.landing_hooks())
    assert calls == [2]
