#!/usr/bin/env python3
"""What a full release of the plan costs, before and after build-once: compiles, CPU-hours,
GB of release assets, and how many (torch, CUDA, Python, OS) environments it serves.

    python bench/plan_figures.py [--before REV] [--costs bench/results/cell-costs.json]

"Before" plans the recipes of git revision REV (default 6b85a1c, before stable-ABI and
abi3 recipes and device-code compression) with today's release table; "after" plans the
working tree's recipes. One wheel = one compile. Per-wheel time and size come from the
measured costs file, scaled by the cell's number of GPU targets; a wheel for CUDA >= 13.0
is compressed (gpu-targets.toml), so it takes the measured compressed size where there is
one, and a wheel before this change never was.

Environments (torch minor, CUDA, CPython, platform) are counted by wheelfactory.coverage,
the count `wheelfactory coverage` and the landing page use: "planned" is what the plan's
cells promise (a per-torch wheel its own; an abi3 wheel every CPython from its tag that
its torch ships; a stable-ABI wheel every torch from its floor too); "served" is what the
users' commands install from the index that the real publish code makes of one fake wheel
per cell, after the release path's cover step lists each stable-ABI wheel in the torch
views cover.planned picks for it (tests/_full_plan.py: the fake wheels hold no binaries,
so every check is taken to pass; the check itself is tested with real torch). Free-threaded CPythons are counted apart: abi3 wheels cannot serve them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from wheelfactory import arch, releases
from wheelfactory.coverage import coverage
from wheelfactory.plan import plan
from wheelfactory.recipe import load_recipe
from wheelfactory.releases import is_free_threaded

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from _full_plan import release_cells  # noqa: E402  (the real publish and cover's choice, over fake wheels)


def recipes_at(rev: str | None) -> list:
    if rev is None:
        return [(f"recipes/{p.name}", load_recipe(p)) for p in sorted((ROOT / "recipes").glob("*.toml"))]
    # the whole recipes/ folder of that revision: its recipes may name patch files there
    tmp = Path(tempfile.mkdtemp(prefix="plan-figures-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "recipes"],
                             capture_output=True, check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    return [(f"recipes/{p.name}", load_recipe(p)) for p in sorted((tmp / "recipes").glob("*.toml"))]


def cost(path: str, cell, costs: dict, *, compressed: bool) -> tuple[float, float]:
    """(CPU-seconds, MB) of one wheel, from the measured costs scaled by target count."""
    entry = costs[path]
    while "like" in entry:
        entry = costs[entry["like"]]
    scale = len(cell.targets) / entry["targets"]
    sizes = entry["size_mb"]
    cuda13 = tuple(map(int, cell.cuda.split("."))) >= (13, 0)
    if compressed and cuda13 and arch.default_compress_mode(cell.cuda):
        mb = sizes.get("size") or sizes["none"]
    else:
        mb = sizes.get("none") or sizes["size"]
    return 2 * entry["seconds"] * scale, mb * scale


def figures(named, costs, table, *, compressed: bool) -> dict:
    result = plan([r for _, r in named], table)
    recipe_path = {r.name + (r.version or ""): p for p, r in named}
    out = {"compiles": len(result.cells), "cpu_hours": 0.0, "gb": 0.0,
           "per_package": defaultdict(lambda: {"compiles": 0, "planned": set(), "envs": set(),
                                               "ft_planned": set(), "ft_envs": set()})}  # fmt: skip
    for cell in result.cells:
        path = recipe_path[cell.recipe + cell.version]
        seconds, mb = cost(path, cell, costs, compressed=compressed)
        out["cpu_hours"] += seconds / 3600
        out["gb"] += mb / 1000
        pkg = out["per_package"][cell.recipe]
        pkg["compiles"] += 1
    report = coverage(result.cells, release_cells(result.cells), table)
    for row in report.rows:
        e = row.environment
        pkg, ft = out["per_package"][e.package], "ft_" if is_free_threaded(e.python) else ""
        env = (e.torch, e.cuda, e.python, e.platform)
        pkg[ft + "planned"].add(env)
        if row.published:
            pkg[ft + "envs"].add(env)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="6b85a1c", help="git revision of the recipes before")
    ap.add_argument("--costs", type=Path, default=ROOT / "bench" / "results" / "cell-costs.json")
    args = ap.parse_args()
    costs = json.loads(args.costs.read_text())["recipes"]
    table = releases.load()
    before = figures(recipes_at(args.before), costs, table, compressed=False)
    after = figures(recipes_at(None), costs, table, compressed=True)
    print(f"{'':28} {'before':>10} {'after':>10}")
    print(f"{'compiles per full release':28} {before['compiles']:>10} {after['compiles']:>10}")
    print(f"{'CPU-hours (2-core machine)':28} {before['cpu_hours']:>10.0f} {after['cpu_hours']:>10.0f}")
    print(f"{'GB of release assets':28} {before['gb']:>10.1f} {after['gb']:>10.1f}")
    ok = True
    # platforms a recipe leaves out on purpose, with its reason (plan --explain shows it)
    on_purpose = {(r.name, p): why for _, r in recipes_at(None) for p, why in r.matrix.platform_reasons.items()}
    for pkg in sorted(set(before["per_package"]) | set(after["per_package"])):
        b, a = before["per_package"][pkg], after["per_package"][pkg]
        lost = b["envs"] - a["envs"]
        meant = {env for env in lost if (pkg, env[3]) in on_purpose}
        ok &= not (lost - meant)
        print(f"{pkg}: compiles {b['compiles']} -> {a['compiles']}; environments planned"
              f" {len(b['planned'])} -> {len(a['planned'])}, served {len(b['envs'])} -> {len(a['envs'])}"
              f" (free-threaded planned {len(b['ft_planned'])} -> {len(a['ft_planned'])},"
              f" served {len(b['ft_envs'])} -> {len(a['ft_envs'])}); lost: {len(lost - meant)}")  # fmt: skip
        for torch in sorted({env[0] for env in a["planned"] - a["envs"]}, key=lambda t: tuple(map(int, t.split(".")))):
            n = sum(1 for env in a["planned"] - a["envs"] if env[0] == torch)
            print(f"  planned, not served after: {n} for torch {torch}")
        for platform in sorted({env[3] for env in meant}):
            n = sum(1 for env in meant if env[3] == platform)
            print(f"  left out on purpose: {n} on {platform}: {on_purpose[(pkg, platform)][:160]}...")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
