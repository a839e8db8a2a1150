"""What each planned CI job runs, and what it costs (issue 22 item 3): over the REAL plan of
recipes/*.toml, no wheelfactory step runs in the build Python (cibuildwheel builds cp39,
which wheelfactory does not support), every job fits the time and disk budget; and the
smoke imports a real -lcuda module on a machine without the NVIDIA driver."""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from functools import cache
from pathlib import Path

import pytest
from _index_wheels import make_wheel
from packaging.specifiers import SpecifierSet
from wheelfactory import pe, releases, verify
from wheelfactory import plan as planning
from wheelfactory.ci import cell, cibw
from wheelfactory.errors import ConfigError
from wheelfactory.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
COMMAND_KEYS = ("CIBW_BEFORE_ALL", "CIBW_BEFORE_BUILD", "CIBW_REPAIR_WHEEL_COMMAND", "CIBW_TEST_COMMAND")


@cache
def real_jobs() -> tuple[dict, ...]:
    recipes = [load_recipe(p) for p in sorted((ROOT / "recipes").glob("*.toml"))]
    result = planning.plan(recipes, releases.load(), None, root=ROOT)
    return tuple(j for m in result.github_matrices()["matrices"] for j in m["include"])


@cache
def real_envs() -> tuple[tuple[dict, dict[str, str]], ...]:
    return tuple(
        (raw, cibw.cibw_env(cibw.parse_job(raw), recipe=load_recipe(ROOT / raw["recipe"]))) for raw in real_jobs()
    )


def commands(text: str) -> list[list[str]]:
    """The simple commands of one cibuildwheel command string (joined by ' && ')."""
    return [shlex.split(part) for part in text.split(" && ")]


def requires_python() -> SpecifierSet:
    return SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])


def test_the_real_plan_builds_pythons_wheelfactory_does_not_support():
    # What makes the next test meaningful: cp39 wheels are planned.
    assert any(not requires_python().contains(p + ".0") for j in real_jobs() for p in j["pythons"])


def test_no_job_runs_wheelfactory_or_installs_it_with_the_build_python():
    factory = {"linux": cibw.LINUX_FACTORY_VENV + "/bin/python", "windows": f"%{cibw.WINDOWS_PYTHON_ENV}%"}
    # The fixed interpreter is one wheelfactory supports (the venv is made from it).
    base = Path(cibw.LINUX_BASE_PYTHON).parts[-3]  # "cp312-cp312"
    assert requires_python().contains(f"{base[2]}.{base[3:].split('-')[0]}.0")
    seen = 0
    for raw, env in real_envs():
        for key in COMMAND_KEYS:
            for argv in commands(env[key]):
                runs_factory = argv[1:3] == ["-m", "wheelfactory"]
                installs_project = argv[1:4] == ["-m", "pip", "install"] and "{project}" in argv
                if runs_factory or installs_project:
                    seen += 1
                    assert argv[0] == factory[raw["os"]], (raw["id"], key, argv)
                # `python` is the build (or test) Python on cibuildwheel's PATH
                assert argv[0] != "python" or not (runs_factory or installs_project), (raw["id"], key, argv)
    assert seen >= 3 * len(real_jobs())  # install, repair and smoke in every job
    # the build record describes the build Python (`python` during repair), not the factory's
    assert all(commands(env["CIBW_REPAIR_WHEEL_COMMAND"])[0][-2:] == ["--build-python", "python"] for _, env in real_envs())


def test_every_real_job_fits_half_the_runner_time_limit():
    limit = cibw.load_ci_table().budget.limit_minutes
    workflow = (ROOT / ".github/workflows/build-cells.yml").read_text()
    assert limit * 2 == int(workflow.split("timeout-minutes:")[1].split()[0])  # half of 360
    over = [(j["id"], j["minutes"]) for j in real_jobs() if j["minutes"] > limit]
    assert not over, over


def test_every_real_job_fits_its_runner_disk():
    budget = cibw.load_ci_table().budget
    for raw in real_jobs():
        platform = f"{raw['os']}-{raw['machine']}"
        assert len(raw["pythons"]) == 1, raw["id"]  # one torch per job
        assert raw["disk_gb"] <= budget.disk_gb[platform], raw["id"]
    # the pip cache is off in every build: torch's wheels would sit on disk twice
    assert all('PIP_NO_CACHE_DIR="1"' in env["CIBW_ENVIRONMENT"] for _, env in real_envs())


