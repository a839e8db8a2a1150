"""which.advise() on a table of machines, and which.py's copies of the naming and GPU-target
rules checked against wheelfactory.naming / wheelfactory.arch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from wheelfactory import arch, naming, which
from wheelfactory.which import Gpu, Machine

ROOT = "https://wheels.example.org"


def wheel(project: str, version: str, py: str, plat: str, targets: list[str] | None,
          *, yanked: bool = False) -> dict:
    cp = py.rstrip("t")
    filename = f"{project}-{version}-{cp}-{py}-{plat}.whl"
    return {
        "filename": filename,
        "project": project,
        "version": version,
        "sha256": "0" * 64,
        "size": 9_100_000,
        "url": f"{ROOT}/files/{filename}",
        "requires_python": ">=3.9",
        "metadata_sha256": "1" * 64,
        "upload_time": "2026-11-24T10:00:00.000000Z",
        "yanked": yanked,
        "yank_reason": "black output" if yanked else None,
        "build_record": None if targets is None else {"targets": targets},
        "provenance_url": None,
    }


SA2_TARGETS = ["8.0", "8.6", "8.9", "9.0a", "10.0a", "12.0a", "12.1a"]
SA3_TARGETS = ["10.0a", "12.0a", "12.1a"]
LINUX = "manylinux_2_28_x86_64"
ARM = "manylinux_2_28_aarch64"
WIN = "win_amd64"

MANIFEST = [
    wheel("sageattention", "2.2.0+cu128torch2.8", "cp312", WIN, SA2_TARGETS),
    wheel("sageattention", "2.2.0+cu128torch2.8", "cp312", LINUX, SA2_TARGETS),
    wheel("sageattention", "2.2.0+cu130torch2.14", "cp311", LINUX, SA2_TARGETS),
    wheel("sageattention", "2.2.0+cu130torch2.14", "cp312", LINUX, SA2_TARGETS),
    wheel("sageattention", "2.2.0+cu130torch2.14", "cp312", ARM, SA2_TARGETS),
    wheel("sageattention", "2.2.0+cu130torch2.14", "cp314", LINUX, SA2_TARGETS),
    wheel("sageattention", "2.1.0+cu130torch2.14", "cp312", LINUX, SA2_TARGETS, yanked=True),
    wheel("sageattn3", "1.0.0+cu128torch2.8", "cp312", WIN, SA3_TARGETS),
    wheel("sageattn3", "1.0.0+cu130torch2.14", "cp312", LINUX, SA3_TARGETS),
    wheel("sageattn3", "1.0.0+cu130torch2.14", "cp312", ARM, SA3_TARGETS),
]


def machine(**kw) -> Machine:
    base = dict(os="linux", arch="x86_64", python="3.12", glibc="2.36",
                torch="2.14.1+cu130", torch_cuda="13.0",
                gpus=(Gpu(name="NVIDIA H100 80GB HBM3", capability=(9, 0)),))
    base.update(kw)
    return Machine(**base)


RTX5090 = Gpu(name="NVIDIA GeForce RTX 5090", capability=(12, 0))
SPARK = Gpu(name="NVIDIA GB10", capability=(12, 1))
H100 = Gpu(name="NVIDIA H100 80GB HBM3", capability=(9, 0))
RTX4090 = Gpu(name="NVIDIA GeForce RTX 4090", capability=(8, 9))

# (id, machine, package, ok, url view or None, substrings of the problem/notes)
CASES = [
    ("win-5090-torch2.8-cu128",
     machine(os="windows", arch="x86_64", glibc=None, torch="2.8.0+cu128", torch_cuda="12.8",
             gpus=(RTX5090,)),
     "sageattention", True, "cu128/torch2.8", []),
    ("win-5090-sageattn3",
     machine(os="windows", glibc=None, torch="2.8.0+cu128", torch_cuda="12.8", gpus=(RTX5090,)),
     "sageattn3", True, "cu128/torch2.8", []),
    ("h100-linux-torch2.14-cu130", machine(), "sageattention", True, "cu130/torch2.14", []),
    ("h100-sageattn3", machine(), "sageattn3", False, None,
     ["sageattn3 needs a Blackwell GPU (sm_100/sm_120/sm_121); this GPU", "is sm_90"]),
    ("cpu-torch", machine(torch="2.9.0+cpu", torch_cuda=None, gpus=()), "sageattention", False,
     None, ["torch 2.9.0+cpu has no CUDA: install a CUDA build of torch first:",
            "nearest covered is torch 2.14", "--index-url https://download.pytorch.org/whl/cu130"]),
    ("cpu-torch-covered-minor", machine(torch="2.8.0+cpu", torch_cuda=None, gpus=()),
     "sageattention", False, None,
     ["torch 2.8.0+cpu has no CUDA: install a CUDA build of torch first: python -m pip install "
      '"torch==2.8.*" --index-url https://download.pytorch.org/whl/cu128']),
    ("no-torch", machine(torch=None, torch_cuda=None), "sageattention", False, None,
     ["torch is not installed", '"torch==2.14.*" --index-url https://download.pytorch.org/whl/cu130']),
    ("python-3.14t", machine(python="3.14", free_threaded=True), "sageattention", False,
     None, ["Python 3.14t", "free-threaded", "covered Pythons: 3.11, 3.12, 3.14"]),
    ("dgx-spark-aarch64-sm121", machine(arch="aarch64", gpus=(SPARK,)), "sageattn3", True,
     "cu130/torch2.14", []),
    ("dgx-spark-python-3.11", machine(arch="aarch64", python="3.11", gpus=(SPARK,)),
     "sageattention", False, None, ["Python 3.11", "covered Pythons: 3.12"]),
    ("macos", machine(os="macos", arch="aarch64", glibc=None, torch="2.14.1", torch_cuda=None,
                      gpus=()), "sageattention", False, None, ["macOS has no CUDA"]),
    ("torch-2.15-newer-than-covered", machine(torch="2.15.0+cu130"), "sageattention", False,
     "cu130/torch2.14", ["no sageattention wheels for torch 2.15 yet: nearest is torch 2.14",
                         'python -m pip install "torch==2.14.*" --index-url https://download.pytorch.org/whl/cu130']),
    ("torch2.8-cu129-other-cuda", machine(torch="2.8.0+cu129", torch_cuda="12.9"),
     "sageattention", False, "cu128/torch2.8", ["torch 2.8 is covered with CUDA 12.8"]),
    ("windows-no-torch2.14", machine(os="windows", glibc=None, gpus=(RTX4090,)), "sageattention",
     False, None, ["no sageattention wheels for Windows x86_64", "covered: Linux"]),
    ("old-glibc", machine(glibc="2.17"), "sageattention", False, None,
     ["need a newer glibc"]),
    ("unknown-package", machine(), "flash-attn", False, None, ["no wheels of 'flash-attn'"]),
    ("no-gpu", machine(gpus=()), "sageattention", True, "cu130/torch2.14", []),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_advise_table(case) -> None:
    _, m, package, ok, view, expect = case
    advice = which.advise(m, package, MANIFEST, index_root=ROOT)
    text = " ".join(advice.problems + advice.notes)
    assert advice.ok is ok, advice.render()
    for needle in expect:
        assert needle in text, advice.render()
    if view is None:
        assert advice.command is None or "--index-url https://download.pytorch.org" not in (
            advice.command or "")
    else:
        url = f"{ROOT}/{view}/simple/"
        assert advice.index_url == url
        assert advice.command == f"python -m pip install {advice.package} --extra-index-url {url}"
        assert advice.uv_command == f"uv pip install {advice.package} --extra-index-url {url}"
    if ok:
        assert advice.problems == ()
        assert advice.wheel is not None
        assert naming.parse_wheel(advice.wheel).cuda == m.torch_cuda
    else:
        # Every problem is one sentence that ends in what to do.
        for p in advice.problems:
            assert "\n" not in p
            assert ": " in p


def test_yanked_wheels_are_not_advised() -> None:
    only_yanked = [f for f in MANIFEST if f["yanked"]]
    advice = which.advise(machine(), "sageattention", only_yanked, index_root=ROOT)
    assert not advice.ok


def test_windows_5090_wheel_is_the_windows_one() -> None:
    m = machine(os="windows", glibc=None, torch="2.8.0+cu128", torch_cuda="12.8", gpus=(RTX5090,))
    advice = which.advise(m, "sageattention", MANIFEST, index_root=ROOT)
    assert advice.wheel and advice.wheel.endswith("-cp312-cp312-win_amd64.whl")


def test_without_manifest_the_command_comes_with_a_note() -> None:
    advice = which.advise(machine(), "sageattention", None, index_root=ROOT)
    assert advice.ok
    url = f"{ROOT}/cu130/torch2.14/simple/"
    assert advice.command == f"python -m pip install sageattention --extra-index-url {url}"
    assert any("manifest.json" in n for n in advice.notes)


def test_gpu_outside_the_wheel_targets() -> None:
    files = [wheel("sageattention", "2.2.0+cu130torch2.14", "cp312", LINUX, ["9.0a"])]
    m = machine(gpus=(RTX4090,))
    advice = which.advise(m, "sageattention", files, index_root=ROOT)
    assert not advice.ok
    assert "sm_89" in advice.problems[0] and "9.0a" in advice.problems[0]


def test_a_gpu_the_package_misses_is_pointed_at_the_index_packages_that_run_on_it() -> None:
    # H100 (sm_90) and sageattn3 (Blackwell only): the index's own data says what else fits
    advice = which.advise(machine(), "sageattn3", MANIFEST, index_root=ROOT)
    assert advice.problems[0].endswith("is sm_90: install sageattention instead")
    only_sa3 = [f for f in MANIFEST if "sageattn3" in f["filename"]]
    advice = which.advise(machine(), "sageattn3", only_sa3, index_root=ROOT)
    assert advice.problems[0].endswith("is sm_90: no package here runs on it")


def test_advice_json_is_versioned_and_serialisable() -> None:
    data = which.advise(machine(), "sageattention", MANIFEST, index_root=ROOT).to_json()
    assert data["version"] == which.SCHEMA_VERSION
    assert json.loads(json.dumps(data))["command"].startswith("python -m pip install sageattention")


# --- the duplicated rules agree with the package's own --------------------------------

TARGET_CASES = ["8.0", "8.6", "8.9", "8.9+PTX", "9.0", "9.0a", "9.0+PTX", "10.0a", "10.0f",
                "10.3a", "12.0", "12.0a", "12.0f", "12.1a", "12.0+PTX", "sm_90a", "90a", "75"]
CAPABILITIES = [(7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (10, 0), (10, 3), (11, 0), (12, 0),
                (12, 1)]


@pytest.mark.parametrize("text", TARGET_CASES)
def test_target_rule_agrees_with_arch(text: str) -> None:
    ours, theirs = which.Target.parse(text), arch.GpuTarget.parse(text)
    assert ours.sm == theirs.sm
    for cap in CAPABILITIES:
        assert ours.runs_on(cap) == theirs.runs_on(cap), (text, cap)


WHEEL_CASES = [
    "sageattention-2.2.0+cu130torch2.14-cp311-cp311-manylinux_2_34_x86_64.whl",
    "sageattention-2.2.0+cu128torch2.8-1-cp312-cp312-win_amd64.whl",
    "sageattn3-1.0.0+cu130torchabi-cp310-abi3-manylinux_2_28_aarch64.whl",
    "Sage_Attention-2.2.0-cp314-cp314t-manylinux_2_28_x86_64.manylinux2014_x86_64.whl",
    "sageattention-1.0.6-py3-none-any.whl",
]


@pytest.mark.parametrize("filename", WHEEL_CASES)
def test_wheel_parser_agrees_with_naming(filename: str) -> None:
    ours, theirs = which.parse_wheel(filename), naming.parse_wheel(filename)
    for field in ("project", "version", "public_version", "cuda", "torch", "python_tags",
                  "abi_tags", "platform_tags"):
        assert getattr(ours, field) == getattr(theirs, field), field


@pytest.mark.parametrize("cuda,torch", [("13.0", "2.14.1+cu130"), ("12.8", "2.8.0"),
                                        ("12.6", "2.10.0")])
def test_view_path_agrees_with_naming(cuda: str, torch: str) -> None:
    assert which.view_path(cuda, torch) == naming.view_path(cuda, torch)
    assert which.cuda_tag(cuda) == naming.cuda_tag(cuda)


def test_nvidia_smi_parsing() -> None:
    text = "NVIDIA GeForce RTX 5090, 12.0\nNVIDIA H100 80GB HBM3, 9.0\n"
    assert which._parse_nvidia_smi(text) == (
        Gpu(name="NVIDIA GeForce RTX 5090", capability=(12, 0)),
        Gpu(name="NVIDIA H100 80GB HBM3", capability=(9, 0)),
    )


# --- which.py stays a self-contained, standard-library-only script ----------------------


def test_which_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(which.__file__).read_text(encoding="utf-8"))
    top = set()
    for node in tree.body:  # module level only: torch is imported lazily inside detect()
        if isinstance(node, ast.Import):
            top.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            top.add((node.module or "").split(".")[0])
    assert top - {"__future__"} <= set(sys.stdlib_module_names), top


def test_which_runs_as_a_plain_script(tmp_path: Path) -> None:
    script = tmp_path / "which.py"
    script.write_text(Path(which.__file__).read_text(encoding="utf-8"), encoding="utf-8")
    # -I: isolated mode, so neither wheelfactory nor the venv's packages are importable.
    out = subprocess.run([sys.executable, "-I", str(script), "sageattention", "--json",
                          "--offline", "--index-url", ROOT],
                         capture_output=True, text=True, timeout=60, check=False)
    data = json.loads(out.stdout)
    assert data["package"] == "sageattention"
    assert out.returncode == (0 if data["ok"] else 1)


def test_stable_abi_wheel_serves_every_torch_from_its_floor_in_the_users_view() -> None:
    """A stable-ABI wheel counts for every torch >= its floor; once it was import-checked
    against the user's torch (covers) the command keeps the user's strict view."""
    stable = wheel("sageattention", "2.2.1+cu130torchabi", "cp310", LINUX, SA2_TARGETS)
    stable["filename"] = stable["filename"].replace("-cp310-cp310-", "-cp310-abi3-")
    stable["build_record"] = {"targets": SA2_TARGETS, "stable_abi_floor": "2.10"}
    stable["covers"] = ["2.14"]
    h200 = Gpu(name="NVIDIA H200", capability=(9, 0))
    for torch, view in (("2.14.1+cu130", "cu130/torch2.14"), ("2.16.0+cu130", "cu130/torchabi"),
                        ("2.12.0+cu130", "cu130/torchabi")):  # fmt: skip
        advice = which.advise(machine(python="3.13", torch=torch, torch_cuda="13.0", gpus=(h200,)),
                        "sageattention", [stable], index_root=ROOT)  # fmt: skip
        assert advice.ok and advice.wheel == stable["filename"], (torch, advice)
        assert advice.command == f"python -m pip install sageattention --extra-index-url {ROOT}/{view}/simple/"
    below = which.advise(machine(python="3.13", torch="2.9.0+cu130", torch_cuda="13.0", gpus=(h200,)),
                   "sageattention", [stable], index_root=ROOT)  # fmt: skip
    assert not below.ok


@pytest.mark.parametrize("torch", ["2.10.0+cu130", "2.10.1+cu130"])
def test_stable_abi_wheel_is_advised_at_exactly_its_floor(torch: str) -> None:
    """floor 2.10 includes torch 2.10 itself: the user of 2.10 gets the stable-ABI wheel."""
    stable = wheel("sageattention", "2.2.1+cu130torchabi", "cp310", LINUX, SA2_TARGETS)
    stable["filename"] = stable["filename"].replace("-cp310-cp310-", "-cp310-abi3-")
    stable["build_record"] = {"targets": SA2_TARGETS, "stable_abi_floor": "2.10"}
    advice = which.advise(machine(python="3.13", torch=torch, torch_cuda="13.0", gpus=(H100,)),
                          "sageattention", [stable], index_root=ROOT)  # fmt: skip
    assert advice.ok and advice.wheel == stable["filename"], advice
    assert advice.command == f"python -m pip install sageattention --extra-index-url {ROOT}/cu130/torchabi/simple/"


def test_comfyui_portable_python_gets_the_command_in_its_own_form(tmp_path) -> None:
    """ComfyUI portable: python_embeded\\python.exe beside a python3X._pth file, no venv, not
    on PATH. The layout is made on disk as the portable build unpacks it."""
    root = tmp_path / "ComfyUI_windows_portable"
    embedded = root / "python_embeded"
    embedded.mkdir(parents=True)
    (embedded / "python.exe").write_bytes(b"MZ")
    (embedded / "python312._pth").write_text("python312.zip\n.\n../ComfyUI\nimport site\n")
    (root / "ComfyUI").mkdir()
    (root / "run_nvidia_gpu.bat").write_text(".\\python_embeded\\python.exe -s ComfyUI\\main.py\n")
    exe = str(embedded / "python.exe")
    assert which.python_command(exe, "windows") == "python_embeded\\python.exe"
    assert which.python_command(exe, "linux") == "python"  # only Windows has the portable build
    (embedded / "python312._pth").unlink()  # a folder of that name without the ._pth: a venv?
    assert which.python_command(exe, "windows") == "python"
    (embedded / "python312._pth").write_text("python312.zip\n")
    advice = which.advise(
        machine(os="windows", glibc=None, torch="2.8.0+cu128", torch_cuda="12.8", executable=exe,
                gpus=(RTX5090,)),
        "sageattention", MANIFEST, index_root=ROOT,
    )  # fmt: skip
    assert advice.ok
    assert advice.command == (f"python_embeded\\python.exe -m pip install sageattention"
                              f" --extra-index-url {ROOT}/cu128/torch2.8/simple/")  # fmt: skip
    assert advice.uv_command and "--python python_embeded\\python.exe" in advice.uv_command


# --- another machine: --os/--gpu/--torch/--cuda/--python/--layout ------------------------


def _publish_sageattention(tmp_path: Path, wheels: list[dict], *, gate: list[str] | None = None):
    """Publish real (tiny) sageattention wheels into an index folder; returns it."""
    from _index_wheels import make_wheel
    from _records import record_json
    from wheelfactory import publish as pub

    idx = tmp_path / "idx"
    for n, w in enumerate(wheels):
        cuda, torch = w["cuda"], w["torch"]
        path = make_wheel(
            tmp_path / f"w{n}", name="sageattention", version=w.get("version", "2.2.0"),
            cuda=cuda.replace(".", ""), torch=torch, python_tag="cp312", abi_tag="cp312",
            platform_tag=w["platform"], requires_python=">=3.9",
            build_record=record_json(
                package="sageattention", package_version=f"{w.get('version', '2.2.0')}+cu"
                f"{cuda.replace('.', '')}torch{torch}", upstream_version=w.get("version", "2.2.0"),
                torch=f"{torch}.1", torch_requirement=f"torch=={torch}.*", cuda=cuda,
                python_tag="cp312-cp312", targets=w.get("targets", SA2_TARGETS),
                platform=w.get("record_platform", "windows-amd64")))
        pub.publish([path], idx, gpu_gate=w.get("gate", gate))
    return idx


def _which(args: list[str], *, script: Path | None = None) -> subprocess.CompletedProcess:
    """`wheelfactory which ARGS` (or ``python -I which.py ARGS``), as a user runs it."""
    cmd = [sys.executable, "-I", str(script)] if script else [sys.executable, "-m", "wheelfactory", "which"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, check=False)


ANOTHER = ["--os", "windows", "--gpu", "RTX 5090", "--torch", "2.9.1+cu128", "--python", "3.12"]


def test_another_machine_gets_the_portable_command_from_a_served_index(tmp_path: Path) -> None:
    """The issue's own example, against a real index served on 127.0.0.1: the command names
    ComfyUI portable's Python and a view that lists the wheel for that machine."""
    from wheelfactory import serve

    idx = _publish_sageattention(tmp_path, [
        {"cuda": "12.8", "torch": "2.9", "platform": "win_amd64"},
        {"cuda": "12.8", "torch": "2.9", "platform": "manylinux_2_28_x86_64",
         "record_platform": "linux-x86_64"},
        {"cuda": "13.0", "torch": "2.14", "platform": "win_amd64"},
    ])
    win = "sageattention-2.2.0+cu128torch2.9-cp312-cp312-win_amd64.whl"
    with serve.start_server(idx) as server:
        view = f"{server.url}cu128/torch2.9/simple/"
        portable = f"python_embeded\\python.exe -m pip install sageattention --extra-index-url {view}"
        for script in (None, idx / "which.py"):  # the CLI, and the copy the index serves
            out = _which([*ANOTHER, "--layout", "portable", "sageattention",
                          "--index-url", server.url], script=script)
            assert out.returncode == 0, out.stdout + out.stderr
            lines = out.stdout.splitlines()
            assert lines[0].startswith("Your setup: Windows x86_64, Python 3.12 (ComfyUI portable), "
                                       "torch 2.9.1+cu128, CUDA 12.8, RTX 5090 (sm_120)"), lines[0]
            assert f"  {portable}" in lines
            assert f"Wheel: {win}" in lines
            # without --layout, the same machine gets the plain form and is told about portable
            plain = _which([*ANOTHER, "sageattention", "--index-url", server.url], script=script)
            assert plain.returncode == 0
            assert f"  python -m pip install sageattention --extra-index-url {view}" in plain.stdout
            assert "python_embeded\\python.exe which.py" in plain.stdout
        # the view in the command lists exactly that wheel (pip will find it there)
        page = urllib.request.urlopen(f"{view}sageattention/").read().decode()
        assert win in page
        # the same GPU given as a compute capability, as JSON
        out = _which([*ANOTHER[:2], "--gpu", "12.0", *ANOTHER[4:], "--json", "--index-url", server.url])
        data = json.loads(out.stdout)
        assert data["ok"] and data["wheel"] == win and data["index_url"] == view


