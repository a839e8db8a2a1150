"""Byte-identical rebuilds: the wheel comparison (rebuild.first_difference) on real zips
packed by label.pack, the nvcc wrapper's per-file seeds, and the record's run facts."""

from __future__ import annotations

import importlib.util
import os
import zipfile
from pathlib import Path

import pytest
from _records import record
from wheelfactory import build, label, rebuild
from wheelfactory.errors import ConfigError, NotReproducedError

spec = importlib.util.spec_from_file_location("nvcc_filter", build.NVCC_FILTER)
assert spec and spec.loader
nvcc_filter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nvcc_filter)

DIST = "demo_ext-1.0.0+cu130torch2.14.dist-info"


def tree(root: Path, *, kernel: bytes = b"\x7fELF kernel", mtime: int = 1_700_000_000) -> Path:
    """An unpacked wheel in ``root``, its files stamped with ``mtime``."""
    files = {
        "demo_ext/__init__.py": b"from ._k import *\n",
        "demo_ext/_k.cpython-311-x86_64-linux-gnu.so": kernel,
        f"{DIST}/METADATA": b"Metadata-Version: 2.1\nName: demo-ext\nVersion: 1.0.0+cu130torch2.14\n",
        f"{DIST}/WHEEL": b"Wheel-Version: 1.0\nTag: cp311-cp311-linux_x86_64\n",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
    return root


def packed(where: Path, **kw: object) -> Path:
    return label.pack(tree(where / "tree", **kw), where / "out")  # type: ignore[arg-type]


def test_the_same_files_in_two_folders_pack_to_the_same_bytes(tmp_path: Path) -> None:
    a = packed(tmp_path / "a", mtime=1_600_000_000)
    b = packed(tmp_path / "elsewhere" / "b", mtime=1_700_000_000)  # other folder, other mtimes
    assert a.read_bytes() == b.read_bytes()
    assert rebuild.first_difference(a, b) is None
    rebuild.check_same(a, b)


def test_a_changed_member_is_named(tmp_path: Path) -> None:
    a = packed(tmp_path / "a")
    b = packed(tmp_path / "b", kernel=b"\x7fELF kernel, other seed")
    diff = rebuild.first_difference(a, b)
    assert diff == rebuild.Difference(
        member="demo_ext/_k.cpython-311-x86_64-linux-gnu.so", what="content differs"
    )
    with pytest.raises(NotReproducedError, match=r"demo_ext/_k\.cpython-311-x86_64-linux-gnu\.so: content differs"):
        rebuild.check_same(a, b)


def rezip(src: Path, dest: Path, *, order: list[str] | None = None, stamp: tuple | None = None) -> Path:
    """``src``'s members rewritten into ``dest``: in ``order``, or with one date_time."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        infos = z.infolist()
        if order:
            infos = sorted(infos, key=lambda i: order.index(i.filename))
        for info in infos:
            copy = zipfile.ZipInfo(info.filename, date_time=stamp or info.date_time)
            copy.external_attr = info.external_attr
            out.writestr(copy, z.read(info), compress_type=zipfile.ZIP_DEFLATED)
    return dest


def test_member_order_and_timestamps_count(tmp_path: Path) -> None:
    a = packed(tmp_path / "a")
    with zipfile.ZipFile(a) as z:
        names = z.namelist()
    (tmp_path / "b").mkdir()
    swapped = rezip(a, tmp_path / "b" / a.name, order=[names[1], names[0], *names[2:]])
    assert rebuild.first_difference(a, swapped) == rebuild.Difference(
        member=names[0], what="at another place in the zip"
    )
    (tmp_path / "c").mkdir()
    stamped = rezip(a, tmp_path / "c" / a.name, stamp=(2026, 12, 3, 17, 0, 0))
    assert rebuild.first_difference(a, stamped) == rebuild.Difference(
        member=names[0], what="zip date_time differs"
    )


def test_a_member_only_in_one_wheel_is_named(tmp_path: Path) -> None:
    a = packed(tmp_path / "a")
    root = tree(tmp_path / "b" / "tree")
    (root / "demo_ext" / "extra.py").write_text("x = 1\n")
    b = label.pack(root, tmp_path / "b" / "out")
    assert rebuild.first_difference(a, b) == rebuild.Difference(
        member="demo_ext/extra.py", what="only in the rebuild"
    )
    assert rebuild.first_difference(b, a) == rebuild.Difference(
        member="demo_ext/extra.py", what="only in the original"
    )


def test_nvcc_is_seeded_per_file_relative_to_the_tree() -> None:
    argv = ["-MD", "-MF", "a.o.d", "-c", "/w/A/src/csrc/scale.cu", "-o", "/w/A/src/build/scale.o"]
    flags = nvcc_filter.reproducible_flags(argv, "/w/A/src")
    assert flags == [
        "-frandom-seed=csrc/scale.cu",
        "-Xcudafe", "--orig_src_path_name=csrc/scale.cu",
        "--objdir-as-tempdir",
        "-Xcompiler", "-ffile-prefix-map=/w/A/src=.",
    ]  # fmt: skip
    # the same file in another folder gets the same seed; another file another one
    other = nvcc_filter.reproducible_flags([a.replace("/w/A", "/x/B") for a in argv], "/x/B/src")
    assert other[:3] == flags[:3]
    assert nvcc_filter.reproducible_flags(["-c", "/w/A/src/k.cu"], "/w/A/src")[0] == "-frandom-seed=k.cu"
    # a call that compiles no .cu file (a link, --version) is left alone
    assert nvcc_filter.reproducible_flags(["--version"], "/w/A/src") == []
    assert nvcc_filter.reproducible_flags(["-o", "x.so", "a.o", "b.o"], "/w/A/src") == []


def test_the_wheels_record_leaves_out_the_run_facts() -> None:
    """Two builds differ in their timings and compile steps: a reproducible wheel's
    record carries neither, and is otherwise the same record."""
    first = record(timings={"build": 600.0}, compile_steps=40, reproducible=True)
    second = record(timings={"build": 12.5}, compile_steps=0, reproducible=True)
    assert first != second
    assert first.without_run_facts() == second.without_run_facts()
    assert first.without_run_facts().timings == {} and first.without_run_facts().compile_steps is None


def test_a_wheel_not_built_reproducibly_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="reproducible: false"):
        rebuild.rebuild_request(
            record(), recipe_path=None, out_dir=tmp_path, work_dir=tmp_path, cache=tmp_path,
            torch_index_url=None,
        )  # fmt: skip


def test_a_differing_build_record_names_its_keys(tmp_path: Path) -> None:
    def with_record(where: Path, max_jobs: str) -> Path:
        root = tree(where / "tree")
        rec = record(env={"MAX_JOBS": max_jobs, "TORCH_CUDA_ARCH_LIST": "9.0a"}, reproducible=True)
        label.write_build_record(rec)(root)
        return label.pack(root, where / "out")

    diff = rebuild.first_difference(with_record(tmp_path / "a", "2"), with_record(tmp_path / "b", "16"))
    assert diff == rebuild.Difference(
        member=f"{DIST}/wheelfactory-build.json", what="content differs (keys env.MAX_JOBS)"
    )
