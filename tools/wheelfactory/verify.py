"""Check a built wheel: tags, label, Requires-Dist, RECORD, nothing of torch or CUDA
vendored, SASS targets, driver links, the stable ABI, imports.

The wheel is first read by wheelfile.read_wheel (the validator publish uses too). Every
check adds a ``Check`` to a ``VerifyReport`` (JSON with ``"version": 1``);
``VerifyReport.raise_for_failures()`` raises VerifyError with the first failure's one line.

The import check is cheap and GPU-free: a fresh venv without pip and without a torch
copy (a .pth file points at the build env's site-packages), the wheel installed with
``--no-deps``, then ``import torch; import <module>`` in a subprocess per module, with a
libcuda stub on LD_LIBRARY_PATH so modules that NEED libcuda.so.1 load.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sysconfig
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from packaging.version import Version

from wheelfactory import _proc, arch, label, naming, platforms, repair, resources, wheelfile
from wheelfactory.arch import GpuTarget
from wheelfactory.buildenv import BuildEnv, venv_python
from wheelfactory.errors import ToolMissingError, VerifyError
from wheelfactory.platforms import Platform
from wheelfactory.record import RECORD_VERSION, BuildRecord

log = logging.getLogger(__name__)

REPORT_VERSION = 1
_SASS_RE = re.compile(r"\.(sm_\d+[af]?)\.cubin\b")
_DRIVER_SYMBOL_RE = re.compile(r"^cu[A-Z]\w*$")
# Mangled C++ names of libtorch's own classes and functions (c10::, at::, torch::): a
# module that imports one is bound to the torch minor it was compiled against.
_TORCH_CXX_SYMBOL_RE = re.compile(r"^_ZN?K?(3c10|2at|5torch|6caffe2)")
# libtorch's C shim, the ABI a stable-ABI module links to
_SHIM_SYMBOL_RE = re.compile(r"^(aoti_torch_|torch_)\w+$")


@dataclass(frozen=True, kw_only=True)
class Expectation:
    """What the wheel must be."""

    targets: tuple[GpuTarget, ...]
    torch: str  # "2.14.1"
    cuda: str  # "13.0"
    python_tag: str  # "cp311-cp311", "cp310-abi3"
    platform: Platform
    torch_requirement: str  # "torch==2.14.*", "torch>=2.10"
    stable_abi_floor: str | None = None  # a stable-ABI wheel: the oldest torch it loads on
    modules: tuple[str, ...] = ()  # to import; () = every extension module in the wheel

    @classmethod
    def of(cls, record: BuildRecord, modules: Sequence[str] = ()) -> Expectation:
        """What a wheel must be, by its build record (and the modules to import)."""
        return cls(
            targets=arch.parse_targets(list(record.targets)),
            torch=record.torch,
            cuda=record.cuda,
            python_tag=record.python_tag,
            platform=platforms.get(record.platform),
            torch_requirement=record.torch_requirement,
            stable_abi_floor=record.stable_abi_floor,
            modules=tuple(modules),
        )


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    module: str
    ok: bool
    seconds: float
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    wheel: str
    checks: tuple[Check, ...]
    sass: dict[str, list[str]] = field(default_factory=dict)  # .so path in wheel -> sm_* list
    imports: tuple[ImportResult, ...] = ()
    version: int = REPORT_VERSION

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def to_json(self) -> str:
        data = asdict(self)
        data["ok"] = self.ok
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def raise_for_failures(self) -> None:
        if self.failures:
            first = self.failures[0]
            more = (
                f" (+{len(self.failures) - 1} more failed checks)" if len(self.failures) > 1 else ""
            )
            raise VerifyError(f"{self.wheel}: {first.name}: {first.detail}{more}")


# ------------------------------------------------------------------------------ tools


def find_cuobjdump(extra_sites: Sequence[Path] = ()) -> Path:
    """cuobjdump from PATH, CUDA_HOME/bin, or PyPI's nvidia-cuda-cuobjdump in a site-packages."""
    found = shutil.which("cuobjdump")
    if found:
        return Path(found)
    candidates = []
    if os.environ.get("CUDA_HOME"):
        candidates.append(Path(os.environ["CUDA_HOME"]) / "bin" / "cuobjdump")
    candidates.append(Path("/usr/local/cuda/bin/cuobjdump"))
    sites = [Path(sysconfig.get_paths()["purelib"]), *extra_sites]
    for site in sites:
        candidates += [
            site / "nvidia" / "cu13" / "bin" / "cuobjdump",
            site / "nvidia" / "cuda_cuobjdump" / "bin" / "cuobjdump",
        ]
    for c in candidates:
        if c.exists():
            return c
    return Path(_proc.which("cuobjdump"))  # raises ToolMissingError with the install hint