@pytest.mark.parametrize("text,capability", [
    ("RTX 5090", (12, 0)), ("NVIDIA GeForce RTX 5090", (12, 0)), ("rtx 5060", (12, 0)),
    ("RTX 4090", (8, 9)), ("RTX 3090 Ti", (8, 6)), ("RTX PRO 6000", (12, 0)), ("H200", (9, 0)),
    ("NVIDIA H100", (9, 0)), ("GB200", (10, 0)), ("DGX Spark", (12, 1)), ("rtx50", (12, 0)),
    ("A100", (8, 0)), ("12.0", (12, 0)), ("sm_89", None), ("9.0", (9, 0)),
])  # fmt: skip
def test_gpu_by_product_name_or_capability(text: str, capability) -> None:
    if capability is None:  # "sm_89" has no dot: not a capability, not a product
        with pytest.raises(which.SetupError):
            which.parse_gpu(text)
        return
    assert which.parse_gpu(text).capability == capability


def test_gpu_table_is_resources_gpus_toml() -> None:
    """which.py's copy of gpus.toml (it runs alone), and each row's own names resolve."""
    from wheelfactory import landing

    rows = [(g.key, g.name, f"{g.capability[0]}.{g.capability[1]}") for g in landing.gpu_products()]
    assert list(which.GPUS) == rows
    for g in landing.gpu_products():
        for name in (g.key, *g.short.split(" / ")):
            assert which.parse_gpu(name).capability == tuple(g.capability), name


