"""The environment a build runs with, as data: one rule for local and CI builds.

``build_changes`` is the rule: from the recipe, the cell (torch, CUDA, Python, targets,
platform) and where things are on the build host, it returns an ordered list of
``EnvChange`` (set, append, prepend). ``wheelfactory build`` applies the list to its own
environment (``apply``); ``wheelfactory cibw-env`` quotes the same list for
``CIBW_ENVIRONMENT`` (``cibw_words``), where cibuildwheel evaluates it on the build host.
Each side adds only what is about its own host (a local venv's PATH; CI's pip index).

Order: wheelfactory's settings, then the recipe's ``[build].env``, then its matching
``[[fix]]`` entries (``env`` sets, ``env-append`` appends with a space), so a recipe
can override what wheelfactory sets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from wheelfactory import arch
from wheelfactory.arch import GpuTarget
from wheelfactory.platforms import Platform
from wheelfactory.recipe import Recipe

How = Literal["set", "append", "prepend", "prepend-path"]

# The no-GPU shim (resources/gpu_shim_sitecustomize.py) answers only while this names a
# capability ("12.0").
GPU_SHIM_ENV = "WHEELFACTORY_GPU_SHIM_CAPABILITY"
NVCC_APPEND = "NVCC_APPEND_FLAGS"
# nvcc reads NVCC_APPEND_FLAGS itself and keeps the last --threads: this overrides a
# setup.py's hard-coded --threads=8, which would multiply MAX_JOBS (2 jobs x 2 extensions
# x 8 targets = 32 cicc processes on a 2-core builder, and swap-thrash). MAX_JOBS is then
# the one knob for how many device compiles run at once.
NVCC_ONE_THREAD = "--threads 1"
# A fixed hash seed: SageAttention's setup.py builds its -gencode list from a set, so with
# random seeds each run orders it differently, the nvcc command line changes, and ninja
# (which hashes it) recompiles every .cu on --resume.
STABLE_HASH_SEED = "0"


@dataclass(frozen=True)
class EnvChange:
    """One change to one variable: ``set`` replaces; ``append``/``prepend`` add a word
    after/before what is there (space-separated flags); ``prepend-path`` adds a folder in
    front of a path list (the platform's path separator)."""

    name: str
    value: str
    how: How = "set"


@dataclass(frozen=True, kw_only=True)
class BuildHost:
    """Where things are on the machine that compiles (a local folder, or CI's container)."""

    platform: Platform
    cuda_home: str | None  # None: leave CUDA_HOME alone (the Windows toolkit sets CUDA_PATH)
    driver_stubs: str | None  # a folder with a libcuda.so to link -lcuda against
    gpu_shim_dir: str | None  # holds the no-GPU shim as sitecustomize.py
    nvcc_filter: str | None  # the nvcc wrapper that source-targets and reproducible need
    real_nvcc: str  # what the wrapper hands over to
    # nvcc goes through the wrapper for every .cu file, which seeds it per file (Linux; the
    # host adds WHEELFACTORY_SOURCE_ROOT, build.reproducible_changes)
    reproducible: bool = False


def gpu_shim_capability(targets: Sequence[GpuTarget]) -> str:
    """What the no-GPU shim answers for get_device_capability(): the highest target."""
    highest = max(targets)
    return f"{highest.major}.{highest.minor}"


def nvcc_filter_settings(
    wrapper: str, real_nvcc: str, source_targets: Mapping[str, Sequence[GpuTarget]]
) -> list[EnvChange]:
    """PYTORCH_NVCC (read by torch's ninja build) -> the filter, and the filter's settings."""
    rules = {glob: [t.sm.removeprefix("sm_") for t in ts] for glob, ts in source_targets.items()}
    return [
        EnvChange("PYTORCH_NVCC", wrapper),
        EnvChange("WHEELFACTORY_NVCC_REAL", real_nvcc),
        EnvChange("WHEELFACTORY_SOURCE_TARGETS", json.dumps(rules, sort_keys=True)),
    ]


def arch_list(recipe: Recipe, targets: Sequence[GpuTarget]) -> str:
    """TORCH_CUDA_ARCH_LIST for the targets, in the form the recipe's setup.py reads."""
    if recipe.build.plain_arch_list:
        # setup.py matches "9.0" and adds the "a" itself; it skips "9.0a".
        return ";".join(t.arch.rstrip("af") + ("+PTX" if t.ptx else "") for t in targets)
    return arch.torch_arch_list(tuple(targets))


def build_changes(
    recipe: Recipe,
    *,
    torch: str,
    cuda: str,
    python: str,
    targets: Sequence[GpuTarget],
    jobs: int,
    host: BuildHost,
) -> list[EnvChange]:
    """The one rule: every variable wheelfactory, the recipe and its fixes set for a build."""
    plat = host.platform
    out = [
        EnvChange("TORCH_CUDA_ARCH_LIST", arch_list(recipe, targets)),
        EnvChange("MAX_JOBS", str(jobs)),
        # before the host's own NVCC_APPEND_FLAGS, so a --threads there still wins
        EnvChange(NVCC_APPEND, NVCC_ONE_THREAD, "prepend"),
        EnvChange("PYTHONHASHSEED", STABLE_HASH_SEED),
    ]
    mode = compress_mode(recipe, cuda)
    if mode is not None:
        out.append(EnvChange(NVCC_APPEND, f"--compress-mode={mode}", "append"))
    if host.cuda_home:
        out.append(EnvChange("CUDA_HOME", host.cuda_home))
    if plat.is_windows:
        out.append(EnvChange("DISTUTILS_USE_SDK", "1"))  # the MSVC environment CI set up
        if recipe.build.msvc_flags:
            # cl.exe reads extra options from CL; nvcc's host compiler is cl.exe too.
            out.append(EnvChange("CL", " ".join(recipe.build.msvc_flags)))
    if recipe.build.links_driver and host.driver_stubs:
        # For linking only: LD_LIBRARY_PATH is left alone so nothing loads the stub.
        out.append(EnvChange("LIBRARY_PATH", host.driver_stubs, "prepend-path"))
    if recipe.build.no_gpu_shim and host.gpu_shim_dir:
        out.append(EnvChange("PYTHONPATH", host.gpu_shim_dir, "prepend-path"))
        out.append(EnvChange(GPU_SHIM_ENV, gpu_shim_capability(targets)))
    if (recipe.build.source_targets or host.reproducible) and host.nvcc_filter:
        out += nvcc_filter_settings(host.nvcc_filter, host.real_nvcc, recipe.build.source_targets)
    out += [EnvChange(name, value) for name, value in recipe.build.env.items()]
    for fix in recipe.fixes_for(torch=torch, cuda=cuda, python=python, os=plat.os):
        out += [EnvChange(name, value) for name, value in fix.env.items()]
        out += [EnvChange(name, value, "append") for name, value in fix.env_append.items()]
    return out


def compress_mode(recipe: Recipe, cuda: str) -> str | None:
    """The nvcc --compress-mode of a build: the recipe's, else the CUDA version's default."""
    if recipe.build.compress == "auto":
        return arch.default_compress_mode(cuda)
    if recipe.build.compress == "off":
        return None
    return recipe.build.compress


def _joined(how: How, value: str, prev: str, pathsep: str) -> str:
    if how == "set" or not prev:
        return value
    if how == "append":
        return f"{prev} {value}"
    sep = pathsep if how == "prepend-path" else " "
    return f"{value}{sep}{prev}"


def apply(
    base: Mapping[str, str], changes: Iterable[EnvChange], *, pathsep: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(the environment, the variables the changes set) after applying ``changes`` to ``base``."""
    env = dict(base)
    applied: dict[str, str] = {}
    for c in changes:
        env[c.name] = applied[c.name] = _joined(c.how, c.value, env.get(c.name, ""), pathsep)
    return env, applied


def _escape(value: str) -> str:
    """``value`` for use inside a double-quoted word (no expansion)."""
    for char in ("\\", '"', "$", "`"):
        value = value.replace(char, "\\" + char)
    return value


def quote(value: str) -> str:
    """A literal as one double-quoted word of CIBW_ENVIRONMENT (no expansion)."""
    return f'"{_escape(value)}"'


def cibw_words(changes: Iterable[EnvChange], *, pathsep: str) -> dict[str, str]:
    """NAME -> one double-quoted word for CIBW_ENVIRONMENT, evaluated on the build host.

    The changes to one variable fold into one word; what the host had is ``$NAME``
    (cibuildwheel's parser expands it; it has no ``${X:+...}``, and an empty entry in a path
    list is ignored)."""
    words: dict[str, str] = {}
    for c in changes:
        inherited = c.name not in words  # the word so far is just what the host had
        prev = words.get(c.name, f"${c.name}")
        value = _escape(c.value)
        sep = pathsep if c.how == "prepend-path" else " "
        if c.how == "set":
            words[c.name] = value
        elif not inherited:
            words[c.name] = f"{prev} {value}" if c.how == "append" else f"{value}{sep}{prev}"
        # "$X value" or "dir:$X" with X unset would leave a stray separator, and an empty
        # path entry is the current folder to Python (PYTHONPATH) and the linker
        # (LIBRARY_PATH): join with the host's value only when it has one.
        else:
            words[c.name] = _joined_on_host(c.name, sep, value, after=c.how == "append")
    return {name: f'"{word}"' for name, word in words.items()}


# Run by cibuildwheel on the build host (as an argv, no shell): the host's $NAME and a value
# joined by a separator, or the value alone when $NAME is unset.
_JOIN = (
    "import os,sys;n,s,x,a=sys.argv[1:];v=os.environ.get(n,'');"
    "print(s.join(p for p in ((v,x) if a=='1' else (x,v)) if p))"
)


def _joined_on_host(name: str, sep: str, value: str, *, after: bool) -> str:
    return f'$(python -c "{_JOIN}" {name} "{sep}" "{value}" {int(after)})'
