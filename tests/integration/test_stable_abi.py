"""Stable-ABI builds for real: the stable_ext fixture (the abi3_stable port's quirks) built
once for every torch from its floor, and what verify refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import FIXTURES, SETTINGS, BuiltWheel, build_args, run_wheelfactory
from wheelfactory import naming, wheelfile


def test_stable_ext_is_one_abi3_wheel_for_every_torch_from_its_floor(fixture_builds: dict[str, BuiltWheel]) -> None:
    built = fixture_builds["stable_ext"]
    info = naming.parse_wheel(built.wheel.name)
    assert info.version == naming.TorchPin(SETTINGS.torch, floor="2.10").labelled_version("0.2.0", SETTINGS.cuda)
    assert info.python_tags == ("cp310",) and info.abi_tags == ("abi3",)
    read = wheelfile.read_wheel(built.wheel)
    record = read.build_record
    assert record is not None and record.stable_abi_floor == "2.10"
    assert record.torch_requirement == "torch>=2.10"
    assert [str(r) for r in read.requires("torch")] == ["torch>=2.10"]
    # the port's quirks were met by the recipe: plain arch list, USE_CUDA, the floor's ABI
    assert record.env["TORCH_CUDA_ARCH_LIST"] == "9.0;12.0"
    assert "-DUSE_CUDA=1" in record.env["NVCC_APPEND_FLAGS"]
    assert "-DTORCH_TARGET_VERSION=0x020a000000000000" in record.env["CXX_APPEND_FLAGS"]
    report = json.loads(Path(built.outcome["verify_report"]).read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["stable ABI _C.abi3.so"]["ok"] and checks["floor torch 2.10 _C.abi3.so"]["ok"]
    assert checks["SASS targets"]["ok"] and report["ok"]


def test_a_stable_abi_recipe_on_a_source_that_is_not_one_fails_in_one_line(tmp_path: Path) -> None:
    """quirky_ext is a pybind11 module built on ATen: a recipe that asks for a stable-ABI
    build of it gets a one-line verify error naming a torch C++ symbol, and no wheel."""
    recipe = tmp_path / "quirky_ext.toml"
    text = (FIXTURES / "quirky_ext.toml").read_text()
    recipe.write_text(text.replace('torch = ">=2.10"', 'torch = ">=2.10"\nstable-abi-floor = "2.10"\nabi3 = "cp310"'))
    out = tmp_path / "out"
    args = build_args("quirky_ext", out)
    args[1] = str(recipe)
    proc = run_wheelfactory(*args)
    assert proc.returncode == 8, proc.stderr[-2000:]
    (error,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
    assert ": stable ABI _driver" in error or ": stable ABI _kernels" in error, error
    assert "imports" in error and "torch C++ symbol(s) (_Z" in error, error
    assert not list(out.glob("*.whl"))
    shutil.rmtree(out, ignore_errors=True)


def test_a_new_torch_release_needs_no_compile(fixture_builds: dict[str, BuiltWheel], tmp_path: Path) -> None:
    """watch sees a new torch (local stand-ins of PyPI and PyTorch's index), the plan asks
    for nothing to compile, and `cover` lists the published stable-ABI wheel in the new
    torch's view after importing it with that torch: a few pages, no build."""
    import json as _json
    import subprocess
    import time
    from dataclasses import replace
    from http.server import BaseHTTPRequestHandler

    from _index_env import torch_env
    from _local_http import serve_locally
    from wheelfactory import label, releases
    from wheelfactory.manifest import load_manifest
    from wheelfactory.serve import start_server

    # The world before 2.14: the release table stops at 2.13, and the stable wheel was
    # built then (its record says torch 2.13.0; the file is the real fixture build).
    table = releases.load()
    old = replace(table, releases=tuple(r for r in table.releases if r.parsed.minor <= 13))
    table_file = tmp_path / "torch-releases.toml"
    releases.dump(old, table_file)
    wheel = fixture_builds["stable_ext"].wheel
    record = wheelfile.read_build_record(wheel)
    assert record is not None
    earlier = label.relabel(wheel, [label.write_build_record(replace(record, torch="2.13.0"))],
                            tmp_path / "earlier", work=tmp_path / "w")  # fmt: skip
    idx = tmp_path / "idx"
    assert run_wheelfactory("publish", earlier, "--index", idx).returncode == 0
    assert load_manifest(idx).by_filename[earlier.name].covers == ("2.13",)

    # PyPI and PyTorch's index, as watch reads them, now list torch 2.14.1.
    files = [f"torch-{v}+cu130-cp311-cp311-manylinux_2_28_x86_64.whl" for v in ("2.13.0", "2.14.1")]
    routes = {
        "/pypi/torch/json": _json.dumps({"info": {"name": "torch"}, "releases": {
            v: [{"filename": f"torch-{v}-cp311-cp311-manylinux_2_28_x86_64.whl",
                 "upload_time_iso_8601": "2026-09-30T17:00:00.000000Z", "yanked": False}]
            for v in ("2.13.0", "2.14.1")}}).encode(),
        "/whl/cu130/torch/": "".join(f'<a href="/{f}">{f}</a>' for f in files).encode(),
    }  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json" if "pypi" in self.path else "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server, url = serve_locally(Handler)
    try:
        recipe = FIXTURES / "stable_ext.toml"
        start = time.monotonic()
        proc = run_wheelfactory("watch", recipe, "--table", table_file, "--pypi-url", url,
                                "--pytorch-index-url", url, "--index", idx, "--tries", "1")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "+ torch 2.14.1" in proc.stdout and "cells that became missing: 0" in proc.stdout
        # (the other CUDAs' stable wheels were never built here; CUDA 13.0's covers 2.14)
        proc = run_wheelfactory("plan", recipe, "--table", table_file, "--missing", "--index", idx,
                                "--cuda", SETTINGS.cuda, "--format", "table")  # fmt: skip
        assert proc.returncode == 0 and "(no cells)" in proc.stdout, proc.stdout
        before = {p: p.stat().st_mtime_ns for p in idx.rglob("*") if p.is_file()}
        proc = run_wheelfactory("cover", "--index", idx, "--torch", "2.14.1", "--torch-index-url", SETTINGS.index_url)
        assert proc.returncode == 0, proc.stderr
        assert f"covered {earlier.name}: imports with torch 2.14.1" in proc.stdout
        seconds = time.monotonic() - start
    finally:
        server.shutdown()
    written = sorted(str(p.relative_to(idx)) for p in idx.rglob("*")
                     if p.is_file() and before.get(p) != p.stat().st_mtime_ns and not p.name.startswith("."))  # fmt: skip
    assert "cu130/torch2.14/simple/stable-ext/index.html" in written
    assert len(written) <= 8, written  # the new view, the landing page and the manifest
    print(f"new torch 2.14.1 covered without a build in {seconds:.1f} s; wrote {len(written)} files")
    python = torch_env() / "bin" / "python"
    with start_server(idx) as srv:
        got = subprocess.run(
            [str(python), "-m", "pip", "download", "-q", "--no-deps", "--dest", str(tmp_path / "dl"),
             "--index-url", f"{srv.url}cu130/torch2.14/simple/", "stable-ext"],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert [p.name for p in (tmp_path / "dl").iterdir()] == [earlier.name]
