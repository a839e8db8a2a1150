"""naming.view_path owns the index's view paths; the standalone copies (which.py, the
guard template, the landing page's script) are checked against it over many inputs."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess

import pytest
from wheelfactory import guard, index, landing, naming, which
from wheelfactory.manifest import PublishedFile

CUDAS = ["11.8", "12.4", "12.6", "12.8", "12.9", "13.0", "13.1", "12.8.1"]
TORCHES = ["2.14.1+cu130", "2.8.0", "2.9.1+cu128", "2.10.0", "2.14", "3.0.0", "2.15.0.dev20261201",
           "2.11.0a0+gitabc", "2.9.0+cpu"]
STRICT = list(itertools.product(CUDAS, TORCHES))


def test_naming_view_path_spells_each_kind_of_view() -> None:
    assert naming.view_path("13.0", "2.14.1+cu130") == "cu130/torch2.14"
    assert naming.view_path("13.0", "abi") == "cu130/torchabi"
    assert naming.view_path("12.8") == "cu128"


@pytest.mark.parametrize("cuda,torch", [*STRICT, *((c, "abi") for c in CUDAS),
                                        *((c, None) for c in CUDAS)])
def test_which_copy_agrees(cuda: str, torch: str | None) -> None:
    assert which.view_path(cuda, torch) == naming.view_path(cuda, torch)


def test_guard_template_copy_agrees() -> None:
    src = guard.GUARD_TEMPLATE.read_text(encoding="utf-8").replace("\ncheck()\n", "\n")
    ns: dict = {}
    exec(compile(src, "guard_template", "exec"), ns)  # the template without its call
    for cuda, torch in STRICT:  # the guard names the strict view of the running torch
        minor = "{}.{}".format(*ns["_minor"](torch))
        assert ns["_view_path"](cuda, minor) == naming.view_path(cuda, torch), (cuda, torch)


def test_index_lists_a_file_in_the_views_naming_names() -> None:
    file = PublishedFile(
        filename="demo_ext-1.0.0+cu130torchabi-cp310-abi3-manylinux_2_28_x86_64.whl",
        project="demo-ext", version="1.0.0+cu130torchabi", sha256="0" * 64, size=1,
        url="files/x.whl", upload_time="2026-05-01T12:00:00.000000Z", covers=("2.12", "2.14"))
    assert index.views_of(file) == (naming.view_path("13.0", "abi"), naming.view_path("13.0"),
                                    naming.view_path("13.0", "2.12"),
                                    naming.view_path("13.0", "2.14"))


def _js_function(source: str, name: str) -> str:
    m = re.search(rf"^ *function {name}\(.*$", source, re.MULTILINE)
    assert m, f"landing.js has no one-line function {name}()"
    return m.group(0)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_landing_js_copy_agrees() -> None:
    """landing.js's viewUrl(cuda, torch minor), run by node on the page's own source lines."""
    source = (landing.TEMPLATES / "landing.js").read_text(encoding="utf-8")
    cases = [(c, naming.torch_minor(t)) for c, t in STRICT] + [(c, "abi") for c in CUDAS]
    script = "\n".join([
        'var data = {root: "ROOT"};',
        _js_function(source, "cudaTag"),
        _js_function(source, "viewUrl"),
        f"var cases = {json.dumps(cases)};",
        "console.log(JSON.stringify(cases.map(function (c) { return viewUrl(c[0], c[1]); })));",
    ])
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60,
                         check=True)
    got = json.loads(out.stdout)
    want = [f"ROOT/{naming.view_path(c, t)}/simple/" for c, t in cases]
    assert got == want
