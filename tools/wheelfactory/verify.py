"""Check a built wheel: tags, label, Requires-Dist, RECORD, SASS targets, driver links, imports.

Every check adds a ``Check`` to a ``VerifyReport`` (JSON with ``"version": 1``);
``VerifyReport.raise_for_failures()`` raises VerifyError with the first failure's one line.

The import check is cheap and GPU-free: a fresh venv without pip and without a torch
copy (a .pth file points at the build env's site-packages), the wheel installed with
``--no-deps``, then ``import torch; import <module>`` in a subprocess per module, with a
libcuda stub on LD_LIBRARY_PATH so modules that NEED libcuda.so.1 load.
"""

from __future__ import annotations

import email.parser
import json
import logging
import os
import re
import shutil
import subprocess
import sysconfig
import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from wheelfactory import _proc, label, naming
from wheelfactory.arch import GpuTarget
from wheelfactory.buildenv import BuildEnv
from wheelfactory.errors import ToolMissingError, VerifyError

log = logging.getLogger(__name__)

REPORT_VERSION = 1
_SASS_RE = re.compile(r"\.(sm_\d+[af]?)\.cubin\b")
_DRIVER_SYMBOL_RE = re.compile(r"^cu[A-Z]\w*$")
_EXT_SUFFIX_RE = re.compile(r"\.(cpython-[^.]+|abi3)?\.?so$")


