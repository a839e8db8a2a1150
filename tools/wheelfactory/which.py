"""Which wheel fits this machine? Print the one install command, or say plainly why none does.

Runs two ways, so it must stay standard-library only (no wheelfactory or third-party
imports at module level):

- ``wheelfactory which [PACKAGE] [--index-url ROOT] [--json]`` inside the user's Python;
- ``python which.py [PACKAGE]``: the index renderer (wheelfactory.landing) copies this
  file verbatim to ``<root>/which.py`` and fills in ``INDEX_ROOT`` below. ComfyUI portable
  users run it as ``python_embeded\\python.exe which.py``: the portable layout is detected
  only from the Python that runs this file (``--layout portable`` says so from elsewhere).

``--os/--gpu/--torch/--cuda/--python/--layout`` describe another machine: the detected
values are only their defaults (``with_setup``).

Detection (``detect() -> Machine``) is kept apart from the decision
(``advise(machine, package, manifest_files) -> Advice``), which is a pure function of its
arguments so that tests can feed it any machine.

The label scheme and views mirror wheelfactory/naming.py (``+cu130torch2.14``, strict
view ``cu130/torch2.14/simple/``); the GPU target rule mirrors wheelfactory/arch.py.
tests/unit/test_which.py checks both copies agree on a table of cases, and
tests/unit/test_view_path.py the view path. gpucheck uses this file as a library through
the names in ``__all__`` only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

# The index renderer replaces this line with the index's root URL (keep it on one line).
INDEX_ROOT = None  # wheelfactory:index-root

ENV_INDEX_URL = "WHEELFACTORY_INDEX_URL"
PYTORCH_INDEX = "https://download.pytorch.org/whl"
# The CUDA build of torch to suggest when nothing better is known (PyPI's default build
# of recent torch releases).
DEFAULT_TORCH_CUDA = "13.0"
SCHEMA_VERSION = 1
# manifest.json is read whole: a cap on its size and on the whole read (connect, headers,
# body), so that a slow or endless answer cannot hold the command (issue 25).
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
MANIFEST_DEADLINE_S = 30.0

# The public API (gpucheck and landing use these; the rest may change).
__all__ = [
    "PORTABLE_PYTHON", "PYTORCH_INDEX", "Advice", "Gpu", "Machine", "SetupError", "Target",
    "WheelInfo", "advise", "canonical_name", "cuda_tag", "detect", "fetch_manifest",
    "host_platform", "install_commands", "parse_gpu", "parse_wheel", "platform_fits",
    "printable", "python_command", "python_fits", "targets_run_on", "torch_fits",
    "torch_minor", "view_path", "with_setup",
]

# Frozen, keyword-only dataclasses where the Python has kw_only (3.10+); this file must
# also run under the older Pythons that users still have.
_DC = {"frozen": True, "kw_only": True} if sys.version_info >= (3, 10) else {"frozen": True}

_LABEL_RE = re.compile(r"^cu(\d+)(\d)torch(?:(\d+)\.(\d+)|(abi))$")
# Only the characters a wheel filename may hold: a name carrying a newline or an escape
# sequence is not a wheel (and must never reach the terminal as it is).
_WHEEL_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9._]+)-(?P<version>[A-Za-z0-9._+!]+)(?:-(?P<build>\d[A-Za-z0-9._]*))?"
    r"-(?P<py>[A-Za-z0-9._]+)-(?P<abi>[A-Za-z0-9._]+)-(?P<plat>[A-Za-z0-9._]+)\.whl\Z"
)
_TARGET_RE = re.compile(r"^(?:sm_)?(\d+)\.?(\d)([af]?)(\+PTX)?$", re.IGNORECASE)
_MANYLINUX_RE = re.compile(r"^manylinux_(\d+)_(\d+)_(.+)$")
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


# --------------------------------------------------------------------------- the rules


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: "SageAttention_3" -> "sageattention-3"."""
    return re.sub(r"[-_.]+", "-", name).lower()


def cuda_tag(cuda: str) -> str:
    """"13.0" -> "cu130" (as naming.cuda_tag)."""
    major, minor = cuda.split(".")[:2]
    return f"cu{int(major)}{int(minor)}"


