"""ci/: matrix splitting, job summary, the release-asset limit, smoke imports, provenance."""

from __future__ import annotations

import functools

import json
import os
import sys
from pathlib import Path

import pytest
from _index_wheels import make_wheel as make_index_wheel
from _records import record_json
from wheelfactory import wheelfile
from wheelfactory.ci import cell, matrix, release, summary
from wheelfactory.errors import ConfigError, PublishError, VerifyError

WHEEL = "demo_ext-1.0+cu130torch2.14-cp311-cp311-manylinux_2_28_x86_64.whl"


def make_wheel(path: Path, *, record: dict | None = None, modules: dict[str, bytes] | None = None) -> Path:
    name, version, py, abi, plat = path.name[: -len(".whl")].split("-")
    public, _, label = version.partition("+")
    cuda, _, torch = label.removeprefix("cu").partition("torch")
    return make_index_wheel(
        path.parent, name=name, version=public, cuda=cuda, torch=torch, python_tag=py, abi_tag=abi,
        platform_tag=plat, build_record=record, extra_files=modules, filename=path.name,
    )  # fmt: skip


def plan_of(n: int) -> dict:
    jobs = [{"id": f"job-{i}"} for i in range(n)]
    return {"version": 1, "matrices": [{"include": jobs[i : i + 256]} for i in range(0, n, 256)]}


def test_split_fills_every_slot_and_counts():
    out = matrix.split_matrices(plan_of(300), slots=4)
    assert out["count"] == "300"
    assert [out[f"count{i}"] for i in range(4)] == ["256", "44", "0", "0"]
    assert json.loads(out["matrix2"]) == {"include": []}
    ids = [j["id"] for i in range(4) for j in json.loads(out[f"matrix{i}"])["include"]]
    assert ids == [f"job-{i}" for i in range(300)]


def test_split_limit_keeps_the_first_job():
    out = matrix.split_matrices(plan_of(5), slots=2, limit=1)
    assert out["count"] == "1"
    assert json.loads(out["matrix0"])["include"] == [{"id": "job-0"}]


def test_split_refuses_more_jobs_than_slots_and_bad_plans():
    with pytest.raises(ConfigError, match="add a build-N job"):
        matrix.split_matrices(plan_of(600), slots=2)
    with pytest.raises(ConfigError, match="version"):
        matrix.split_matrices({"matrices": []}, slots=1)
    with pytest.raises(ConfigError, match="duplicate"):
        matrix.split_matrices({"version": 1, "matrices": [{"include": [{"id": "a"}, {"id": "a"}]}]}, slots=1)


def test_outputs_are_single_lines():
    text = matrix.render_outputs(matrix.split_matrices(plan_of(3), slots=1))
    assert text.count("\n") == 3  # count, matrix0, count0
    with pytest.raises(ConfigError):
        matrix.render_outputs({"x": "a\nb"})


def test_summary_reads_build_records(tmp_path):
    wheel = make_wheel(
        tmp_path / WHEEL,
        record=record_json(targets=["9.0a", "12.0a"], timings={"build": 600.0, "repair": 30.0}),
    )
    bare = make_index_wheel(tmp_path, name="other", version="2.0", cuda="", python_tag="cp312",
                            abi_tag="cp312", platform_tag="win_amd64")  # fmt: skip
    rows = summary.summary_rows(summary.find_wheels([tmp_path]))
    assert [r.wheel for r in rows] == sorted([wheel.name, bare.name])
    row = next(r for r in rows if r.wheel == WHEEL)
    assert row.targets == ("9.0a", "12.0a")
    assert row.seconds == 630.0
    assert row.size == wheel.stat().st_size
    assert row.cell == "demo-ext-1.0-cu130-torch2.14-cp311-manylinux_2_28_x86_64"
    text = summary.render_summary(rows)
    assert "| cell | wheel | size | time | targets |" in text
    assert "10.5 min" in text and "9.0a, 12.0a" in text
    other = next(r for r in rows if r.wheel != WHEEL)
    assert other.seconds is None and other.targets == ()


def test_summary_escapes_table_breakers():
    row = summary.SummaryRow(cell="a|b<script>", wheel="w.whl", size=1, seconds=None, targets=())
    text = summary.render_summary([row])
    assert "a\\|b&lt;script&gt;" in text and "<script>" not in text


def test_release_asset_limit(tmp_path):
    small = tmp_path / "a.whl"
    small.write_bytes(b"x" * 10)
    release.check_release_assets([small], limit=11)
    with pytest.raises(PublishError, match="2 GiB release-asset limit: a.whl"):
        release.check_release_assets([small], limit=10)
    # the real limit: a sparse file of exactly 2 GiB is refused without writing 2 GiB
    big = tmp_path / "big.whl"
    with open(big, "wb") as f:
        f.truncate(release.RELEASE_ASSET_LIMIT)
    with pytest.raises(PublishError, match="big.whl"):
        release.check_release_assets([small, big])