@pytest.mark.parametrize("args,message", [
    (["--torch", "2.9.1"], "does not say its CUDA"),
    (["--torch", "2.9.1+cu128", "--cuda", "13.0"], "disagree"),
    (["--torch", "latest"], "is not a torch version"),
    (["--cuda", "thirteen", "--torch", "2.9.1"], "is not a CUDA version"),
    (["--python", "python3"], "is not a Python version"),
    (["--os", "linux", "--layout", "portable"], "add --os windows"),
    (["--gpu", "Voodoo 2"], "pass its compute capability"),
])  # fmt: skip
def test_a_setup_that_describes_no_machine_is_one_line(args: list[str], message: str) -> None:
    for script in (None, Path(which.__file__)):
        out = _which([*args, "--offline"], script=script)
        assert out.returncode == 2, out.stdout + out.stderr
        assert out.stdout == ""
        (line,) = out.stderr.strip().splitlines()
        assert message in line and "Traceback" not in line


def test_help_says_which_python_comfyui_portable_runs_it_with() -> None:
    for script in (None, Path(which.__file__)):
        out = _which(["--help"], script=script)
        text = " ".join(out.stdout.split())
        assert "python_embeded\\python.exe which.py" in text, out.stdout
        assert "--layout" in text and "--gpu" in text


