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


# --- archive caps (issue 25): checked from the zip's directory, before any member is read


def _with_members(src: Path, dest: Path, extra: dict[str, bytes], *, record_extra: bytes = b"") -> Path:
    """A copy of ``src`` plus ``extra`` members (deflated), RECORD padded with ``record_extra``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info.filename, data + record_extra if info.filename.endswith("/RECORD") else data)
        for name, data in extra.items():
            zout.writestr(name, data)
    return dest


def test_a_member_that_inflates_past_the_ratio_is_refused_unread(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "a")
    bomb = _with_members(w, tmp_path / w.name, {"demo_ext/weights.bin": b"\0" * (8 << 20)})  # 8 KB -> 8 MiB
    assert bomb.stat().st_size < 64 << 10
    with pytest.raises(WheelError, match=r"'demo_ext/weights.bin' expands \d+x, over the 100x ratio limit; refusing it unread"):
        wheelfile.read_wheel(bomb)
    with pytest.raises(WheelError, match="weights.bin. expands"):  # what unpacking opens it with
        wheelfile.archive_files(bomb)


def test_a_record_that_inflates_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """issue 25: a 67 KB wheel whose RECORD inflates to 64 MiB took publish to 5.1 GB."""
    w = make_wheel(tmp_path / "a")
    bomb = _with_members(w, tmp_path / w.name, {}, record_extra=b"\n" * (64 << 20))
    assert bomb.stat().st_size < 100 << 10
    with pytest.raises(WheelError, match=r"RECORD' expands \d+x, over the 100x ratio limit"):
        wheelfile.read_wheel(bomb)


def test_a_record_over_its_byte_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "a")
    padded = _with_members(w, tmp_path / w.name, {}, record_extra=b"\n" * 5000)
    limits = wheelfile.ArchiveLimits(record_bytes=4096)
    with pytest.raises(WheelError, match=r"RECORD is \d+ bytes, over the 4096 limit"):
        wheelfile.read_wheel(padded, limits=limits)
    wheelfile.read_wheel(padded)  # blank lines are allowed under the default cap


def test_record_rows_are_capped_as_they_stream(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "a")
    rows = b"".join(b"ghost/%d.py,sha256=x,1\n" % i for i in range(50))
    padded = _with_members(w, tmp_path / w.name, {}, record_extra=rows)
    with pytest.raises(WheelError, match="RECORD has over 20 rows, the member limit"):
        wheelfile.read_wheel(padded, limits=wheelfile.ArchiveLimits(members=20))
    with pytest.raises(WheelError, match="RECORD lists ghost/0.py, which is not in the wheel"):
        wheelfile.read_wheel(padded)


def test_member_count_and_sizes_are_capped(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "a")
    many = _with_members(w, tmp_path / w.name, {f"demo_ext/m{i}.py": b"" for i in range(30)})
    with pytest.raises(WheelError, match=r"it has 34 members, over the 20 limit; refusing it unread"):
        wheelfile.archive_files(many, wheelfile.ArchiveLimits(members=20))
    with pytest.raises(WheelError, match=r"METADATA' expands to \d+ bytes, over the 100 byte limit"):
        wheelfile.read_wheel(w, limits=wheelfile.ArchiveLimits(member_bytes=100))
    with pytest.raises(WheelError, match=r"it expands to \d+ bytes, over the 300 byte limit"):
        wheelfile.read_wheel(w, limits=wheelfile.ArchiveLimits(total_bytes=300))


def test_the_default_limits_pass_a_wheel_shaped_like_a_real_cuda_one(tmp_path: Path) -> None:
    """Hundreds of members and a large, barely compressible library (CUDA fatbins)."""
    import os

    extra = {f"demo_ext/kernels/k{i}.py": b"x = %d\n" % i for i in range(400)}
    extra["demo_ext/_C.abi3.so"] = os.urandom(4 << 20)
    w = make_wheel(tmp_path, extra_files=extra)
    assert len(wheelfile.read_wheel(w).files) > 400


@pytest.mark.parametrize(
    "member",
    ["../evil.py", "demo_ext/../../evil.py", "/abs/evil.py", "\\abs\\evil.py", "C:/evil.py",
     "demo_ext/./x.py", "demo_ext//x.py"],
)  # fmt: skip
def test_members_that_leave_the_install_folder_are_refused(tmp_path: Path, member: str) -> None:
    w = make_wheel(tmp_path / "a")
    bad = _with_members(w, tmp_path / w.name, {member: b"x"})
    with pytest.raises(WheelError, match=r"member .* (escapes the install folder|is not a plain relative path)"):
        wheelfile.archive_files(bad)


def test_a_name_that_is_both_file_and_folder_is_refused(tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "a")
    bad = _with_members(w, tmp_path / w.name, {"demo_ext/__init__.py/x": b"x"})
    with pytest.raises(WheelError, match="'demo_ext/__init__.py' is both a file and a folder"):
        wheelfile.archive_files(bad)


class CountingName(str):
    """A member name that counts how often it is compared: a list search compares each
    name with every other (n*n), a set or dict lookup about once."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        CountingName.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_the_record_check_is_linear_in_the_members(tmp_path: Path) -> None:
    """issue 25: 30k members took 18 s (a list search per RECORD row). Counted, not timed."""
    n = 2000
    w = make_wheel(tmp_path, extra_files={f"demo_ext/m{i}.py": b"" for i in range(n)})
    dist_info = wheelfile.read_wheel(w).dist_info
    with zipfile.ZipFile(w) as zf:
        files = [CountingName(i.filename) for i in zf.infolist()]
        CountingName.compared = 0
        assert wheelfile.check_record(zf, dist_info, files) == []
    assert CountingName.compared < 10 * n, CountingName.compared  # quadratic: about n*n/2


