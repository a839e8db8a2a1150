from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from wheelfactory import arch, build, buildvars, cudastub, platforms
from wheelfactory.buildenv import BuildEnv, Interpreter
from wheelfactory.errors import BuildError
from wheelfactory.recipe import BuildSettings, Fix, Recipe, load_recipe

ROOT = Path(__file__).resolve().parents[2]


def fake_env(tmp_path: Path, *, with_nvidia_include: bool = True) -> BuildEnv:
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    if with_nvidia_include:
        (site / "nvidia" / "cu13" / "include").mkdir(parents=True, exist_ok=True)
    site.mkdir(parents=True, exist_ok=True)
    interp = Interpreter(
        executable=tmp_path / "env/bin/python",
        version="3.11",
        full_version="3.11.7",
        tag="cp311",
        purelib=site,
        torch="2.14.1",
        torch_cuda="13.0",
        tools={},
    )
    return BuildEnv(
        root=tmp_path / "env",
        python=tmp_path / "env/bin/python",
        site_packages=site,
        interpreter=interp,
        torch="2.14.1",
        torch_cuda="13.0",
        kind="cached",
        site_dirs=(site,),
    )


TOOLCHAIN = build.Toolchain(
    cuda_home=Path("/opt/cuda"), nvcc=Path("/opt/cuda/bin/nvcc"), nvcc_version="13.0.88"
)


def compose(
    base: dict[str, str],
    tmp_path: Path,
    recipe: Recipe | None = None,
    *,
    targets: str = "9.0a",
    jobs: int = 8,
    stub: str | None = None,
    shim: str | None = None,
    nvidia_include: bool = True,
) -> build.ComposedEnv:
    """A local build's environment: compose_env over buildvars' rule for ``recipe``."""
    recipe = recipe or Recipe(path=None, name="demo", version=None, source=None)
    changes = buildvars.build_changes(
        recipe, torch="2.14.1", cuda="13.0", python="3.11", targets=arch.parse_targets(targets),
        jobs=jobs, host=buildvars.BuildHost(
            platform=platforms.get("linux-x86_64"), cuda_home=str(TOOLCHAIN.cuda_home),
            driver_stubs=stub, gpu_shim_dir=shim, nvcc_filter=None, real_nvcc=str(TOOLCHAIN.nvcc),
        ),
    )  # fmt: skip
    return build.compose_env(
        base,
        build_env=fake_env(tmp_path, with_nvidia_include=nvidia_include),
        toolchain=TOOLCHAIN,
        changes=changes,
    )


def test_compose_env_layers_ours_then_recipe_then_fixes(tmp_path: Path) -> None:
    recipe = Recipe(
        path=None, name="demo", version=None, source=None,
        build=BuildSettings(env={"MAX_JOBS": "1", "FOO": "bar"}, links_driver=True, compress="off"),
        fixes=(
            Fix(why="c++20", env_append={"CXX_APPEND_FLAGS": "-std=c++20", "NVCC_APPEND_FLAGS": "-std=c++20"}),
            Fix(why="set", env={"EXT_PARALLEL": "1"}),
        ),
    )  # fmt: skip
    base = {"PATH": "/usr/bin", "CXX_APPEND_FLAGS": "-O1", "CPATH": "/x", "HOME": "/root"}
    composed = compose(base, tmp_path, recipe, targets="12.0a,9.0a", jobs=2, stub="/stub")
    e = composed.env
    assert e["TORCH_CUDA_ARCH_LIST"] == "9.0a;12.0a"
    assert e["CUDA_HOME"] == "/opt/cuda"
    assert e["MAX_JOBS"] == "1"  # the recipe's [build].env wins over wheelfactory's default
    assert e["CXX_APPEND_FLAGS"] == "-O1 -std=c++20"  # appended with a space
    # nvcc held to one thread per job (overrides a setup.py's --threads=8), then the fix
    assert e["NVCC_APPEND_FLAGS"] == "--threads 1 -std=c++20"
    assert e["EXT_PARALLEL"] == "1"
    assert e["LIBRARY_PATH"] == "/stub"
    assert "LD_LIBRARY_PATH" not in e  # the stub is for linking only
    env = fake_env(tmp_path)
    assert e["CPATH"].split(os.pathsep) == [str(env.site_packages / "nvidia/cu13/include"), "/x"]
    assert e["PATH"].split(os.pathsep)[:3] == [str(env.bin_dir), "/opt/cuda/bin", "/usr/bin"]
    assert e["HOME"] == "/root" and "HOME" not in composed.applied
    assert composed.applied["FOO"] == "bar"
    assert "WHEELFACTORY_GPU_SHIM_CAPABILITY" not in e


