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