def test_with_setup_keeps_what_is_not_given() -> None:
    here = machine(os="windows", glibc=None, torch="2.8.0+cu128", torch_cuda="12.8",
                   gpus=(RTX5090,))
    same = which.with_setup(here)
    assert same == here
    other = which.with_setup(here, torch="2.10.0", cuda="13.0")
    assert (other.torch, other.torch_cuda, other.gpus, other.os) == ("2.10.0", "13.0", (RTX5090,), "windows")
    assert which.with_setup(here, gpu="none").gpus == ()
    assert which.with_setup(here, torch="2.10.0a0+cu130").torch_cuda == "13.0"  # a nightly
    assert which.with_setup(here, torch="2.9.1+cpu").torch_cuda is None
    assert which.with_setup(here, python="3.13t").python_label == "3.13t"


# --- held and yanked wheels are never offered --------------------------------------------


def test_a_held_wheel_is_never_offered(tmp_path: Path) -> None:
    """publish --gpu-gate holds the newer wheel out of every view: which offers the listed
    one, and the view its command names does list the wheel it names."""
    from wheelfactory.manifest import load_manifest

    idx = _publish_sageattention(tmp_path, [
        {"cuda": "12.8", "torch": "2.9", "platform": "win_amd64", "version": "2.2.0", "gate": []},
        {"cuda": "12.8", "torch": "2.9", "platform": "win_amd64", "version": "2.2.1",
         "gate": ["12.0"]},
    ])
    files = load_manifest(idx).files
    assert [bool(f.held) for f in files] == [False, True]
    m = machine(os="windows", glibc=None, torch="2.9.1+cu128", torch_cuda="12.8", gpus=(RTX5090,))
    advice = which.advise(m, "sageattention", list(files), index_root="R")
    assert advice.ok and advice.wheel == files[0].filename, advice.render()
    view_page = idx / "cu128/torch2.9/simple/sageattention/index.html"
    assert advice.wheel in view_page.read_text()
    # the served manifest.json (dicts) reads the same
    as_json = json.loads((idx / "manifest.json").read_text())["files"]
    assert which.advise(m, "sageattention", as_json, index_root="R").wheel == files[0].filename
    # only held (or yanked) wheels: nothing is offered
    held_only = [f for f in as_json if f["held"]]
    assert not which.advise(m, "sageattention", held_only, index_root="R").ok


