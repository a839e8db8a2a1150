from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from wheelfactory import repair
from wheelfactory.errors import RepairError


def test_excludes_cover_torch_cuda_and_driver() -> None:
    excludes = repair.load_excludes("linux")
    must_not_vendor = [
        "libtorch_cuda.so",
        "libc10.so",
        "libc10_cuda.so",
        "libcudart.so.13",
        "libcuda.so.1",
        "libcublas.so.13",
        "libcublasLt.so.13",
        "libcudnn.so.9",
        "libnccl.so.2",
    ]
    assert repair.forbidden(must_not_vendor, excludes) == must_not_vendor
    assert repair.forbidden(["libgfortran.so.5", "libz.so.1"], excludes) == []
    assert repair.load_excludes("windows")


def test_a_platform_without_a_known_repairer_is_clear(tmp_path: Path) -> None:
    from dataclasses import replace

    from wheelfactory import platforms

    beos = replace(platforms.get("linux-x86_64"), name="beos-x86", repairer="beoswheel")
    with pytest.raises(RepairError, match="no repairer 'beoswheel' for beos-x86"):
        repair.repair(tmp_path / "x.whl", tmp_path, platform=beos)
    # Windows: tests/unit/test_repair_delvewheel.py


def test_vendored_libraries_lists_libs_dirs(tmp_path: Path) -> None:
    wheel = tmp_path / "x-1.0-cp311-cp311-manylinux_2_34_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("x/_C.so", b"")
        z.writestr("x.libs/libgomp-1234.so.1", b"")
        z.writestr("x-1.0.dist-info/RECORD", "")
    assert repair.vendored_libraries(wheel) == ("x.libs/libgomp-1234.so.1",)
    assert repair.forbidden(list(repair.vendored_libraries(wheel)), repair.load_excludes("linux"))


def test_repairers_follow_the_protocol() -> None:
    for name, repairer in repair.REPAIRERS.items():
        assert callable(repairer.repair), name


def test_auditwheel_is_told_to_leave_every_torch_and_cuda_library_out(tmp_path: Path) -> None:
    excludes = repair.load_excludes("linux")
    argv = repair.auditwheel_args(tmp_path / "w.whl", tmp_path / "out", excludes, None)
    passed = [argv[i + 1] for i, a in enumerate(argv) if a == "--exclude"]
    assert passed == list(excludes)
    assert {"libtorch*.so*", "libc10*.so*", "libcudart.so*", "libcuda.so*"} <= set(passed)
    assert argv[-1] == str(tmp_path / "w.whl")


def test_the_post_check_sees_renamed_copies() -> None:
    vendored = ["x.libs/libcudart-1a2b3c4d.so.13", "x.libs/libgfortran-0badf00d.so.5"]
    assert repair.forbidden(vendored, repair.load_excludes("linux")) == vendored[:1]
    dlls = ["x.libs/C10-0123456789abcdef.dll", "x.libs/msvcp140-0123456789abcdef.dll"]
    assert repair.forbidden(dlls, repair.load_excludes("windows")) == dlls[:1]


# --- issue 25: repair unpacked member names like ../../x or /abs where they pointed


def _escaping_wheel(tmp_path: Path, member: str) -> Path:
    from _index_wheels import make_wheel

    return make_wheel(
        tmp_path / "dist", name="quirky_ext", version="0.3.1", cuda="", python_tag="cp312", abi_tag="cp312",
        platform_tag="win_amd64", requires_torch="",
        extra_files={"quirky_ext/_kernels.cp312-win_amd64.pyd": b"MZ", member: b"planted\n"},
    )  # fmt: skip


def _escapes(tmp_path: Path) -> list[tuple[str, Path]]:
    """(member name, where an unchecked unpack would write it): absolute, and ../ far enough
    to climb out of any temp folder to / and back down into tmp_path."""
    outside = tmp_path / "outside"
    return [
        (str(outside / "abs.txt"), outside / "abs.txt"),
        ("../" * 40 + str(outside / "rel.txt").lstrip("/"), outside / "rel.txt"),
    ]


def test_the_repair_command_refuses_members_that_leave_its_folder(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    bin_dir = tmp_path / "bin"  # a delvewheel stand-in that "repairs" by copying
    bin_dir.mkdir()
    (bin_dir / "delvewheel").write_text(
        f"#!{sys.executable}\nimport shutil, sys\nshutil.copy(sys.argv[-1], sys.argv[sys.argv.index('-w') + 1])\n"
    )
    (bin_dir / "delvewheel").chmod(0o755)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "WHEELFACTORY_PLATFORM": "windows-amd64", "CUDA_PATH": "C:/CUDA/v13.0",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    for member, target in _escapes(tmp_path):
        wheel = _escaping_wheel(tmp_path / target.stem, member)
        proc = subprocess.run(
            [sys.executable, "-m", "wheelfactory", "repair", str(wheel), "--out", str(tmp_path / "out"),
             "--recipe", str(root / "tests/fixtures/quirky_ext.toml"), "--torch", "2.14.1", "--cuda", "13.0",
             "--arch", "9.0a"],
            capture_output=True, text=True, env=env, check=False, timeout=300,
        )  # fmt: skip
        errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]
        assert proc.returncode != 0, proc.stderr
        assert len(errors) == 1 and "escapes the install folder" in errors[0], proc.stderr
        assert not target.exists(), f"{member!r} was unpacked to {target}"
        assert not list((tmp_path / "out").glob("*.whl"))


def test_relabel_and_the_repairers_read_the_wheel_through_the_validator(tmp_path: Path, monkeypatch) -> None:
    from wheelfactory import _proc, label, platforms
    from wheelfactory.wheelfile import WheelError

    def no_tool(*args, **kwargs):
        raise AssertionError(f"a repairer ran on an unchecked wheel: {args}")

    monkeypatch.setattr(_proc, "run", no_tool)
    for member, target in _escapes(tmp_path):
        wheel = _escaping_wheel(tmp_path / target.stem, member)
        with pytest.raises(WheelError, match="escapes the install folder"):
            label.relabel(wheel, [], tmp_path / "out", work=tmp_path / target.stem / "work")
        for name in ("linux-x86_64", "windows-amd64"):
            with pytest.raises(WheelError, match="escapes the install folder"):
                repair.repair(wheel, tmp_path / "repaired", platform=platforms.get(name))
        assert not target.exists()
