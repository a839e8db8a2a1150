from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from _records import record
from wheelfactory import label, repair, verify, wheelfile
from wheelfactory.errors import VerifyError

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")


def cc_shared(tmp_path: Path, name: str, code: str, *args: str) -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(code)
    out = tmp_path / f"{name}.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(out), str(src), *args], check=True)
    return out


CALLS_DRIVER = (
    "int cuTensorMapEncodeTiled(void); int f(void) { return cuTensorMapEncodeTiled(); }\n"
)


@needs_cc
def test_driver_symbol_without_libcuda_needed_fails(tmp_path: Path) -> None:
    so = cc_shared(tmp_path, "_driver", CALLS_DRIVER)  # undefined symbol, no -lcuda
    problem = verify.driver_link_problem(so)
    assert problem is not None
    assert problem.startswith(
        "_driver.so uses CUDA driver symbols (cuTensorMapEncodeTiled) but does not link libcuda.so.1"
    )
    assert "'undefined symbol: cuTensorMapEncodeTiled'" in problem and problem.endswith(
        "links-driver = true in the recipe's [build]"
    )


@needs_cc
def test_driver_symbol_with_libcuda_needed_passes(tmp_path: Path) -> None:
    stub = cc_shared(
        tmp_path,
        "stub",
        "int cuTensorMapEncodeTiled(void) { return 34; }\n",
        "-Wl,-soname,libcuda.so.1",
    )
    (tmp_path / "lib").mkdir()
    shutil.copy(stub, tmp_path / "lib" / "libcuda.so")
    so = cc_shared(tmp_path, "_driver", CALLS_DRIVER, f"-L{tmp_path / 'lib'}", "-lcuda")
    assert verify.driver_link_problem(so) is None
    runtime_only = cc_shared(
        tmp_path, "_rt", "int cudaMalloc(void); int g(void) { return cudaMalloc(); }\n"
    )
    assert (
        verify.driver_link_problem(runtime_only) is None
    )  # cuda* runtime symbols are not driver symbols


def test_extension_modules_from_names() -> None:
    names = [
        "pkg/__init__.py",
        "pkg/_qattn_sm90.cpython-311-x86_64-linux-gnu.so",
        "pkg/sub/_fused.abi3.so",
        "top_level.cpython-311-x86_64-linux-gnu.so",
        "pkg.libs/libgomp-123.so.1",
        "pkg-1.0.dist-info/RECORD",
    ]
    assert wheelfile.extension_modules(names) == ("pkg._qattn_sm90", "pkg.sub._fused", "top_level")