# --- text from the index reaches the terminal printable ----------------------------------


def test_file_names_that_are_not_wheels_are_skipped_and_never_printed_raw() -> None:
    good = wheel("sageattention", "2.2.0+cu130torch2.14", "cp312", LINUX, SA2_TARGETS)
    fake = dict(good, filename=good["filename"].replace("2.2.0", "2.3.0\x1b[2K\rOK\nInstall"))
    notawheel = dict(good, filename="README\x1b]0;pwned\x07.txt")
    advice = which.advise(machine(python="3.12"), "sageattention", [good, fake, notawheel],
                          index_root=ROOT)
    assert advice.ok and advice.wheel == good["filename"]
    text = advice.render()
    assert all(line.isprintable() for line in text.splitlines()), repr(text)
    assert "\x1b" not in text and "\r" not in text
    (note,) = [n for n in advice.notes if "not wheel filenames" in n]
    assert note.startswith("skipped 2 manifest entries") and "\\x1b" in text
    # an index URL given with an escape sequence in it: escaped too
    hostile = which.advise(machine(), "sageattention", [good], index_root="http://x/\x1b[31m")
    assert "\x1b" not in hostile.render() and "\\x1b[31m" in hostile.render()
    # a package the index lacks: the list of known ones, no crash on the bad names
    other = which.advise(machine(), "nosuch", [good, fake, notawheel], index_root=ROOT)
    assert not other.ok and "choose one of sageattention" in other.problems[0]


