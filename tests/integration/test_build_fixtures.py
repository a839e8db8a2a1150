"""Real builds of the fixtures (nvcc, torch, auditwheel, a fresh venv per import check)."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

from conftest import SETTINGS, BuiltWheel, build_args, run_wheelfactory
from wheelfactory import arch, naming, repair, verify, wheelfile


def _sass_in(wheel: Path, tmp_path: Path) -> set[str]:
    """SASS targets of every .so in the wheel, read with cuobjdump directly."""
    cuobjdump = verify.find_cuobjdump()
    found: set[str] = set()
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith(".so"):
                so = tmp_path / Path(name).name
                so.write_bytes(z.read(name))
                found |= set(verify.list_sass(so, cuobjdump))
    return found


def _check_wheel(built: BuiltWheel, name: str, upstream_version: str, tmp_path: Path) -> dict:
    wheel = built.wheel
    info = naming.parse_wheel(wheel.name)
    assert info.project == naming.parse_wheel(f"{name}-0-py3-none-any.whl").project
    assert info.version == naming.TorchPin(SETTINGS.torch).labelled_version(upstream_version, SETTINGS.cuda)
    record = wheelfile.read_wheel(wheel).build_record  # sound wheel, strict v2 record
    assert record is not None and record.version == 2
    assert (f"{info.python_tags[0]}-{info.abi_tags[0]}",) == (record.python_tag,)
    if not SETTINGS.python.startswith("/"):
        tag = "cp" + SETTINGS.python.replace(".", "")
        assert record.python_tag == f"{tag}-{tag}"
    assert all(p.startswith("manylinux_") for p in info.platform_tags)
    # policy: the lowest manylinux this toolchain allows (Debian 12's GCC: 2_34; CI images: 2_28)
    assert built.outcome["policy"] in info.platform_tags
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = next(z.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        ln.split(":", 1)[1].strip() for ln in meta.splitlines() if ln.startswith("Requires-Dist:")
    ]
    assert naming.TorchPin(SETTINGS.torch).requirement in requires
    # nothing of torch, the CUDA runtime or the driver is vendored
    libs = [n for n in names if ".libs/" in n]
    assert repair.forbidden(libs, repair.load_excludes("linux")) == []
    assert not any(
        "libtorch" in n or "libc10" in n or "libcudart" in n or "libcuda.so" in n for n in names
    )
    # the SASS in the wheel is exactly the promised targets
    promised = {t.sm for t in arch.parse_targets(SETTINGS.arch)}
    assert _sass_in(wheel, tmp_path) == promised
    assert record.torch.split("+")[0] == SETTINGS.torch
    assert record.cuda == SETTINGS.cuda and record.nvcc and record.nvcc.startswith(SETTINGS.cuda)
    assert record.targets == tuple(str(t) for t in arch.parse_targets(SETTINGS.arch))
    assert record.env["TORCH_CUDA_ARCH_LIST"] == arch.torch_arch_list(
        arch.parse_targets(SETTINGS.arch)
    )
    assert record.compress_mode == ("size" if SETTINGS.cuda.startswith("13") else None)
    assert record.sources[0].kind == "local"
    assert record.recipe_sha256 and len(record.recipe_sha256) == 64
    assert record.repair is not None and record.repair.policy == built.outcome["policy"]
    assert {"build", "setuptools", "ninja", "wheelfactory"} <= set(record.tools)
    assert record.repair.tool.startswith("auditwheel")
    # a reproducible (Linux) wheel's record leaves out the run's timings, so that two
    # builds give the same bytes; the build's summary has them
    assert record.reproducible is True and record.timings == {} and record.compile_steps is None
    assert {"source", "env", "build", "finish"} <= set(built.outcome["stages"])
    # the import-time guard went in before repair, baked with this build's torch and CUDA
    assert record.guard is True
    guard_files = [n for n in names if n.endswith("_wheelfactory_guard.py")]
    assert guard_files, names
    with zipfile.ZipFile(wheel) as z:
        guard_src = z.read(guard_files[0]).decode()
    assert f"'torch': '{naming.torch_minor(SETTINGS.torch)}'" in guard_src
    assert f"'cuda': '{SETTINGS.cuda}'" in guard_src
    # verified: every module imported in a fresh venv on this GPU-less machine
    report = json.loads(Path(built.outcome["verify_report"]).read_text())
    assert report["version"] == 1 and report["ok"] is True
    assert report["imports"] and all(r["ok"] for r in report["imports"])
    return record


def test_quirky_ext_wheel(fixture_builds: dict[str, BuiltWheel], tmp_path: Path) -> None:
    built = fixture_builds["quirky_ext"]
    record = _check_wheel(built, "quirky_ext", "0.3.1", tmp_path)
    # the C++20 fix was applied on top of setup.py's hard-coded -std=c++17
    assert record.env["CXX_APPEND_FLAGS"].endswith("-std=c++20")
    assert record.fixes and "LIBRARY_PATH" in record.env  # links-driver: a stub to link against
    report = json.loads(Path(built.outcome["verify_report"]).read_text())
    assert [r["module"] for r in report["imports"]] == [
        "quirky_ext",
        "quirky_ext._kernels",
        "quirky_ext._driver",
        "quirky_ext.add_one",  # [verify] names: what users import
    ]
    # the driver module kept libcuda.so.1 in NEEDED (the stub defined the symbols)
    assert any(c["name"].startswith("driver link _driver") and c["ok"] for c in report["checks"])
    # progress was shown while compiling; 2 modules x (binding .cpp + kernel .cu) compiled
    assert "compiling 1/2" in built.stderr
    assert built.outcome["compile_steps"] == 4


def test_gpu_probe_ext_wheel(fixture_builds: dict[str, BuiltWheel], tmp_path: Path) -> None:
    built = fixture_builds["gpu_probe_ext"]
    record = _check_wheel(built, "gpu_probe_ext", "1.0.0", tmp_path)
    highest = max(arch.parse_targets(SETTINGS.arch))
    assert record.env["WHEELFACTORY_GPU_SHIM_CAPABILITY"] == f"{highest.major}.{highest.minor}"
    (extra,) = record.sources[1:]
    assert extra.name == "probe_dep" and extra.sha256 and len(extra.sha256) == 64


def test_a_build_for_some_targets_imports_only_the_modules_they_make(
    fixture_builds: dict[str, BuiltWheel],
) -> None:
    """gpu_probe_ext's recipe maps _sm80 to the 8.0 target ([verify] import-for-targets);
    the fixture build, for targets without 8.0, lacks it and still verifies (issue 27: the
    README's --arch 9.0a build of sageattention-stable failed on _qattn_sm80)."""
    built = fixture_builds["gpu_probe_ext"]
    with_80 = any(t.capability == (8, 0) for t in arch.parse_targets(SETTINGS.arch))
    modules = wheelfile.read_wheel(built.wheel).extension_modules()
    assert ("gpu_probe_ext._sm80" in modules) == with_80
    report = json.loads(Path(built.outcome["verify_report"]).read_text())
    imported = [r["module"] for r in report["imports"]]
    assert imported == ["gpu_probe_ext._C", *(["gpu_probe_ext._sm80"] if with_80 else [])]
    assert report["ok"] is True


def test_verify_cli_on_built_wheel(fixture_wheels: dict[str, Path], tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    proc = run_wheelfactory(
        "verify",
        fixture_wheels["quirky_ext"],
        "--report",
        report_file,
        "--torch-index-url",
        SETTINGS.index_url,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_file.read_text())
    assert report["version"] == 1 and report["ok"] is True
    # promising a target the wheel lacks fails in one line
    proc = run_wheelfactory(
        "verify",
        fixture_wheels["quirky_ext"],
        "--arch",
        "9.0a,10.0a",
        "--torch-index-url",
        SETTINGS.index_url,
    )
    assert proc.returncode == 8
    error = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR:")]
    assert len(error) == 1 and "SASS targets" in error[0] and "missing ['sm_100a']" in error[0]


def test_verify_checks_the_names_users_import(fixture_wheels: dict[str, Path], fixture_builds) -> None:
    """The recipe's [verify] names (ComfyUI imports sageattention.sageattn): the build
    checked quirky_ext.add_one; a name the wheel lacks fails verify in one line."""
    report = json.loads(Path(fixture_builds["quirky_ext"].outcome["verify_report"]).read_text())
    assert [r["ok"] for r in report["imports"] if r["module"] == "quirky_ext.add_one"] == [True]
    proc = run_wheelfactory(
        "verify", fixture_wheels["quirky_ext"], "--name", "quirky_ext.sageattn",
        "--torch-index-url", SETTINGS.index_url,
    )  # fmt: skip
    assert proc.returncode == 8, proc.stderr
    error = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR:")]
    assert len(error) == 1 and "import quirky_ext.sageattn" in error[0] and "sageattn" in error[0], error


def test_impossible_targets_fail_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_wheelfactory(
        "build",
        "--source",
        "tests/fixtures/quirky_ext",
        "--name",
        "quirky_ext",
        "--torch",
        SETTINGS.torch,
        "--cuda",
        "12.6",
        "--arch",
        "10.0a",
        "--out",
        out,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"ERROR: 10\.0a \(.*\) needs CUDA >= 12\.8, not 12\.6: drop it or choose another --cuda",
        lines[0],
    )
    assert not out.exists()  # refused before anything was prepared


def test_a_failed_build_names_the_work_dir_it_keeps(tmp_path: Path) -> None:
    """A build that fails after its (temp) work dir was made says where that dir is, in
    the one ERROR line (issue 27: it was left behind unnamed). setup.py fails at once."""
    tree = tmp_path / "broken_ext"
    tree.mkdir()
    (tree / "setup.py").write_text("raise SystemExit('broken_ext: this setup.py always fails')\n")
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}  # the temp work dir lands here
    (tmp_path / "tmp").mkdir()
    proc = run_wheelfactory(
        "build", "--source", tree, "--name", "broken_ext", "--torch", SETTINGS.torch,
        "--cuda", SETTINGS.cuda, "--python", SETTINGS.python, "--arch", "9.0a",
        "--out", tmp_path / "out", "--torch-index-url", SETTINGS.index_url, env=env,
    )  # fmt: skip
    assert proc.returncode != 0
    error = [line for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(error) == 1, proc.stderr[-3000:]
    m = re.search(r"\(work dir kept: (\S+); rerun with --work-dir \1 --resume", error[0])
    assert m, error[0]
    kept = Path(m.group(1))
    assert kept.parent == tmp_path / "tmp" and kept.name.startswith("wheelfactory-broken-ext-")
    assert (kept / "build.log").is_file()  # what the message points at is there
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_empty_libcuda_stub_fails_verification_then_resume_fixes_it(tmp_path: Path) -> None:
    """Linked against an EMPTY stub, --as-needed drops libcuda.so.1; verify must refuse.

    Then the same build with the real stub and --resume: nothing recompiled, verified.

    Built without a recipe (the --source/--name form): the user's environment supplies the
    C++20 flags the recipe would, and one target keeps it short.
    """
    env = {**os.environ, "CXX_APPEND_FLAGS": "-std=c++20", "NVCC_APPEND_FLAGS": "-std=c++20"}
    out = tmp_path / "out"

    def build_in_work_dir(*extra: str):
        args = build_args("quirky_ext", out, "--name", "quirky_ext", "--work-dir",
                          str(tmp_path / "work"), *extra, recipe=False, arch="9.0a")  # fmt: skip
        return run_wheelfactory(*args, env=env)

    proc = build_in_work_dir("--empty-libcuda-stub")
    assert proc.returncode == 8, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR:")]
    assert len(errors) == 1
    assert "_driver" in errors[0] and "cuTensorMapEncodeTiled" in errors[0]
    # the unverified wheel never reaches --out; its report says why the import failed
    assert not list(out.glob("*.whl"))
    (report_file,) = (tmp_path / "work").glob("*.verify.json")
    report = json.loads(report_file.read_text())
    failed = {r["module"]: r["error"] for r in report["imports"] if not r["ok"]}
    assert "undefined symbol: cuTensorMapEncodeTiled" in failed["quirky_ext._driver"]

    # The fault fixed (the real stub), --resume reuses the work dir's compiled objects:
    # ninja compiles nothing, only the link is redone, and the wheel now verifies. What a
    # run killed mid-label leaves behind (a half-unpacked wheel, an old dist/) is cleared.
    (tmp_path / "work/label/unpacked/half").mkdir(parents=True)
    (tmp_path / "work/dist/quirky_ext-0.3.1-cp311-cp311-linux_x86_64.whl").write_bytes(b"old")
    resumed = build_in_work_dir("--resume", "--json", str(tmp_path / "resumed.json"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming in" in resumed.stderr and "compiling" not in resumed.stderr
    outcome = json.loads((tmp_path / "resumed.json").read_text())
    assert outcome["compile_steps"] == 0 and outcome["verified"] is True
    assert [w.name for w in out.glob("*.whl")] == [Path(outcome["wheel"]).name]
    assert "no work to do" in Path(outcome["build_log"]).read_text()


def test_interpreter_with_torch_gets_a_system_site_env(tmp_path: Path) -> None:
    """--python PATH that already has the torch: no torch install, a --system-site-packages venv.

    The cached env's own python stands in for a GPU machine's preinstalled torch (it is a
    venv itself, the harder case: its site-packages reach the new env through a .pth).
    """
    from wheelfactory import buildenv

    cached = buildenv.prepare_env(
        python=buildenv.resolve_python(SETTINGS.python),
        torch=SETTINGS.torch,
        cuda=SETTINGS.cuda,
        index_url=buildenv.resolve_torch_index_url(SETTINGS.index_url, SETTINGS.cuda),
    )
    env = buildenv.prepare_env(
        python=cached.python,
        torch=SETTINGS.torch,
        cuda=SETTINGS.cuda,
        index_url="https://unreachable.invalid/whl",
        cache=tmp_path,
    )
    assert env.kind == "system" and env.root.parent == tmp_path / "envs"
    assert not (env.site_packages / "torch").exists()  # torch is the interpreter's, not a copy
    assert env.torch.split("+")[0] == SETTINGS.torch
    assert cached.site_packages in env.torch_paths()
    assert any((d / "ninja").exists() for d in (env.bin_dir, *env.extra_bin))
