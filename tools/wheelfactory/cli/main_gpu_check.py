"""wheelfactory gpu-check: run each wheel's kernels on this machine's GPU (recipe [gpu-check])."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "install wheels the way users do and run the recipe's numeric check on this GPU"
EXAMPLE = "wheelfactory gpu-check --recipe recipes/sageattention-main.toml --index-url http://127.0.0.1:8000/ --record site/"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", type=Path, help="check this recipe's package with its [gpu-check] (default: each wheel's own recipe, named in its build record, from the repository)")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--index-url", metavar="URL", help="root of a served index: check its wheels, installed from their strict views")
    src.add_argument("--wheels", nargs="+", type=Path, metavar="WHEEL_OR_DIR", help="check these wheel files instead")
    src.add_argument("--source-variant", type=Path, metavar="SOURCE_DIR", help="source check, not of a shipped binary: build a copy of this tree (the recipe's pinned source; its [[patch]] files are applied) for the recipe's [gpu-check.source] X.Y+PTX targets and run every kernel entry point they reach on this GPU through PTX JIT; needs --recipe")
    parser.add_argument("--source-arch", metavar="X.Y+PTX,...", help="with --source-variant: build only these of the recipe's [gpu-check.source] archs (a shorter build)")
    parser.add_argument("--without-patches", action="store_true", help="with --source-variant: build upstream's tree as is, without the recipe's [[patch]] files (show what a patch fixes)")
    parser.add_argument("--python", type=Path, default=None, metavar="PATH", help="the Python (with CUDA torch) to check with (default: this one)")
    parser.add_argument("--results", type=Path, metavar="FILE", help="write the results as JSON (for publish --gpu-checks)")
    parser.add_argument("--record", type=Path, metavar="INDEX_DIR", help="record the results in this local index (gate held wheels, yank wrong ones)")
    parser.add_argument("--skip-guard", action="store_true", help="run with the import guard off (measure a known-bad build's raw output)")
    # Stand-ins for a GPU that torch cannot see: tests drive the plumbing with a CPU check.
    parser.add_argument("--assume-arch", metavar="X.Y", help=argparse.SUPPRESS)
    parser.add_argument("--assume-gpu", metavar="NAME", help=argparse.SUPPRESS)


def execute(args: argparse.Namespace) -> int:
    import json
    import sys
    import tempfile
    from typing import Any

    from wheelfactory import gpucheck, publish, wheelfile
    from wheelfactory.ci.summary import find_wheels
    from wheelfactory.errors import ConfigError, GpuCheckError
    from wheelfactory.hashing import sha256_hex
    from wheelfactory.manifest import load_manifest
    from wheelfactory.recipe import load_recipe

    if args.recipe is not None and load_recipe(args.recipe).gpu_check is None:  # before probing
        raise ConfigError(f"{args.recipe} has no [gpu-check]: add one (see recipes/README.md)")
    if args.source_variant is not None and args.recipe is None:
        raise ConfigError("--source-variant needs --recipe: the recipe names the PTX targets and the calls to check")
    if args.source_variant is not None and args.record is not None:
        raise ConfigError("--record takes shipped-binary checks only: a source check vouches for no wheel in an index")
    machine = gpucheck.probe_machine(
        args.python or Path(sys.executable), gpu=args.assume_gpu, arch=args.assume_arch
    )
    if args.source_variant is not None:
        return _source_check(args, machine)
    files: list[Any]
    if args.index_url:
        files = list(load_manifest(args.index_url).files)
        root = args.index_url
    else:
        files = []
        for path in find_wheels(args.wheels):
            record = wheelfile.read_build_record(path)
            files.append({
                "filename": path.name, "sha256": sha256_hex(path), "path": str(path),
                "build_record": record.to_json() if record else None,
            })  # fmt: skip
        root = None
    print(f"{gpucheck.SHIPPED} check on {machine.gpu} (sm_{machine.capability[0]}{machine.capability[1]}), torch {machine.torch}")
    results = []
    for recipe_path, group in _by_recipe(files, args.recipe).items():
        recipe = load_recipe(recipe_path)
        if recipe.gpu_check is None:
            if args.recipe is not None:
                raise ConfigError(f"{recipe_path} has no [gpu-check]: add one (see recipes/README.md)")
            print(f"  not checked: {recipe_path} has no [gpu-check] ({len(group)} wheel(s))")
            continue
        candidates, skipped = gpucheck.select(group, recipe.name, machine, index_root=root)
        for line in skipped:
            print(f"  not checked here: {line}")
        with tempfile.TemporaryDirectory(prefix="wf-gpu-check-") as work:
            results += gpucheck.run(candidates, recipe.gpu_check, machine, work=Path(work), skip_guard=args.skip_guard)
    if not results:
        raise ConfigError("no wheel fits this machine and GPU, or none has a [gpu-check]; see the lines above")
    print(gpucheck.table(results), end="")
    if args.results:
        data = {"version": 1, "check": gpucheck.SHIPPED, "checks": [r.to_json() for r in results]}
        args.results.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    if args.record:
        publish.record_gpu_checks(args.record, results)
    bad = [r for r in results if r.verdict in ("fail", "error")]
    if bad:
        raise GpuCheckError(f"{bad[0].filename}: {bad[0].verdict}: {bad[0].detail} ({len(bad)} of {len(results)} wheel(s) did not pass)")
    return 0


def _source_check(args: argparse.Namespace, machine) -> int:  # noqa: ANN001 - gpucheck.Machine, imported lazily
    """The source check: a PTX build of a tree, reported as such and never recorded."""
    import json
    import tempfile

    from wheelfactory import arch, build, gpucheck
    from wheelfactory.errors import GpuCheckError
    from wheelfactory.recipe import load_recipe

    with tempfile.TemporaryDirectory(prefix="wf-source-check-") as work:
        result = gpucheck.check_source(
            args.source_variant, load_recipe(args.recipe), machine, work=Path(work), jobs=build.default_jobs(),
            only=arch.parse_targets(args.source_arch or ""), with_patches=not args.without_patches,
        )  # fmt: skip
    print(f"{result.kind} of {result.tree} on {machine.gpu}, torch {machine.torch}: {result.verdict}: {result.detail}")
    if args.results:
        args.results.write_text(json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n")
    if result.verdict != "pass":
        raise GpuCheckError(f"{result.kind}: {result.verdict}: {result.detail}")
    return 0


def _by_recipe(files: list, recipe: Path | None) -> dict[Path, list]:
    """The files to check, by the recipe whose check applies: ``recipe`` for all, else each
    file's own (its build record names it, relative to the repository)."""
    from wheelfactory.errors import ConfigError
    from wheelfactory.recipe import repo_root

    if recipe is not None:
        return {recipe: files}
    groups: dict[Path, list] = {}
    for f in files:
        record = (f.get("build_record") if isinstance(f, dict) else f.build_record) or {}
        name = record.get("recipe")
        if not name:
            raise ConfigError(f"{f['filename'] if isinstance(f, dict) else f.filename} names no recipe in its build record: pass --recipe")
        groups.setdefault(repo_root() / name, []).append(f)
    return groups