def test_compose_env_callers_nvcc_threads_win(tmp_path: Path) -> None:
    composed = compose({"NVCC_APPEND_FLAGS": "--threads 4"}, tmp_path)
    # nvcc keeps the last --threads: the caller's comes after ours (then CUDA 13's compression)
    assert composed.env["NVCC_APPEND_FLAGS"] == "--threads 1 --threads 4 --compress-mode=size"


def test_compose_env_fixes_the_hash_seed_so_set_order_repeats(tmp_path: Path) -> None:
    """SageAttention's setup.py builds its -gencode list from a set: with a random seed the
    nvcc command line, which ninja hashes, changes every run and --resume recompiles all
    (seen on the GPU machine: the second call rebuilt every .cu)."""
    composed = compose({"PYTHONHASHSEED": "random"}, tmp_path)
    assert composed.applied["PYTHONHASHSEED"] == "0"


@pytest.mark.parametrize(("memory_gib", "expected"), [(None, 16), (200.0, 16), (19.5, 6), (2.0, 1)])
def test_default_jobs_leaves_memory_per_job(
    monkeypatch: pytest.MonkeyPatch, memory_gib: float | None, expected: int
) -> None:
    monkeypatch.setattr(build.os, "sched_getaffinity", lambda _pid: set(range(16)), raising=False)
    monkeypatch.setattr(build, "_available_memory_gib", lambda: memory_gib)
    assert build.default_jobs() == expected


def test_available_memory_reads_proc_meminfo() -> None:
    memory = build._available_memory_gib()
    if Path("/proc/meminfo").exists():
        assert memory is not None and memory > 0
    else:
        assert memory is None


def test_compose_env_gpu_shim_reports_highest_target(tmp_path: Path) -> None:
    recipe = Recipe(path=None, name="demo", version=None, source=None,
                    build=BuildSettings(no_gpu_shim=True))  # fmt: skip
    composed = compose({}, tmp_path, recipe, targets="9.0a,12.0a,10.0a", shim="/shim",
                       nvidia_include=False)  # fmt: skip
    assert composed.env["WHEELFACTORY_GPU_SHIM_CAPABILITY"] == "12.0"
    assert composed.env["PYTHONPATH"] == "/shim"
    assert "CPATH" not in composed.env


def test_recipe_fixes_apply_to_env(tmp_path: Path) -> None:
    recipe = load_recipe(ROOT / "tests/fixtures/quirky_ext.toml")
    composed = compose({}, tmp_path, recipe, targets="9.0a,12.0a", jobs=2)
    assert composed.env["CXX_APPEND_FLAGS"] == "-std=c++20"
    assert recipe.fixes_for(torch="2.12.0", cuda="13.0", python="3.11", os="linux") == ()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[3/7] /usr/local/cuda/bin/nvcc -c a.cu -o a.o", (3, 7)),
        ("  [12/40] c++ -c x.cpp", (12, 40)),
        ("[1/1] c++ -shared", (1, 1)),
        ("building 'ext' extension", None),
        ("warning: [-Wfoo] [3/7]", None),
    ],
)
def test_parse_progress(line: str, expected: tuple[int, int] | None) -> None:
    assert build.parse_progress(line) == expected