def torch_minor(version: str) -> str:
    """"2.14.1+cu130" -> "2.14"."""
    m = re.match(r"^(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"{version!r} is not a torch version like 2.14.1")
    return f"{m.group(1)}.{m.group(2)}"


def _vtuple(text: str) -> tuple[int, ...]:
    """"2.14.1+cu130" -> (2, 14, 1); "2.9" -> (2, 9)."""
    return tuple(int(p) for p in re.findall(r"\d+", text.split("+")[0])[:3])


def view_path(cuda: str, torch: str | None = None) -> str:
    """The copy of naming.view_path: strict "cu130/torch2.14", stable-ABI "cu130/torchabi"
    (torch "abi"), per-CUDA "cu130" (torch None). tests/unit/test_view_path.py compares."""
    if torch is None:
        return cuda_tag(cuda)
    return f"{cuda_tag(cuda)}/torch{torch_minor(torch) if torch != 'abi' else 'abi'}"


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on (newlines, escape sequences,
    bidi controls) written as its Python escape, so that data never makes fake lines."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))


@dataclass(**_DC)
class Target:
    """One GPU target of a wheel: "9.0a", "12.0f", "8.9+PTX" (the rule of arch.GpuTarget)."""

    major: int
    minor: int
    suffix: str = ""  # "", "a" (this exact GPU only) or "f" (the family, same major)
    ptx: bool = False

    @classmethod
    def parse(cls, text: str) -> Target:
        m = _TARGET_RE.match(text.strip())
        if not m:
            raise ValueError(f"GPU target {text!r} is not of the form 9.0, 9.0a, 12.0f or 8.9+PTX")
        return cls(
            major=int(m.group(1)),
            minor=int(m.group(2)),
            suffix=m.group(3).lower(),
            ptx=m.group(4) is not None,
        )

    @property
    def sm(self) -> str:
        return f"sm_{self.major}{self.minor}{self.suffix}"

    def runs_on(self, capability: tuple[int, int]) -> bool:
        """SASS that fits the GPU, or PTX the driver can JIT-compile for a newer GPU."""
        if self.suffix == "a":
            sass = capability == (self.major, self.minor)
        else:  # "f" and plain SASS run on the same major at an equal or higher minor
            sass = capability[0] == self.major and capability[1] >= self.minor
        return sass or (self.ptx and capability >= (self.major, self.minor))


def targets_run_on(targets: list[str] | tuple[str, ...], capability: tuple[int, int]) -> bool:
    return any(Target.parse(t).runs_on(capability) for t in targets)


def sm_name(capability: tuple[int, int]) -> str:
    return f"sm_{capability[0]}{capability[1]}"


@dataclass(**_DC)
class WheelInfo:
    """What a wheel filename says (the fields of naming.WheelLabel that advice needs)."""

    filename: str
    project: str
    version: str
    public_version: str
    cuda: str | None
    torch: str | None  # "2.14", "abi" or None
    python_tags: tuple[str, ...]
    abi_tags: tuple[str, ...]
    platform_tags: tuple[str, ...]


def parse_wheel(filename: str) -> WheelInfo:
    m = _WHEEL_RE.match(filename)
    if not m:
        raise ValueError(f"{filename!r} is not a wheel filename (name-version-py-abi-platform.whl)")
    version = m.group("version")
    public, _, local = version.partition("+")
    cuda = torch = None
    lm = _LABEL_RE.match(local) if local else None
    if lm:
        cuda = f"{lm.group(1)}.{lm.group(2)}"
        torch = "abi" if lm.group(5) else f"{lm.group(3)}.{lm.group(4)}"
    return WheelInfo(
        filename=filename,
        project=canonical_name(m.group("name")),
        version=version,
        public_version=public,
        cuda=cuda,
        torch=torch,
        python_tags=tuple(sorted(set(m.group("py").split(".")))),
        abi_tags=tuple(sorted(set(m.group("abi").split(".")))),
        platform_tags=tuple(sorted(set(m.group("plat").split(".")))),
    )


# --------------------------------------------------------------------------- the machine


@dataclass(**_DC)
class Gpu:
    name: str
    capability: tuple[int, int]


@dataclass(**_DC)
class Machine:
    """Everything about this computer that decides which wheel fits."""

    os: str  # "linux", "windows", "macos", or platform.system().lower()
    arch: str  # "x86_64", "aarch64", "arm64"
    python: str  # "3.12"
    implementation: str = "cpython"
    free_threaded: bool = False
    glibc: str | None = None  # "2.36" on glibc Linux
    torch: str | None = None  # torch.__version__, None when torch is not importable
    torch_cuda: str | None = None  # torch.version.cuda, None for CPU/ROCm builds
    torch_hip: str | None = None
    torch_error: str | None = None  # why import torch failed, when it is installed but broken
    gpus: tuple[Gpu, ...] = ()
    gpu_source: str = "none"  # "torch", "nvidia-smi", "none", or "given" (--gpu)
    executable: str = ""
    portable: bool = False  # ComfyUI portable's python_embeded\python.exe (python_command)

    @property
    def python_label(self) -> str:
        return self.python + ("t" if self.free_threaded else "")

    def describe(self) -> str:
        osname = {"linux": "Linux", "windows": "Windows", "macos": "macOS"}.get(self.os, self.os)
        python = f"Python {self.python_label}" + (" (ComfyUI portable)" if self.portable else "")
        parts = [f"{osname} {self.arch}", python]
        parts.append(f"torch {self.torch}" if self.torch else "no torch")
        if self.torch and self.torch_cuda:
            parts.append(f"CUDA {self.torch_cuda}")
        for gpu in self.gpus:
            parts.append(f"{gpu.name} ({sm_name(gpu.capability)})")
        return ", ".join(parts)


def _normalise_arch(machine: str) -> str:
    m = machine.lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(m, m)


def _parse_nvidia_smi(text: str) -> tuple[Gpu, ...]:
    """Lines of ``nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader``."""
    gpus = []
    for line in text.splitlines():
        name, _, cap = line.rpartition(",")
        m = re.match(r"^\s*(\d+)\.(\d+)\s*$", cap)
        if name.strip() and m:
            gpus.append(Gpu(name=name.strip(), capability=(int(m.group(1)), int(m.group(2)))))
    return tuple(gpus)


def _detect_gpus_nvidia_smi() -> tuple[Gpu, ...]:
    # This file may not import wheelfactory._proc (it runs without wheelfactory
    # installed); this is the one subprocess it starts.
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    return _parse_nvidia_smi(out.stdout) if out.returncode == 0 else ()


def host_platform() -> tuple[str, str]:
    """(os, arch) of this computer, as Machine spells them: ("linux", "x86_64")."""
    system = platform.system().lower()
    return {"darwin": "macos"}.get(system, system), _normalise_arch(platform.machine())


def detect() -> Machine:
    """Inspect this Python, its torch and the GPUs."""
    osname, arch = host_platform()
    glibc = None
    if osname == "linux":
        lib, ver = platform.libc_ver()
        glibc = ver if lib == "glibc" and ver else None
    torch_version = torch_cuda = torch_hip = torch_error = None
    gpus: tuple[Gpu, ...] = ()
    source = "none"
    try:
        import torch  # noqa: PLC0415 - optional, and heavy
    except ImportError as e:
        if getattr(e, "name", None) != "torch":  # installed but broken (DLL load failed...)
            torch_error = str(e).splitlines()[0] if str(e) else type(e).__name__
    else:
        torch_version = str(torch.__version__)
        torch_cuda = getattr(torch.version, "cuda", None)
        torch_hip = getattr(torch.version, "hip", None)
        try:
            if torch_cuda and torch.cuda.is_available():
                gpus = tuple(
                    Gpu(
                        name=torch.cuda.get_device_name(i),
                        capability=tuple(torch.cuda.get_device_capability(i)),  # type: ignore[arg-type]
                    )
                    for i in range(torch.cuda.device_count())
                )
                source = "torch"
        except Exception:  # a broken driver must not stop the advice
            gpus = ()
    if not gpus and osname != "macos":
        gpus = _detect_gpus_nvidia_smi()
        source = "nvidia-smi" if gpus else "none"
    return Machine(
        os=osname,
        arch=arch,
        python=f"{sys.version_info[0]}.{sys.version_info[1]}",
        implementation=sys.implementation.name,
        free_threaded=bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        glibc=glibc,
        torch=torch_version,
        torch_cuda=torch_cuda,
        torch_hip=torch_hip,
        torch_error=torch_error,
        gpus=gpus,
        gpu_source=source,
        executable=sys.executable,
        portable=python_command(sys.executable, osname) == PORTABLE_PYTHON,
    )


# --------------------------------------------------------------------------- another machine

# The GPUs of resources/gpus.toml (key, name, capability), copied because this file runs
# alone; tests/unit/test_which.py checks the copy. A product name matches a row by its key,
# a " / " part of its name ("H200"), or a model number in its range ("RTX 5090" is in
# "GeForce RTX 50 series (5060 - 5090)").
GPUS = (
    ("rtx30", "GeForce RTX 30 series (3050 - 3090 Ti)", "8.6"),
    ("rtx40", "GeForce RTX 40 series (4060 - 4090)", "8.9"),
    ("rtx50", "GeForce RTX 50 series (5060 - 5090)", "12.0"),
    ("rtx-pro-blackwell", "RTX PRO Blackwell (RTX PRO 4000 - 6000)", "12.0"),
    ("a100", "A100", "8.0"),
    ("h100", "H100 / H200 / GH200", "9.0"),
    ("b200", "B200 / GB200", "10.0"),
    ("b300", "B300 / GB300", "10.3"),
    ("gb10", "GB10 / DGX Spark", "12.1"),
)
_CAPABILITY_RE = re.compile(r"^(?:sm_?)?(\d+)\.(\d)$", re.IGNORECASE)
_MODEL_RE = re.compile(r"^(.*?)\s*(\d{4})(?:\s*ti)?$")


class SetupError(ValueError):
    """A --os/--gpu/--torch/--cuda/--python/--layout value that describes no machine."""


def _gpu_words(text: str) -> str:
    """"NVIDIA GeForce RTX 5090" -> "rtx 5090": the words that tell GPUs apart."""
    words = re.sub(r"[\s_-]+", " ", text.lower()).split()
    return " ".join(w for w in words if w not in ("nvidia", "geforce"))


def _gpu_matches(words: str, key: str, name: str) -> bool:
    family, _, span = name.partition("(")
    if words in (key, _gpu_words(family), *(_gpu_words(p) for p in family.split("/"))):
        return True
    lo, sep, hi = span.rstrip(")").partition(" - ")
    want, lo_m, hi_m = _MODEL_RE.match(words), _MODEL_RE.match(_gpu_words(lo)), \
        _MODEL_RE.match(_gpu_words(hi))
    if not (sep and want and lo_m and hi_m):
        return False
    # the model's prefix: the range's own ("rtx pro 4000"), else the family's first word
    prefix = lo_m.group(1) or _gpu_words(family).split()[0]
    return want.group(1) == prefix and int(lo_m.group(2)) <= int(want.group(2)) <= int(hi_m.group(2))


def parse_gpu(text: str) -> Gpu:
    """--gpu: a product name ("RTX 5090", "H200", "rtx50") or a compute capability ("12.0")."""
    m = _CAPABILITY_RE.match(text.strip())
    if m:
        return Gpu(name=f"compute capability {m.group(1)}.{m.group(2)}",
                   capability=(int(m.group(1)), int(m.group(2))))
    words = _gpu_words(text)
    for key, name, capability in GPUS:
        if words and _gpu_matches(words, key, name):
            major, minor = capability.split(".")
            return Gpu(name=text.strip(), capability=(int(major), int(minor)))
    known = "; ".join(name for _, name, _ in GPUS)
    raise SetupError(f"--gpu {printable(text)!r} is not a GPU this knows ({known}): "
                     "pass its compute capability instead, like --gpu 12.0")


_TORCH_RE = re.compile(r"^(\d+\.\d+(?:\.\d+)?(?:(?:a|b|rc|\.dev)\d+)?)(?:\+(cu\d+\d|cpu))?$")


def with_setup(machine: Machine, *, os_name: str | None = None, gpu: str | None = None,
               torch: str | None = None, cuda: str | None = None, python: str | None = None,
               layout: str | None = None) -> Machine:
    """``machine`` with the parts given replaced: another machine described by its OS,
    GPU ("RTX 5090", "12.0", "none"), torch ("2.9.1+cu128", "2.9.1" with ``cuda``),
    Python ("3.12", "3.13t") and layout ("portable": ComfyUI portable, "plain")."""
    changes: dict = {}
    if cuda is not None and _cuda_tag_or_none(cuda) is None:
        raise SetupError(f"--cuda {printable(cuda)!r} is not a CUDA version like 12.8 or 13.0")
    if os_name is not None:
        if os_name not in ("linux", "windows"):
            raise SetupError(f"--os {printable(os_name)!r} is not covered: choose linux or windows")
        changes.update(os=os_name, glibc=machine.glibc if os_name == machine.os else None)
    if gpu is not None:
        gpus = () if gpu.strip().lower() == "none" else (parse_gpu(gpu),)
        changes.update(gpus=gpus, gpu_source="given")
    if torch is not None:
        m = _TORCH_RE.match(torch.strip())
        if not m:
            raise SetupError(f"--torch {printable(torch)!r} is not a torch version: "
                             "write it as torch.__version__ does, like 2.9.1+cu128")
        local = m.group(2)
        torch_cuda = cuda or (f"{local[2:-1]}.{local[-1]}" if local and local != "cpu" else None)
        if cuda and local and local != _cuda_tag_or_none(cuda):
            raise SetupError(f"--torch {torch} and --cuda {cuda} disagree: give one of them")
        if not cuda and not local:
            raise SetupError(f"--torch {torch} does not say its CUDA: write it as "
                             f"{torch}+cu128 or add --cuda 12.8")
        changes.update(torch=torch.strip(), torch_cuda=torch_cuda, torch_hip=None, torch_error=None)
    elif cuda is not None:
        if machine.torch is None:
            raise SetupError("--cuda needs --torch: this Python has no torch to take it from")
        changes.update(torch_cuda=cuda, torch_hip=None)
    if python is not None:
        m = re.match(r"^(3\.\d+)(t?)$", python.strip())
        if not m:
            raise SetupError(f"--python {printable(python)!r} is not a Python version like 3.12")
        changes.update(python=m.group(1), free_threaded=bool(m.group(2)),
                       implementation="cpython")
    if layout is not None:
        if layout == "portable" and changes.get("os", machine.os) != "windows":
            raise SetupError("--layout portable is ComfyUI's Windows build: add --os windows")
        # the layout given wins over the one read from this Python's path
        changes.update(portable=layout == "portable", executable="")
    return Machine(**{**asdict_shallow(machine), **changes})


def _cuda_tag_or_none(cuda: str) -> str | None:
    """"12.8" -> "cu128"; None when ``cuda`` is not a CUDA version."""
    return cuda_tag(cuda) if re.match(r"^\d+\.\d$", cuda.strip()) else None


# --------------------------------------------------------------------------- compatibility


def python_fits(info: WheelInfo, machine: Machine) -> bool:
    """Whether the wheel's Python and ABI tags load in this interpreter."""
    if machine.implementation != "cpython":
        return any(t.startswith("py3") for t in info.python_tags) and "none" in info.abi_tags
    ver = _vtuple(machine.python)
    cp = f"cp{ver[0]}{ver[1]}"
    abi = cp + ("t" if machine.free_threaded else "")
    for py in info.python_tags:
        for a in info.abi_tags:
            if py == cp and a == abi:
                return True
            if a == "abi3" and not machine.free_threaded and py.startswith("cp3"):
                if ver >= (3, int(py[3:] or 0)):
                    return True
            if a == "none" and py in (cp, "py3", f"py{ver[0]}{ver[1]}"):
                return True
    return False


def platform_fits(info: WheelInfo, machine: Machine, *, check_glibc: bool = True) -> bool:
    """Whether a platform tag fits this OS and CPU (and, for manylinux_2_X, this glibc)."""
    for tag in info.platform_tags:
        if tag == "any":
            return True
        if machine.os == "windows":
            if (tag == "win_amd64" and machine.arch == "x86_64") or (
                tag == "win_arm64" and machine.arch == "aarch64"
            ):
                return True
            continue
        if machine.os != "linux":
            continue
        if tag == f"linux_{machine.arch}":
            return True
        m = _MANYLINUX_RE.match(tag)
        need = None
        if m and m.group(3) == machine.arch:
            need = (int(m.group(1)), int(m.group(2)))
        else:
            legacy, _, rest = tag.partition("_")
            if legacy in _LEGACY_MANYLINUX and rest == machine.arch:
                need = _LEGACY_MANYLINUX[legacy]
        if need is not None and (not check_glibc or machine.glibc is None
                                 or _vtuple(machine.glibc) >= need):
            return True
    return False


def _platform_label(info: WheelInfo) -> str:
    tags = " ".join(info.platform_tags)
    if "win" in tags:
        return "Windows"
    if "aarch64" in tags:
        return "Linux aarch64"
    if "x86_64" in tags:
        return "Linux x86_64"
    return tags


def _python_label(info: WheelInfo) -> str:
    labels = []
    for py in info.python_tags:
        if not py.startswith("cp"):
            labels.append(py)
            continue
        base = f"{py[2]}.{py[3:]}"
        for a in info.abi_tags:
            labels.append(base + "+" if a == "abi3" else base + ("t" if a.endswith("t") else ""))
    return "/".join(sorted(set(labels)))


# --------------------------------------------------------------------------- the advice


@dataclass(**_DC)
class Advice:
    """What to run, or why nothing fits and what comes nearest."""

    package: str
    ok: bool  # True: ``command`` installs a wheel that fits this machine
    machine: str  # one-line description of the machine
    command: str | None = None  # pip form
    uv_command: str | None = None
    index_url: str | None = None  # the strict view the command uses
    wheel: str | None = None  # the filename that will be installed, when known
    problems: tuple[str, ...] = ()  # sentences: what is not covered and what to do
    notes: tuple[str, ...] = ()  # caveats that do not stop the command
    nearest: str | None = None  # the nearest covered setup, when this one is not
    # when this package is not offered here: the command of another package of the index
    # that is (sageattention where sageattn3 needs another GPU, torch or CUDA)
    instead: str | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["version"] = SCHEMA_VERSION
        return data

    def render(self) -> str:
        """The advice as text; every line printable (file names come from the index)."""
        lines = [f"Your setup: {self.machine}"]
        lines += [f"PROBLEM: {p}" for p in self.problems]
        if self.command:
            lines.append("Install with pip:" if self.ok else "Nearest install command (pip):")
            lines.append(f"  {self.command}")
            if self.uv_command:
                lines.append("or with uv:")
                lines.append(f"  {self.uv_command}")
        if self.wheel:
            lines.append(f"Wheel: {self.wheel}")
        if self.instead:
            lines.append("This works on this machine instead:")
            lines.append(f"  {self.instead}")
        lines += [f"NOTE: {n}" for n in self.notes]
        return "\n".join(printable(line) for line in lines)


def _get(item: object, key: str, default: object = None) -> object:
    """Read a manifest entry that is a dict (manifest.json) or a PublishedFile."""
    if isinstance(item, dict):
        return item.get(key, default)
    return getattr(item, key, default)


def _record(item: object) -> dict:
    rec = _get(item, "build_record")
    return dict(rec) if isinstance(rec, Mapping) else {}  # a dict, or a PublishedFile's


def _targets(item: object) -> list[str] | None:
    targets = _record(item).get("targets")
    return [str(t) for t in targets] if isinstance(targets, list) and targets else None


PORTABLE_PYTHON = "python_embeded\\python.exe"  # ComfyUI portable's folder, spelled so


def python_command(executable: str, os_name: str) -> str:
    """How a pasted command runs this Python: "python", or for ComfyUI's portable build on
    Windows (python_embeded\\python.exe beside a python3X._pth file: no venv, not on PATH)
    its path from the ComfyUI_windows_portable folder, where its own .bat files run it."""
    if os_name == "windows" and executable:
        folder = Path(executable).parent
        if folder.name.lower() == "python_embeded" and any(folder.glob("python3*._pth")):
            return PORTABLE_PYTHON
    return "python"


def install_commands(
    package: str, index_url: str, *, force: bool = False, python: str = "python"
) -> tuple[str, str]:
    """The pip and uv commands that install ``package`` from the strict view ``index_url``
    into ``python`` (python_command): `python -m pip` installs into the Python it names."""
    flag = "--force-reinstall " if force else ""
    pip = f"{python} -m pip install {flag}{package} --extra-index-url {index_url}"
    target = f"--python {python} " if python != "python" else ""
    uv = f"uv pip install {target}{flag}{package} --extra-index-url {index_url}"
    return pip, uv


def torch_install_command(torch: str | None, cuda: str, *, python: str = "python") -> str:
    """The command that installs a CUDA build of torch (minor ``torch``) from PyTorch's index.
    Double quotes: cmd.exe passes single quotes on to pip."""
    spec = f'"torch=={torch}.*"' if torch and torch != "abi" else "torch"
    return f"{python} -m pip install {spec} --index-url {PYTORCH_INDEX}/{cuda_tag(cuda)}"


def _gpu_misfits(targets: list[str] | None, machine: Machine) -> list[Gpu]:
    if targets is None:
        return []
    return [g for g in machine.gpus if not targets_run_on(targets, g.capability)]


def _needs_blackwell(targets: list[str]) -> bool:
    return all(Target.parse(t).major >= 10 and not Target.parse(t).ptx for t in targets)


def _sms(targets: list[str]) -> str:
    return "/".join(sorted({Target.parse(t).sm.rstrip("af") for t in targets}, key=_sm_key))


def _sm_key(sm: str) -> tuple[int, int]:
    digits = sm[3:]
    return (int(digits[:-1]), int(digits[-1]))


def torch_fits(info: WheelInfo, torch: str, *, floor: object = None) -> bool:
    """Whether a wheel loads in ``torch`` ("2.14.1+cu130"): a per-torch wheel at its torch
    minor, a stable-ABI one at its ``floor`` (the build record's) or any later torch (any
    torch when the floor is unknown)."""
    if info.torch == "abi":
        return floor is None or _vtuple(torch) >= _vtuple(str(floor))
    return info.torch == torch_minor(torch)


def _torch_fits(info: WheelInfo, item: object, machine_torch: str) -> bool:
    return torch_fits(info, machine_torch, floor=_record(item).get("stable_abi_floor"))


def _offered(item: object) -> bool:
    """Whether a manifest entry may be advised: not yanked, and not held out of every view
    by the GPU gate (its view does not list it, so pip would not find it)."""
    return not _get(item, "yanked") and not _get(item, "held")


def _wheels_in(manifest_files: list | tuple) -> tuple[list[tuple[WheelInfo, object]], list[str]]:
    """(the parsed wheels the index offers, the names that are not wheel filenames)."""
    wheels, bad = [], []
    for item in manifest_files:
        name = str(_get(item, "filename", ""))
        try:
            info = parse_wheel(name)
        except ValueError:
            bad.append(name)
            continue
        if _offered(item):
            wheels.append((info, item))
    return wheels, bad


def _skipped_note(bad: list[str]) -> str:
    shown = ", ".join(printable(repr(n)) for n in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return (f"skipped {len(bad)} manifest entries that are not wheel filenames ({shown}{more}): "
            "tell the index's maintainer")


def _layout_note(machine: Machine, py: str) -> str | None:
    """Which Python the commands are for, where ComfyUI portable is possible (Windows)."""
    if machine.os != "windows":
        return None
    if py == PORTABLE_PYTHON:
        return ("the commands are for ComfyUI portable's Python: run them in the "
                "ComfyUI_windows_portable folder")
    return ("ComfyUI portable? Run this as python_embeded\\python.exe which.py in the "
            "ComfyUI_windows_portable folder (or add --layout portable) to get commands "
            "for its Python")


def advise(
    machine: Machine,
    package: str,
    manifest_files: list | tuple | None,
    *,
    index_root: str | None = None,
) -> Advice:
    """Decide what ``machine`` should install for ``package``.

    ``manifest_files``: the index's published files (dicts from manifest.json or
    manifest.PublishedFile objects); None when the manifest could not be read, in which
    case the command is built from the machine alone and a note says coverage is unknown.
    When ``package`` is not offered here, ``instead`` is the command of the first other
    package of the index that is.
    """
    advice = _advise_one(machine, package, manifest_files, index_root)
    if advice.ok or not manifest_files:
        return advice
    projects = sorted({info.project for info, _ in _wheels_in(manifest_files)[0]} - {advice.package})
    for other in projects:
        alt = _advise_one(machine, other, manifest_files, index_root)
        if alt.ok and alt.command:
            return Advice(**{**asdict(advice), "instead": alt.command})
    return advice


def _advise_one(machine: Machine, package: str, manifest_files: list | tuple | None,
                index_root: str | None) -> Advice:
    """advise() for one package, without looking at the index's other packages."""
    pkg = canonical_name(package)
    py = PORTABLE_PYTHON if machine.portable else python_command(machine.executable, machine.os)
    root = (index_root or "<INDEX_ROOT>").rstrip("/")
    desc = machine.describe()
    notes: list[str] = []
    layout_note = _layout_note(machine, py)
    if layout_note:
        notes.append(layout_note)

    def fail(problem: str, *, nearest: str | None = None, command: str | None = None,
             uv: str | None = None, url: str | None = None) -> Advice:
        return Advice(package=pkg, ok=False, machine=desc, problems=(problem,),
                      nearest=nearest, command=command, uv_command=uv, index_url=url,
                      notes=tuple(notes))

    files = None
    if manifest_files is not None:
        wheels, bad = _wheels_in(manifest_files)
        if bad:
            notes.append(_skipped_note(bad))
        files = [(info, item) for info, item in wheels if info.project == pkg and info.cuda]
        if not files:
            known = sorted({info.project for info, _ in wheels})
            return fail(f"this index has no wheels of {printable(repr(pkg))}: choose one of "
                        f"{', '.join(known) or '(none published yet)'}")

    # Setups no wheel can serve.
    if machine.os == "macos":
        return fail("macOS has no CUDA: these wheels need Linux or Windows with an NVIDIA GPU; "
                    "run this on such a machine")
    if machine.os not in ("linux", "windows"):
        return fail(f"{machine.os} is not covered: these wheels are for Linux and Windows")
    if machine.implementation != "cpython":
        return fail(f"{machine.implementation} is not covered: use CPython "
                    "(torch extensions need it)")

    gpu_problem = _package_gpu_problem(pkg, files, machine, manifest_files or ())
    if gpu_problem:
        return fail(gpu_problem)

    best_cuda = _best_cuda(files, machine) or DEFAULT_TORCH_CUDA
    best_torch = _best_torch(files, machine, best_cuda)

    if machine.torch is None:
        why = (f"torch is installed but does not import ({machine.torch_error}): reinstall it"
               if machine.torch_error else "torch is not installed in this Python")
        return fail(f"{why}: install a CUDA build of torch first: "
                    f"{torch_install_command(best_torch, best_cuda, python=py)}, then run this again",
                    nearest=f"torch {best_torch or '(any)'} with CUDA {best_cuda}")
    if machine.torch_hip:
        fix = torch_install_command(torch_minor(machine.torch), best_cuda, python=py)
        return fail(f"torch {machine.torch} is a ROCm build: these wheels need an NVIDIA CUDA "
                    f"build of torch: {fix}")
    if not machine.torch_cuda:
        tminor = torch_minor(machine.torch)
        covered_cuda = _best_cuda(files, machine, only_torch=tminor)
        if files is None or covered_cuda:
            fix = torch_install_command(tminor, covered_cuda or best_cuda, python=py)
        else:
            fix = (f"torch {tminor} has no wheels here, the nearest covered is torch "
                   f"{best_torch}: {torch_install_command(best_torch, best_cuda, python=py)}")
        return fail(f"torch {machine.torch} has no CUDA: install a CUDA build of torch "
                    f"first: {fix}")

    if not machine.gpus:
        notes.append("no NVIDIA GPU found (torch.cuda and nvidia-smi): the wheel installs, "
                     "but its kernels need a GPU to run")

    url = f"{root}/{view_path(machine.torch_cuda, machine.torch)}/simple/"
    pip_cmd, uv_cmd = install_commands(pkg, url, python=py)

    if files is None:
        notes.append("could not read the index's manifest.json, so coverage of this setup "
                      "is not checked: if pip finds no wheel, run this again with network access")
        if index_root is None:
            notes.append("no index URL given: replace <INDEX_ROOT> or pass --index-url")
        return Advice(package=pkg, ok=True, machine=desc, command=pip_cmd, uv_command=uv_cmd,
                      index_url=url, notes=tuple(notes))

    # Wheels of this package for exactly this torch build (CUDA + torch minor).
    exact = [(i, it) for i, it in files
             if i.cuda == machine.torch_cuda and _torch_fits(i, it, machine.torch)]
    fitting = [(i, it) for i, it in exact if platform_fits(i, machine) and python_fits(i, machine)]
    if fitting:
        # as pip and uv choose (PEP 440): the highest public version, and on a tie the
        # local label, where +cu130torchabi sorts above +cu130torch2.14 ("a" > digits)
        fitting.sort(key=lambda p: (_vtuple(p[0].public_version), p[0].torch == "abi"))
        info, item = fitting[-1]
        # a stable-ABI wheel import-checked against this torch is listed in its strict view
        # (the user's command stays the same); else it is in the stable-ABI view
        covers = _get(item, "covers") or ()
        if info.torch == "abi" and torch_minor(machine.torch) not in covers:  # type: ignore[operator]
            url = f"{root}/{view_path(machine.torch_cuda, 'abi')}/simple/"
            pip_cmd, uv_cmd = install_commands(pkg, url, python=py)
        targets = _targets(item)
        misfits = _gpu_misfits(targets, machine)
        if misfits:
            problem = _targets_problem(pkg, targets or [], misfits[0],
                                       f"wheel for {view_path(machine.torch_cuda, machine.torch)}",
                                       _runs_on_elsewhere(pkg, manifest_files or (), misfits[0]))
            return fail(problem, command=pip_cmd, uv=uv_cmd, url=url)
        if targets is None:
            notes.append("the wheel's build record does not list its GPU targets: "
                         "the GPU was not checked")
        if not _get(item, "gpu_checks"):
            notes.append("not GPU-checked: no GPU check has run this wheel's kernels yet "
                         "(the index's landing page lists each wheel's checks)")
        return Advice(package=pkg, ok=True, machine=desc, command=pip_cmd, uv_command=uv_cmd,
                      index_url=url, wheel=info.filename, notes=tuple(notes))

    # Nothing fits: say which part of the setup is not covered, and what comes nearest.
    return _not_covered(pkg, machine, files, exact, root, fail, py)


def _targets_problem(pkg: str, targets: list[str], gpu: Gpu, what: str,
                     others: list[str] | None = None) -> str:
    """``others``: the index's other packages with a wheel that runs on ``gpu``."""
    if targets and _needs_blackwell(targets):
        instead = f"install {' or '.join(others)} instead" if others else "no package here runs on it"
        return (f"{pkg} needs a Blackwell GPU ({_sms(targets)}); this GPU ({gpu.name}) is "
                f"{sm_name(gpu.capability)}: {instead}")
    return (f"the {pkg} {what} carries kernels for {', '.join(targets)} only; this GPU "
            f"({gpu.name}) is {sm_name(gpu.capability)} and would fail with 'no kernel image "
            "is available': open an issue to ask for this GPU target")


def _runs_on_elsewhere(pkg: str, manifest_files: list | tuple, gpu: Gpu) -> list[str]:
    """The other packages of the index with a (listed) wheel that runs on ``gpu``."""
    found = set()
    for info, item in _wheels_in(manifest_files)[0]:
        targets = _targets(item)
        if targets and info.project != pkg and targets_run_on(targets, gpu.capability):
            found.add(info.project)
    return sorted(found)


def _package_gpu_problem(pkg: str, files: list | None, machine: Machine,
                         manifest_files: list | tuple = ()) -> str | None:
    """A sentence when no wheel of ``pkg`` (whatever torch or CUDA) runs on this GPU."""
    if not files or not machine.gpus:
        return None
    all_targets: set[str] = set()
    for _, item in files:
        targets = _targets(item)
        if targets is None:
            return None  # unknown targets: do not reject
        all_targets.update(targets)
    for gpu in machine.gpus:
        if not targets_run_on(sorted(all_targets), gpu.capability):
            return _targets_problem(pkg, sorted(all_targets, key=_target_key), gpu, "wheels",
                                    _runs_on_elsewhere(pkg, manifest_files, gpu))
    return None


def _target_key(text: str) -> tuple:
    t = Target.parse(text)
    return (t.major, t.minor, t.suffix, t.ptx)


def _compatible(info: WheelInfo, item: object, machine: Machine) -> bool:
    """Platform, Python and GPU fit (torch and CUDA may differ)."""
    return (platform_fits(info, machine) and python_fits(info, machine)
            and not _gpu_misfits(_targets(item), machine))


def _best_cuda(files: list | None, machine: Machine, *, only_torch: str | None = None
               ) -> str | None:
    """The CUDA of the newest covered torch that fits this platform/Python/GPU."""
    if not files:
        return None
    ok = [(i, it) for i, it in files if _compatible(i, it, machine) and i.torch != "abi"]
    if only_torch:
        ok = [p for p in ok if p[0].torch == only_torch]
    elif machine.torch:
        same = [p for p in ok if p[0].torch == torch_minor(machine.torch)]
        ok = same or ok
    if not ok:
        return None
    return max(ok, key=lambda p: (_vtuple(p[0].torch or "0"), _vtuple(p[0].cuda or "0")))[0].cuda


def _best_torch(files: list | None, machine: Machine, cuda: str) -> str | None:
    if not files:
        return None
    ok = [i.torch for i, it in files
          if i.cuda == cuda and i.torch != "abi" and _compatible(i, it, machine)]
    return max(ok, key=_vtuple) if ok else None


def _not_covered(pkg: str, machine: Machine, files: list, exact: list, root: str, fail,
                 py: str) -> Advice:
    assert machine.torch and machine.torch_cuda
    tminor = torch_minor(machine.torch)
    here = f"torch {tminor} (CUDA {machine.torch_cuda})"
    compatible = [(i, it) for i, it in files if _compatible(i, it, machine)]

    if exact:  # the torch build is covered, but not for this Python or platform
        plat_ok = [i for i, _ in exact if platform_fits(i, machine, check_glibc=False)]
        if not plat_ok:
            covered = ", ".join(sorted({_platform_label(i) for i, _ in exact}))
            osname = {"linux": "Linux", "windows": "Windows"}[machine.os]
            return fail(f"no {pkg} wheels for {osname} {machine.arch} with {here} yet "
                        f"(covered: {covered}): open an issue to ask for this platform")
        py_ok = [i for i in plat_ok if python_fits(i, machine)]
        if not py_ok:
            pys = ", ".join(sorted({_python_label(i) for i in plat_ok}, key=_vtuple))
            ft = " (free-threaded)" if machine.free_threaded else ""
            return fail(f"no {pkg} wheels for Python {machine.python_label}{ft} with {here} yet "
                        f"(covered Pythons: {pys}): use one of those Pythons in a new virtual "
                        "environment, or open an issue to ask for this one")
        glibc_need = sorted({t for i in py_ok for t in i.platform_tags})
        return fail(f"the {pkg} wheels for {here} need a newer glibc ({glibc_need[0]}) than "
                    f"this Linux has ({machine.glibc}): upgrade the OS, or open an issue to ask "
                    "for an older manylinux tag")
    if not compatible:
        return fail(f"no {pkg} wheels fit this platform, Python and GPU yet: open an issue "
                    "to ask for this setup")
    covered_torch = sorted({i.torch for i, _ in compatible if i.torch != "abi"}, key=_vtuple)
    if tminor in covered_torch:
        cudas = sorted({i.cuda for i, _ in compatible if i.torch == tminor}, key=_vtuple)
        what = (f"no {pkg} wheels for {here} (torch {tminor} is covered with CUDA "
                f"{', '.join(cudas)})")
    elif covered_torch and _vtuple(tminor) > _vtuple(covered_torch[-1]):
        what = f"no {pkg} wheels for torch {tminor} yet"
    else:
        what = f"no {pkg} wheels for torch {tminor}"
    # Nearest: same torch minor if covered (any CUDA, newest CUDA first), else the nearest
    # torch minor (a newer one first on ties), then the CUDA nearest to the user's.
    want_t, want_c = _vtuple(tminor), _vtuple(machine.torch_cuda)

    def distance(p: tuple) -> tuple:
        t = _vtuple(p[0].torch) if p[0].torch != "abi" else want_t
        c = _vtuple(p[0].cuda)
        return (abs(t[1] - want_t[1]) if t[0] == want_t[0] else 99, t < want_t,
                abs((c[0] - want_c[0]) * 10 + (c[1] - want_c[1])), c < want_c)

    info, _ = min(compatible, key=distance)
    near_torch = info.torch if info.torch != "abi" else tminor
    near_url = f"{root}/{view_path(info.cuda, info.torch)}/simple/"
    pip_cmd, uv_cmd = install_commands(pkg, near_url, python=py)
    nearest = f"torch {near_torch} with CUDA {info.cuda}"
    fix = (f"nearest is {nearest}: {torch_install_command(near_torch, info.cuda, python=py)}, "
           f"then: {pip_cmd}")
    return fail(f"{what}: {fix}", nearest=nearest, command=pip_cmd, uv=uv_cmd, url=near_url)


# --------------------------------------------------------------------------- the manifest


def fetch_manifest(index_root: str, *, timeout: float = 15.0,
                   deadline: float = MANIFEST_DEADLINE_S,
                   max_bytes: int = MAX_MANIFEST_BYTES) -> tuple[list | None, str | None]:
    """Read ``<root>/manifest.json``: (files, None), or (None, why not, one line) when it
    cannot be read, is over ``max_bytes``, or is not all read within ``deadline`` seconds.

    The read runs in a daemon thread that this waits for at most ``deadline`` seconds:
    socket timeouts bound each read, not the whole (a server sending a byte a second,
    in its headers or its body, passes every one of them)."""
    url = index_root.rstrip("/") + "/manifest.json"
    result: list = []
    reader = threading.Thread(
        target=lambda: result.append(_read_manifest(url, timeout, time.monotonic() + deadline,
                                                    max_bytes)),
        name="which-manifest", daemon=True)
    reader.start()
    reader.join(deadline)
    if not result:
        return None, printable(f"{url}: not read within {deadline:g} s (the server is too slow)")
    files, why = result[0]
    return files, (printable(why) if why else None)


def _read_manifest(url: str, timeout: float, until: float,
                   max_bytes: int) -> tuple[list | None, str | None]:
    body = bytearray()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - URL given by the user
            size = resp.headers.get("Content-Length")
            if size and size.isdigit() and int(size) > max_bytes:
                return None, f"{url} is {int(size)} bytes, over the {max_bytes}-byte cap"
            while chunk := resp.read1(65536):  # read1: returns what arrived, never waits to fill
                body += chunk
                if len(body) > max_bytes:
                    return None, f"{url} is over the {max_bytes}-byte cap"
                if time.monotonic() > until:
                    return None, f"{url}: not read within the deadline (the server is too slow)"
        data = json.loads(body.decode("utf-8"))
    except (OSError, ValueError, urllib.error.URLError) as e:
        return None, f"{url}: {e}"
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        return None, f"{url} has no 'files' list"
    return files, None


# --------------------------------------------------------------------------- the command


DESCRIPTION = "Print the command that installs the right prebuilt wheel for this machine."
# Said in --help: the portable layout is read from the Python that runs this file.
PORTABLE_HELP = (
    "ComfyUI portable (Windows): run this with its own Python, in the "
    "ComfyUI_windows_portable folder: python_embeded\\python.exe which.py; with any other "
    "Python the commands are for that Python, unless you add --layout portable."
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    # the wheelfactory CLI gives its own epilog (examples): say this after it
    parser.epilog = "\n\n".join(filter(None, [parser.epilog, textwrap.fill(PORTABLE_HELP, 88)]))
    parser.add_argument("package", nargs="?", default="sageattention",
                        help="package to install (default: sageattention; also: sageattn3)")
    parser.add_argument("--index-url", dest="index_url", default=None, metavar="ROOT",
                        help=f"index root URL (default: ${ENV_INDEX_URL}, or the index this "
                             "script was downloaded from)")
    parser.add_argument("--json", action="store_true", help="print the advice as JSON")
    parser.add_argument("--offline", action="store_true",
                        help="do not read the index's manifest.json")
    other = parser.add_argument_group(
        "another machine", "describe another machine; each defaults to what is detected here")
    other.add_argument("--os", dest="os_name", choices=("linux", "windows"), default=None,
                       help="its operating system")
    other.add_argument("--gpu", default=None, metavar="GPU",
                       help='its GPU: a product name as on the index page ("RTX 5090", '
                            '"H200") or a compute capability ("12.0"); "none" for no GPU')
    other.add_argument("--torch", default=None, metavar="VERSION",
                       help="its torch, as torch.__version__ says (2.9.1+cu128)")
    other.add_argument("--cuda", default=None, metavar="X.Y",
                       help="the CUDA of its torch (12.8), when --torch does not say it")
    other.add_argument("--python", dest="python_version", default=None, metavar="X.Y",
                       help="its Python (3.12; 3.13t for free-threaded)")
    other.add_argument("--layout", choices=("portable", "plain"), default=None,
                       help="portable: ComfyUI portable on Windows (commands run "
                            "python_embeded\\python.exe); plain: any other Python. "
                            "Default: read from the Python running this")


def run(args: argparse.Namespace) -> int:
    """Detect, fetch the manifest, advise, print. 0: a fitting wheel; 1: none fits.
    Raises SetupError for a --os/--gpu/... value that describes no machine."""
    root = args.index_url or os.environ.get(ENV_INDEX_URL) or INDEX_ROOT
    # the machine first: a --gpu/--torch/... mistake is said before any network wait
    machine = with_setup(
        detect(), os_name=args.os_name, gpu=args.gpu, torch=args.torch, cuda=args.cuda,
        python=args.python_version, layout=args.layout)
    files, why = (None, None)
    if root and not args.offline:
        files, why = fetch_manifest(root)
    advice = advise(machine, args.package, files, index_root=root)
    if why:
        advice = Advice(**{**asdict_shallow(advice),
                           "notes": (*advice.notes, f"manifest not read: {why}")})
    if args.json:
        print(json.dumps(advice.to_json(), indent=2, sort_keys=True))
    else:
        print(advice.render())
    return 0 if advice.ok else 1


def asdict_shallow(obj: object) -> dict:
    return {f: getattr(obj, f) for f in obj.__dataclass_fields__}  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="which.py", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    configure_parser(parser)
    try:
        return run(parser.parse_args(argv))
    except SetupError as e:
        print(f"which.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
