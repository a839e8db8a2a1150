"""The plan job (build.yml): the planner's matrices -> GitHub job outputs.

``split_matrices``: the planner's ``{"version": 1, "matrices": [...]}`` -> one output per
workflow matrix job (``matrix0``..``matrixN`` + ``count0``..), since a workflow has a
fixed number of matrix jobs and GitHub caps each matrix at 256 jobs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wheelfactory.errors import ConfigError

MAX_JOBS_PER_MATRIX = 256  # GitHub Actions' limit for one matrix


def split_matrices(plan: Mapping[str, Any], *, slots: int, limit: int | None = None) -> dict[str, str]:
    """Outputs for $GITHUB_OUTPUT: ``matrix<i>`` (JSON ``{"include": [...]}``) and
    ``count<i>`` for i in range(slots), plus ``count`` (all jobs). ``limit`` keeps only the
    first N jobs (pull requests build one small cell)."""
    if plan.get("version") != 1 or not isinstance(plan.get("matrices"), list):
        raise ConfigError('plan is not {"version": 1, "matrices": [...]}; produce it with wheelfactory plan --format github')
    jobs: list[Mapping[str, Any]] = []
    for matrix in plan["matrices"]:
        include = matrix.get("include") if isinstance(matrix, Mapping) else None
        if not isinstance(include, list):
            raise ConfigError('a plan matrix lacks its "include" list; produce it with wheelfactory plan --format github')
        jobs.extend(include)
    ids = [j.get("id") for j in jobs]
    if len(set(ids)) != len(ids):
        raise ConfigError("plan has duplicate job ids; artifact names would clash; fix the planner")
    if limit is not None:
        jobs = jobs[:limit]
    chunks = [jobs[i : i + MAX_JOBS_PER_MATRIX] for i in range(0, len(jobs), MAX_JOBS_PER_MATRIX)]
    if len(chunks) > slots:
        msg = (
            f"plan has {len(jobs)} jobs, more than {slots} matrix jobs x {MAX_JOBS_PER_MATRIX} can run;"
            " narrow the plan (--torch/--cuda/--os) or add a build-N job to build.yml"
        )
        raise ConfigError(msg)
    out: dict[str, str] = {"count": str(len(jobs))}
    for i in range(slots):
        chunk = chunks[i] if i < len(chunks) else []
        out[f"matrix{i}"] = json.dumps({"include": chunk}, separators=(",", ":"), sort_keys=True)
        out[f"count{i}"] = str(len(chunk))
    return out


def render_outputs(outputs: Mapping[str, str]) -> str:
    """``name=value`` lines for $GITHUB_OUTPUT (values are single-line JSON or numbers)."""
    for name, value in outputs.items():
        if "\n" in value:
            raise ConfigError(f"output {name} spans lines; emit compact JSON")
    return "".join(f"{k}={v}\n" for k, v in outputs.items())