# --- manifest.json: a size cap and an overall deadline -----------------------------------


class _Drip(BaseHTTPRequestHandler):
    """Answers a byte at a time, 10 a second, for at most 20 s (in its headers or body), or
    64 MiB at once (/endless)."""

    def do_GET(self) -> None:
        if self.path.startswith("/headers"):
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            payload = b"X-Slow: " + b"a" * 200
        elif self.path.startswith("/endless"):  # fast, and never ends (up to 1 GiB)
            self.send_response(200)
            self.end_headers()
            for _ in range(64):  # 64 MiB: twice the cap
                self.wfile.write(b" " * (1 << 20))
            return
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            payload = b'{"files": [' + b" " * 200
        for byte in payload:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.1)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def drip_server():
    from _local_http import serve_locally

    server, url = serve_locally(_Drip)
    yield url
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_slow_server_is_given_up_on_at_the_deadline(drip_server: str, where: str) -> None:
    started = time.monotonic()
    files, why = which.fetch_manifest(f"{drip_server}/{where}", timeout=5, deadline=1.5)
    took = time.monotonic() - started
    assert files is None and took < 3.5, took
    assert why and "not read within" in why and "\n" not in why


def test_a_manifest_over_the_cap_is_refused(drip_server: str) -> None:
    files, why = which.fetch_manifest(f"{drip_server}/endless", max_bytes=4 << 20)
    assert files is None and why and "over the 4194304-byte cap" in why
    # and through the command, at the default cap (32 MiB), in one line
    out = _which(["--index-url", f"{drip_server}/endless", "--json"], script=Path(which.__file__))
    notes = json.loads(out.stdout)["notes"]
    assert any(f"over the {which.MAX_MANIFEST_BYTES}-byte cap" in n for n in notes), notes