def test_extension_modules_of_a_wheel(tmp_path):
    wheel = make_wheel(
        tmp_path / WHEEL,
        modules={
            "demo_ext/__init__.py": b"",
            "demo_ext/_k.cpython-311-x86_64-linux-gnu.so": b"",
            "demo_ext/sub/_w.cp311-win_amd64.pyd": b"",
            "top.abi3.so": b"",
            "demo_ext.libs/libfoo-1234.so": b"",
        },
    )
    assert wheelfile.read_wheel(wheel).extension_modules() == ("demo_ext._k", "demo_ext.sub._w", "top")


def test_smoke_imports_and_reports_the_failing_module(tmp_path, monkeypatch):
    # A fake 'torch' and a package on the importing Python's path: smoke() imports torch
    # first, then each module, each in its own process of that Python.
    (tmp_path / "torch.py").write_text("LOADED = True\n")
    pkg = tmp_path / "demo_ext"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text("import torch\nassert torch.LOADED\n")
    (pkg / "bad.py").write_text("raise ImportError('undefined symbol: _ZN3c10foo')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    wheel = make_wheel(tmp_path / WHEEL)
    smoke = functools.partial(cell.smoke, python=sys.executable, work=tmp_path / "work", env=env)
    assert smoke(wheel, modules=["demo_ext.good"]).imported == ("demo_ext.good",)
    with pytest.raises(VerifyError, match="import demo_ext.bad failed: ImportError: undefined symbol"):
        smoke(wheel, modules=["demo_ext.good", "demo_ext.bad"])
    with pytest.raises(VerifyError, match="no extension module"):
        smoke(wheel)


def save_two_wheel_manifest(index: Path) -> Path:
    """A manifest listing WHEEL and its cp312 sibling, with no provenance yet."""
    from wheelfactory.manifest import Manifest, PublishedFile, save_manifest

    files = tuple(
        PublishedFile(
            filename=name, project="demo-ext", version="1.0+cu130torch2.14", sha256="0" * 64, size=1,
            url=f"files/{name}", upload_time="2026-11-24T10:00:00.000000Z",
        )  # fmt: skip
        for name in (WHEEL, WHEEL.replace("cp311", "cp312"))
    )
    return save_manifest(index, Manifest(files=files))


def test_set_provenance_updates_the_manifest(tmp_path):
    from wheelfactory.manifest import load_manifest

    save_two_wheel_manifest(tmp_path)
    url = "https://github.com/o/r/attestations/123"
    assert release.set_provenance(tmp_path, [WHEEL], url) == [WHEEL]
    got = {f.filename: f.provenance_url for f in load_manifest(tmp_path).files}
    assert got == {WHEEL: url, WHEEL.replace("cp311", "cp312"): None}
    assert release.set_provenance(tmp_path, [WHEEL], url) == []  # idempotent
    with pytest.raises(PublishError, match="not in the manifest"):
        release.set_provenance(tmp_path, ["nope-1.0-py3-none-any.whl"], url)
    with pytest.raises(ConfigError, match="not https"):
        release.set_provenance(tmp_path, [WHEEL], "http://x")


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_set_provenance_replaces_the_manifest_whole_or_not_at_all(tmp_path):
    """The manifest is the index's one source of truth: a provenance write that fails part
    way (the disk fills; here a real file-size limit, EFBIG) leaves the old one whole and no
    temp file, and a reader that opened it before a write that succeeds reads it complete."""
    import os
    import subprocess

    from wheelfactory.manifest import load_manifest

    manifest = save_two_wheel_manifest(tmp_path)
    before = manifest.read_bytes()
    url = "https://github.com/o/r/attestations/" + "1" * 4000  # the new manifest is larger
    limit = len(before) + 100
    code = (
        "import resource, sys\n"
        "from wheelfactory.ci import release\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "release.set_provenance(sys.argv[1], [sys.argv[2]], sys.argv[3])\n"
    )
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path), WHEEL, url],
                          capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert proc.returncode != 0 and "File too large" in proc.stderr, proc.stderr[-2000:]
    assert manifest.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp file left behind

    with manifest.open("rb") as reader:  # opened before the write
        assert release.set_provenance(tmp_path, [WHEEL], url) == [WHEEL]
        assert reader.read() == before
    assert load_manifest(tmp_path).by_filename[WHEEL].provenance_url == url


def test_release_check_refuses_a_vendored_torch_library(tmp_path):
    rec = record_json(torch="2.14.1", python_tag="py3-none", cuda="13.0")
    clean = make_index_wheel(tmp_path / "a", version="1.0.0", build_record=rec)
    lib = "demo_ext.libs/libc10-0badc0de.so"
    dirty = make_index_wheel(tmp_path / "b", version="1.0.0", build_record=rec, extra_files={lib: b"\x7fELF"})
    assert not [f for f in release.verify_release(clean, cuobjdump=None) if "vendored" in f]
    failures = release.verify_release(dirty, cuobjdump=None)
    assert any(f.startswith(f"{dirty.name}: nothing vendored: {lib}") for f in failures), failures
