"""Session fixtures shared by integration tests.

``fixture_wheels``: the test fixtures under tests/fixtures built for real ONCE per session
(nvcc, torch, auditwheel) with ``wheelfactory build``: {"quirky_ext": Path, "gpu_probe_ext":
Path}, each repaired, labelled and verified. Other tests reuse these builds instead of
compiling again. What they are built for can be changed with environment variables (the
defaults fit this project's dev machine; a GPU machine with torch 2.11 preinstalled would
set WHEELFACTORY_TEST_TORCH=2.11.0 and WHEELFACTORY_TEST_PYTHON=/path/to/python):

- WHEELFACTORY_TEST_TORCH (2.14.1), WHEELFACTORY_TEST_CUDA (13.0), WHEELFACTORY_TEST_PYTHON (3.11),
  WHEELFACTORY_TEST_ARCH (9.0a,12.0a);
- WHEELFACTORY_TORCH_INDEX_URL: where torch comes from; unset here means "" (pip's own
  configuration), since PyTorch's index may be unreachable from a test machine.

The torch env is the normal build cache ($WHEELFACTORY_CACHE, else ~/.cache/wheelfactory),
so only the first session ever pays for installing torch; the fixture wheels are kept there
too, keyed by a hash of their inputs and of wheelfactory's code (see ``fixture_builds``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


@dataclass(frozen=True)
class BuildSettings:
    torch: str
    cuda: str
    python: str
    arch: str
    index_url: str


SETTINGS = BuildSettings(
    torch=os.environ.get("WHEELFACTORY_TEST_TORCH", "2.14.1"),
    cuda=os.environ.get("WHEELFACTORY_TEST_CUDA", "13.0"),
    python=os.environ.get("WHEELFACTORY_TEST_PYTHON", "3.11"),
    arch=os.environ.get("WHEELFACTORY_TEST_ARCH", "9.0a,12.0a"),
    index_url=os.environ.get("WHEELFACTORY_TORCH_INDEX_URL", ""),
)


def run_wheelfactory(
    *args: str | os.PathLike[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m wheelfactory ARGS`` (the real CLI); output captured."""
    return subprocess.run(
        [sys.executable, "-m", "wheelfactory", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def build_args(
    name: str, out: Path, *extra: str, recipe: bool = True, arch: str | None = None
) -> list[str]:
    args = [str(FIXTURES / f"{name}.toml")] if recipe else []
    args += [
        "--source",
        str(FIXTURES / name),
        "--torch",
        SETTINGS.torch,
        "--cuda",
        SETTINGS.cuda,
        "--python",
        SETTINGS.python,
        "--arch",
        arch or SETTINGS.arch,
        "--out",
        str(out),
        "--torch-index-url",
        SETTINGS.index_url,
        *extra,
    ]
    return ["build", *args]


@dataclass(frozen=True)
class BuiltWheel:
    wheel: Path
    outcome: dict  # the --json outcome of `wheelfactory build`
    stderr: str


def _fixture_key(name: str) -> str:
    """Hash of everything a fixture wheel depends on: its sources, recipe, the settings and
    wheelfactory's own code. Same key -> the same build; any change -> a new one."""
    h = hashlib.sha256(repr(SETTINGS).encode())
    paths = [
        FIXTURES / f"{name}.toml",
        *sorted((FIXTURES / name).rglob("*")),
        *sorted(FIXTURES.glob("*.tar.gz")),
    ]
    # every file of the package: a build reaches most modules, and a stale fixture wheel
    # reused after a change to one the key left out would test old code
    paths += sorted((ROOT / "tools" / "wheelfactory").rglob("*"))
    for path in paths:
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def fixture_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltWheel]:
    """Build every fixture once: name -> BuiltWheel (wheel, outcome JSON, build output).

    Builds are kept in $WHEELFACTORY_CACHE/test-fixture-wheels/<name>-<key>, where the key
    hashes the fixture, the settings and wheelfactory's code, so parallel or later sessions
    with the same code reuse them (WHEELFACTORY_TEST_REBUILD=1 forces a fresh build into a
    tmp dir).
    """
    from wheelfactory import cache

    rebuild = os.environ.get("WHEELFACTORY_TEST_REBUILD") == "1"
    built: dict[str, BuiltWheel] = {}
    for name in ("quirky_ext", "gpu_probe_ext", "stable_ext"):
        if rebuild:
            out = tmp_path_factory.mktemp(f"fixture-{name}")
        else:
            out = cache.cache_dir() / "test-fixture-wheels" / f"{name}-{_fixture_key(name)}"
            out.mkdir(parents=True, exist_ok=True)
        outcome_file = out / "outcome.json"
        log_file = out / "build-output.txt"
        with FileLock(str(out.parent / f"{out.name}.lock")):  # another session may build it
            if not outcome_file.exists():
                proc = run_wheelfactory(
                    *build_args(name, out, "--json", str(outcome_file.with_suffix(".tmp")))
                )
                log_file.write_text(proc.stderr)
                if proc.returncode != 0:
                    pytest.fail(
                        f"building fixture {name} failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}",
                        pytrace=False,
                    )
                os.replace(outcome_file.with_suffix(".tmp"), outcome_file)
        outcome = json.loads(outcome_file.read_text())
        built[name] = BuiltWheel(
            wheel=Path(outcome["wheel"]), outcome=outcome, stderr=log_file.read_text()
        )
    return built


@pytest.fixture(scope="session")
def fixture_wheels(fixture_builds: dict[str, BuiltWheel]) -> dict[str, Path]:
    """name -> Path of the built, repaired, labelled and verified fixture wheel."""
    return {name: b.wheel for name, b in fixture_builds.items()}