def test_a_directory_that_understates_the_ratio_is_caught_by_the_file_size(tmp_path: Path) -> None:
    """The compressed sizes in the directory are the sender's word: claim the bomb is stored
    at full size, and the whole file's ratio still gives it away."""
    import struct

    w = make_wheel(tmp_path / "a")
    bomb = _with_members(w, tmp_path / w.name, {"demo_ext/weights.bin": b"\0" * (8 << 20)})
    data = bytearray(bomb.read_bytes())
    at = data.rindex(b"demo_ext/weights.bin") - 46
    assert data[at : at + 4] == b"PK\x01\x02"  # its central directory entry
    struct.pack_into("<I", data, at + 20, 8 << 20)  # compressed size := expanded size
    bomb.write_bytes(bytes(data))
    with pytest.raises(WheelError, match=r": it expands \d+x, over the 100x ratio limit"):
        wheelfile.archive_files(bomb)


def test_too_many_members_are_refused_before_zipfile_parses_the_directory(tmp_path: Path, monkeypatch) -> None:
    """issue 25: 100k members took 3 min; a million would take zipfile itself seconds and
    hundreds of MB just to list. The end record's count and size are checked first."""
    w = make_wheel(tmp_path / "a")
    many = _with_members(w, tmp_path / w.name, {f"demo_ext/m{i}.py": b"" for i in range(30)})

    def no_parse(*args, **kwargs):
        raise AssertionError("zipfile parsed the directory of a zip over the caps")

    monkeypatch.setattr(zipfile, "ZipFile", no_parse)
    with pytest.raises(WheelError, match=r"it has 34 members, over the 20 limit"):
        wheelfile.archive_files(many, wheelfile.ArchiveLimits(members=20))
    with pytest.raises(WheelError, match=r"its zip directory is \d+ bytes, over the 1000 byte limit"):
        wheelfile.archive_files(many, wheelfile.ArchiveLimits(directory_bytes=1000))


def test_an_end_record_that_understates_the_count_is_caught_after_parsing(tmp_path: Path) -> None:
    import struct

    w = make_wheel(tmp_path / "a")
    many = _with_members(w, tmp_path / w.name, {f"demo_ext/m{i}.py": b"" for i in range(30)})
    data = bytearray(many.read_bytes())
    at = data.rindex(b"PK\x05\x06")  # the end-of-central-directory record
    struct.pack_into("<HH", data, at + 8, 1, 1)  # "1 member" (zipfile reads them all anyway)
    many.write_bytes(bytes(data))
    with pytest.raises(WheelError, match=r"it has 34 members, over the 20 limit"):
        wheelfile.archive_files(many, wheelfile.ArchiveLimits(members=20))
