"""nvcc, minus the -gencode entries a source file cannot compile for, and seeded per
source file so that a rebuild gives the same object (stdlib only).

Some setup.py files pass every target to every CUDA file: SageAttention compiles its
Hopper-only wgmma kernels for sm_120a too, and ptxas fails ("wgmma.fence not supported on
.target sm_120a"). A recipe's ``[build] source-targets`` names such files and the targets
each may build; wheelfactory points torch's ninja build at this script (PYTORCH_NVCC) with

  WHEELFACTORY_NVCC_REAL        the real nvcc
  WHEELFACTORY_SOURCE_TARGETS   JSON {"glob on the source path": ["90a", ...]}

and it drops the other ``-gencode`` entries for a matching file, then runs the real nvcc.
Files that match no glob, or that would be left with no target, compile unchanged.

With ``WHEELFACTORY_SOURCE_ROOT`` (the source tree) set, each compile of a .cu file also
gets the flags that make its object a function of its inputs alone (``reproducible_flags``):
nvcc otherwise names symbols after a random number and the file's absolute path, so two
builds, or two folders, give different bytes. setup.py passes the same flags to every
file, so the per-file seed can only be added here, where each compile is seen.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sys

_COMPUTE_RE = re.compile(r"arch=compute_(\w+)")


def _source(argv: list[str]) -> str | None:
    """The .cu file nvcc compiles (the argument after -c, else the first *.cu)."""
    for i, arg in enumerate(argv[:-1]):
        if arg == "-c" and argv[i + 1].endswith(".cu"):
            return argv[i + 1]
    return next((a for a in argv if a.endswith(".cu")), None)


def _matches(path: str, pattern: str) -> bool:
    path = path.replace("\\", "/")
    return fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, "*/" + pattern)


def filter_gencode(argv: list[str], rules: dict[str, list[str]]) -> list[str]:
    """``argv`` without the -gencode entries whose compute arch the matching rule leaves out."""
    source = _source(argv)
    allowed = {
        a for pattern, archs in rules.items() if source and _matches(source, pattern) for a in archs
    }
    if not allowed:
        return argv
    kept: list[str] = []
    any_gencode_kept = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-gencode", "--generate-code") and i + 1 < len(argv):
            value, step = argv[i + 1], 2
        elif arg.startswith(("-gencode=", "--generate-code=")):
            value, step = arg.split("=", 1)[1], 1
        else:
            kept.append(arg)
            i += 1
            continue
        m = _COMPUTE_RE.search(value)
        if m is None or m.group(1) in allowed:
            kept.extend(argv[i : i + step])
            any_gencode_kept = True
        i += step
    return kept if any_gencode_kept else argv


def reproducible_flags(argv: list[str], root: str) -> list[str]:
    """The flags that make nvcc's object for the compiled .cu file the same in every build
    and folder; [] for a call that compiles no .cu file (a link, --version)."""
    source = _source(argv)
    if source is None or "-c" not in argv:
        return []
    # the file's path inside the tree: the same in every folder, and unique per file
    rel = os.path.relpath(os.path.abspath(source), root).replace("\\", "/")
    return [
        f"-frandom-seed={rel}",  # nvcc's random symbol names; nvcc passes it to gcc too
        "-Xcudafe", f"--orig_src_path_name={rel}",  # nvcc hashes the absolute path into names
        "--objdir-as-tempdir",  # temp files (their names are embedded) beside the object
        "-Xcompiler", f"-ffile-prefix-map={root}=.",  # __FILE__ and debug info
    ]  # fmt: skip


def main() -> None:
    real = os.environ.get("WHEELFACTORY_NVCC_REAL")
    if not real:
        sys.exit("wheelfactory nvcc filter: WHEELFACTORY_NVCC_REAL is not set; unset PYTORCH_NVCC")
    rules = json.loads(os.environ.get("WHEELFACTORY_SOURCE_TARGETS") or "{}")
    argv = filter_gencode(sys.argv[1:], rules)
    if argv != sys.argv[1:]:
        print(f"wheelfactory: {_source(argv)}: -gencode limited by [build] source-targets",
              file=sys.stderr)  # fmt: skip
    root = os.environ.get("WHEELFACTORY_SOURCE_ROOT")
    if root:
        argv += reproducible_flags(argv, root)
    os.execv(real, [real, *argv])


if __name__ == "__main__":
    main()