def test_estimate_uses_the_slowest_measured_compile():
    costs = json.loads((ROOT / "bench/results/cell-costs.json").read_text())["recipes"]
    measured = [c for c in costs.values() if "seconds" in c]
    budget = cibw.load_ci_table().budget
    assert budget.seconds_per_target == math.ceil(max(c["seconds"] / c["targets"] for c in measured))
    # sageattention-main (7 targets) on a 4-core Windows runner: 7 x 508 s x 2/4 + setup
    job = next(j for j in real_jobs() if j["name"] == "sageattention" and j["os"] == "windows" and len(j["targets"].split(";")) == 7)
    assert job["minutes"] == math.ceil(7 * 508 * 2 / 4 / 60) + budget.setup_minutes["windows-amd64"]


def test_a_job_of_five_pythons_is_refused_with_the_fix():
    raw = next(j for j in real_jobs() if j["os"] == "windows" and len(j["targets"].split(";")) == 7)
    pythons = ["3.10", "3.11", "3.12", "3.13", "3.14"]
    five = {**raw, "pythons": pythons, "cibw_build": " ".join(f"cp{p.replace('.', '')}-win_amd64" for p in pythons)}
    with pytest.raises(ConfigError, match=r"estimated \d+ min is over the 180-min budget") as e:
        cibw.cibw_env(cibw.parse_job(five), recipe=load_recipe(ROOT / raw["recipe"]))
    assert "\n" not in str(e.value)
    linux = next(j for j in real_jobs() if j["os"] == "linux" and j["machine"] == "x86_64" and len(j["targets"].split(";")) <= 4)
    pythons = ["3.11", "3.12", "3.13"]  # three torch installs and the test venv's: over the disk
    three = {**linux, "pythons": pythons, "cibw_build": " ".join(f"cp{p.replace('.', '')}-manylinux_x86_64" for p in pythons)}
    with pytest.raises(ConfigError, match="GB of disk .* build one Python per job"):
        cibw.cibw_env(cibw.parse_job({**three, "machine": "x86_64"}), recipe=load_recipe(ROOT / linux["recipe"]))


def test_abi3_audit_is_cibuildwheels_default_spelled_out():
    cibuildwheel = pytest.importorskip("cibuildwheel")
    defaults = tomllib.loads((Path(cibuildwheel.__file__).parent / "resources/defaults.toml").read_text())
    assert cibw.ABI3_AUDIT == defaults["tool"]["cibuildwheel"]["audit-command"]
    assert all(env["CIBW_AUDIT_COMMAND"] == cibw.ABI3_AUDIT for _, env in real_envs())


# ------------------------------------------------------------------ the smoke without a driver

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")

EXTENSION = r"""
#include <Python.h>
typedef int CUresult;
CUresult cuDriverGetVersion(int *version);
static PyObject *stub_error(PyObject *self, PyObject *args) { int v = 0; return PyLong_FromLong(cuDriverGetVersion(&v)); }
static PyMethodDef methods[] = {{"stub_error", stub_error, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_drv", NULL, -1, methods};
PyMODINIT_FUNC PyInit__drv(void) { return PyModule_Create(&module); }
"""