def test_progress_logger_keeps_last_step_and_writes_log(tmp_path: Path) -> None:
    p = build.ProgressLogger(tmp_path / "log")
    for line in [
        "hello",
        "[1/3] nvcc -c a.cu",
        "[2/3] c++ -c b.cpp",
        "[3/3] c++ -shared -o x.so",
        "done",
    ]:
        p(line)
    p.close()
    assert p.last == (3, 3) and p.total == 3
    assert (tmp_path / "log").read_text().splitlines()[0] == "hello"


def test_progress_logger_counts_steps_of_extensions_built_in_parallel(tmp_path: Path) -> None:
    """Two ninja runs at once (upstream's EXT_PARALLEL) interleave their [n/m] lines."""
    p = build.ProgressLogger()
    lines = ["[1/2] c++ -c a.cpp", "[1/8] c++ -c b.cpp", "[2/2] nvcc -c a.cu", "[2/8] nvcc -c b.cu"]
    for line in lines:
        p(line)
    assert p.total == 4


def test_check_cuda_matches() -> None:
    build.check_cuda_matches(TOOLCHAIN, "13.0")
    with pytest.raises(
        BuildError,
        match=r"--cuda 12.8 but nvcc .* is CUDA 13.0.88: set CUDA_HOME .* or pass --cuda 13.0",
    ):
        build.check_cuda_matches(TOOLCHAIN, "12.8")


CUDA_H = """
#define cuMemAlloc cuMemAlloc_v2
#define cuMemcpy __CUDA_API_PTDS(cuMemcpy)
CUresult CUDAAPI cuInit(unsigned int Flags);
CUresult CUDAAPI cuMemAlloc(CUdeviceptr *dptr, size_t bytesize);
CUresult CUDAAPI cuTensorMapEncodeTiled(CUtensorMap *tensorMap, ...);
CUresult CUDAAPI cudaNotADriverCall(void);
"""


def test_driver_symbols_from_cuda_h() -> None:
    names = cudastub.driver_symbols(CUDA_H)
    assert {
        "cuInit",
        "cuMemAlloc",
        "cuMemAlloc_v2",
        "cuTensorMapEncodeTiled",
        "cuMemcpy",
        "cuMemcpy_ptds",
    } <= set(names)
    assert "cudaNotADriverCall" not in names
    src = cudastub.stub_source(names)
    assert "int cuTensorMapEncodeTiled(void) { return 34; }" in src.replace(
        "STUB", "{ return 34; }"
    )


@pytest.mark.skipif(not Path("/usr/bin/cc").exists(), reason="needs a C compiler")
def test_make_stub_defines_symbols_with_soname(tmp_path: Path) -> None:
    home = tmp_path / "cuda"
    (home / "include").mkdir(parents=True)
    (home / "include/cuda.h").write_text(CUDA_H)
    out = cudastub.make_stub(home, tmp_path / "stubs")
    assert (out / "libcuda.so").resolve() == (out / "libcuda.so.1").resolve()
    from elftools.elf.elffile import ELFFile

    with open(out / "libcuda.so.1", "rb") as f:
        elf = ELFFile(f)
        soname = [
            t.soname
            for t in elf.get_section_by_name(".dynamic").iter_tags()
            if t.entry.d_tag == "DT_SONAME"
        ]
        defined = {
            s.name
            for s in elf.get_section_by_name(".dynsym").iter_symbols()
            if s["st_shndx"] != "SHN_UNDEF"
        }
    assert soname == ["libcuda.so.1"]
    assert {"cuInit", "cuTensorMapEncodeTiled", "cuMemAlloc_v2"} <= defined
    assert cudastub.make_stub(home, tmp_path / "stubs") == out  # cached
    empty = cudastub.make_stub(home, tmp_path / "stubs", empty=True)
    assert empty != out


