from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest
from wheelfactory import resources
from wheelfactory.errors import PublishError
from wheelfactory.manifest import (
    UPLOAD_TIME_RE,
    Manifest,
    PublishedFile,
    format_upload_time,
    load_manifest,
    save_manifest,
)

W = "demo_ext-1.0.0+cu130torch2.14-py3-none-any.whl"


def entry(**kw: object) -> PublishedFile:
    base: dict[str, object] = {
        "filename": W,
        "project": "demo-ext",
        "version": "1.0.0+cu130torch2.14",
        "sha256": "0" * 64,
        "size": 10,
        "url": f"files/{W}",
        "upload_time": "2026-05-01T12:00:00.000000Z",
        "build_record": {"cuda": "13.0", "torch": "2.14.1"},
    }
    base.update(kw)
    return PublishedFile(**base)  # type: ignore[arg-type]


def schema() -> dict:
    return json.loads(resources.MANIFEST_SCHEMA.read_text())


def test_round_trip_and_schema(tmp_path) -> None:
    other = entry(
        filename=W.replace("2.14", "2.13"),
        version="1.0.0+cu130torch2.13",
        yanked=True,
        yank_reason="broken",
        provenance_url="https://example.invalid/p",
    )
    m = Manifest(files=(entry(), other))
    path = save_manifest(tmp_path, m)
    data = json.loads(path.read_text())
    jsonschema.validate(data, schema())
    assert [f["filename"] for f in data["files"]] == sorted(f["filename"] for f in data["files"])
    assert data["version"] == 1
    assert load_manifest(tmp_path) == m
    assert load_manifest(tmp_path / "missing") == Manifest()
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


def test_schema_rejects_what_the_loader_rejects() -> None:
    good = Manifest(files=(entry(),)).to_json()
    bad = json.loads(json.dumps(good))
    bad["files"][0]["upload_time"] = "2026-05-01 12:00:00"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())
    with pytest.raises(PublishError):
        Manifest.from_json(bad)
    unknown = json.loads(json.dumps(good))
    unknown["files"][0]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(unknown, schema())
    with pytest.raises(PublishError, match="unknown keys"):
        Manifest.from_json(unknown)


def test_label_comes_from_filename() -> None:
    f = entry()
    assert (f.cuda, f.torch) == ("13.0", "2.14")


@pytest.mark.parametrize(
    "change",
    [
        {"project": "other"},
        {"version": "1.0.1+cu130torch2.14"},
        {"sha256": "XYZ"},
        {"upload_time": "2026-05-01T12:00:00Z"},
        {"url": "../outside.whl"},
        {"url": "/abs/path.whl"},
        {"url": "javascript:alert(1)"},
        {"yank_reason": "not yanked"},
        {"provenance_url": "file:///etc/passwd"},
        {"size": -1},
        {"size": True},  # bool is an int to Python, not to JSON
        {"size": 10**400},
        {"size": "10"},
        {"yanked": 1},
        {"held": ["x"]},
        {"covers": ("/../../x",)},
        {"covers": ("2.15\n",)},
        {"covers": (215,)},
        {"sha256": "0" * 64 + "\n"},
        {"url": "files\\..\\..\\x.whl"},
        {"url": "files/C:x.whl"},
        {"build_record": {"targets": ["9.0a", "bogus"]}},
        {"build_record": {"targets": 90}},
    ],
)
def test_bad_entries_are_refused(change: dict) -> None:
    with pytest.raises(PublishError):
        entry(**change)


def test_duplicates_are_refused() -> None:
    with pytest.raises(PublishError, match="twice"):
        Manifest(files=(entry(), entry()))


def test_with_files_replaces_by_filename() -> None:
    m = Manifest(files=(entry(),))
    y = replace(entry(), yanked=True, yank_reason="x")
    assert m.with_files([y]).files == (y,)


def test_upload_time_format() -> None:
    t = datetime(2026, 5, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert format_upload_time(t) == "2026-05-01T12:00:00.000005Z"
    assert UPLOAD_TIME_RE.match(format_upload_time(datetime.now(timezone.utc)))


def test_corrupt_manifest_says_what_to_do(tmp_path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(PublishError, match="restore"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"version": 2, "files": []}')
    with pytest.raises(PublishError, match="upgrade"):
        load_manifest(tmp_path)


def test_gate_archs_are_checked() -> None:
    assert Manifest(gpu_gate=("9.0", "12.0")).gpu_gate == ("9.0", "12.0")
    for bad in ("abc", "9", "9.0\n", "../x"):
        with pytest.raises(PublishError, match="gpu_gate"):
            Manifest(gpu_gate=(bad,))


def test_a_huge_size_is_one_line_on_load(tmp_path) -> None:
    save_manifest(tmp_path, Manifest(files=(entry(),)))
    path = tmp_path / "manifest.json"
    path.write_text(path.read_text().replace('"size": 10', '"size": 1' + "0" * 400))
    with pytest.raises(PublishError, match="size must be a whole number") as e:
        load_manifest(tmp_path)
    assert "\n" not in str(e.value) and len(str(e.value)) < 300
