"""What one CI job may cost, and the estimate for a planned job ([budget] in
resources/ci-images.toml; docs/ci.md "Job size and disk").

The planner puts each job's estimate in ``plan --format github`` (``minutes``,
``disk_gb``); cibw-env refuses a job over either limit (ci/cibw.py ``check_budget``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from wheelfactory import platforms, resources
from wheelfactory.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True, kw_only=True)
class Budget:
    """What one CI job may cost ([budget] in ci-images.toml), and its estimates."""

    limit_minutes: int
    seconds_per_target: int  # the slowest measured compile per GPU target...
    measured_cores: int  # ...on a machine of this many cores
    runner_cores: int  # [settings] max-jobs: a hosted runner's cores
    setup_minutes: Mapping[str, int]  # platform -> minutes outside the compile
    torch_gb: float
    base_gb: Mapping[str, float]  # platform -> builder image / CUDA toolkit
    work_gb: float
    disk_gb: Mapping[str, float]  # platform -> free disk a job may use

    def minutes(self, *, platform: str, targets: int, wheels: int) -> int:
        """Estimated wall minutes of a job that builds ``wheels`` wheels of ``targets``
        GPU targets each: compile scaled from the measured machine to the runner, plus setup."""
        compile_s = wheels * targets * self.seconds_per_target * self.measured_cores / self.runner_cores
        return math.ceil(compile_s / 60) + self.setup_minutes[platform]

    def disk(self, *, platform: str, pythons: int) -> float:
        """GB a job needs: the base, torch in each build Python, one test venv's torch
        (cibuildwheel removes each test venv), the work tree."""
        return round(self.base_gb[platform] + (pythons + 1) * self.torch_gb + self.work_gb, 1)


def _fail(path: Path, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {problem}; fix the table")


def parse_budget(b: Mapping[str, Any], *, runner_cores: int, path: Path) -> Budget:
    keys = {"limit-minutes", "seconds-per-target", "measured-cores", "setup-minutes", "torch-gb", "base-gb", "work-gb", "disk-gb"}
    if set(b) != keys:
        raise _fail(path, f"[budget] keys must be {sorted(keys)}, got {sorted(b)}")
    for key in ("setup-minutes", "base-gb", "disk-gb"):
        if set(b[key]) != set(platforms.names()):
            raise _fail(path, f"[budget] {key} must name exactly the platforms {platforms.names()}")
    return Budget(
        limit_minutes=int(b["limit-minutes"]),
        seconds_per_target=int(b["seconds-per-target"]),
        measured_cores=int(b["measured-cores"]),
        runner_cores=runner_cores,
        setup_minutes={k: int(v) for k, v in b["setup-minutes"].items()},
        torch_gb=float(b["torch-gb"]),
        base_gb={k: float(v) for k, v in b["base-gb"].items()},
        work_gb=float(b["work-gb"]),
        disk_gb={k: float(v) for k, v in b["disk-gb"].items()},
    )


@cache
def load_budget(path: Path = resources.CI_IMAGES) -> Budget:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return parse_budget(data.get("budget", {}), runner_cores=int(data["settings"]["max-jobs"]), path=path)