@dataclass(frozen=True, kw_only=True)
class Expectation:
    """What the wheel must be."""

    targets: tuple[GpuTarget, ...]
    torch: str  # "2.14.1"
    cuda: str  # "13.0"
    python_tag: str  # "cp311"
    modules: tuple[str, ...] = ()  # to import; () = every extension module in the wheel
    platform_prefix: str = "manylinux_"


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
                needed += [t.needed for t in section.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
        dynsym = elf.get_section_by_name(".dynsym")
        if dynsym is not None:
            for sym in dynsym.iter_symbols():
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


# ------------------------------------------------------------------------------ wheel facts


def extension_modules(names: Sequence[str]) -> tuple[str, ...]:
    """Dotted names of the extension modules among a wheel's file names."""
    mods = []
    for name in names:
        parts = name.split("/")
        if not name.endswith(".so") or parts[0].endswith((".libs", ".dist-info", ".data")):
            continue
        stem = parts[-1].split(".", 1)[0]
        mods.append(".".join([*parts[:-1], stem]))
    return tuple(sorted(mods))


def _metadata(z: zipfile.ZipFile) -> email.message.Message:
    name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
    return email.parser.Parser().parsestr(z.read(name).decode())


def check_tags_and_label(wheel: Path, expect: Expectation) -> list[Check]:
    """Filename tags, version label, METADATA version and Requires-Dist."""
    checks: list[Check] = []
    info = naming.parse_wheel(wheel.name)
    ok_py = info.python_tags == (expect.python_tag,) and info.abi_tags == (expect.python_tag,)
    checks.append(
        Check(
            name="python tag",
            ok=ok_py,
            detail=f"{info.python_tags}/{info.abi_tags}, expected {expect.python_tag}"
            + ("" if ok_py else f": build with --python of {expect.python_tag}"),
        )
    )
    ok_plat = all(p.startswith(expect.platform_prefix) for p in info.platform_tags)
    checks.append(
        Check(
            name="platform tag",
            ok=ok_plat,
            detail=f"{', '.join(info.platform_tags)}"
            + (
                ""
                if ok_plat
                else f" is not {expect.platform_prefix}*: repair the wheel (auditwheel)"
            ),
        )
    )
    want = naming.labelled_version(info.public_version, expect.cuda, expect.torch)
    ok_label = info.version == want
    checks.append(
        Check(
            name="version label",
            ok=ok_label,
            detail=f"{info.version}" + ("" if ok_label else f", expected {want}: relabel it"),
        )
    )
    with zipfile.ZipFile(wheel) as z:
        meta = _metadata(z)
    ok_meta = meta["Version"] == info.version
    checks.append(
        Check(
            name="metadata version",
            ok=ok_meta,
            detail=f"METADATA says {meta['Version']}, filename {info.version}",
        )
    )
    want_req = Requirement(naming.torch_requirement(expect.torch))
    reqs = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
    torch_reqs = [r for r in reqs if canonicalize_name(r.name) == "torch" and not r.marker]
    ok_req = [str(r.specifier) for r in torch_reqs] == [str(want_req.specifier)]
    checks.append(
        Check(
            name="requires torch",
            ok=ok_req,
            detail=f"{[str(r) for r in torch_reqs]}"
            + ("" if ok_req else f", expected ['{want_req}']: relabel the wheel"),
        )
    )
    problems = label.check_record(wheel)
    checks.append(
        Check(name="RECORD", ok=not problems, detail="; ".join(problems[:3]) or "matches")
    )
    record = label.read_build_record(wheel)
    ok_rec = bool(record) and record.get("version") == label.BUILD_RECORD_VERSION
    checks.append(
        Check(
            name="build record",
            ok=ok_rec,
            detail=f"{label.BUILD_RECORD} "
            + (
                "present" if ok_rec else "missing or not version 1: rebuild with wheelfactory build"
            ),
        )
    )
    return checks


def check_binaries(
    unpacked: Path, expect: Expectation, cuobjdump: Path
) -> tuple[list[Check], dict[str, list[str]]]:
    """SASS targets (promised == present) and the driver-link ELF check of each .so."""
    checks: list[Check] = []
    sass: dict[str, list[str]] = {}
    sos = sorted(
        p for p in unpacked.rglob("*.so*") if p.is_file() and not p.parent.name.endswith(".libs")
    )
    for so in sos:
        rel = so.relative_to(unpacked).as_posix()
        sass[rel] = list_sass(so, cuobjdump)
        problem = driver_link_problem(so)
        checks.append(
            Check(name=f"driver link {so.name}", ok=problem is None, detail=problem or "ok")
        )
    present = {sm for sms in sass.values() for sm in sms}
    promised = {t.sm for t in expect.targets}
    missing, extra = sorted(promised - present), sorted(present - promised)
    ok = not missing and not extra
    detail = f"present {sorted(present)}"
    if missing:
        detail += f"; missing {missing}: the build ignored TORCH_CUDA_ARCH_LIST (add a [[fix]] or no-gpu-shim)"
    if extra:
        detail += f"; not promised {extra}: add them to the recipe's [[targets]] or stop the build emitting them"
    checks.append(Check(name="SASS targets", ok=ok, detail=detail))
    return checks, sass


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
    python = where / "bin" / "python"
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
    """Run every check on ``wheel``; the import check needs ``build_env`` (skipped when None)."""
    checks = check_tags_and_label(wheel, expect)
    work.mkdir(parents=True, exist_ok=True)
    unpacked = work / "verify-unpacked"
    if unpacked.exists():
        shutil.rmtree(unpacked)
    label.unpack(wheel, unpacked)
    try:
        extra_sites = build_env.torch_paths() if build_env else ()
        try:
            cuobjdump = find_cuobjdump(extra_sites)
        except ToolMissingError as e:
            checks.append(Check(name="SASS targets", ok=False, detail=str(e)))
            sass: dict[str, list[str]] = {}
        else:
            bin_checks, sass = check_binaries(unpacked, expect, cuobjdump)
            checks += bin_checks
        with zipfile.ZipFile(wheel) as z:
            found = extension_modules(z.namelist())
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    modules = expect.modules or found
    imports: list[ImportResult] = []
    if build_env is None:
        checks.append(
            Check(name="imports", ok=False, detail="no build env to import with: pass --torch")
        )
    elif not modules:
        checks.append(
            Check(
                name="imports",
                ok=False,
                detail="the wheel has no extension modules: is it the right wheel?",
            )
        )
    else:
        imports = check_imports(wheel, modules, build_env=build_env, stub_dir=stub_dir, work=work)
        for r in imports:
            checks.append(
                Check(
                    name=f"import {r.module}", ok=r.ok, detail=r.error or f"ok in {r.seconds:.1f} s"
                )
            )
    return VerifyReport(wheel=wheel.name, checks=tuple(checks), sass=sass, imports=tuple(imports))
