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
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from packaging.version import Version

from wheelfactory import _proc, arch, label, naming, platforms, repair, resources, wheelfile
from wheelfactory.arch import GpuTarget
from wheelfactory.buildenv import BuildEnv, venv_python
from wheelfactory.errors import ToolMissingError, VerifyError
from wheelfactory.naming import TorchPin
from wheelfactory.platforms import Platform
from wheelfactory.recipe import find_recorded, load_recipe
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
    torch: TorchPin  # the torch built against, and the label and requirement it gives
    cuda: str  # "13.0"
    python_tag: str  # "cp311-cp311", "cp310-abi3"
    platform: Platform
    modules: tuple[str, ...] = ()  # to import; () = every extension module in the wheel
    names: tuple[str, ...] = ()  # "module.attribute" that must exist once imported

    @classmethod
    def of(cls, record: BuildRecord, modules: Sequence[str] = ()) -> Expectation:
        """What a wheel must be, by its build record (and the modules to import)."""
        return cls(
            targets=arch.parse_targets(list(record.targets)),
            torch=record.torch_pin,
            cuda=record.cuda,
            python_tag=record.python_tag,
            platform=platforms.get(record.platform),
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
    return json.loads(resources.TORCH_STABLE_ABI.read_text(encoding="utf-8"))


def shim_imports(so: Path) -> list[str]:
    """The C-shim symbols (aoti_torch_*, torch_*) that ``so`` imports, sorted."""
    from elftools.elf.elffile import ELFFile

    with open(so, "rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        return sorted(
            s.name for s in (dynsym.iter_symbols() if dynsym is not None else ())  # type: ignore[attr-defined]
            if s["st_shndx"] == "SHN_UNDEF" and _SHIM_SYMBOL_RE.match(s.name)
        )  # fmt: skip


def torch_minor_problem(so: Path, minor: str) -> str | None:
    """Why ``so`` cannot load on torch ``minor``: a C-shim symbol it imports that this
    torch does not export (by the table: not yet, or no more), or None. A minor the table
    does not list is not judged here: the import check with that torch is."""
    table = stable_abi_table()
    if minor not in table["minors"]:
        return None
    first, removed = table["first_exported_in"], table["removed_in"].get(minor, ())
    for name in shim_imports(so):
        since = first.get(name)
        if since is None or Version(since) > Version(minor):
            found = f"first exported by torch {since}" if since else "exported by no torch of the table"
            return f"{so.name} imports {name}, which torch {minor} does not export ({found})"
        if name in removed:
            return f"{so.name} imports {name}, which torch {minor} no longer exports"
    return None


def floor_problem(so: Path, floor: str) -> str | None:
    """Why ``so`` cannot load on torch ``floor``: a C-shim symbol that torch does not export
    yet (by the table, read from torch's own libraries), or None."""
    table = stable_abi_table()
    minors, first = table["minors"], table["first_exported_in"]
    if Version(floor) < Version(minors[0]):
        return f"stable-abi-floor {floor} is older than the stable ABI this needs (torch {minors[0]}): raise it"
    for name in shim_imports(so):
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
    """Filename tags, version label and torch requirement."""
    return check_tags(wheel, expect) + check_label(wheel, expect.torch, expect.cuda)


def check_tags(wheel: wheelfile.Wheel, expect: Expectation) -> list[Check]:
    """The filename's Python and platform tags are the ones the build record promises."""
    info = wheel.label
    tags = sorted(f"{py}-{abi}" for py in info.python_tags for abi in info.abi_tags)
    return [
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


def check_label(wheel: wheelfile.Wheel, torch: TorchPin, cuda: str) -> list[Check]:
    """The version label and Requires-Dist: torch say what the wheel was built against."""
    info = wheel.label
    checks = []
    want = torch.labelled_version(info.public_version, cuda)
    checks.append(_check(
        "version label", None if info.version == want else f"{info.version}, expected {want}: relabel it",
        info.version,
    ))  # fmt: skip
    checks.append(_check(
        "requires torch",
        (p := wheelfile.torch_pin_problem(wheel, torch)) and f"{p}: relabel the wheel",
        torch.requirement,
    ))  # fmt: skip
    return checks


def elf_modules(unpacked: Path, modules: Sequence[str]) -> list[Path]:
    """The ELF files (.so) of ``modules`` in an unpacked wheel. Windows modules are left
    out: they are checked on Windows (delvewheel's own analysis)."""
    out = []
    for module in modules:
        found = sorted(unpacked.glob(module.replace(".", "/") + ".*"))
        so = next((p for p in found if p.name.endswith(wheelfile.EXTENSION_SUFFIXES)), None)
        if so is not None and so.name.endswith(".so"):
            out.append(so)
    return out


def check_binaries(
    unpacked: Path, modules: Sequence[str], expect: Expectation, cuobjdump: Path | None
) -> tuple[list[Check], dict[str, list[str]]]:
    """Per extension module: the driver link and (stable ABI) no torch C++ symbols; over all
    of them: SASS targets promised == present (with cuobjdump)."""
    checks: list[Check] = []
    sass: dict[str, list[str]] = {}
    for so in elf_modules(unpacked, modules):
        rel = so.relative_to(unpacked).as_posix()
        checks.append(_check(f"driver link {so.name}", driver_link_problem(so)))
        floor = expect.torch.floor
        if floor:
            checks.append(_check(f"stable ABI {so.name}", stable_abi_problem(so)))
            checks.append(_check(f"floor torch {floor} {so.name}", floor_problem(so, floor)))
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


def import_statement(target: str, *, attribute: bool = False) -> str:
    """The Python a check runs: import a module, or (``attribute``) the module of a
    "module.attribute" name and that attribute from it, as users' code does."""
    if not attribute:
        return f"import torch, importlib; importlib.import_module({target!r})"
    module, _, name = target.rpartition(".")
    return f"import torch, importlib; getattr(importlib.import_module({module!r}), {name!r})"


def check_imports(
    wheel: Path, modules: Sequence[str], *, build_env: BuildEnv, stub_dir: Path | None, work: Path,
    names: Sequence[str] = (),
) -> list[ImportResult]:
    """Install ``wheel`` (--no-deps) in a fresh venv; import each module, then each
    "module.attribute" of ``names``, in its own process."""
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
    cwd = work / "import-cwd"  # an empty folder: nothing importable by accident
    return run_imports(python, modules, names=names, env=with_driver_stub(env, stub_dir), cwd=cwd)


def with_driver_stub(env: Mapping[str, str], stub_dir: Path | None) -> dict[str, str]:
    """``env`` with ``stub_dir`` first on the loader path when this machine has no driver:
    a module that NEEDs libcuda.so.1 then loads the stub (a real driver is never shadowed)."""
    env = dict(env)
    if stub_dir is not None and not driver_installed():
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(stub_dir), env.get("LD_LIBRARY_PATH", "")) if p
        )
    return env


