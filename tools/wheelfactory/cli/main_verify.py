"""``wheelfactory verify WHEEL``: check a built wheel (tags, label, SASS, driver links, imports)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "check a wheel: tags, version label, Requires-Dist, SASS targets, imports in a fresh venv"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("wheel", type=Path, help="the wheel to check")
    parser.add_argument(
        "--arch",
        metavar="LIST",
        help="promised GPU targets (default: from the wheel's build record)",
    )
    parser.add_argument(
        "--torch", metavar="VERSION", help="torch to import with (default: from the build record)"
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
        "--torch-index-url",
        metavar="URL",
        default=None,
        help="index serving torch when its env is not cached yet ('' = pip's configuration)",
    )
    parser.add_argument("--report", type=Path, metavar="FILE", help="write the JSON report here")


def execute(args: argparse.Namespace) -> int:
    import tempfile

    from wheelfactory import arch, buildenv, cudastub, label, naming, verify
    from wheelfactory import build as build_stage
    from wheelfactory.errors import ConfigError, ToolMissingError

    info = naming.parse_wheel(args.wheel.name)
    if not info.is_labelled or info.cuda is None:
        raise ConfigError(
            f"{args.wheel.name} has no +cuXYZtorchX.Y label: verify checks wheels made by wheelfactory build"
        )
    record = label.read_build_record(args.wheel) or {}
    arch_text = args.arch or ",".join(record.get("targets", []))
    if not arch_text:
        raise ConfigError(f"{args.wheel.name} has no build record with targets: pass --arch")
    torch = args.torch or record.get("torch")
    if not torch:
        raise ConfigError(
            f"{args.wheel.name} has no build record naming torch: pass --torch {info.torch}.N"
        )
    python_tag = info.python_tags[0]
    python = args.python or f"{python_tag[2]}.{python_tag[3:].rstrip('t')}"
    cuda = info.cuda
    cache = buildenv.cache_dir()
    env = buildenv.prepare_env(
        python=buildenv.resolve_python(python),
        torch=torch,
        cuda=cuda,
        index_url=buildenv.resolve_torch_index_url(args.torch_index_url, cuda),
        cache=cache,
    )
    try:
        stub_dir = cudastub.make_stub(build_stage.find_toolchain().cuda_home, cache / "stubs")
    except ToolMissingError:
        stub_dir = None  # no toolkit: modules that need libcuda.so.1 import only with a driver
    expect = verify.Expectation(
        targets=arch.parse_targets(arch_text),
        torch=torch,
        cuda=cuda,
        python_tag=python_tag,
        modules=tuple(args.modules),
    )
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
