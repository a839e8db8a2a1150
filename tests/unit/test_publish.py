from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from _index_wheels import make_wheel
from _records import record_json
from wheelfactory import publish as pub
from wheelfactory.errors import ConfigError, PublishError
from wheelfactory.index import render_index
from wheelfactory.manifest import MANIFEST_NAME, load_manifest, save_manifest
from wheelfactory.record import BuildRecord


def snapshot(index: Path) -> dict[str, bytes]:
    """Every visible file of an index (hidden journal/temp/lock files left out)."""
    return {
        str(p.relative_to(index)): p.read_bytes()
        for p in sorted(index.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(index).parts)
    }


def pages_of(snap: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in snap.items() if not k.startswith("files/") and k != MANIFEST_NAME}


def test_publish_records_everything(tmp_path: Path) -> None:
    record = record_json(targets=["9.0a"])
    w = make_wheel(tmp_path / "w", build_record=record)
    result = pub.publish([w], tmp_path / "idx", upload_time=lambda: "2026-05-01T12:00:00.000000Z")
    assert result.added == (w.name,)
    m = load_manifest(tmp_path / "idx")
    (f,) = m.files
    assert BuildRecord.from_json(f.build_record) == BuildRecord.from_json(record)
    assert f.upload_time == "2026-05-01T12:00:00.000000Z"
    assert f.requires_python == ">=3.10"
    assert f.url == f"files/{w.name}"
    assert (tmp_path / "idx" / f.url).read_bytes() == w.read_bytes()
    with zipfile.ZipFile(w) as zf:
        meta = zf.read("demo_ext-1.0.0+cu130torch2.14.dist-info/METADATA")
    assert (tmp_path / "idx" / f.metadata_url).read_bytes() == meta
    # The pages on disk are exactly the rendering of the manifest (landing page at the root).
    assert pages_of(snapshot(tmp_path / "idx")) == render_index(m, hooks=pub.default_hooks())
    assert f"records/{w.name}.json" in pages_of(snapshot(tmp_path / "idx"))
    assert pub.index_drift(tmp_path / "idx") == []


def test_same_file_again_is_a_noop_other_bytes_are_refused(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "a")
    idx = tmp_path / "idx"
    pub.publish([w], idx)
    before = snapshot(idx)
    assert pub.publish([w], idx).added == ()
    assert snapshot(idx) == before
    clash = make_wheel(tmp_path / "b", requires_python=">=3.11")  # same name, other bytes
    assert clash.name == w.name
    with pytest.raises(PublishError, match="already published"):
        pub.publish([clash], idx)
    assert snapshot(idx) == before


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tamper": True}, "does not match RECORD"),
        ({"requires_torch": ""}, "torch requirement"),
        ({"requires_torch": "torch>=2.0"}, "not torch==2.14"),
        ({"requires_torch": "torch==2.13.*"}, "not torch==2.14"),
        ({"cuda": ""}, "no \\+cuXYZtorch"),
        ({"extra_files": {"../../etc/evil": b"x"}}, "escapes"),
        ({"requires_python": ">=3.10,<<4"}, "Requires-Python"),
    ],
)
def test_bad_wheels_are_refused(tmp_path: Path, kwargs: dict, match: str) -> None:
    w = make_wheel(tmp_path / "w", **kwargs)
    with pytest.raises(PublishError, match=match):
        pub.publish([w], tmp_path / "idx")
    assert not (tmp_path / "idx" / MANIFEST_NAME).exists()


