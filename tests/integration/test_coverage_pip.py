"""coverage's verdict per environment is pip's: for each planned environment, real pip
resolves the user's command (the strict view as --extra-index-url, for that CPython and
platform) against a published index served on 127.0.0.1, and succeeds exactly where
coverage says the environment is served, taking the file coverage names."""

from __future__ import annotations

import sys
from pathlib import Path

from _index_env import installer_env
from _index_wheels import make_wheel
from _records import record_json
from packaging.specifiers import SpecifierSet
from wheelfactory import _proc, publish, releases
from wheelfactory.coverage import coverage
from wheelfactory.manifest import load_manifest
from wheelfactory.plan import Selection, plan
from wheelfactory.recipe import load_recipe
from _stable_demo import STABLE_RECIPE
from wheelfactory.serve import start_server

RECIPE = STABLE_RECIPE


def published(tmp: Path) -> Path:
    """A stable-ABI wheel built against torch 2.12.1 that needs CPython >= 3.11 (listed in
    the 2.12 view), and a torch 2.11 cp312 wheel tagged for glibc 2.34."""
    stable = make_wheel(
        tmp / "dist", torch="abi", requires_torch="torch>=2.10", python_tag="cp310",
        abi_tag="abi3", platform_tag="manylinux_2_28_x86_64", requires_python=">=3.11",
        build_record=record_json(package_version="1.0.0+cu130torchabi", stable_abi_floor="2.10",
                                 torch="2.12.1", torch_requirement="torch>=2.10",
                                 python_tag="cp310-abi3"),
    )  # fmt: skip
    newer_glibc = make_wheel(
        tmp / "dist", torch="2.11", python_tag="cp312", abi_tag="cp312",
        platform_tag="manylinux_2_34_x86_64",
        build_record=record_json(package_version="1.0.0+cu130torch2.11", torch="2.11.0",
                                 torch_requirement="torch==2.11.*", python_tag="cp312-cp312"),
    )  # fmt: skip
    index = tmp / "index"
    publish.publish([stable, newer_glibc], index)
    return index


def test_pip_installs_exactly_where_coverage_says(tmp_path: Path) -> None:
    index = published(tmp_path)
    recipe = tmp_path / "demo-ext.toml"
    recipe.write_text(RECIPE)
    table = releases.load()
    cells = plan([load_recipe(recipe)], table,
                 select=Selection(torch=SpecifierSet(">=2.11,<2.13"))).cells  # fmt: skip
    report = coverage(cells, load_manifest(index), table)
    assert {r.environment.torch for r in report.rows} == {"2.11", "2.12"}
    assert report.rows and not report.complete and any(r.published for r in report.rows)
    env = installer_env(tmp_path)
    (tmp_path / "empty").mkdir()
    with start_server(index) as server, start_server(tmp_path / "empty") as empty:
        for row in report.rows:
            e = row.environment
            minor = e.python.split(".")[1]
            dest = tmp_path / "got" / row.id
            pip = _proc.run(
                [sys.executable, "-m", "pip", "download", "demo-ext", "--no-deps",
                 "--only-binary=:all:", "--dest", str(dest), "--python-version", e.python,
                 "--implementation", "cp", "--abi", f"cp3{minor}",
                 "--platform", "manylinux_2_28_x86_64",
                 "--index-url", empty.url + "simple/",
                 "--extra-index-url", f"{server.url}{e.view}/simple/"],
                env=env, check=False,
            )  # fmt: skip
            got = [p.name for p in dest.glob("*.whl")] if dest.is_dir() else []
            assert (pip.returncode == 0) == row.published, (row.id, row.why, pip.stdout[-800:])
            assert got == ([row.filename] if row.published else []), (row.id, got)
    why = {(r.environment.torch, r.environment.python): r.why for r in report.unpublished}
    assert why[("2.12", "3.10")].startswith("Requires-Python >=3.11")
    assert why[("2.11", "3.12")].startswith(
        "no wheel in cu130/torch2.11 view installs on CPython 3.12 linux-x86_64 (it has"
        " demo_ext-1.0.0+cu130torch2.11-cp312-cp312-manylinux_2_34_x86_64.whl)")