def test_gpucheck_uses_only_the_public_api() -> None:
    """which.py is a standalone script that gpucheck and landing also import: they use the
    names it exports (``__all__``), never its private helpers."""
    from wheelfactory import gpucheck

    for module in (gpucheck,):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name) and n.value.id == "which"}
        assert used <= set(which.__all__), used - set(which.__all__)
    assert all(hasattr(which, name) for name in which.__all__)


@pytest.mark.parametrize(
    ("m", "why"),
    [
        (machine(), "sageattn3 needs a Blackwell GPU"),  # an H100
        (machine(os="windows", glibc=None, torch="2.6.0+cu126", torch_cuda="12.6", gpus=(RTX5090,)),
         "torch"),  # sageattn3 has no wheel for torch 2.6 / CUDA 12.6
    ],
)
def test_where_sageattn3_is_not_offered_the_sageattention_command_is_given(m: Machine, why: str) -> None:
    """Issue 24: say why in one sentence, and give the command that does work."""
    files = [*MANIFEST, wheel("sageattention", "2.2.0+cu126torch2.6", "cp312", WIN, SA2_TARGETS)]
    advice = which.advise(m, "sageattn3", files, index_root=ROOT)
    assert not advice.ok and len(advice.problems) == 1 and why in advice.problems[0]
    works = which.advise(m, "sageattention", files, index_root=ROOT)
    assert works.ok and advice.instead == works.command
    text = advice.render()
    assert f"This works on this machine instead:\n  {works.command}" in text
    assert "sageattention --extra-index-url" in advice.instead


def test_nothing_else_is_offered_when_nothing_else_fits() -> None:
    cpu = machine(torch="2.9.0+cpu", torch_cuda=None, gpus=())
    assert which.advise(cpu, "sageattn3", MANIFEST, index_root=ROOT).instead is None


def test_a_wheel_no_gpu_check_has_run_is_marked_not_gpu_checked() -> None:
    win = machine(os="windows", glibc=None, torch="2.8.0+cu128", torch_cuda="12.8", gpus=(RTX5090,))
    advice = which.advise(win, "sageattn3", MANIFEST, index_root=ROOT)
    assert advice.ok and any(n.startswith("not GPU-checked") for n in advice.notes)
    checked = [dict(f, gpu_checks=[{"gpu": "RTX 5090", "arch": "12.0", "verdict": "pass"}])
               if f["project"] == "sageattn3" else f for f in MANIFEST]
    again = which.advise(win, "sageattn3", checked, index_root=ROOT)
    assert again.ok and not any(n.startswith("not GPU-checked") for n in again.notes)