def list_sass(so: Path, cuobjdump: Path) -> list[str]:
    """The SASS targets (``sm_90a``) embedded in a shared library; [] without device code."""
    out = _proc.run([cuobjdump, "--list-elf", so], check=False, echo=False)
    return sorted(set(_SASS_RE.findall(out.stdout)))


def driver_link_problem(so: Path) -> str | None:
    """Undefined CUDA driver symbols (``cu[A-Z]*``) without libcuda.so.1 in NEEDED: why it fails."""
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    with open(so, "rb") as f:
        elf = ELFFile(f)
        needed: list[str] = []
        undefined: list[str] = []
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                needed += [t.needed for t in section.iter_tags() if t.entry.d_tag == "DT_NEEDED"]  # type: ignore[attr-defined]
        dynsym = elf.get_section_by_name(".dynsym")
        if dynsym is not None:
            for sym in dynsym.iter_symbols():  # type: ignore[attr-defined]
                if sym["st_shndx"] == "SHN_UNDEF" and _DRIVER_SYMBOL_RE.match(sym.name):
                    undefined.append(sym.name)
    if undefined and not any(n.startswith("libcuda.so") for n in needed):
        first = sorted(undefined)[0]
        return (
            f"{so.name} uses CUDA driver symbols ({first}{', ...' if len(undefined) > 1 else ''}) but does not"
            f" link libcuda.so.1 (an empty libcuda stub dropped by --as-needed?), so its import fails with"
            f" 'undefined symbol: {first}'; set links-driver = true in the recipe's [build]"
        )
    return None


