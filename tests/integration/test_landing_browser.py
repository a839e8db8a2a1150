"""The landing page in a real headless Chromium: pick setups in the selector, read the
command the page shows, and check it against which.advise() for the same setup.

Chromium is Debian's (/usr/bin/chromium, or $WHEELFACTORY_CHROMIUM), driven by Playwright
without Playwright's own browser download. The index is rendered by index.render_index with
the landing hooks and served by a plain http.server on 127.0.0.1. A full-page screenshot is
kept under the test's tmp dir and copied to $WHEELFACTORY_ARTIFACTS (default out/artifacts/).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from wheelfactory import index, landing, which
from wheelfactory.manifest import Manifest, PublishedFile, save_manifest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("WHEELFACTORY_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SA2 = ["8.0", "8.6", "8.9", "9.0a", "10.0a", "12.0a", "12.1a"]
SA3 = ["10.0a", "12.0a", "12.1a"]
LINUX, ARM, WIN = "manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "win_amd64"


def pf(project: str, version: str, py: str, plat: str, targets: list[str], **kw) -> PublishedFile:
    name = f"{project}-{version}-{py.rstrip('t')}-{py}-{plat}.whl"
    return PublishedFile(filename=name, project=project, version=version, sha256="b" * 64,
                         size=9_400_000 if project == "sageattention" else 3_100_000,
                         url=f"files/{name}", upload_time="2026-11-24T10:00:00.000000Z",
                         build_record={"targets": targets}, **kw)


MANIFEST = Manifest(files=tuple(
    [pf("sageattention", f"2.2.0+cu{c}torch{t}", py, plat, SA2)
     for c, t in (("128", "2.8"), ("128", "2.9"), ("130", "2.9"), ("130", "2.14"))
     for py in ("cp310", "cp311", "cp312", "cp313")
     for plat in (LINUX, WIN)]
    + [pf("sageattention", "2.2.0+cu130torch2.14", "cp314t", LINUX, SA2),
       pf("sageattention", "2.2.0+cu130torch2.14", "cp312", ARM, SA2),
       pf("sageattn3", "1.0.0+cu128torch2.8", "cp312", WIN, SA3),
       pf("sageattn3", "1.0.0+cu130torch2.14", "cp312", LINUX, SA3,
          provenance_url="https://attest.example.org/sageattn3/1"),
       pf("sageattention", "2.1.0+cu130torch2.14", "cp312", LINUX, SA2, yanked=True,
          yank_reason="black output on sm_120")]
))

# (package, platform key, python, torch, cuda): covered and uncovered setups.
SETUPS = [
    ("sageattention", "windows-amd64", "3.12", "2.8", "12.8"),      # RTX 5090 on Windows
    ("sageattention", "linux-x86_64", "3.11", "2.14", "13.0"),       # H100
    ("sageattention", "linux-x86_64", "3.14t", "2.14", "13.0"),      # free-threaded
    ("sageattention", "linux-aarch64", "3.12", "2.14", "13.0"),      # GH200 / DGX Spark
    ("sageattention", "linux-aarch64", "3.11", "2.14", "13.0"),      # Python not covered
    ("sageattention", "windows-amd64", "3.14t", "2.14", "13.0"),     # nothing fits
    ("sageattention", "linux-x86_64", "3.12", "2.14", "12.8"),       # other CUDA: nearest
    ("sageattention", "linux-x86_64", "3.12", "2.8", "13.0"),        # nearest torch 2.9
    ("sageattn3", "windows-amd64", "3.12", "2.8", "12.8"),
    ("sageattn3", "linux-x86_64", "3.12", "2.9", "12.8"),            # nearest: 2.14 / 13.0
]


def machine(platform: str, python: str, torch: str, cuda: str) -> which.Machine:
    _, osname, arch = landing.PLATFORMS[platform]
    return which.Machine(os=osname, arch=arch, python=python.rstrip("t"),
                         free_threaded=python.endswith("t"), glibc=None,
                         torch=f"{torch}.0+cu{cuda.replace('.', '')}", torch_cuda=cuda)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def served_index(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    root = f"http://127.0.0.1:{server.server_address[1]}"
    for path, data in index.render_index(MANIFEST, hooks=landing.landing_hooks(root)).items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_bytes(data)
    save_manifest(site, MANIFEST)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, site
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def page(served_index, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        msg = f"{CHROMIUM} missing: apt-get install -y chromium, or set WHEELFACTORY_CHROMIUM"
        pytest.fail(msg)
    from playwright.sync_api import sync_playwright

    root, _ = served_index
    profile = tmp_path_factory.mktemp("chromium-profile")
    errors: list[str] = []
    with sync_playwright() as p:
        # A fresh profile dir (Playwright passes it as --user-data-dir).
        browser = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=FLAGS,
            viewport={"width": 1200, "height": 900})
        pg = browser.new_page()
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        # Nothing may leave 127.0.0.1: no external assets, no trackers.
        pg.route("**/*", lambda route: route.continue_()
                 if route.request.url.startswith(root) or route.request.url.startswith("data:")
                 else (errors.append("external request " + route.request.url), route.abort()))
        pg.goto(root + "/")
        yield pg, errors
        browser.close()


def choose(pg, package: str, platform: str, python: str, torch: str, cuda: str) -> dict:
    for key, value in (("project", package), ("platform", platform), ("python", python),
                       ("torch", torch), ("cuda", cuda)):
        pg.select_option(f"#sel-{key}", value)
    return {
        "ok": pg.get_attribute("#result", "data-ok") == "1",
        "verdict": pg.inner_text("#verdict"),
        "pip": pg.inner_text("#cmd-pip") if pg.is_visible("#cmd-pip") else None,
        "uv": pg.inner_text("#cmd-uv") if pg.is_visible("#cmd-uv") else None,
    }


@pytest.mark.parametrize("setup", SETUPS, ids=["-".join(s) for s in SETUPS])
def test_selector_agrees_with_which(page, served_index, setup) -> None:
    pg, errors = page
    root, _ = served_index
    package, platform, python, torch, cuda = setup
    shown = choose(pg, *setup)
    m = machine(platform, python, torch, cuda)
    advice = which.advise(m, package, list(MANIFEST.files), index_root=root)
    assert shown["ok"] == advice.ok, (shown, advice.render())
    assert shown["pip"] == advice.command, (shown, advice.render())
    assert shown["uv"] == advice.uv_command
    if not advice.ok:
        # The page's sentence is which's sentence (which is a single problem here).
        assert shown["verdict"] == "Not covered: " + advice.problems[0], advice.render()
    assert errors == []


def test_screenshot_and_links(page, served_index, tmp_path) -> None:
    pg, errors = page
    root, site = served_index
    choose(pg, "sageattention", "windows-amd64", "3.12", "2.8", "12.8")
    pg.click("#files summary")
    shot = tmp_path / "landing.png"
    pg.screenshot(path=str(shot), full_page=True)
    artifacts = Path(os.environ.get("WHEELFACTORY_ARTIFACTS", REPO / "out" / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, artifacts / "landing.png")
    assert shot.stat().st_size > 10_000
    # Build records and attestations are linked, and the records are served.
    hrefs = pg.eval_on_selector_all("#files a", "els => els.map(e => e.href)")
    assert "https://attest.example.org/sageattn3/1" in hrefs
    records = [h for h in hrefs if "/records/" in h]
    assert len(records) == len(MANIFEST.files)
    resp = pg.request.get(records[0])
    assert resp.ok and "targets" in resp.json()
    assert errors == []


def test_served_which_py_reads_the_manifest(served_index, tmp_path) -> None:
    root, site = served_index
    script = tmp_path / "which.py"
    script.write_bytes((site / "which.py").read_bytes())
    # An isolated Python without torch: which.py fetches manifest.json from the index it
    # came from and names the torch build to install first.
    out = subprocess.run([sys.executable, "-I", str(script), "sageattention", "--json"],
                         capture_output=True, text=True, timeout=60, check=False)
    data = json.loads(out.stdout)
    assert out.returncode == 1 and data["ok"] is False
    assert not any("manifest not read" in n for n in data["notes"])
    torch_cmd = "'torch==2.14.*' --index-url https://download.pytorch.org/whl/cu130"
    assert torch_cmd in data["problems"][0]
