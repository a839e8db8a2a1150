"""gpucheck.judge and the GPU gate of publish: held wheels, recorded checks, yanks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from _index_wheels import make_stable_abi_wheel, make_wheel
from _records import record_json
from wheelfactory import gpucheck
from wheelfactory import publish as pub
from wheelfactory.errors import PublishError
from wheelfactory.manifest import GpuCheck, load_manifest
from wheelfactory.recipe import GpuCheckSpec

SPEC = GpuCheckSpec(script=Path("x.py"), args={}, min_cosine=0.99, max_abs_error=1.0)


def out(*cases: dict) -> str:
    return "warming up\n" + json.dumps({"gpu": "G", "capability": "9.0", "torch": "2.11.0", "cases": list(cases)})


@pytest.mark.parametrize(
    ("output", "verdict", "detail"),
    [
        (out({"shape": "s", "cosine": 0.9993, "max_abs_error": 0.05, "tflops": 700.0}), "pass", "cosine >= 0.9993"),
        (out({"shape": "s4k", "cosine": 0.0001, "max_abs_error": 5.3}), "fail", "cosine 0.0001 < 0.99 at s4k"),
        (out({"shape": "s", "cosine": 0.999, "max_abs_error": 5.3}), "fail", "max abs error 5.3 > 1.0 at s"),
        (out({"shape": "s", "cosine": None, "max_abs_error": 0.1}), "fail", "cosine is not a number (None) at s"),
        ('{"cases": [{"shape": "s", "cosine": NaN, "max_abs_error": 0.1}]}', "fail", "cosine is not a number (nan)"),
        ("no json here", "error", "printed no result JSON"),
        (json.dumps({"cases": []}), "error", "no cases"),
    ],
)
def test_judge(output: str, verdict: str, detail: str) -> None:
    got, line, _ = gpucheck.judge(output, SPEC)
    assert got == verdict and detail in line and "\n" not in line


def check(wheel: Path, verdict: str, *, detail: str = "x", arch: str = "9.0") -> GpuCheck:
    import hashlib

    return GpuCheck(
        filename=wheel.name, sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(), arch=arch,
        gpu="NVIDIA H200", torch="2.14.1+cu130", date="2026-11-30T00:00:00Z", verdict=verdict,
        detail=detail, cosine=0.9993 if verdict == "pass" else None,
    )  # fmt: skip


def views(index: Path, name: str) -> list[str]:
    return sorted(p.parent.parent.relative_to(index).as_posix() for p in index.glob("**/simple/demo-ext/index.html"))


def test_gate_holds_new_wheels_until_a_check_passes(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    hopper = make_wheel(tmp_path / "a", build_record=record_json(targets=["9.0a"]))
    blackwell = make_wheel(tmp_path / "b", version="1.0.1", build_record=record_json(targets=["12.0a"]))
    pub.publish([hopper, blackwell], idx, gpu_gate=["9.0"])
    files = load_manifest(idx).by_filename
    assert files[hopper.name].held == "awaiting a GPU check on sm_90"
    assert files[blackwell.name].held is None  # cannot be checked here: listed, not GPU-checked
    page = (idx / "cu130/torch2.14/simple/demo-ext/index.html").read_text()
    assert blackwell.name in page and hopper.name not in page
    assert load_manifest(idx).gpu_gate == ("9.0",)
    pub.record_gpu_checks(idx, [check(hopper, "pass")])
    after = load_manifest(idx).by_filename[hopper.name]
    assert after.held is None and after.gpu_checks[0].verdict == "pass"
    assert hopper.name in (idx / "cu130/torch2.14/simple/demo-ext/index.html").read_text()
    assert pub.index_drift(idx) == []


def test_gate_holds_a_wheel_when_any_of_its_targets_is_gated(tmp_path: Path) -> None:
    """Every multi-target wheel also has targets off the gate: one gated target holds it."""
    idx = tmp_path / "idx"
    wide = make_wheel(tmp_path / "a", build_record=record_json(targets=["8.0", "9.0a", "12.0a"]))
    pub.publish([wide], idx, gpu_gate=["9.0", "10.0"])
    assert load_manifest(idx).by_filename[wide.name].held == "awaiting a GPU check on sm_90"
    assert views(idx, "demo-ext") == []  # in no view at all until the check on sm_90 passes
    assert pub.held_reason(load_manifest(idx).by_filename[wide.name], ["8.0", "12.0"]) == (
        "awaiting a GPU check on sm_80, sm_120"
    )


def test_a_check_that_errors_or_times_out_leaves_a_held_wheel_held(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    held = make_wheel(tmp_path / "a", build_record=record_json(targets=["9.0a"]))
    pub.publish([held], idx, gpu_gate=["9.0"])
    for detail in ("timed out after 600 s", "the check exited with status -11: Segmentation fault"):
        pub.record_gpu_checks(idx, [check(held, "error", detail=detail)])
        entry = load_manifest(idx).by_filename[held.name]
        assert entry.held == f"GPU check could not run on NVIDIA H200 (sm_90, torch 2.14.1+cu130): {detail}"
        assert entry.gpu_checks[-1].verdict == "error"
        assert views(idx, "demo-ext") == []
    pub.record_gpu_checks(idx, [check(held, "pass")])  # a later check that runs decides
    assert load_manifest(idx).by_filename[held.name].held is None
    assert views(idx, "demo-ext") == ["cu130/simple", "cu130/torch2.14/simple"]


def test_a_real_check_that_hangs_is_an_error_and_the_wheel_stays_held(tmp_path: Path, monkeypatch) -> None:
    """check_wheel for real (a venv, pip, the script) with a script that never ends: the
    timeout is an error, never a pass or a refusal, so the held wheel stays out."""
    import os
    import sys

    # the machine's torch: a stand-in distribution (torch 2.14.1) in a site folder the
    # machine's Python has on its path, which check_wheel hands on to the venv it makes
    site = tmp_path / "machine" / "site-packages"
    (site / "torch-2.14.1.dist-info").mkdir(parents=True)
    (site / "torch-2.14.1.dist-info/METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.14.1\n")
    (site / "torch-2.14.1.dist-info/RECORD").write_text("")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    idx = tmp_path / "idx"
    wheel = make_wheel(tmp_path / "a", build_record=record_json(targets=["9.0a"]))
    pub.publish([wheel], idx, gpu_gate=["9.0"])
    script = tmp_path / "hang.py"
    script.write_text("import time\ntime.sleep(120)\n")
    spec = GpuCheckSpec(script=script, args={}, min_cosine=0.99, timeout=3)
    here = "{}.{}".format(*sys.version_info[:2])
    machine = gpucheck.Machine(python=Path(sys.executable), python_version=here, torch="2.14.1+cu130",
                               torch_cuda="13.0", gpu="NVIDIA H200", capability=(9, 0))  # fmt: skip
    entry = load_manifest(idx).by_filename[wheel.name]
    candidate = gpucheck.Candidate(filename=wheel.name, sha256=entry.sha256, targets=("9.0a",), path=wheel)
    (work := tmp_path / "work").mkdir()
    result = gpucheck.check_wheel(candidate, spec, machine, work=work)
    assert (result.verdict, result.detail) == ("error", "timed out after 3 s")
    pub.record_gpu_checks(idx, [result])
    assert load_manifest(idx).by_filename[wheel.name].held == (
        "GPU check could not run on NVIDIA H200 (sm_90, torch 2.14.1+cu130): timed out after 3 s"
    )
    assert views(idx, "demo-ext") == []


def test_wrong_numbers_keep_a_held_wheel_out_and_yank_a_listed_one(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    listed = make_wheel(tmp_path / "a", build_record=record_json(targets=["9.0a"]))
    pub.publish([listed], idx)  # no gate yet: listed at once
    held = make_wheel(tmp_path / "b", version="1.0.1", build_record=record_json(targets=["9.0a"]))
    pub.publish([held], idx, gpu_gate=["9.0"])
    pub.record_gpu_checks(idx, [check(held, "fail", detail="cosine 0.0001 < 0.99"), check(listed, "fail", detail="cosine 0.0001 < 0.99")])
    files = load_manifest(idx).by_filename
    assert files[held.name].held == "GPU check failed on NVIDIA H200 (sm_90, torch 2.14.1+cu130): cosine 0.0001 < 0.99"
    assert files[listed.name].yanked and "cosine 0.0001" in (files[listed.name].yank_reason or "")
    page = (idx / "cu130/torch2.14/simple/demo-ext/index.html").read_text()
    assert held.name not in page and "data-yanked=" in page


def test_a_check_that_could_not_run_changes_nothing_listed(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    listed = make_wheel(tmp_path / "a", build_record=record_json(targets=["9.0a"]))
    pub.publish([listed], idx)
    pages = {p: p.read_bytes() for p in idx.rglob("index.html") if "simple" in p.parts}
    pub.record_gpu_checks(idx, [check(listed, "error", detail="timed out after 600 s")])
    entry = load_manifest(idx).by_filename[listed.name]
    assert not entry.yanked and entry.held is None and entry.gpu_checks[0].verdict == "error"
    assert {p: p.read_bytes() for p in pages} == pages


def test_checks_of_other_bytes_or_unknown_files_are_refused(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    w = make_wheel(tmp_path / "a", build_record=record_json(targets=["9.0a"]))
    pub.publish([w], idx)
    before = (idx / "manifest.json").read_bytes()
    with pytest.raises(PublishError, match="index holds"):
        pub.record_gpu_checks(idx, [replace(check(w, "pass"), sha256="0" * 64)])
    with pytest.raises(PublishError, match="is not published"):
        pub.record_gpu_checks(idx, [replace(check(w, "pass"), filename="x-1.0+cu130torch2.14-py3-none-any.whl")])
    assert (idx / "manifest.json").read_bytes() == before
    with pytest.raises(PublishError, match="verdict"):
        replace(check(w, "pass"), verdict="maybe")


@pytest.mark.parametrize(("torch", "chosen"), [("2.10.0+cu130", True), ("2.9.1+cu130", False)])
def test_select_checks_a_stable_abi_wheel_at_exactly_its_floor(torch: str, chosen: bool, monkeypatch) -> None:
    """A machine with the floor torch can run a stable-ABI wheel, so it checks it."""
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # select reads the host: not its torch (if any)
    name = "demo_ext-1.0.0+cu130torchabi-cp310-abi3-any.whl"  # any: fits every host
    entry = {"filename": name, "sha256": "a" * 64, "url": f"files/{name}", "covers": [],
             "build_record": {"targets": ["9.0a"], "stable_abi_floor": "2.10"}}  # fmt: skip
    machine = gpucheck.Machine(python=Path("python"), python_version="3.12", torch=torch,
                               torch_cuda="13.0", gpu="NVIDIA H200", capability=(9, 0))  # fmt: skip
    got, skipped = gpucheck.select([entry], "demo-ext", machine, index_root="https://idx.example.org/w")
    assert [c.filename for c in got] == ([name] if chosen else [])
    if chosen:
        assert got[0].index_view == "https://idx.example.org/w/cu130/torchabi/simple/"
    else:
        assert skipped == [f"{name}: built for torch abi, this machine has {torch}"]


def test_stable_abi_wheel_covers_more_torch_views(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    stable = make_stable_abi_wheel(tmp_path / "s")
    pub.publish([stable], idx)
    assert load_manifest(idx).by_filename[stable.name].covers == ("2.14",)  # verified with it
    before = {p.relative_to(idx) for p in idx.rglob("*") if p.is_file()}
    pub.add_covers(idx, stable.name, "2.15")
    listed = (idx / "cu130/torch2.15/simple/demo-ext/index.html").read_text()
    assert stable.name in listed and stable.name in (idx / "cu130/torchabi/simple/demo-ext/index.html").read_text()
    new = {p.relative_to(idx) for p in idx.rglob("*") if p.is_file()} - before
    assert {str(p) for p in new} == {
        "cu130/torch2.15/simple/index.html", "cu130/torch2.15/simple/index.json",
        "cu130/torch2.15/simple/demo-ext/index.html", "cu130/torch2.15/simple/demo-ext/index.json",
    }
    with pytest.raises(PublishError, match="loads on torch >= 2.10, not 2.9"):
        pub.add_covers(idx, stable.name, "2.9")
    per_torch = make_wheel(tmp_path / "p", build_record=record_json())
    pub.publish([per_torch], idx)
    with pytest.raises(PublishError, match="only stable-ABI wheels cover more"):
        pub.add_covers(idx, per_torch.name, "2.15")
