"""wheelfile.read_wheel: the one validator that publish, verify and CI use."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from _index_wheels import make_wheel
from _records import record_json
from wheelfactory import naming, wheelfile
from wheelfactory.wheelfile import WheelError


def rewrite(src: Path, dest: Path, change) -> Path:
    """Copy a wheel member by member through ``change(name, data) -> [(name, data), ...]``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            for name, data in change(info.filename, zin.read(info)):
                zout.writestr(name, data)
    return dest


def test_a_sound_wheel_reads(tmp_path: Path) -> None:
    w = make_wheel(tmp_path, build_record=record_json(package="demo-ext"))
    read = wheelfile.read_wheel(w)
    assert read.dist_info == "demo_ext-1.0.0+cu130torch2.14.dist-info"
    assert read.build_record is not None and read.build_record.package == "demo-ext"
    assert [str(r) for r in read.requires("torch")] == ["torch==2.14.*"]
    assert wheelfile.torch_pin_problem(read, naming.TorchPin("2.14.1")) is None
    assert "not torch==2.13.*" in wheelfile.torch_pin_problem(read, naming.TorchPin("2.13.0"))


def test_duplicate_members_are_refused(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "a")
    with pytest.warns(UserWarning, match="Duplicate name"):  # zipfile lets one write it
        dup = rewrite(w, tmp_path / w.name, lambda n, d: [(n, d)] * (2 if n.endswith("__init__.py") else 1))
    with pytest.raises(WheelError, match="twice"):
        wheelfile.read_wheel(dup)


def test_missing_wheel_file_is_refused(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "a")
    bad = rewrite(w, tmp_path / w.name, lambda n, d: [] if n.endswith("/WHEEL") else [(n, d)])
    with pytest.raises(WheelError, match="WHEEL is missing"):
        wheelfile.read_wheel(bad)


def test_dist_info_must_match_the_filename(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "a")
    renamed = rewrite(
        w, tmp_path / w.name,
        lambda n, d: [(n.replace("demo_ext-1.0.0+", "demo_ext-1.0.1+"), d)],
    )  # fmt: skip
    with pytest.raises(WheelError, match="does not match the filename"):
        wheelfile.read_wheel(renamed)


def test_oversized_metadata_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    big = b"Metadata-Version: 2.1\nName: demo_ext\nVersion: 1.0.0+cu130torch2.14\n\n" + b"x" * (2 << 20)
    w = make_wheel(tmp_path / "a")
    bloated = rewrite(
        w, tmp_path / w.name, lambda n, d: [(n, big if n.endswith("/METADATA") else d)]
    )
    with pytest.raises(WheelError, match="over the 1048576 limit"):
        wheelfile.read_wheel(bloated)


def test_non_finite_numbers_in_the_record_are_refused(tmp_path: Path) -> None:
    w = make_wheel(tmp_path, build_record=record_json(timings={"build": 1.0}))
    bad = rewrite(w, tmp_path / "x" / w.name if (tmp_path / "x").mkdir() is None else None,
                  lambda n, d: [(n, d.replace(b"1.0", b"NaN") if n.endswith("-build.json") else d)])  # fmt: skip
    with pytest.raises(WheelError, match="NaN"):
        wheelfile.read_wheel(bad, check_hashes=False)


def test_missing_and_non_zip_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(WheelError, match="no such file"):
        wheelfile.read_wheel(tmp_path / "demo-1.0+cu130torch2.14-py3-none-any.whl")
    junk = tmp_path / "demo-1.0+cu130torch2.14-py3-none-any.whl"
    junk.write_bytes(b"not a zip")
    with pytest.raises(WheelError, match="not a valid zip"):
        wheelfile.read_wheel(junk)
    with pytest.raises(WheelError, match="not a valid wheel filename"):
        wheelfile.read_wheel(tmp_path / "README.txt")


def test_extension_modules_one_rule() -> None:
    names = [
        "pkg/__init__.py",
        "pkg/_a.cpython-311-x86_64-linux-gnu.so",
        "pkg/_b.abi3.so",
        "pkg/_c.cp311-win_amd64.pyd",
        "top.so",
        "pkg/libhelper.so",
        "pkg.libs/libgomp-1.so.1",
        "pkg-1.dist-info/x.so",
    ]
    assert wheelfile.extension_modules(names) == ("pkg._a", "pkg._b", "pkg._c", "top")
