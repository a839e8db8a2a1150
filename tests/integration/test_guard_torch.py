"""The import-time guard and which.py's detection against the real torch 2.14.1 (CUDA 13.0).

The torch venv is the build cache's (or one made once; see _index_env.torch_env); each test
venv reaches it through a .pth file instead of a 5 GB copy. No GPU here: the GPU part of the
guard is skipped, and the test checks that importing never initialised CUDA.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from _index_env import make_venv, site_packages, torch_env
from wheelfactory import guard, which
from wheelfactory.guard import GuardInfo

ROOT = "http://127.0.0.1:9/idx"


@pytest.fixture(scope="module")
def torch_python(tmp_path_factory) -> Path:
    env = torch_env()
    return make_venv(tmp_path_factory.mktemp("venv") / "v", site_packages(env), for_uv=False)


def _package(tmp: Path, info: GuardInfo) -> Path:
    root = tmp / "site"
    pkg = root / "guardprobe"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""Probe."""\nimport torch\n\nVALUE = 42\n')
    guard.add_guard(root, info)
    return root


def _import(python: Path, root: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFACTORY_")}
    full.update(PYTHONPATH=str(root), **env)
    return subprocess.run([str(python), "-W", "ignore", "-c", code], env=full,
                          capture_output=True, text=True, timeout=300, check=False)


def info(**kw) -> GuardInfo:
    base = dict(package="guardprobe", version="1.0.0+cu130torch2.14", cuda="13.0",
                torch="2.14", targets=("9.0a", "12.0a"), index_url=ROOT)
    base.update(kw)
    return GuardInfo(**base)


def test_matching_torch_imports_and_leaves_cuda_alone(torch_python, tmp_path) -> None:
    root = _package(tmp_path, info())
    out = _import(torch_python, root, "import guardprobe, torch; "
                  "print(guardprobe.VALUE, torch.cuda.is_initialized())")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["42", "False"]


def test_other_torch_minor_explains_itself(torch_python, tmp_path) -> None:
    root = _package(tmp_path, info(version="1.0.0+cu130torch2.13", torch="2.13"))
    out = _import(torch_python, root, "import guardprobe")
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: guardprobe 1.0.0+cu130torch2.13 was built for torch 2.13")
    assert "this Python has torch 2.14.1+cu130 with CUDA 13.0" in last
    # double quotes: cmd.exe passes single quotes on to pip
    assert (f'-m pip install --force-reinstall "guardprobe==1.0.0" --extra-index-url '
            f"{ROOT}/cu130/torch2.14/simple/") in last
    # ... and the documented escape hatch lets it through.
    out = _import(torch_python, root, "import guardprobe; print(guardprobe.VALUE)",
                  WHEELFACTORY_SKIP_GUARD="1")
    assert out.returncode == 0 and out.stdout.split()[-1] == "42"


def test_other_cuda_major_explains_itself(torch_python, tmp_path) -> None:
    root = _package(tmp_path, info(version="1.0.0+cu128torch2.14", cuda="12.8"))
    out = _import(torch_python, root, "import guardprobe")
    assert out.returncode == 1
    assert "was built for torch 2.14 with CUDA 12.8" in out.stderr
    assert f"{ROOT}/cu130/torch2.14/simple/" in out.stderr


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc for a real C extension")
def test_top_level_extension_behind_a_shim(torch_python, tmp_path) -> None:
    """A real compiled top-level module (like sageattn3's fp4attn_cuda) keeps importing
    by its name, through the guard."""
    src = tmp_path / "probe_ext.c"
    src.write_text(
        "#include <Python.h>\n"
        "static struct PyModuleDef m = {PyModuleDef_HEAD_INIT, \"probe_ext\", NULL, -1, NULL};\n"
        "PyMODINIT_FUNC PyInit_probe_ext(void) {\n"
        "  PyObject *mod = PyModule_Create(&m);\n"
        "  PyModule_AddIntConstant(mod, \"ANSWER\", 42); return mod; }\n")
    root = tmp_path / "site"
    root.mkdir()
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", f"-I{sysconfig.get_paths()['include']}",
                    str(src), "-o", str(root / f"probe_ext{suffix}")], check=True)
    guard.add_guard(root, info(package="probe-ext"))
    assert (root / "probe_ext.py").is_file()
    ok = _import(torch_python, root, "import probe_ext; print(probe_ext.ANSWER)")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split()[-1] == "42"
    shutil.rmtree(root / "_wheelfactory_probe_ext" / "__pycache__", ignore_errors=True)
    (root / "_wheelfactory_probe_ext" / "_wheelfactory_guard.py").write_text(
        guard.render_guard(info(package="probe-ext", version="1.0.0+cu130torch2.13",
                                torch="2.13")))
    bad = _import(torch_python, root, "import probe_ext")
    assert bad.returncode == 1 and "built for torch 2.13" in bad.stderr


def test_which_detects_the_real_torch(torch_python, tmp_path) -> None:
    script = tmp_path / "which.py"
    script.write_text(Path(which.__file__).read_text(encoding="utf-8"))
    out = subprocess.run([str(torch_python), "-W", "ignore", str(script), "sageattention",
                          "--json", "--offline", "--index-url", ROOT],
                         capture_output=True, text=True, timeout=300, check=False)
    data = json.loads(out.stdout)
    assert data["machine"].startswith("Linux x86_64, Python 3.11, torch 2.14.1+cu130, CUDA 13.0")
    assert data["ok"] is True and out.returncode == 0
    url = f"{ROOT}/cu130/torch2.14/simple/"
    assert data["command"] == f"python -m pip install sageattention --extra-index-url {url}"
