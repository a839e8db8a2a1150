"""The Windows repairer: the delvewheel argv and the Protocol dispatch.

delvewheel's own run is NOT exercised here: it needs a Windows wheel with real PE DLLs
and a Windows host with CUDA. ``_proc.run`` is replaced by a stand-in that checks the
argv and writes what delvewheel would (the repaired wheel in -w, DLLs in <pkg>.libs/).
The flags were checked against ``delvewheel repair -h`` of delvewheel 1.13.2: --exclude and
--add-path are split on os.pathsep of the host (";" on Windows), --exclude takes "*".
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest
from wheelfactory import _proc, platforms, repair
from wheelfactory.errors import CommandFailedError, ConfigError, RepairError

WHEEL = "sageattention-2.2.0-cp312-cp312-win_amd64.whl"


def test_argv_on_windows() -> None:
    excludes = repair.load_excludes("windows")
    argv = repair.delvewheel_argv(Path("dist") / WHEEL, Path("out"), excludes=excludes,
                                  add_paths=(r"C:\CUDA\v13.0\bin",), pathsep=";")
    assert argv[:3] == ["delvewheel", "repair", "--exclude"]
    assert argv[3] == ";".join(excludes)
    for must in ("c10*.dll", "torch*.dll", "cudart64_*.dll", "nvcuda.dll"):
        assert must in argv[3].split(";")
    assert argv[4:] == ["--add-path", r"C:\CUDA\v13.0\bin", "-w", "out", str(Path("dist") / WHEEL)]


def test_argv_without_cuda_bin_and_with_the_host_separator() -> None:
    argv = repair.delvewheel_argv(Path(WHEEL), Path("o"), excludes=("a*.dll", "b.dll"),
                                  pathsep=":")
    assert argv == ["delvewheel", "repair", "--exclude", "a*.dll:b.dll", "-w", "o", WHEEL]
    with pytest.raises(ConfigError, match="repair-excludes.toml"):
        repair.delvewheel_argv(Path(WHEEL), Path("o"), excludes=("a;b.dll",), pathsep=";")


def test_cuda_bin_from_cuda_path() -> None:
    r = repair.DelvewheelRepairer()
    assert r.add_paths({"CUDA_PATH": "/cuda"}) == (str(Path("/cuda") / "bin"),)
    assert r.add_paths({}) == ()
    assert repair.DelvewheelRepairer(cuda_bin="D:/cu/bin").add_paths({"CUDA_PATH": "x"}) == (
        "D:/cu/bin",)


def _fake_delvewheel(vendored: list[str], calls: list[list[str]], rc: int = 0):
    """Stands in for _proc.run: delvewheel cannot run here (no Windows, no PE DLLs)."""

    def run(argv, **kw):
        calls.append(list(argv))
        if rc:
            raise CommandFailedError(f"delvewheel exited with status {rc}")
        out, src = Path(argv[argv.index("-w") + 1]), Path(argv[-1])
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out / src.name, "w") as zout:
            for item in zin.infolist():
                zout.writestr(item, zin.read(item))
            for dll in vendored:
                zout.writestr(f"sageattention.libs/{dll}", b"MZ")
        return subprocess.CompletedProcess(argv, 0, "", "")

    return run


def _wheel(tmp_path: Path) -> Path:
    w = tmp_path / WHEEL
    with zipfile.ZipFile(w, "w") as zf:
        zf.writestr("sageattention/_qattn.pyd", b"MZ")
    return w


def test_dispatch_runs_delvewheel_through_proc(tmp_path, monkeypatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(_proc, "run", _fake_delvewheel(["msvcp140-abc.dll"], calls))
    monkeypatch.setenv("CUDA_PATH", str(tmp_path / "cuda"))
    assert isinstance(repair.REPAIRERS[platforms.get("windows-amd64").repairer], repair.DelvewheelRepairer)
    result = repair.repair(_wheel(tmp_path), tmp_path / "out", platform=platforms.get("windows-amd64"))
    (argv,) = calls
    assert argv[:2] == ["delvewheel", "repair"]
    assert argv[argv.index("--add-path") + 1] == str(tmp_path / "cuda" / "bin")
    assert argv[argv.index("--exclude") + 1].split(repair.os.pathsep) == list(
        repair.load_excludes("windows"))
    assert result.wheel == tmp_path / "out" / WHEEL
    assert result.policy == "win_amd64" and result.tool == "delvewheel"
    assert result.vendored == ("sageattention.libs/msvcp140-abc.dll",)


@pytest.mark.parametrize("dll", ["c10-5a1b.dll", "TORCH_CPU-77.dll", "cudart64_13.dll"])
def test_vendored_torch_or_cuda_dll_is_refused(tmp_path, monkeypatch, dll) -> None:
    monkeypatch.setattr(_proc, "run", _fake_delvewheel([dll], []))
    with pytest.raises(RepairError, match=f"vendors {dll}: add the pattern"):
        repair.repair(_wheel(tmp_path), tmp_path / "out", platform=platforms.get("windows-amd64"))


def test_delvewheel_failure_is_one_line_with_the_fix(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(_proc, "run", _fake_delvewheel([], [], rc=1))
    with pytest.raises(RepairError, match="could not repair .* pass their folder in CUDA_PATH"):
        repair.repair(_wheel(tmp_path), tmp_path / "out", platform=platforms.get("windows-amd64"))
