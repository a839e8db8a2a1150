from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from _records import record
from wheelfactory import label, naming, wheelfile
from wheelfactory.errors import ConfigError

METADATA = """Metadata-Version: 2.1
Name: quirky_ext
Version: 0.3.1
Requires-Python: >=3.10
Requires-Dist: torch>=2.0
Requires-Dist: numpy

Long description: Version: 9.9 must stay in the body.
"""
WHEEL = """Wheel-Version: 1.0
Generator: setuptools (80.0.0)
Root-Is-Purelib: false
Tag: cp311-cp311-manylinux_2_34_x86_64
"""


def make_wheel(tmp_path: Path) -> Path:
    path = tmp_path / "quirky_ext-0.3.1-cp311-cp311-manylinux_2_34_x86_64.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("quirky_ext/__init__.py", "x = 1\n")
        z.writestr("quirky_ext/_kernels.cpython-311-x86_64-linux-gnu.so", b"\x7fELF fake")
        z.writestr("quirky_ext-0.3.1.dist-info/METADATA", METADATA)
        z.writestr("quirky_ext-0.3.1.dist-info/WHEEL", WHEEL)
        z.writestr("quirky_ext-0.3.1.dist-info/RECORD", "stale,,\n")
    return path


def test_relabel_applies_edits_and_regenerates_record(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path)
    edits = [
        label.set_version("0.3.1+cu130torch2.14"),
        label.require("torch==2.14.*"),
        label.write_build_record(record(package="quirky-ext", package_version="0.3.1+cu130torch2.14")),
        lambda root: (root / "quirky_ext" / "_guard.py").write_text("# an extra edit\n"),
    ]
    out = label.relabel(wheel, edits, tmp_path / "out", work=tmp_path / "work")
    assert out.name == "quirky_ext-0.3.1+cu130torch2.14-cp311-cp311-manylinux_2_34_x86_64.whl"
    wheel_read = wheelfile.read_wheel(out)  # RECORD matches, dist-info and METADATA agree
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        meta = z.read("quirky_ext-0.3.1+cu130torch2.14.dist-info/METADATA").decode()
    assert "quirky_ext/_guard.py" in names
    assert not any(n.startswith("quirky_ext-0.3.1.dist-info/") for n in names)
    assert names[-1].endswith(".dist-info/RECORD")  # dist-info files come last
    head, _, body = meta.partition("\n\n")
    assert "Version: 0.3.1+cu130torch2.14" in head.splitlines()
    assert [ln for ln in head.splitlines() if ln.startswith("Requires-Dist")] == [
        "Requires-Dist: torch==2.14.*",
        "Requires-Dist: numpy",
    ]
    assert "Version: 9.9 must stay" in body
    assert wheel_read.build_record == record(package="quirky-ext", package_version="0.3.1+cu130torch2.14")
    assert not (tmp_path / "work" / "unpacked").exists()
    # readable by others like any plain file (not tempfile.mkstemp's 0600)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_require_adds_when_absent(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "x-1.0.dist-info").mkdir(parents=True)
    (root / "x-1.0.dist-info/METADATA").write_text(
        "Metadata-Version: 2.1\nName: x\nVersion: 1.0\n\nbody\n"
    )
    label.require("torch==2.14.*")(root)
    text = (root / "x-1.0.dist-info/METADATA").read_text()
    assert text.startswith(
        "Metadata-Version: 2.1\nName: x\nVersion: 1.0\nRequires-Dist: torch==2.14.*\n\nbody"
    )


def test_pack_is_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    wheel = make_wheel(tmp_path)
    a = label.relabel(
        wheel, [label.set_version("0.3.1+cu130torch2.14")], tmp_path / "a", work=tmp_path / "wa"
    )
    b = label.relabel(
        wheel, [label.set_version("0.3.1+cu130torch2.14")], tmp_path / "b", work=tmp_path / "wb"
    )
    assert a.read_bytes() == b.read_bytes()


def test_check_record_finds_tampering(tmp_path: Path) -> None:
    out = label.relabel(make_wheel(tmp_path), [], tmp_path / "out", work=tmp_path / "work")
    tampered = tmp_path / "t.whl"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "quirky_ext/__init__.py":
                data = b"x = 2\n"
            dst.writestr(info, data)
        dst.writestr("quirky_ext/extra.py", "")
    with zipfile.ZipFile(tampered) as z:
        problems = wheelfile.check_record(z, "quirky_ext-0.3.1.dist-info", [n for n in z.namelist()])
    assert "the hash of quirky_ext/__init__.py does not match RECORD" in problems
    assert "quirky_ext/extra.py is not listed in RECORD" in problems