def torch_cxx_symbols(so: Path) -> list[str]:
    """The C++ symbols of torch (c10::, at::, torch::) that ``so`` imports, sorted."""
    from elftools.elf.elffile import ELFFile

    with open(so, "rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        if dynsym is None:
            return []
        return sorted(
            sym.name
            for sym in dynsym.iter_symbols()  # type: ignore[attr-defined]
            if sym["st_shndx"] == "SHN_UNDEF" and _TORCH_CXX_SYMBOL_RE.match(sym.name)
        )


def stable_abi_problem(so: Path) -> str | None:
    """Why ``so`` is not a stable-ABI module (it imports a torch C++ symbol), or None."""
    symbols = torch_cxx_symbols(so)
    if not symbols:
        return None
    return (
        f"{so.name} imports {len(symbols)} torch C++ symbol(s) ({symbols[0]}), so it loads only"
        " on the torch it was compiled against: build it from a stable-ABI source (torch/csrc/stable"
        " only), or drop stable-abi-floor from the recipe"
    )


@cache
def stable_abi_table() -> dict[str, Any]:
    """resources/torch-stable-abi.json: the torch minor that first exports each C-shim symbol."""
    return json.loads((resources.RESOURCES / "torch-stable-abi.json").read_text(encoding="utf-8"))


def floor_problem(so: Path, floor: str) -> str | None:
    """Why ``so`` cannot load on torch ``floor``: a C-shim symbol that torch does not export
    yet (by the table, read from torch's own libraries), or None."""
    table = stable_abi_table()
    minors, first = table["minors"], table["first_exported_in"]
    if Version(floor) < Version(minors[0]):
        return f"stable-abi-floor {floor} is older than the stable ABI this needs (torch {minors[0]}): raise it"
    from elftools.elf.elffile import ELFFile

    with open(so, "rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        wanted = sorted(
            s.name for s in (dynsym.iter_symbols() if dynsym is not None else ())  # type: ignore[attr-defined]
            if s["st_shndx"] == "SHN_UNDEF" and _SHIM_SYMBOL_RE.match(s.name)
        )  # fmt: skip
    for name in wanted:
        since = first.get(name)
        if since is None and Version(floor) <= Version(minors[-1]):
            return (
                f"{so.name} imports {name}, which no torch from {minors[0]} to {minors[-1]} exports:"
                " raise stable-abi-floor past them, or refresh resources/torch-stable-abi.json"
                " (scripts/update_stable_abi.py)"
            )
        if since is not None and Version(since) > Version(floor):
            return (
                f"{so.name} imports {name}, first exported by torch {since}, so it does not load on"
                f" its floor {floor}: compile with -DTORCH_TARGET_VERSION of {floor}, or raise"
                f" stable-abi-floor to {since}"
            )
    return None


# ------------------------------------------------------------------------------ checks


def _check(name: str, problem: str | None, ok_detail: str = "ok") -> Check:
    return Check(name=name, ok=problem is None, detail=problem or ok_detail)


def check_tags_and_label(wheel: wheelfile.Wheel, expect: Expectation) -> list[Check]:
    """Filename tags, version label, torch requirement and build record."""
    info = wheel.label
    tags = sorted(f"{py}-{abi}" for py in info.python_tags for abi in info.abi_tags)
    checks = [
        _check(
            "python tag",
            None if tags == [expect.python_tag]
            else f"{', '.join(tags)}, expected {expect.python_tag}: build with the recipe's Python",
            expect.python_tag,
        ),
        _check(
            "platform tag",
            None if all(expect.platform.matches_tag(p) for p in info.platform_tags)
            else f"{', '.join(info.platform_tags)} is not a {expect.platform.name} tag:"
            f" repair the wheel ({expect.platform.repairer})",
            ", ".join(info.platform_tags),
        ),
    ]
    torch = naming.STABLE_ABI if expect.stable_abi_floor else expect.torch
    want = naming.labelled_version(info.public_version, expect.cuda, torch)
    checks.append(_check(
        "version label", None if info.version == want else f"{info.version}, expected {want}: relabel it",
        info.version,
    ))  # fmt: skip
    checks.append(_check(
        "requires torch",
        (p := wheelfile.torch_pin_problem(wheel, torch=expect.torch, floor=expect.stable_abi_floor))
        and f"{p}: relabel the wheel",
        expect.torch_requirement,
    ))  # fmt: skip
    record = wheel.build_record
    checks.append(_check(
        "build record",
        None if record is not None else
        f"{wheelfile.RECORD_NAME} is missing: build the wheel with wheelfactory (record version"
        f" {RECORD_VERSION})",
        f"version {RECORD_VERSION}",
    ))  # fmt: skip
    return checks


def check_binaries(
    unpacked: Path, modules: Sequence[str], expect: Expectation, cuobjdump: Path | None
) -> tuple[list[Check], dict[str, list[str]]]:
    """Per extension module: the driver link and (stable ABI) no torch C++ symbols; over all
    of them: SASS targets promised == present (with cuobjdump)."""
    checks: list[Check] = []
    sass: dict[str, list[str]] = {}
    for module in modules:
        found = sorted(unpacked.glob(module.replace(".", "/") + ".*"))
        so = next((p for p in found if p.name.endswith(wheelfile.EXTENSION_SUFFIXES)), None)
        if so is None or not so.name.endswith(".so"):
            continue  # Windows modules are checked on Windows (delvewheel's own analysis)
        rel = so.relative_to(unpacked).as_posix()
        checks.append(_check(f"driver link {so.name}", driver_link_problem(so)))
        if expect.stable_abi_floor:
            checks.append(_check(f"stable ABI {so.name}", stable_abi_problem(so)))
            checks.append(_check(f"floor torch {expect.stable_abi_floor} {so.name}",
                                 floor_problem(so, expect.stable_abi_floor)))  # fmt: skip
        if cuobjdump is not None:
            sass[rel] = list_sass(so, cuobjdump)
    if cuobjdump is not None:
        checks.append(sass_check({sm for sms in sass.values() for sm in sms}, expect))
    return checks, sass


def sass_check(present: set[str], expect: Expectation) -> Check:
    """The SASS in the wheel ("sm_90a", ...) is exactly what its build record promises:
    none missing (a GPU told it is served would get no kernel) and none extra (the wheel
    would claim less than it runs on, and grow for nothing)."""
    promised = {t.sm for t in expect.targets}
    missing, extra = sorted(promised - present), sorted(present - promised)
    detail = f"present {sorted(present)}"
    if missing:
        detail += f"; missing {missing}: the build ignored TORCH_CUDA_ARCH_LIST (add a [[fix]] or no-gpu-shim)"
    if extra:
        detail += f"; not promised {extra}: add them to the recipe's [[targets]] or stop the build emitting them"
    return Check(name="SASS targets", ok=not missing and not extra, detail=detail)


def _import_error_line(output: str) -> str:
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        m = re.search(r"(\S+\.so[^:]*): undefined symbol: (\S+)", ln)
        if m:
            return f"{Path(m.group(1)).name}: undefined symbol: {m.group(2)}"
    return lines[-1][:300] if lines else "no output"


def driver_installed() -> bool:
    """Whether this machine has a real libcuda.so.1 (then the stub must not shadow it)."""
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def make_import_venv(build_env: BuildEnv, where: Path) -> Path:
    """A fresh venv (no pip, no torch copy) that sees the build env's torch through a .pth."""
    if where.exists():
        shutil.rmtree(where)
    _proc.run([build_env.python, "-m", "venv", "--without-pip", where], echo=False)
    python = venv_python(where)
    purelib = _proc.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], echo=False
    ).stdout.strip()
    Path(purelib, "_wheelfactory_torch.pth").write_text(
        "".join(f"{p}\n" for p in build_env.torch_paths())
    )
    return python