def test_corrupt_zip_is_refused(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "w")
    data = bytearray(w.read_bytes())
    data[len(data) // 3] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(PublishError, match="corrupt|CRC|zip|RECORD"):
        pub.inspect_wheel(w)
    w.write_bytes(b"not a zip at all")
    with pytest.raises(PublishError, match="not a valid zip"):
        pub.inspect_wheel(w)


def test_metadata_must_match_filename(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "w", filename="other-1.0.0+cu130torch2.14-py3-none-any.whl")
    with pytest.raises(PublishError, match="dist-info folder does not match the filename"):
        pub.inspect_wheel(w)


def test_one_more_wheel_rewrites_only_its_pages(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    pub.publish(
        [make_wheel(tmp_path / "w", torch="2.14"), make_wheel(tmp_path / "w", torch="2.13")], idx
    )
    before = snapshot(idx)
    result = pub.publish([make_wheel(tmp_path / "w", version="1.0.1")], idx)
    after = snapshot(idx)
    changed_pages = {p for p in pages_of(after) if before.get(p) != after[p]}
    assert set(result.pages_written) == changed_pages
    assert changed_pages == {
        "cu130/torch2.14/simple/demo-ext/index.html",
        "cu130/torch2.14/simple/demo-ext/index.json",
        "cu130/simple/demo-ext/index.html",
        "cu130/simple/demo-ext/index.json",
        "index.html",  # the landing page lists every file
    }


class Crash(Exception):
    pass


@pytest.mark.parametrize("point", ["stored", "prepared", "committing:1", "committing:3"])
def test_crash_mid_publish_leaves_old_or_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    idx = tmp_path / "idx"
    pub.publish([make_wheel(tmp_path / "w", torch="2.14")], idx)
    old = snapshot(idx)
    new_wheel = make_wheel(tmp_path / "w", torch="2.13")  # new view: touches root as well

    def crash_at(where: str) -> None:
        if where == point:
            raise Crash(where)

    monkeypatch.setattr(pub, "_crash_point", crash_at)
    with pytest.raises(Crash):
        pub.publish([new_wheel], idx)
    # Whatever the crash left, no page links a file that is not stored.
    crashed = snapshot(idx)
    for path, page in pages_of(crashed).items():
        if path.endswith("index.json") and "/simple/" in path and "files" in json.loads(page):
            for f in json.loads(page)["files"]:
                assert f"files/{f['filename']}" in crashed, (point, path)
    monkeypatch.undo()
    assert pub.recover_index(idx) is not None or point == "stored"
    recovered = snapshot(idx)
    m = load_manifest(idx)
    assert pages_of(recovered) == render_index(m, hooks=pub.default_hooks())
    if point.startswith("committing"):
        assert new_wheel.name in m.by_filename  # committed: rolled forward
    else:
        assert pages_of(recovered) == pages_of(old)  # not committed: old index
        assert recovered[MANIFEST_NAME] == old[MANIFEST_NAME]
    assert not [p for p in idx.rglob(".*.tmp")]
    # And the next publish works and completes the picture.
    pub.publish([new_wheel], idx)
    assert pub.index_drift(idx) == []
    assert new_wheel.name in load_manifest(idx).by_filename


def test_yank_and_unyank(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    w = make_wheel(tmp_path / "w")
    pub.publish([w], idx)
    f = pub.set_yanked(idx, w.name, yanked=True, reason="black\noutput <b>")
    assert (f.yanked, f.yank_reason) == (True, "black output <b>")
    page = (idx / "cu130/torch2.14/simple/demo-ext/index.html").read_text()
    assert 'data-yanked="black output &lt;b&gt;"' in page
    assert pub.index_drift(idx) == []
    f = pub.set_yanked(idx, w.name, yanked=False)
    assert (f.yanked, f.yank_reason) == (False, None)
    assert "data-yanked" not in (idx / "cu130/torch2.14/simple/demo-ext/index.html").read_text()
    with pytest.raises(PublishError, match="did you mean"):
        pub.set_yanked(idx, w.name.replace("1.0.0", "1.0.9"), yanked=True)


def test_rerender_repairs_drift(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    pub.publish([make_wheel(tmp_path / "w")], idx)
    page = idx / "cu130/simple/demo-ext/index.html"
    good = page.read_bytes()
    page.write_text("hand edited")
    assert pub.index_drift(idx) == ["cu130/simple/demo-ext/index.html"]
    assert pub.rerender(idx) == ("cu130/simple/demo-ext/index.html",)
    assert page.read_bytes() == good


def test_store_dispatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(pub.make_store("local", tmp_path), pub.LocalStore)
    s3 = pub.make_store("s3://bucket/pre/fix", tmp_path, endpoint_url="http://127.0.0.1:9/")
    assert (s3.bucket, s3.prefix) == ("bucket", "pre/fix")  # type: ignore[attr-defined]
    assert s3.url("a+b.whl") == "http://127.0.0.1:9/bucket/pre/fix/a%2Bb.whl"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="s3://BUCKET/PREFIX"):
        pub.make_store("s3:bucket", tmp_path)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="set GITHUB_TOKEN"):
        pub.make_store("github:o/r@v1", tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'local'"):
        pub.make_store("locl", tmp_path)


def test_store_may_return_absolute_urls(tmp_path: Path) -> None:
    class FarStore:
        def __init__(self) -> None:
            self.put_names: list[str] = []

        def put(self, filename: str, source: Path | bytes, sha256: str | None = None) -> str:
            self.put_names.append(filename)
            return "https://cdn.example.invalid/w/" + filename.replace("+", "%2B")

    store = FarStore()
    w = make_wheel(tmp_path / "w")
    pub.publish([w], tmp_path / "idx", store=store)
    assert store.put_names == [w.name, w.name + ".metadata"]
    page = (tmp_path / "idx/cu130/simple/demo-ext/index.html").read_text()
    assert 'href="https://cdn.example.invalid/w/demo_ext-1.0.0%2Bcu130torch2.14' in page


def test_cli_publish_yank_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wheelfactory.cli import main

    idx = str(tmp_path / "idx")
    w = make_wheel(tmp_path / "w")
    assert main(["publish", str(w), "--index", idx]) == 0
    assert f"published {w.name}" in capsys.readouterr().out
    assert main(["yank", w.name, "--index", idx, "--reason", "broken"]) == 0
    assert load_manifest(idx).get(w.name).yanked
    assert main(["unyank", w.name, "--index", idx]) == 0
    assert not load_manifest(idx).get(w.name).yanked
    bad = make_wheel(tmp_path / "bad", version="9.9", tamper=True)
    assert main(["publish", str(bad), "--index", idx]) == PublishError.return_code
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR")]
    assert len(err) == 1 and err[0].startswith("ERROR: refusing") and "rebuild" in err[0]
    assert main(["publish", str(w), "--index", idx, "--store", "s4://x"]) == ConfigError.return_code


def test_published_files_are_readable_by_a_web_server_user(tmp_path: Path) -> None:
    """A wheel, page or manifest left 0600 (tempfile.mkstemp's mode) gives a web server that
    serves the index as another user 403 on every download."""
    import os

    from wheelfactory import atomicfile

    old = os.umask(0o022)
    try:
        idx = tmp_path / "idx"
        w = make_wheel(tmp_path / "w")
        pub.publish([w], idx)
        pub.set_yanked(idx, w.name, yanked=True, reason="broken")
        save_manifest(idx, load_manifest(idx))  # as `ci attach-provenance` rewrites it
        atomicfile.write_bytes(tmp_path / "plain", b"x")
    finally:
        os.umask(old)
    published = [p for p in idx.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert idx / "files" / w.name in published and idx / MANIFEST_NAME in published
    modes = {p.relative_to(idx).as_posix(): oct(p.stat().st_mode & 0o777) for p in published}
    assert set(modes.values()) == {"0o644"}, modes
    assert (tmp_path / "plain").stat().st_mode & 0o777 == 0o644


def test_local_store_refuses_bytes_other_than_the_hashed_ones(tmp_path: Path) -> None:
    """A wheel that changes between hashing and storing is not stored under its name."""
    src = tmp_path / "w.whl"
    src.write_bytes(b"the bytes publish hashed")
    promised = pub.hashlib.sha256(b"the bytes publish hashed").hexdigest()
    src.write_bytes(b"bytes that changed afterwards")
    store = pub.LocalStore(index=tmp_path / "index")
    with pytest.raises(PublishError, match="changed while it was stored"):
        store.put("w.whl", src, promised)
    assert list((tmp_path / "index").rglob("*")) == [tmp_path / "index" / "files"]  # no file, no temp


def test_publish_stores_the_snapshot_it_checked(tmp_path: Path) -> None:
    """publish hashes a private copy while copying it, and stores that copy: a change to the
    original after the check cannot reach the index."""
    wheel = make_wheel(tmp_path / "w", version="1.0.0")
    original = wheel.read_bytes()
    info = pub.inspect_wheel(wheel, tmp_path)
    wheel.write_bytes(original[:-10] + b"x" * 10)  # the user's file changes now
    result = pub._publish_checked(
        [info], tmp_path / "index", pub.LocalStore(index=tmp_path / "index"), pub.default_hooks(),
        None, pub.now_upload_time, None, None,
    )  # fmt: skip
    assert result.added == (wheel.name,)
    assert (tmp_path / "index" / "files" / wheel.name).read_bytes() == original


def test_a_wheel_carrying_torch_or_cuda_is_refused(tmp_path: Path) -> None:
    lib = "demo_ext.libs/libtorch_cpu-1a2b3c4d.so"
    wheel = make_wheel(tmp_path / "w", extra_files={lib: b"\x7fELF"})  # RECORD lists it
    with pytest.raises(PublishError, match=re.escape(f"refusing {wheel.name}: {lib} is a torch/CUDA")):
        pub.publish([wheel], tmp_path / "index")
    assert not (tmp_path / "index").exists()


def test_a_guard_naming_another_index_is_warned_before_publishing(tmp_path: Path, caplog) -> None:
    root = "https://idx.example.org/w"
    here = make_wheel(tmp_path / "a", build_record=record_json(guard=True, index_url=root + "/"))
    other = make_wheel(tmp_path / "b", version="1.0.1",
                       build_record=record_json(guard=True, index_url="http://127.0.0.1:8000"))
    unknown = make_wheel(tmp_path / "c", version="1.0.2", build_record=record_json(guard=True))
    unguarded = make_wheel(tmp_path / "d", version="1.0.3", build_record=record_json(guard=False))
    with caplog.at_level("WARNING", logger="wheelfactory"):
        result = pub.publish([here, other, unknown, unguarded], tmp_path / "idx", index_url=root)
    assert len(result.added) == 4  # a warning, not a refusal: the wheels work
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 2, warned
    assert any(m.startswith(f"warning: {other.name}") and "names http://127.0.0.1:8000, not this index" in m
               and f"rebuild with --index-url {root}" in m for m in warned)
    assert any(m.startswith(f"warning: {unknown.name}") and "names no index (built without --index-url)" in m
               for m in warned)
    caplog.clear()
    pub.publish([make_wheel(tmp_path / "e", version="1.0.4", build_record=record_json(guard=True))],
                tmp_path / "idx2")  # no index URL known: nothing to compare with
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


# --------------------------------------------------------------------------- data taken on trust


def _edit_manifest(index: Path, **fields: object) -> None:
    """Change the first entry of an index's manifest.json as a hand (or an attacker) would."""
    data = json.loads((index / MANIFEST_NAME).read_text())
    data["files"][0].update(fields)
    (index / MANIFEST_NAME).write_text(json.dumps(data))


def _cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    from wheelfactory import cli

    code = cli.main(list(argv))
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_a_journal_naming_paths_outside_the_index_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = tmp_path / "idx"
    pub.publish([make_wheel(tmp_path / "w")], idx)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (idx / "moved").write_text("a file a hostile replace op would move out")
    before = snapshot(idx)
    hostile = [
        {"state": "commit", "ops": [["delete", "../victim"]]},
        {"state": "commit", "ops": [["delete", str(victim)]]},
        {"state": "commit", "ops": [["replace", "moved", "../victim"]]},
        {"state": "prepare", "ops": [["replace", "..\\victim", "x"]]},
        {"state": "commit", "ops": [["delete", "C:victim"]]},
        {"state": "commit"},  # no ops: not a journal (was a KeyError traceback)
        {"state": "commit", "ops": [["chmod", "x"]]},
        {"state": "commit", "ops": [[["delete"], "x"]]},
        [["delete", "../victim"]],
    ]
    for journal in hostile:
        (idx / pub.JOURNAL_NAME).write_text(json.dumps(journal))
        code, err = _cli("publish", "--index", str(idx), capsys=capsys)
        assert code == PublishError.return_code and len(err) == 1, (journal, err)
        assert err[0].startswith("ERROR: ") and "journal" in err[0], err
        assert victim.read_text() == "keep me", journal
        assert snapshot(idx) == before, journal
    (idx / pub.JOURNAL_NAME).unlink()
    assert pub.recover_index(idx) is None  # the index itself was never touched


def test_covers_outside_the_index_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = tmp_path / "idx"
    pub.publish([make_wheel(tmp_path / "w")], idx)
    for covers in (["/../../../outside"], ["2.15/../../.."], ["2.15\n"], [2.15], ["abc"]):
        _edit_manifest(idx, covers=covers)
        before = snapshot(idx)
        code, err = _cli("publish", "--index", str(idx), capsys=capsys)
        assert code == PublishError.return_code and len(err) == 1, err
        assert "covers entry" in err[0] and "torch minor" in err[0], err
        assert snapshot(idx) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "w"]  # nothing written outside


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("size", 10**400, "size must be a whole number"),
        ("size", True, "size is True, of the wrong type"),
        ("size", 1.5, "size is 1.5, of the wrong type"),
        ("yanked", "no", "yanked is 'no', of the wrong type"),
        ("held", 1, "held is 1, of the wrong type"),
        ("filename", 7, "filename is 7, of the wrong type"),
        ("build_record", {"targets": ["9.0a", "sm_bogus"]}, "'sm_bogus' is not a GPU target"),
        ("url", "files\\..\\..\\x.whl", "backslash"),
    ],
    ids=["size-huge", "size-true", "size-float", "yanked", "held", "filename", "targets", "url"],
)
def test_manifest_fields_are_checked_on_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: object, message: str
) -> None:
    idx = tmp_path / "idx"
    pub.publish([make_wheel(tmp_path / "w")], idx)
    _edit_manifest(idx, **{field: value})
    before = snapshot(idx)
    code, err = _cli("publish", "--index", str(idx), capsys=capsys)  # re-render
    assert code == PublishError.return_code and len(err) == 1, err
    assert message in err[0] and "Traceback" not in err[0]
    assert snapshot(idx) == before