def test_wheel_filename_keeps_build_tag_and_compressed_tags(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "x-1.0.dist-info").mkdir(parents=True)
    (root / "x-1.0.dist-info/METADATA").write_text(
        "Metadata-Version: 2.1\nName: X.Y\nVersion: 1.0\n"
    )
    (root / "x-1.0.dist-info/WHEEL").write_text(
        "Wheel-Version: 1.0\nBuild: 2\nTag: cp311-cp311-manylinux_2_17_x86_64\nTag: cp311-cp311-manylinux2014_x86_64\n"
    )
    assert (
        label.wheel_filename(root)
        == "x_y-1.0-2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
    )


def test_build_record_is_json_with_version(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "x-1.0.dist-info").mkdir(parents=True)
    label.write_build_record(record())(root)
    data = json.loads((root / "x-1.0.dist-info" / "wheelfactory-build.json").read_text())
    assert data["version"] == 2 and data["targets"] == ["9.0a", "12.0a"]


@pytest.mark.skipif(not (shutil.which("cc") and shutil.which("strip")), reason="needs cc and strip")
def test_strip_debug_removes_debug_sections_only(tmp_path: Path) -> None:
    from elftools.elf.elffile import ELFFile

    root = tmp_path / "w"
    (root / "pkg").mkdir(parents=True)
    src = tmp_path / "m.c"
    src.write_text("int exported(int x) { return x + 1; }\n")
    so = root / "pkg" / "_m.cpython-311-x86_64-linux-gnu.so"
    subprocess.run(["cc", "-g", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    before = so.stat().st_size
    label.strip_debug()(root)

    with open(so, "rb") as f:
        elf = ELFFile(f)
        sections = {s.name for s in elf.iter_sections()}
        symbols = {s.name for s in elf.get_section_by_name(".dynsym").iter_symbols()}
    assert not any(name.startswith(".debug") for name in sections)
    assert "exported" in symbols and so.stat().st_size < before


def test_requires_dist_pins_the_torch_minor_or_the_floor() -> None:
    from wheelfactory import naming

    assert naming.TorchPin("2.14.1+cu130").requirement == "torch==2.14.*"
    assert naming.TorchPin("2.9.0").requirement == "torch==2.9.*"
    assert naming.TorchPin("2.14.1", floor="2.10").requirement == "torch>=2.10"


@pytest.mark.parametrize(
    "bad",
    [
        "https://x.org/$(touch /tmp/pwned)",
        "https://x.org/w;rm -rf ~",
        "https://x.org/w|sh",
        "https://x.org/w`id`",
        "https://x.org/w&x=1",
        "https://x.org/it's",
        "https://x.org/a b",
        "https://x.org/w\n# fake line",
        "https://x.org/\x1b[2Jw",
        "ftp://x.org/w",
        "x.org/w",
        "https:///w",
        "https://x.org/w?*",
    ],
)
def test_an_index_url_that_a_shell_would_act_on_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="is not a plain http"):
        naming.index_url(bad)


def test_an_index_url_is_kept_as_given() -> None:
    assert naming.index_url(" https://example.org:8443/wheels/v1/") == "https://example.org:8443/wheels/v1/"
    assert naming.index_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000"


def test_the_index_url_is_refused_where_it_is_given_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """build and publish check --index-url (or $WHEELFACTORY_INDEX_URL) first: nothing is
    downloaded, built or published."""
    from wheelfactory import cli

    bad = "https://x.org/$(id)"
    assert cli.main(["publish", str(tmp_path / "none.whl"), "--index", str(tmp_path / "i"), "--index-url", bad]) != 0
    assert "--index-url 'https://x.org/$(id)' is not a plain http(s) URL" in capsys.readouterr().err
    assert not (tmp_path / "i").exists()
    monkeypatch.setenv("WHEELFACTORY_INDEX_URL", bad)
    args = ["build", "--source", str(tmp_path), "--name", "x", "--torch", "2.14.1", "--cuda", "13.0",
            "--arch", "9.0a", "--out", str(tmp_path / "out")]
    assert cli.main(args) != 0
    assert "$WHEELFACTORY_INDEX_URL 'https://x.org/$(id)' is not a plain http(s) URL" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
