"""``wheelfactory verify WHEEL``: check a built wheel (tags, label, SASS, driver links, imports)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wheelfactory.record import BuildRecord

HELP = "check a wheel: tags, version label, Requires-Dist, SASS targets, imports in a fresh venv"
EXAMPLE = "wheelfactory verify dist/sageattention-2.2.0+cu130torch2.9-cp311-cp311-*.whl"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("wheel", type=Path, help="the wheel to check")
    parser.add_argument(
        "--arch",
        metavar="LIST",
        help="promised GPU targets (default: from the wheel's build record)",
    )
    parser.add_argument(
        "--torch",
        metavar="VERSION",
        help="torch to import with (default: the one it was built against; a stable-ABI wheel"
        " may be checked against any torch at or above its floor)",
    )
    parser.add_argument(
        "--python", metavar="3.11|PATH", help="interpreter (default: the wheel's cp tag)"
    )
    parser.add_argument(
        "--import",
        dest="modules",
        action="append",
        default=[],
        metavar="MODULE",
        help="module to import (repeatable; default: every extension module in the wheel)",
    )
    parser.add_argument(
        "--name",
        dest="names",
        action="append",
        default=[],
        metavar="MODULE.ATTR",
        help="a name users import that must exist once its module is imported (repeatable;"
        " e.g. sageattention.sageattn)",
    )
    parser.add_argument(
        "--torch-index-url",
        metavar="URL",
        default=None,
        help="index serving torch when its env is not cached yet ('' = pip's configuration)",
    )
    parser.add_argument("--report", type=Path, metavar="FILE", help="write the JSON report here")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="instead of the checks: rebuild the wheel from its build record (in another folder)"
        " and compare the two byte for byte, naming the first member that differs",
    )
    parser.add_argument(
        "--recipe",
        type=Path,
        metavar="FILE",
        help="with --rebuild: the recipe to rebuild with (default: the one the build record names)",
    )


def execute(args: argparse.Namespace) -> int:
    import sys
    import tempfile
    from dataclasses import replace

    from wheelfactory import arch, buildenv, cache, cudastub, verify, wheelfile
    from wheelfactory import build as build_stage
    from wheelfactory.errors import ConfigError, ToolMissingError

    wheel = wheelfile.read_wheel(args.wheel)  # one line for a missing, corrupt or odd wheel
    record = wheel.build_record
    if record is None:
        raise ConfigError(
            f"{args.wheel.name} has no build record: verify checks wheels made by wheelfactory"
        )
    if args.rebuild:
        return _rebuild(args, record)
    expect = replace(verify.Expectation.of(record, modules=args.modules), names=tuple(args.names))
    if args.arch:
        expect = replace(expect, targets=arch.parse_targets(args.arch))
    interp, _, abi = record.python_tag.partition("-")
    if args.python:
        python = args.python
    elif abi == "abi3":  # any CPython at or above the tag's: this one
        python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    else:
        python = f"{interp[2]}.{interp[3:].rstrip('t')}"
    cache_root = cache.cache_dir()
    env = buildenv.prepare_env(
        python=buildenv.resolve_python(python),
        torch=args.torch or record.torch,
        cuda=record.cuda,
        index_url=buildenv.resolve_torch_index_url(args.torch_index_url, record.cuda),
        cache=cache_root,
    )
    try:
        stub_dir = cudastub.make_stub(build_stage.find_toolchain().cuda_home, cache_root / "stubs")
    except ToolMissingError:
        stub_dir = None  # no toolkit: modules that need libcuda.so.1 import only with a driver
    with tempfile.TemporaryDirectory(prefix="wheelfactory-verify-") as work:
        report = verify.verify_wheel(
            args.wheel.resolve(), expect, build_env=env, stub_dir=stub_dir, work=Path(work)
        )
    for check in report.checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    if args.report:
        args.report.write_text(report.to_json())
    report.raise_for_failures()
    return 0


def _rebuild(args: argparse.Namespace, record: BuildRecord) -> int:
    import tempfile

    from wheelfactory import buildenv, cache, pipeline, rebuild

    with tempfile.TemporaryDirectory(prefix="wheelfactory-rebuild-") as scratch:
        request = rebuild.rebuild_request(
            record,
            recipe_path=args.recipe,
            out_dir=Path(scratch) / "out",
            work_dir=Path(scratch) / "work",
            cache=cache.cache_dir(),
            torch_index_url=buildenv.resolve_torch_index_url(args.torch_index_url, record.cuda),
        )
        rebuilt = pipeline.build(request).wheel
        rebuild.check_same(args.wheel, rebuilt)
    print(f"ok   rebuild: {args.wheel.name} is byte-identical to its rebuild from the build record")
    return 0
