"""The import-time guard: where add_guard puts it, and what the generated module says when
it runs against fake torch modules (sys.modules['torch'] replaced; no real torch here)."""

from __future__ import annotations

import importlib
import runpy
import sys
import types
from pathlib import Path

import pytest
from wheelfactory import arch, guard, which
from wheelfactory.errors import BuildError, ConfigError
from wheelfactory.guard import GuardInfo

ROOT = "https://idx.example.org/wheels"
SA2 = GuardInfo(package="sageattention", version="2.2.0+cu128torch2.8", cuda="12.8", torch="2.8",
                targets=("8.0", "8.9", "9.0a", "12.0a"), index_url=ROOT)


class FakeCuda:
    """torch.cuda that fails the test if anything would initialise CUDA."""

    def __init__(self, caps: list[tuple[int, int]], *, initialized: bool) -> None:
        self.caps, self.initialized = caps, initialized

    def is_initialized(self) -> bool:
        return self.initialized

    def device_count(self) -> int:
        assert self.initialized, "device_count() would be answered by CUDA"
        return len(self.caps)

    def get_device_capability(self, i: int = 0) -> tuple[int, int]:
        assert self.initialized, "get_device_capability() initialises CUDA"
        return self.caps[i]

    def is_available(self) -> bool:
        raise AssertionError("the guard must not need torch.cuda.is_available()")


def fake_torch(version: str, cuda: str | None, caps=(), *, initialized: bool = True):
    mod = types.ModuleType("torch")
    mod.__version__ = version
    mod.version = types.SimpleNamespace(cuda=cuda)
    mod.cuda = FakeCuda(list(caps), initialized=initialized)
    return mod


def run_guard(tmp_path: Path, info: GuardInfo, torch, monkeypatch) -> None:
    path = tmp_path / "_wheelfactory_guard.py"
    path.write_text(guard.render_guard(info), encoding="utf-8")
    monkeypatch.setitem(sys.modules, "torch", torch)
    runpy.run_path(str(path))


def guard_error(tmp_path, info, torch, monkeypatch) -> str:
    with pytest.raises(ImportError) as exc:
        run_guard(tmp_path, info, torch, monkeypatch)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("WHEELFACTORY_SKIP_GUARD", raising=False)
    monkeypatch.delenv("WHEELFACTORY_INDEX_URL", raising=False)


def test_matching_setup_imports(tmp_path, monkeypatch) -> None:
    # CUDA 12.9 vs a 12.8 build: only the CUDA major must match.
    run_guard(tmp_path, SA2, fake_torch("2.8.0+cu129", "12.9", [(12, 0)]), monkeypatch)


def test_other_torch_minor(tmp_path, monkeypatch) -> None:
    msg = guard_error(tmp_path, SA2, fake_torch("2.9.1+cu128", "12.8", [(12, 0)]), monkeypatch)
    built = "sageattention 2.2.0+cu128torch2.8 was built for torch 2.8 with CUDA 12.8"
    assert msg.startswith(built)
    assert "this Python has torch 2.9.1+cu128 with CUDA 12.8" in msg
    assert ('python -m pip install --force-reinstall "sageattention==2.2.0" --extra-index-url '
            f"{ROOT}/cu128/torch2.9/simple/") in msg
    assert "WHEELFACTORY_SKIP_GUARD=1" in msg


def test_other_cuda_major(tmp_path, monkeypatch) -> None:
    msg = guard_error(tmp_path, SA2, fake_torch("2.8.0+cu130", "13.0"), monkeypatch)
    assert "torch 2.8.0+cu130 with CUDA 13.0" in msg
    assert f"--extra-index-url {ROOT}/cu130/torch2.8/simple/" in msg


def test_cpu_torch(tmp_path, monkeypatch) -> None:
    msg = guard_error(tmp_path, SA2, fake_torch("2.8.0+cpu", None), monkeypatch)
    assert "torch 2.8.0+cpu in this Python has no CUDA" in msg
    assert msg.endswith('python -m pip install "torch==2.8.*" --index-url https://download.pytorch.org/whl/cu128')


def test_torch_missing(tmp_path, monkeypatch) -> None:
    msg = guard_error(tmp_path, SA2, None, monkeypatch)  # sys.modules[name] = None: ImportError
    assert "torch does not import" in msg
    assert msg.endswith('python -m pip install "torch==2.8.*" --index-url https://download.pytorch.org/whl/cu128')


def test_gpu_outside_targets(tmp_path, monkeypatch) -> None:
    info = GuardInfo(package="sageattn3", version="1.0.0+cu128torch2.8", cuda="12.8", torch="2.8",
                     targets=("10.0a", "12.0a"), index_url=ROOT)
    msg = guard_error(tmp_path, info, fake_torch("2.8.0+cu128", "12.8", [(9, 0)]), monkeypatch)
    assert "GPU targets 10.0a, 12.0a, but this GPU is sm_90" in msg
    assert "no kernel image is available" in msg
    assert f"{ROOT}/which.py" in msg


