"""``wheelfactory build``: a recipe or a source tree -> a repaired, labelled, verified wheel."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wheelfactory.cli import _options

HELP = "build, repair, label and verify one wheel for one torch/CUDA/Python"
EXAMPLE = (
    "wheelfactory build recipes/sageattention.toml --torch 2.9.1 --cuda 13.0 --python 3.11"
    " --arch 9.0a --out dist/"
)


def configure_parser(parser: argparse.ArgumentParser) -> None:

    parser.add_argument("recipe", nargs="?", type=Path, help="recipe file (recipes/<name>.toml)")
    parser.add_argument(
        "--source",
        type=Path,
        metavar="DIR",
        help="build this local tree (copied first) instead of the recipe's [source]",
    )
    parser.add_argument("--name", help="distribution name when building --source without a recipe")
    parser.add_argument(
        "--torch", required=True, metavar="VERSION", help="exact torch version, e.g. 2.14.1"
    )
    parser.add_argument(
        "--cuda", required=True, metavar="X.Y", help="CUDA version, e.g. 13.0 (must match nvcc)"
    )
    parser.add_argument(
        "--python",
        default=f"{sys.version_info[0]}.{sys.version_info[1]}",
        metavar="3.11|PATH",
        help="Python to build for: a version (python3.11 on PATH) or an interpreter path",
    )
    parser.add_argument(
        "--arch",
        metavar="LIST",
        help="GPU targets, e.g. 9.0a,12.0a (default: the recipe's [[targets]]; required without a recipe)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="where the verified wheel goes"
    )
    parser.add_argument(
        "--torch-index-url",
        metavar="URL",
        default=None,
        help="index serving torch (default: $WHEELFACTORY_TORCH_INDEX_URL, else"
        " https://download.pytorch.org/whl/cuXYZ); '' or 'pip' = pip's own configuration",
    )
    parser.add_argument(
        "--plat", help="auditwheel policy (default: the lowest manylinux the build allows)"
    )
    parser.add_argument(
        "--jobs", type=int, help="parallel compile jobs (MAX_JOBS; default: CPU cores)"
    )
    parser.add_argument(
        "--work-dir", type=Path, help="keep the build's scratch files here (default: a temp dir)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse --work-dir's sources and the objects an earlier, interrupted or failed build"
        " of the same sources compiled (ninja recompiles only what changed)",
    )
    parser.add_argument(
        "--keep-debug",
        action="store_true",
        help="keep host debug info in the shared libraries (default: strip --strip-debug)",
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="skip verification (the wheel is then unchecked)"
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write the outcome as JSON here"
    )
    _options.add_index_url(
        parser,
        "root of the index these wheels are published to; the import guard's fix command names it",
    )
    parser.add_argument(
        "--no-guard", action="store_true", help="do not add the import-time torch/CUDA/GPU guard"
    )
    # Test-only: link -lcuda against an EMPTY stub, to show verify catches the lost NEEDED.
    parser.add_argument("--empty-libcuda-stub", action="store_true", help=argparse.SUPPRESS)


def execute(args: argparse.Namespace) -> int:
    import json

    from wheelfactory import arch, buildenv, cache, pipeline
    from wheelfactory.cli import _build_summary as summary
    from wheelfactory.errors import ConfigError
    from wheelfactory.recipe import default_recipe, load_recipe

    if args.recipe is not None:
        recipe = load_recipe(args.recipe)
        if args.name and args.name.replace("_", "-").lower() != recipe.name:
            raise ConfigError(
                f"--name {args.name} differs from the recipe's name {recipe.name}: drop --name"
            )
    elif args.source is not None:
        if not args.name:
            raise ConfigError(
                "--source without a recipe needs --name NAME: pass the distribution name"
            )
        if not args.arch:
            raise ConfigError("--source without a recipe needs --arch: pass e.g. --arch 9.0a,12.0a")
        recipe = default_recipe(args.name)
    else:
        raise ConfigError(
            "nothing to build: pass a RECIPE, or --source DIR --name NAME --arch LIST"
        )
    if args.resume and args.work_dir is None:
        raise ConfigError("--resume needs --work-dir DIR: pass the work dir of the build to resume")
    request = pipeline.BuildRequest(
        recipe=recipe,
        source_dir=args.source,
        torch=args.torch,
        cuda=args.cuda,
        python=buildenv.resolve_python(args.python),
        targets=arch.parse_targets(args.arch) if args.arch else None,
        out_dir=args.out,
        torch_index_url=buildenv.resolve_torch_index_url(args.torch_index_url, args.cuda),
        cache=cache.cache_dir(),
        work_dir=args.work_dir,
        resume=args.resume,
        jobs=args.jobs,
        plat=args.plat,
        verify=not args.no_verify,
        strip_debug=not args.keep_debug,
        empty_stub=args.empty_libcuda_stub,
        with_guard=not args.no_guard,
        index_url=_options.index_url(args),
    )
    outcome = pipeline.build(request)
    print(summary.render(outcome))
    if args.json:
        args.json.write_text(json.dumps(summary.as_dict(outcome), indent=2) + "\n")
    return 0