def check_imports(
    wheel: Path, modules: Sequence[str], *, build_env: BuildEnv, stub_dir: Path | None, work: Path
) -> list[ImportResult]:
    """Install ``wheel`` (--no-deps) in a fresh venv; import each module in its own process."""
    python = make_import_venv(build_env, work / "import-venv")
    _proc.run(
        [
            build_env.python,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            wheel,
        ]
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env["PYTHONNOUSERSITE"] = "1"
    # The import guard still checks torch and CUDA here, but not the build machine's GPU,
    # which need not be one the wheel targets.
    env["WHEELFACTORY_SKIP_GUARD"] = "gpu"
    if stub_dir is not None and not driver_installed():
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(stub_dir), env.get("LD_LIBRARY_PATH", "")) if p
        )
    cwd = work / "import-cwd"  # an empty folder: nothing importable by accident
    cwd.mkdir(parents=True, exist_ok=True)
    results = []
    for module in modules:
        start = time.monotonic()
        proc = subprocess.run(
            [str(python), "-c", f"import torch, importlib; importlib.import_module({module!r})"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - start
        if proc.returncode == 0:
            results.append(ImportResult(module=module, ok=True, seconds=seconds))
            log.info("  import %s: ok (%.1f s)", module, seconds)
        else:
            error = _import_error_line(proc.stdout + proc.stderr)
            results.append(ImportResult(module=module, ok=False, seconds=seconds, error=error))
            log.info("  import %s: FAILED: %s", module, error)
    return results


def verify_wheel(
    wheel: Path,
    expect: Expectation,
    *,
    build_env: BuildEnv | None,
    stub_dir: Path | None,
    work: Path,
) -> VerifyReport:
    """Run every check on ``wheel``; the import check needs ``build_env``."""
    try:
        read = wheelfile.read_wheel(wheel)
    except wheelfile.WheelError as e:
        return VerifyReport(wheel=wheel.name, checks=(Check(name="wheel", ok=False, detail=str(e)),))
    checks = [Check(name="wheel", ok=True, detail="zip, dist-info, METADATA and RECORD are sound")]
    checks.append(_check("nothing vendored", repair.vendored_problem(read.files)))
    found = read.extension_modules()
    work.mkdir(parents=True, exist_ok=True)
    unpacked = work / "verify-unpacked"
    if unpacked.exists():
        shutil.rmtree(unpacked)
    label.unpack(wheel, unpacked)
    try:
        try:
            cuobjdump: Path | None = find_cuobjdump(build_env.torch_paths() if build_env else ())
        except ToolMissingError as e:
            checks.append(Check(name="SASS targets", ok=False, detail=str(e)))
            cuobjdump = None
        bin_checks, sass = check_binaries(unpacked, found, expect, cuobjdump)
        checks += bin_checks
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    # after the binaries: a stable-ABI recipe built from a source that is not one fails
    # first on the symbol that ties it to one torch, which says more than its tags do
    checks += check_tags_and_label(read, expect)
    modules = expect.modules or found
    imports: list[ImportResult] = []
    if build_env is None:
        checks.append(Check(name="imports", ok=False, detail="no build env to import with: pass --torch"))
    elif not modules:
        checks.append(Check(
            name="imports", ok=False, detail="the wheel has no extension modules: is it the right wheel?"
        ))  # fmt: skip
    else:
        imports = check_imports(wheel, modules, build_env=build_env, stub_dir=stub_dir, work=work)
        checks += [
            Check(name=f"import {r.module}", ok=r.ok, detail=r.error or f"ok in {r.seconds:.1f} s")
            for r in imports
        ]
    return VerifyReport(wheel=wheel.name, checks=tuple(checks), sass=sass, imports=tuple(imports))