def run_imports(
    python: str | Path, modules: Sequence[str], *, names: Sequence[str] = (), env: Mapping[str, str], cwd: Path
) -> list[ImportResult]:
    """Import each module, then each "module.attribute" of ``names``, each in its own
    ``python`` process started in ``cwd`` with ``env``."""
    cwd.mkdir(parents=True, exist_ok=True)
    results = []
    for module, attribute in [*((m, False) for m in modules), *((n, True) for n in names)]:
        start = time.monotonic()
        proc = subprocess.run(
            [str(python), "-c", import_statement(module, attribute=attribute)],
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


# ------------------------------------------------------------------------------ the chain
#
# verify, release-check and publish run one chain of checks, in one order; which links a
# stage leaves out (and why) is the table LEFT_OUT. A link added to CHAIN runs everywhere.


@dataclass(kw_only=True)
class Subject:
    """One wheel as the chain's links see it. ``expect`` comes from its build record (None:
    it has none); ``unpacked`` is filled for links that read the wheel's files; ``sass`` and
    ``imports`` collect what the links found, for the report."""

    wheel: wheelfile.Wheel
    expect: Expectation | None
    cuobjdump: Path | None = None  # None: the SASS check is left out (no tool, or Windows)
    build_env: BuildEnv | None = None
    stub_dir: Path | None = None
    work: Path | None = None
    unpacked: Path | None = None
    sass: dict[str, list[str]] = field(default_factory=dict)
    imports: list[ImportResult] = field(default_factory=list)


@dataclass(frozen=True)
class Link:
    name: str
    run: Callable[[Subject], list[Check]]
    reads_files: bool = False  # needs the wheel unpacked


def _record_link(s: Subject) -> list[Check]:
    # Without a record no GPU target, guard or gate is known. A pure-Python wheel (no
    # extension module: nothing runs on the GPU) needs none.
    missing = s.wheel.build_record is None and bool(s.wheel.extension_modules())
    problem = None if not missing else (
        f"{wheelfile.RECORD_NAME} is missing: build the wheel with wheelfactory (record version"
        f" {RECORD_VERSION})"
    )  # fmt: skip
    return [_check("build record", problem, f"version {RECORD_VERSION}")]


def patches_problem(record: BuildRecord) -> tuple[str | None, str]:
    """(why the record's patches are not its recipe's, or None; what was compared)."""
    if record.recipe is None:
        return None, "no recipe: nothing to patch"
    path = find_recorded(record.recipe)
    if path is None:
        return None, f"{record.recipe} is not here: patches not compared"
    os_name = platforms.get(record.platform).os
    want = [(p.file.name, p.sha256) for p in load_recipe(path).patches_for(os_name)]
    got = [(p.name, p.sha256) for p in record.patches]
    if got == want:
        return None, ", ".join(name for name, _ in got) or "none (as the recipe says)"
    missing = [name for name, sha in want if (name, sha) not in got]
    other = [name for name, sha in got if (name, sha) not in want]
    said = "; ".join(
        part for part in (
            missing and f"lacks {', '.join(missing)}",
            other and f"carries {', '.join(other)}, which the recipe does not",
        ) if part
    ) or "has the patches in another order"  # fmt: skip
    return f"built from {record.recipe} but {said}: rebuild it from the recipe", ""


def _patches_link(s: Subject) -> list[Check]:
    record = s.wheel.build_record
    if record is None:
        return []
    problem, detail = patches_problem(record)
    return [_check("patches", problem, detail)]


def _tags_link(s: Subject) -> list[Check]:
    return check_tags(s.wheel, s.expect) if s.expect is not None else []


def _label_link(s: Subject) -> list[Check]:
    if s.expect is not None:
        return check_label(s.wheel, s.expect.torch, s.expect.cuda)
    label = s.wheel.label  # a pure wheel without a record: the pin its filename claims
    if label.torch is None or label.cuda is None:
        return [Check(name="version label", ok=False, detail=f"{label.version} has no +cuXYZtorchX.Y label")]
    if label.torch == naming.STABLE_ABI:
        return [Check(name="version label", ok=False, detail=(
            "a stable-ABI wheel needs a build record naming its torch floor: build it with wheelfactory"
        ))]  # fmt: skip
    return check_label(s.wheel, TorchPin(label.torch), label.cuda)


def _vendored_link(s: Subject) -> list[Check]:
    return [_check("nothing vendored", repair.vendored_problem(s.wheel.files))]


def _binaries_link(s: Subject) -> list[Check]:
    if s.expect is None:
        return []
    assert s.unpacked is not None
    checks, sass = check_binaries(s.unpacked, s.wheel.extension_modules(), s.expect, s.cuobjdump)
    s.sass.update(sass)
    return checks


def _imports_link(s: Subject) -> list[Check]:
    modules = (s.expect.modules if s.expect else ()) or s.wheel.extension_modules()
    if s.build_env is None:
        return [Check(name="imports", ok=False, detail="no build env to import with: pass --torch")]
    if not modules:
        return [Check(name="imports", ok=False,
                      detail="the wheel has no extension modules: is it the right wheel?")]  # fmt: skip
    assert s.work is not None
    names = s.expect.names if s.expect else ()
    results = check_imports(
        s.wheel.path, modules, build_env=s.build_env, stub_dir=s.stub_dir, work=s.work, names=names
    )
    s.imports.extend(results)
    return [
        Check(name=f"import {r.module}", ok=r.ok, detail=r.error or f"ok in {r.seconds:.1f} s")
        for r in results
    ]


CHAIN: list[Link] = [
    Link("build record", _record_link),
    Link("patches", _patches_link),
    Link("nothing vendored", _vendored_link),
    # before the tags: a stable-ABI recipe built from a source that is not one fails first
    # on the symbol that ties it to one torch, which says more than its tags do
    Link("binaries", _binaries_link, reads_files=True),
    Link("tags", _tags_link),
    Link("label", _label_link),
    Link("imports", _imports_link),
]

# What each stage leaves out of CHAIN, and why. Every other link runs in every stage.
LEFT_OUT: dict[str, dict[str, str]] = {
    "verify": {},
    "release-check": {"imports": "the publish job has no torch; the build job imported it"},
    "publish": {
        "imports": "publishing needs no torch; verify and the CI smoke test imported it",
        "binaries": "the build's verify and release-check read the binaries; publish reads the metadata",
        "tags": "pip matches a file's tags to the user's machine; the build's verify and release-check matched them to the record",
    },
}


def run_chain(stage: str, subject: Subject) -> list[Check]:
    """The checks of ``stage`` on one wheel, in CHAIN's order (the wheel is unpacked under
    ``subject.work``, or a temporary folder, when a link reads its files)."""
    links = [link for link in CHAIN if link.name not in LEFT_OUT[stage]]
    checks: list[Check] = []
    with tempfile.TemporaryDirectory(prefix="wf-chain-", dir=subject.work) as tmp:
        for link in links:
            if link.reads_files and subject.unpacked is None:
                subject.unpacked = label.unpack(subject.wheel.path, Path(tmp) / "u")
            checks += link.run(subject)
    return checks


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
    work.mkdir(parents=True, exist_ok=True)
    cuobjdump = None
    try:
        cuobjdump = find_cuobjdump(build_env.torch_paths() if build_env else ())
    except ToolMissingError as e:
        checks.append(Check(name="SASS targets", ok=False, detail=str(e)))
    subject = Subject(
        wheel=read, expect=expect, cuobjdump=cuobjdump, build_env=build_env, stub_dir=stub_dir,
        work=work,
    )  # fmt: skip
    checks += run_chain("verify", subject)
    return VerifyReport(
        wheel=wheel.name, checks=tuple(checks), sass=subject.sass, imports=tuple(subject.imports)
    )
