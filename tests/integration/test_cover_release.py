"""The release path's cover step for real: `wheelfactory cover` installs a real torch (2.12.1,
cu130, through pip's own configuration: PyTorch's index is not reachable here), imports two
published stable-ABI wheels with it, lists the one that loads in torch 2.12's view, leaves
the one that does not out of it with one line naming the wheel, the torch and the module,
and removes the torch env it made (the disk holds one torch at a time)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from _index_env import installer_env
from _index_wheels import make_wheel
from _records import record_json
from conftest import run_wheelfactory
from wheelfactory import build, cudastub, releases, verify
from wheelfactory.manifest import load_manifest
from wheelfactory.serve import start_server

TORCH = "2.12.1"  # on PyPI here for CUDA 13.0; the shared cache holds no env of it

# A real CPython extension module of the limited API (what an abi3 wheel holds) that links
# the CUDA driver, as every recipe's modules do (links-driver): it imports on this machine,
# which has no driver, only with the stub cover makes from the torch env's own cuda.h.
GOOD = """#define Py_LIMITED_API 0x030a0000
#include <Python.h>
int cuInit(unsigned int flags);
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__C(void) { (void)&cuInit; return PyModule_Create(&def); }
"""
# A shared library without the init function: loads, but Python cannot import it.
BAD = "int not_a_module(void) { return 1; }\n"


def stable_wheel(tmp: Path, name: str, code: str) -> Path:
    src = tmp / f"{name}.c"
    src.write_text(code)
    so = tmp / f"{name}.abi3.so"
    include = sysconfig.get_paths()["include"]
    stub = cudastub.make_stub(build.find_toolchain().cuda_home, tmp / "link-stub")  # to link -lcuda here
    subprocess.run(["cc", "-shared", "-fPIC", f"-I{include}", "-o", str(so), str(src), "-Wl,--no-as-needed",
                    f"-L{stub}", "-lcuda"], check=True)  # fmt: skip
    return make_wheel(
        tmp / name, name=name, torch="abi", requires_torch="torch>=2.10", python_tag="cp310",
        abi_tag="abi3", platform_tag="manylinux_2_28_x86_64",
        extra_files={f"{name}/_C.abi3.so": so.read_bytes()},
        build_record=record_json(package_version="1.0.0+cu130torchabi", stable_abi_floor="2.10",
                                 torch_requirement="torch>=2.10", python_tag="cp310-abi3",
                                 package=name.replace("_", "-")),
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_cover_imports_each_stable_wheel_with_a_real_torch_and_keeps_a_bad_one_out(tmp_path: Path) -> None:
    assert not verify.driver_installed()  # else this proves nothing about the stub
    good, bad = stable_wheel(tmp_path, "good_ext", GOOD), stable_wheel(tmp_path, "bad_ext", BAD)
    idx = tmp_path / "idx"
    assert run_wheelfactory("publish", good, bad, "--index", idx).returncode == 0
    table = tmp_path / "torch-releases.toml"
    row = releases.TorchRelease(version=TORCH, pythons=("3.11",),
                                variants=(releases.Variant(cuda="13.0", platforms=("linux-x86_64",)),))  # fmt: skip
    releases.dump(releases.ReleaseTable(releases=(row,)), table)
    cache = tmp_path / "cache"
    env = {**os.environ, "WHEELFACTORY_CACHE": str(cache), "PIP_NO_CACHE_DIR": "1"}
    start = time.monotonic()
    proc = run_wheelfactory("cover", "--index", idx, "--table", table, "--torch-index-url", "", env=env)
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert f"covered {good.name}: imports with torch {TORCH}" in lines, proc.stdout
    (gap,) = [ln for ln in lines if ln.startswith("NOT covered")]
    assert gap.startswith(f"NOT covered {bad.name}: import bad_ext._C failed with torch {TORCH}: ImportError")
    assert "PyInit__C" in gap

    files = load_manifest(idx).by_filename
    # (2.14: the torch their build records name, listed by publish)
    assert files[good.name].covers == ("2.12", "2.14") and files[good.name].not_covered == {}
    assert files[bad.name].covers == ("2.14",) and files[bad.name].not_covered == {"2.12": gap.split(": ", 1)[1]}
    assert not list((cache / "envs").glob("*torch2.12.1*/")), "the torch env this run made was not removed"
    # good_ext imported without a driver: through the stub, made from cuda.h (torch's own
    # CUDA headers first; the toolkit's here are the same file, so this does not tell them apart)
    assert [p.name for p in (cache / "stubs").iterdir() if p.name.startswith("libcuda-stub-")]
    print(f"cover: torch {TORCH} installed, 2 wheels imported, env removed in {seconds:.0f} s")

    # pip, pointed at torch 2.12's strict view, finds the wheel that loads and only that one
    python = Path(sys.executable)
    with start_server(idx) as srv:
        for name, found in (("good-ext", True), ("bad-ext", False)):
            got = subprocess.run(
                [str(python), "-m", "pip", "download", "-q", "--no-deps", "--dest", str(tmp_path / "dl"),
                 "--index-url", f"{srv.url}cu130/torch2.12/simple/", name],
                capture_output=True, text=True, check=False, timeout=300, env=installer_env(tmp_path),
            )  # fmt: skip
            assert (got.returncode == 0) == found, got.stderr
    assert [p.name for p in (tmp_path / "dl").iterdir()] == [good.name]