def driver_module(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(site dir holding demo_drv._drv and a stand-in torch, its wheel, a CUDA_HOME): the
    module is a real extension linked with -lcuda (NEEDED libcuda.so.1)."""
    from wheelfactory import cudastub

    cuda_home = tmp_path / "cuda"
    (cuda_home / "include").mkdir(parents=True)
    (cuda_home / "include/cuda.h").write_text("CUresult CUDAAPI cuDriverGetVersion(int *driverVersion);\n")
    link_stub = cudastub.make_stub(cuda_home, tmp_path / "link-stub")
    site = tmp_path / "site"
    (site / "demo_drv").mkdir(parents=True)
    (site / "demo_drv/__init__.py").write_text("")
    (site / "torch.py").write_text("")  # smoke imports torch first
    name = "demo_drv/_drv" + sysconfig.get_config_var("EXT_SUFFIX")
    src = tmp_path / "drv.c"
    src.write_text(EXTENSION)
    include = sysconfig.get_paths()["include"]
    subprocess.run(["cc", "-shared", "-fPIC", f"-I{include}", "-o", site / name, src, f"-L{link_stub}", "-lcuda"], check=True)
    wheel = make_wheel(tmp_path / "dist", name="demo_drv", python_tag="cp311", abi_tag="cp311",
                       platform_tag="linux_x86_64", extra_files={name: (site / name).read_bytes()})  # fmt: skip
    return site, wheel, cuda_home


@needs_cc
@pytest.mark.skipif(not sys.platform.startswith("linux") or verify.driver_installed(), reason="Linux without a driver")
def test_smoke_imports_a_libcuda_module_without_a_driver(tmp_path: Path) -> None:
    site, wheel, cuda_home = driver_module(tmp_path)
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(site), "CUDA_HOME": str(cuda_home)}
    # what hosted runners did: the module needs the driver, which is not there
    plain = subprocess.run([sys.executable, "-c", "import torch, demo_drv._drv"], env=env, capture_output=True, text=True)
    assert "libcuda.so.1: cannot open shared object file" in plain.stderr
    # the CI test command, as cibuildwheel runs it: the factory Python drives, `python` imports
    proc = subprocess.run([sys.executable, "-m", "wheelfactory", "smoke", str(wheel), "--python", sys.executable],
                          env=env, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "imported 1 module(s): demo_drv._drv" in proc.stdout
    # the stub answered for the import only: the module's driver call gets CUDA_ERROR_STUB_LIBRARY
    report = cell.smoke(wheel, python=sys.executable, work=tmp_path / "w", env=env)
    assert report.imported == ("demo_drv._drv",) and not report.not_imported


# ------------------------------------------------------------------ Windows: the PE import table


def launchers() -> list[Path]:
    import pip

    return sorted(Path(pip.__file__).parent.glob("_vendor/distlib/[tw]64.exe"))


def test_pe_import_table_of_real_windows_executables():
    found = {p.name: pe.dll_imports(p.read_bytes()) for p in launchers()}
    assert found and all("KERNEL32.dll" in dlls for dlls in found.values()), found
    with pytest.raises(pe.PEFormatError):
        pe.dll_imports(b"\x7fELF" + bytes(100))


def with_nvcuda(exe: bytes) -> bytes:
    """A real PE whose import table names nvcuda.dll instead of SHLWAPI.dll (same slot)."""
    assert exe.count(b"SHLWAPI.dll\0") == 1
    return exe.replace(b"SHLWAPI.dll\0", b"nvcuda.dll\0\0")


def test_windows_smoke_leaves_out_only_modules_that_import_nvcuda(tmp_path: Path, monkeypatch) -> None:
    exe = launchers()[0].read_bytes()
    assert "nvcuda.dll" in pe.dll_imports(with_nvcuda(exe))
    site = tmp_path / "site"
    (site / "demo").mkdir(parents=True)
    (site / "torch.py").write_text("")
    (site / "demo/__init__.py").write_text("")
    (site / "demo/plain.py").write_text("")  # stands for a module without nvcuda.dll: really imported
    wheel = make_wheel(tmp_path / "dist", name="demo", python_tag="cp312", abi_tag="cp312", platform_tag="win_amd64",
                       extra_files={"demo/_drv.cp312-win_amd64.pyd": with_nvcuda(exe),
                                    "demo/_cpu.cp312-win_amd64.pyd": exe})  # fmt: skip
    monkeypatch.setenv("WHEELFACTORY_PLATFORM", "windows-amd64")
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(site)}
    report = cell.smoke(wheel, modules=["demo._drv", "demo.plain"], python=sys.executable, work=tmp_path / "w", env=env)
    assert report.imported == ("demo.plain",)
    assert report.not_imported["demo._drv"].startswith("imports nvcuda.dll (no driver here): not imported")
    # a module that does not import nvcuda.dll is imported, and a failure is an error
    with pytest.raises(Exception, match=r"import demo\._cpu failed"):
        cell.smoke(wheel, python=sys.executable, work=tmp_path / "w2", env=env)


# ------------------------------------------------------------------ the record describes the build Python


def test_repair_reads_the_build_pythons_torch_and_version_not_its_own(tmp_path: Path) -> None:
    import platform

    # a real interpreter (a venv) holding a torch the factory's Python does not have
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "build"], check=True)
    build_python = tmp_path / "build/bin/python"
    purelib = subprocess.run([build_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    info = Path(purelib, "torch-2.14.1+cu130.dist-info")
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.14.1+cu130\n")
    described = cell.describe_python(str(build_python))
    assert described.packages["torch"] == "2.14.1+cu130"
    assert described.version == platform.python_version() and described.minor == "{}.{}".format(*sys.version_info)
    assert cell.describe_python(sys.executable).packages["torch"] is None  # the factory's own has none
    with pytest.raises(Exception, match="pass --build-python PATH"):
        cell.describe_python(str(tmp_path / "no-such-python"))