def make_labelled_wheel(
    tmp_path: Path, *, version: str, requires: str, platform: str = "manylinux_2_34_x86_64"
) -> Path:
    root = tmp_path / "root"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg/__init__.py").write_text("")
    di = root / "pkg-0.3.1.dist-info"
    di.mkdir()
    (di / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\nVersion: 0.3.1\n")
    (di / "WHEEL").write_text(f"Wheel-Version: 1.0\nTag: cp311-cp311-{platform}\n")
    edits = [
        label.set_version(version),
        label.require(requires),
        label.write_build_record(record(package="pkg", package_version=version)),
    ]
    for e in edits:
        e(root)
    return label.pack(root, tmp_path / "out")


EXPECT = verify.Expectation.of(record(package="pkg", package_version="0.3.1+cu130torch2.14"))


def test_tags_and_label_pass_for_a_right_wheel(tmp_path: Path) -> None:
    wheel = make_labelled_wheel(tmp_path, version="0.3.1+cu130torch2.14", requires="torch==2.14.*")
    checks = verify.check_tags_and_label(wheelfile.read_wheel(wheel), EXPECT)
    assert [c.name for c in checks if not c.ok] == []


@pytest.mark.parametrize(
    ("kwargs", "failing"),
    [
        ({"version": "0.3.1+cu128torch2.14", "requires": "torch==2.14.*"}, "version label"),
        ({"version": "0.3.1+cu130torch2.14", "requires": "torch>=2.0"}, "requires torch"),
        (
            {
                "version": "0.3.1+cu130torch2.14",
                "requires": "torch==2.14.*",
                "platform": "linux_x86_64",
            },
            "platform tag",
        ),
    ],
)
def test_tags_and_label_failures(tmp_path: Path, kwargs: dict[str, str], failing: str) -> None:
    wheel = make_labelled_wheel(tmp_path, **kwargs)
    checks = verify.check_tags_and_label(wheelfile.read_wheel(wheel), EXPECT)
    assert [c.name for c in checks if not c.ok] == [failing]


def test_report_json_and_one_line_error() -> None:
    report = verify.VerifyReport(
        wheel="x.whl",
        checks=(
            verify.Check(name="SASS targets", ok=True, detail="ok"),
            verify.Check(
                name="import pkg._driver",
                ok=False,
                detail="_driver.so: undefined symbol: cuTensorMapEncodeTiled",
            ),
        ),
        sass={"pkg/_driver.so": ["sm_90a"]},
    )
    data = json.loads(report.to_json())
    assert data["version"] == 1 and data["ok"] is False
    with pytest.raises(VerifyError) as e:
        report.raise_for_failures()
    assert (
        str(e.value)
        == "x.whl: import pkg._driver: _driver.so: undefined symbol: cuTensorMapEncodeTiled"
    )
    assert "\n" not in str(e.value)


def test_import_error_line_names_symbol() -> None:
    out = (
        'Traceback (most recent call last):\n  File "<string>", line 1\n'
        "ImportError: /v/site-packages/pkg/_driver.cpython-311-x86_64-linux-gnu.so: undefined symbol: cuTensorMapEncodeTiled\n"
    )
    assert (
        verify._import_error_line(out)
        == "_driver.cpython-311-x86_64-linux-gnu.so: undefined symbol: cuTensorMapEncodeTiled"
    )
    assert (
        verify._import_error_line("ModuleNotFoundError: No module named 'x'\n")
        == "ModuleNotFoundError: No module named 'x'"
    )


def test_sass_regex_reads_cuobjdump_output() -> None:
    out = "ELF file    1: _kernels.1.sm_90a.cubin\nELF file    2: _kernels.2.sm_120a.cubin\n"
    assert sorted(set(verify._SASS_RE.findall(out))) == ["sm_120a", "sm_90a"]


def test_wheel_roundtrip_via_zip(tmp_path: Path) -> None:
    wheel = make_labelled_wheel(tmp_path, version="0.3.1+cu130torch2.14", requires="torch==2.14.*")
    assert wheelfile.read_wheel(wheel).extension_modules() == ()


@needs_cc
def test_stable_abi_floor_by_the_symbols_torch_exports(tmp_path: Path) -> None:
    """A stable-ABI module that imports a C-shim symbol newer than its floor does not load
    there: verify names the symbol (the table is read from torch's own libraries)."""
    table = verify.stable_abi_table()["first_exported_in"]
    newer = next(name for name, since in sorted(table.items()) if since == "2.12")
    old = next(name for name, since in sorted(table.items()) if since == "2.10")

    def module(name: str, symbol: str) -> Path:
        return cc_shared(tmp_path, name, f"void {symbol}(void); void f(void) {{ {symbol}(); }}\n")

    assert verify.floor_problem(module("_ok", old), "2.10") is None
    problem = verify.floor_problem(module("_new", newer), "2.10")
    assert problem is not None and problem.startswith(
        f"_new.so imports {newer}, first exported by torch 2.12"
    )
    assert verify.floor_problem(module("_new2", newer), "2.12") is None
    unknown = verify.floor_problem(module("_odd", "aoti_torch_not_a_real_function"), "2.10")
    assert unknown is not None and "which no torch from 2.10 to" in unknown
    assert "older than the stable ABI" in (verify.floor_problem(module("_x", old), "2.8") or "")


@needs_cc
def test_torch_cxx_symbols_are_not_stable_abi(tmp_path: Path) -> None:
    so = cc_shared(tmp_path, "_C", "void _ZN3c106detail14torchCheckFailEPKcS2_jS2_(void);\n"
                   "void f(void) { _ZN3c106detail14torchCheckFailEPKcS2_jS2_(); }\n")  # fmt: skip
    problem = verify.stable_abi_problem(so)
    assert problem is not None and "_ZN3c106detail14torchCheckFailEPKcS2_jS2_" in problem
    assert (
        verify.stable_abi_problem(cc_shared(tmp_path, "_ok", "int g(void) { return 1; }\n")) is None
    )


@pytest.mark.parametrize(
    ("present", "ok", "words"),
    [
        (set(EXPECT_SM := {t.sm for t in EXPECT.targets}), True, ["present"]),
        (EXPECT_SM - {min(EXPECT_SM)}, False, ["missing", min(EXPECT_SM)]),
        (EXPECT_SM | {"sm_75"}, False, ["not promised", "sm_75"]),
        (set(), False, ["missing"]),
    ],
)
def test_sass_must_be_exactly_the_promised_targets(
    present: set[str], ok: bool, words: list[str]
) -> None:
    check = verify.sass_check(present, EXPECT)
    assert check.ok is ok
    assert all(w in check.detail for w in words), check.detail


@pytest.mark.parametrize(
    "member",
    [
        "pkg.libs/libtorch_cpu-1a2b3c4d.so",  # auditwheel's renamed copy
        "pkg.libs/libc10-5e6f.so",
        "pkg.libs/libcudart-9a8b7c6d.so.13",
        "pkg/libcuda.so.1",
        "pkg.libs/libcublasLt-77.so.13",
        "pkg/libnvidia-ml.so.1",
        "pkg.libs/libcaffe2_nvrtc-01.so",
        "pkg.libs/torch_cpu-ab12.dll",  # delvewheel's mangled name
        "pkg.libs/C10.DLL",
        "pkg/cudart64_13.dll",
        "pkg/nvcuda.dll",
        "pkg.libs/cusparse64_12-ff.dll",
        "pkg.libs/libiomp5md-0a1b2c3d4e5f60718293a4b5c6d7e8f9.dll",
    ],
)
def test_any_torch_or_cuda_library_anywhere_is_refused(member: str) -> None:
    problem = repair.vendored_problem(["pkg/__init__.py", member])
    assert problem is not None and problem.startswith(member), problem


def test_own_libraries_may_be_vendored() -> None:
    names = [
        "pkg/_C.abi3.so",
        "pkg.libs/libstdc++-1a.so.6",
        "pkg.libs/msvcp140-ab.dll",
        "pkg/cutlass.py",
    ]
    assert repair.vendored_problem(names) is None


def test_a_name_check_imports_the_module_and_reads_the_attribute() -> None:
    assert verify.import_statement("pkg._ext") == "import torch, importlib; importlib.import_module('pkg._ext')"
    stmt = verify.import_statement("sageattention.sageattn", attribute=True)
    assert stmt == "import torch, importlib; getattr(importlib.import_module('sageattention'), 'sageattn')"


def test_every_recipe_names_what_comfyui_imports() -> None:
    """ComfyUI's attention nodes do `from sageattention import sageattn` and
    `from sageattn3 import sageattn3_blackwell`: verify checks both exist in the wheels."""
    from pathlib import Path

    from wheelfactory.recipe import load_recipe

    recipes = Path(__file__).resolve().parents[2] / "recipes"
    wanted = {"sageattention": "sageattention.sageattn", "sageattn3": "sageattn3.sageattn3_blackwell"}
    for path in sorted(recipes.glob("*.toml")):
        recipe = load_recipe(path)
        assert wanted[recipe.name] in recipe.import_names, path.name