def test_one_fitting_gpu_is_enough(tmp_path, monkeypatch) -> None:
    torch = fake_torch("2.8.0+cu128", "12.8", [(7, 5), (9, 0)])
    run_guard(tmp_path, SA2, torch, monkeypatch)


def test_gpu_check_never_initialises_cuda(tmp_path, monkeypatch) -> None:
    # CUDA not initialised: FakeCuda asserts if the guard asks torch; NVML (absent on this
    # machine, or present) is the only allowed source.
    torch = fake_torch("2.8.0+cu128", "12.8", [(12, 0)], initialized=False)
    run_guard(tmp_path, SA2, torch, monkeypatch)


def test_skip_env(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WHEELFACTORY_SKIP_GUARD", "1")
    run_guard(tmp_path, SA2, fake_torch("2.99.0", None), monkeypatch)


def test_index_root_overridable_at_run_time(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WHEELFACTORY_INDEX_URL", "http://127.0.0.1:8080/")
    msg = guard_error(tmp_path, SA2, fake_torch("2.9.0+cu128", "12.8"), monkeypatch)
    assert "--extra-index-url http://127.0.0.1:8080/cu128/torch2.9/simple/" in msg


def test_unknown_index_root_names_no_host(tmp_path, monkeypatch) -> None:
    # A wheel built without --index-url: the command says where the index comes from
    # instead of naming a made-up host; $WHEELFACTORY_INDEX_URL then fills it in.
    info = GuardInfo(package="sageattention", version="2.2.0+cu128torch2.8", cuda="12.8",
                     torch="2.8", targets=("9.0a",))
    msg = guard_error(tmp_path, info, fake_torch("2.9.1+cu128", "12.8"), monkeypatch)
    assert "--extra-index-url <index>/cu128/torch2.9/simple/" in msg
    assert "(<index>: the root of the wheelfactory index this wheel came from;" in msg
    assert "WHEELFACTORY_INDEX_URL" in msg and "http" not in msg.split("download.pytorch")[0]
    msg = guard_error(tmp_path, info, fake_torch("2.8.0+cu128", "12.8", [(12, 0)]), monkeypatch)
    assert "python which.py sageattention (from <index>/which.py (<index>: the root" in msg
    monkeypatch.setenv("WHEELFACTORY_INDEX_URL", "https://idx.example.org/w")
    msg = guard_error(tmp_path, info, fake_torch("2.9.1+cu128", "12.8"), monkeypatch)
    assert "--extra-index-url https://idx.example.org/w/cu128/torch2.9/simple/" in msg
    assert "<index>" not in msg


def test_stable_abi_floor(tmp_path, monkeypatch) -> None:
    info = GuardInfo(package="sageattention", version="2.2.0+cu130torchabi", cuda="13.0",
                     torch="abi", torch_floor="2.10", targets=("9.0a",), index_url=ROOT)
    run_guard(tmp_path, info, fake_torch("2.14.1+cu130", "13.0", [(9, 0)]), monkeypatch)
    msg = guard_error(tmp_path, info, fake_torch("2.9.1+cu130", "13.0", [(9, 0)]), monkeypatch)
    assert "built for torch>=2.10 (stable ABI) with CUDA 13.0" in msg


@pytest.mark.parametrize("version", ["2.10.0+cu130", "2.10.1+cu130", "2.11.0+cu130"])
def test_stable_abi_wheel_loads_at_exactly_its_floor(tmp_path, monkeypatch, version) -> None:
    """torch_floor "2.10" means torch 2.10 itself loads it (the build was checked against
    2.10's C-shim exports); only what is below refuses."""
    info = GuardInfo(package="sageattention", version="2.2.0+cu130torchabi", cuda="13.0",
                     torch="abi", torch_floor="2.10", targets=("9.0a",), index_url=ROOT)
    run_guard(tmp_path, info, fake_torch(version, "13.0", [(9, 0)]), monkeypatch)
    msg = guard_error(tmp_path, info, fake_torch("2.9.9+cu130", "13.0", [(9, 0)]), monkeypatch)
    assert "this Python has torch 2.9.9+cu130" in msg


def test_guard_info_is_validated() -> None:
    with pytest.raises(ConfigError, match="torch_floor"):
        GuardInfo(package="x", version="1.0+cu130torchabi", cuda="13.0", torch="abi")
    with pytest.raises(ConfigError, match="9.0, 9.0a"):
        GuardInfo(package="x", version="1.0", cuda="13.0", torch="2.14", targets=("sm90x",))


@pytest.mark.parametrize("text", ["8.0", "8.9+PTX", "9.0a", "10.0f", "12.0a", "12.0f", "12.1a",
                                  "12.0+PTX", "9.0"])
def test_template_target_rule_agrees_with_arch(text: str) -> None:
    src = guard.GUARD_TEMPLATE.read_text(encoding="utf-8").replace("\ncheck()\n", "\n")
    ns: dict = {}
    exec(compile(src, "guard_template", "exec"), ns)  # the template without its call
    for cap in [(7, 5), (8, 0), (8, 9), (9, 0), (10, 0), (10, 3), (12, 0), (12, 1)]:
        assert ns["_target_runs_on"](text, cap) == arch.GpuTarget.parse(text).runs_on(cap)


# --- add_guard on unpacked wheels ------------------------------------------------------

INIT = '''"""Upstream's docstring."""
from __future__ import annotations

from .core import sageattn
'''


def unpacked_sageattention(tmp_path: Path) -> Path:
    root = tmp_path / "wheel"
    pkg = root / "sageattention"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(INIT, encoding="utf-8")
    (pkg / "core.py").write_text("sageattn = 'kernel'\n", encoding="utf-8")
    (pkg / "_qattn_sm90.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF fake")
    (root / "sageattention-2.2.0+cu128torch2.8.dist-info").mkdir()
    return root


def test_add_guard_to_a_package(tmp_path, monkeypatch) -> None:
    root = unpacked_sageattention(tmp_path)
    guard.add_guard(root, SA2)
    init = (root / "sageattention" / "__init__.py").read_text(encoding="utf-8")
    lines = init.splitlines()
    # Docstring and __future__ stay first; the guard is the first statement after them.
    assert lines[:3] == ['"""Upstream\'s docstring."""', "from __future__ import annotations",
                         guard.GUARD_LINE]
    assert (root / "sageattention" / "_wheelfactory_guard.py").is_file()
    # Idempotent: a second run does not add a second line.
    guard.add_guard(root, SA2)
    assert (root / "sageattention" / "__init__.py").read_text(encoding="utf-8") == init
    # The guarded package really imports through the guard.
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setitem(sys.modules, "torch", fake_torch("2.9.0+cu128", "12.8"))
    with pytest.raises(ImportError, match="torch2.9/simple/"):
        importlib.import_module("sageattention")
    for name in [m for m in sys.modules if m.startswith("sageattention")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", fake_torch("2.8.0+cu128", "12.8"))
    assert importlib.import_module("sageattention").sageattn == "kernel"
    for name in [m for m in sys.modules if m.startswith("sageattention")]:
        monkeypatch.delitem(sys.modules, name)


def test_add_guard_to_top_level_extensions(tmp_path, monkeypatch) -> None:
    root = tmp_path / "wheel"
    (root / "sageattn3").mkdir(parents=True)
    (root / "sageattn3" / "__init__.py").write_text("from .api import *\n", encoding="utf-8")
    (root / "fp4attn_cuda.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF fake")
    info = GuardInfo(package="sageattn3", version="1.0.0+cu130torch2.14", cuda="13.0",
                     torch="2.14", targets=("12.0a",), index_url=ROOT)
    guard.add_guard(root, info)
    private = root / "_wheelfactory_sageattn3"
    assert (private / "fp4attn_cuda.cpython-311-x86_64-linux-gnu.so").is_file()
    assert (private / "_wheelfactory_guard.py").is_file()
    assert not (root / "fp4attn_cuda.cpython-311-x86_64-linux-gnu.so").exists()
    assert (root / "sageattn3" / "__init__.py").read_text().startswith(guard.GUARD_LINE + "\n")
    # Stand in for the compiled module with a Python one of the same name, then import the
    # shim: it runs the guard and hands back the module from the private folder.
    (private / "fp4attn_cuda.cpython-311-x86_64-linux-gnu.so").unlink()
    (private / "fp4attn_cuda.py").write_text("REAL = True\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setitem(sys.modules, "torch", fake_torch("2.14.1+cu130", "13.0", [(12, 0)]))
    mod = importlib.import_module("fp4attn_cuda")
    assert mod.REAL is True and sys.modules["fp4attn_cuda"] is mod
    for name in [m for m in sys.modules if "fp4attn" in m or "_wheelfactory_sageattn3" in m]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", fake_torch("2.14.1+cu130", "13.0", [(9, 0)]))
    with pytest.raises(ImportError, match="this GPU is sm_90"):
        importlib.import_module("fp4attn_cuda")
    for name in [m for m in sys.modules if "fp4attn" in m or "_wheelfactory_sageattn3" in m]:
        monkeypatch.delitem(sys.modules, name)


def test_add_guard_refuses_repaired_extensions(tmp_path) -> None:
    root = tmp_path / "wheel"
    root.mkdir()
    (root / "fp4attn_cuda.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF $ORIGIN/x.libs")
    with pytest.raises(BuildError, match="before auditwheel"):
        guard.add_guard(root, SA2)


def test_add_guard_needs_something_to_guard(tmp_path) -> None:
    (tmp_path / "x-1.0.dist-info").mkdir()
    with pytest.raises(BuildError, match="no package folder"):
        guard.add_guard(tmp_path, SA2)


def test_skip_gpu_only(tmp_path, monkeypatch) -> None:
    # "gpu" (set by the factory's own import test on a build machine) skips the GPU check only
    monkeypatch.setenv("WHEELFACTORY_SKIP_GUARD", "gpu")
    info = GuardInfo(package="sageattn3", version="1.0.0+cu128torch2.8", cuda="12.8", torch="2.8",
                     targets=("12.0a",), index_url=ROOT)
    run_guard(tmp_path, info, fake_torch("2.8.0+cu128", "12.8", [(9, 0)]), monkeypatch)
    msg = guard_error(tmp_path, info, fake_torch("2.9.0+cu128", "12.8", [(9, 0)]), monkeypatch)
    assert "this Python has torch 2.9.0+cu128" in msg


def test_known_bad_gpu_is_refused_with_what_to_install(tmp_path, monkeypatch) -> None:
    """The v2.2.0 tag on Hopper: wrong numbers there, so the import says what to install."""
    from dataclasses import replace

    from wheelfactory.recipe import KnownBad

    bad = KnownBad(arch="9.0", reason="uncomputed output", use_instead=">=2.2.0.post20260117")
    info = replace(SA2, known_bad=(bad,))
    msg = guard_error(tmp_path, info, fake_torch("2.8.0+cu128", "12.8", [(9, 0)]), monkeypatch)
    assert "computes wrong results on sm_90 GPUs like this one (uncomputed output)" in msg
    assert (f'python -m pip install --force-reinstall "sageattention>=2.2.0.post20260117" --extra-index-url'
            f" {ROOT}/cu128/torch2.8/simple/") in msg  # fmt: skip
    # other GPUs load it; and the factory's own import test (skip=gpu) is not refused
    run_guard(tmp_path, info, fake_torch("2.8.0+cu128", "12.8", [(12, 0)]), monkeypatch)
    monkeypatch.setenv("WHEELFACTORY_SKIP_GUARD", "gpu")
    run_guard(tmp_path, info, fake_torch("2.8.0+cu128", "12.8", [(9, 0)]), monkeypatch)


def test_known_bad_refuses_only_its_arch_not_its_major(tmp_path, monkeypatch) -> None:
    """known-bad arch 8.9 (Ada) says nothing about 8.0 or 8.6: the same wheel's 8.0 SASS
    runs there and computes right, so those GPUs load it."""
    from dataclasses import replace

    from wheelfactory.recipe import KnownBad

    bad = KnownBad(arch="8.9", reason="fp8 path overflows", use_instead=">=2.2.0.post3")
    info = replace(SA2, known_bad=(bad,))
    msg = guard_error(tmp_path, info, fake_torch("2.8.0+cu128", "12.8", [(8, 9)]), monkeypatch)
    assert "computes wrong results on sm_89 GPUs like this one (fp8 path overflows)" in msg
    for cap in [(8, 0), (8, 6), (8, 7)]:
        run_guard(tmp_path, info, fake_torch("2.8.0+cu128", "12.8", [cap]), monkeypatch)
    # one known-bad GPU among several is enough to refuse (it would compute wrong there)
    msg = guard_error(tmp_path, info, fake_torch("2.8.0+cu128", "12.8", [(8, 6), (8, 9)]), monkeypatch)
    assert "sm_89" in msg


def test_guard_names_comfyui_portable_python_like_which(tmp_path, monkeypatch) -> None:
    embedded = tmp_path / "ComfyUI_windows_portable" / "python_embeded"
    embedded.mkdir(parents=True)
    (embedded / "python.exe").write_bytes(b"MZ")
    (embedded / "python312._pth").write_text("python312.zip\n")
    monkeypatch.setattr(sys, "executable", str(embedded / "python.exe"))
    monkeypatch.setattr("os.name", "nt")  # the guard's rule reads os.name and sys.executable
    msg = guard_error(tmp_path, SA2, fake_torch("2.9.1+cu128", "12.8", [(12, 0)]), monkeypatch)
    monkeypatch.undo()
    assert 'python_embeded\\python.exe -m pip install --force-reinstall "sageattention==2.2.0"' in msg
    assert which.python_command(str(embedded / "python.exe"), "windows") == "python_embeded\\python.exe"