def test_gpu_shim_answers_for_torch_cuda(tmp_path: Path) -> None:
    """The shim patches torch.cuda when it is imported (a stand-in torch package here)."""
    fake = tmp_path / "site"
    (fake / "torch" / "cuda").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("")
    (fake / "torch" / "cuda" / "__init__.py").write_text(
        "def get_device_capability(device=None):\n    raise RuntimeError('Found no NVIDIA driver')\n"
        "def is_available():\n    return False\n"
    )
    shim = build.write_gpu_shim(tmp_path)
    code = "import torch.cuda as c; print(c.is_available(), c.get_device_capability(), c.device_count())"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(shim), str(fake)]),
        "WHEELFACTORY_GPU_SHIM_CAPABILITY": "12.0",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["True", "(12,", "0)", "1"]
    env.pop("WHEELFACTORY_GPU_SHIM_CAPABILITY")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert (
        proc.returncode != 0 and "Found no NVIDIA driver" in proc.stderr
    )  # no shim without the variable


def test_the_progress_line_names_the_file_compiled() -> None:
    from wheelfactory.build import compiled_source

    nvcc = (
        "[1/2] /usr/local/cuda/bin/nvcc --generate-dependencies-with-compile --dependency-output"
        " /w/build/scale.o.d -I/x/include -c -c /w/src/csrc/scale.cu -o /w/build/scale.o -O3"
    )
    assert compiled_source(nvcc) == "scale.cu"  # torch's rule repeats -c
    assert compiled_source("[2/3] c++ -MMD -MF /w/b.o.d -c /w/src/binding.cpp -o /w/b.o") == "binding.cpp"
    assert compiled_source("[3/3] c++ -shared /w/a.o /w/b.o -o /w/hello_ext/_C.so") == ""


def test_a_long_compile_shows_a_heartbeat_naming_step_elapsed_and_what_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A stand-in `python -m build` that compiles one step, then stays silent (as nvcc on a
    big kernel does for minutes): the build logs a heartbeat at least every interval
    (30 s; 0.2 s here) naming the step, the time since it began and the last compile step
    (issue 27: minutes without a line)."""
    import logging
    import time

    env = fake_env(tmp_path)
    env.python.parent.mkdir(parents=True, exist_ok=True)
    env.python.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys, time\n"
        "print('[1/3] /usr/local/cuda/bin/nvcc -c /src/csrc/attn_sm90.cu -o attn_sm90.o', flush=True)\n"
        "time.sleep(1.5)\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--outdir') + 1])\n"
        "(out / 'demo-1.0-cp311-cp311-linux_x86_64.whl').write_bytes(b'')\n"
    )
    env.python.chmod(0o755)
    monkeypatch.setenv("WHEELFACTORY_HEARTBEAT_S", "0.2")
    caplog.set_level(logging.INFO, logger="wheelfactory")
    (tmp_path / "tree").mkdir()
    composed = build.ComposedEnv(env=dict(os.environ), applied={})
    start = time.monotonic()
    build.run_build(tmp_path / "tree", build_env=env, composed=composed, out_dir=tmp_path / "dist",
                    log_file=tmp_path / "build.log")  # fmt: skip
    assert time.monotonic() - start >= 1.5
    messages = [r.getMessage() for r in caplog.records]
    first_step = next(i for i, m in enumerate(messages) if m.startswith("  compiling 1/3"))
    beats = [r for r in caplog.records[first_step:] if r.getMessage().startswith("  still in build, ")]
    assert len(beats) >= 3, caplog.text  # (one may come before, while setup.py starts)
    assert all(
        re.fullmatch(r"  still in build, \d+ s: compiling, step 1/3 done \(last: attn_sm90\.cu\)", r.getMessage())
        for r in beats
    ), caplog.text
    # never silent for much longer than the interval once the compile started (1.5 s without)
    times = [r.created for r in caplog.records[first_step:]]
    assert max(b - a for a, b in zip(times, times[1:])) < 1.0, caplog.text
    assert not any(t.name.startswith("heartbeat-") for t in __import__("threading").enumerate())