def test_a_record_whose_targets_do_not_parse_is_not_published(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "w", build_record=record_json(targets=["9.0a", "sm_90z"]))
    with pytest.raises(PublishError, match="'sm_90z' is not a GPU target") as e:
        pub.publish([w], tmp_path / "idx")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "idx" / MANIFEST_NAME).exists()


def test_an_edited_sha256_is_refused_when_its_pages_are_rendered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = tmp_path / "idx"
    w = make_wheel(tmp_path / "w")
    pub.publish([w], idx)
    _edit_manifest(idx, sha256="f" * 64)
    before = snapshot(idx)
    code, err = _cli("publish", "--index", str(idx), capsys=capsys)  # re-render
    assert code == PublishError.return_code and len(err) == 1, err
    assert w.name in err[0] and "restore manifest.json" in err[0]
    assert snapshot(idx) == before
    # Publishing another wheel of the project rewrites the same pages: refused too (its
    # file is stored first, unlisted, as a crashed publish leaves it).
    with pytest.raises(PublishError, match=re.escape(w.name)):
        pub.publish([make_wheel(tmp_path / "w", version="1.0.1")], idx)
    assert {k: v for k, v in snapshot(idx).items() if "1.0.1" not in k} == before


def test_a_page_promising_a_wrong_sha256_is_repaired_from_the_stored_file(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    pub.publish([make_wheel(tmp_path / "w")], idx)
    good = snapshot(idx)
    page = idx / "cu130/torch2.14/simple/demo-ext/index.json"
    page.write_text(re.sub(r'"sha256":"[0-9a-f]{64}"', '"sha256":"' + "e" * 64 + '"', page.read_text()))
    assert "cu130/torch2.14/simple/demo-ext/index.json" in pub.rerender(idx)
    assert snapshot(idx) == good  # the stored bytes agree with the manifest: the page was wrong


@pytest.mark.parametrize(
    "relative",
    ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a\\..\\x", "C:x", "c:/x", "a/\x1b[2J"]
    + ["", None, 3],
)
def test_a_path_from_data_is_confined_to_its_root(tmp_path: Path, relative: object) -> None:
    from wheelfactory.confine import confine

    with pytest.raises(PublishError, match="could point outside") as e:
        confine(tmp_path, relative, what="manifest.json")
    assert "\n" not in str(e.value)
    assert confine(tmp_path, "cu130/torch2.15/simple/index.html", what="x") == (
        tmp_path / "cu130/torch2.15/simple/index.html"
    )
