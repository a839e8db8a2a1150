"""The landing page in a real headless Chromium: pick setups in the selector, read the
command the page shows, and check it against which.advise() for the same setup; the seed
user's setup (Windows, RTX 5090, ComfyUI) at phone and laptop widths with their browsers'
user agents; the coverage view of an index holding every planned cell.

Chromium is Debian's (/usr/bin/chromium, or $WHEELFACTORY_CHROMIUM), driven by Playwright
without Playwright's own browser download. The index is rendered by index.render_index with
the landing hooks and served by a plain http.server on 127.0.0.1. A full-page screenshot is
kept under the test's tmp dir and copied to $WHEELFACTORY_ARTIFACTS (default out/artifacts/);
the screenshots at 390 and 1366 px go to $WHEELFACTORY_SCREENSHOTS when it is set.
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
from _full_plan import full_plan_manifest
from wheelfactory import index, landing, naming, which
from wheelfactory.manifest import Manifest, PublishedFile, save_manifest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("WHEELFACTORY_CHROMIUM", "/usr/bin/chromium")
SHOTS = os.environ.get("WHEELFACTORY_SCREENSHOTS")
USER_AGENTS = {
    "windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/131.0.0.0 Safari/537.36",
    "linux": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/131.0.0.0 Safari/537.36",
}
PHONE, LAPTOP = 390, 1366
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
       pf("sageattn3", "1.0.0+cu128torch2.8", "cp312", LINUX, ["12.0a"]),  # not the GB10's
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
    ("sageattn3", "linux-x86_64", "3.12", "2.9", "12.8"),            # nearest: 2.8 / 12.8
]

# The same with a GPU picked by name: (setup, GPU key).
GPU_SETUPS = [
    (("sageattention", "windows-amd64", "3.12", "2.9", "12.8"), "rtx50"),  # the seed user
    (("sageattention", "linux-x86_64", "3.12", "2.14", "13.0"), "a100"),
    (("sageattn3", "linux-x86_64", "3.12", "2.14", "13.0"), "a100"),       # never for an A100
    (("sageattn3", "linux-x86_64", "3.12", "2.8", "12.8"), "gb10"),        # 12.0a only: nearest
    (("sageattention", "linux-x86_64", "3.12", "2.14", "13.0"), "b300"),   # no 10.3 kernels
]


def machine(platform: str, python: str, torch: str, cuda: str,
            gpu: landing.GpuProduct | None = None) -> which.Machine:
    _, osname, arch = landing.PLATFORMS[platform]
    gpus = (which.Gpu(name=gpu.name, capability=gpu.capability),) if gpu else ()
    return which.Machine(os=osname, arch=arch, python=python.rstrip("t"),
                         free_threaded=python.endswith("t"), glibc=None,
                         torch=f"{torch}.0+cu{cuda.replace('.', '')}", torch_cuda=cuda, gpus=gpus)


def gpu(key: str) -> landing.GpuProduct:
    return next(g for g in landing.gpu_products() if g.key == key)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _serve(manifest: Manifest, site: Path):
    """Render ``manifest``'s index into ``site`` and serve it; yield its root URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    root = f"http://127.0.0.1:{server.server_address[1]}"
    for path, data in index.render_index(manifest, hooks=landing.landing_hooks(root)).items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_bytes(data)
    save_manifest(site, manifest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def served_index(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    for root in _serve(MANIFEST, site):
        yield root, site


@pytest.fixture(scope="module")
def full_plan_root(tmp_path_factory):
    yield from _serve(full_plan_manifest(), tmp_path_factory.mktemp("full-plan"))


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        msg = f"{CHROMIUM} missing: apt-get install -y chromium, or set WHEELFACTORY_CHROMIUM"
        pytest.fail(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


# Records what the page hands to the Clipboard API (and passes it on).
_RECORD_COPIES = """
window.__copied = [];
if (navigator.clipboard) {
  const write = navigator.clipboard.writeText.bind(navigator.clipboard);
  navigator.clipboard.writeText = (text) => { window.__copied.push(text); return write(text); };
}
"""


def open_page(browser, root: str, *, width: int = 1200, user_agent: str | None = None):
    """A fresh context (its own user agent, viewport, clipboard permission; touch at phone
    width) with a page on ``root``; returns (page, errors). Nothing may leave 127.0.0.1:
    no external assets, no trackers."""
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  user_agent=user_agent, has_touch=width < 800)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=root)
    context.add_init_script(_RECORD_COPIES)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.route("**/*", lambda route: route.continue_()
             if route.request.url.startswith(root) or route.request.url.startswith("data:")
             else (errors.append("external request " + route.request.url), route.abort()))
    pg.goto(root + "/")
    return pg, errors


@pytest.fixture(scope="module")
def page(browser, served_index):
    root, _ = served_index
    pg, errors = open_page(browser, root)
    yield pg, errors
    pg.context.close()


def choose(pg, package: str, platform: str, python: str, torch: str, cuda: str,
           gpu_key: str = "") -> dict:
    for key, value in (("project", package), ("platform", platform), ("gpu", gpu_key),
                       ("python", python), ("torch", torch), ("cuda", cuda)):
        pg.select_option(f"#sel-{key}", value)
    return {
        "ok": pg.get_attribute("#result", "data-ok") == "1",
        "verdict": pg.inner_text("#verdict"),
        "pip": pg.inner_text("#cmd-pip") if pg.is_visible("#cmd-pip") else None,
        "portable": pg.inner_text("#cmd-portable") if pg.is_visible("#cmd-portable") else None,
        "uv": pg.inner_text("#cmd-uv") if pg.is_visible("#cmd-uv") else None,
    }


def screenshot(pg, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def page_width(pg) -> int:
    return pg.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("setup", SETUPS, ids=["-".join(s) for s in SETUPS])
def test_selector_agrees_with_which(page, served_index, setup) -> None:
    pg, errors = page
    root, _ = served_index
    package, platform, python, torch, cuda = setup
    shown = choose(pg, *setup)
    m = machine(platform, python, torch, cuda)
    advice = which.advise(m, package, list(MANIFEST.files), index_root=root)
    assert shown["ok"] == advice.ok, (shown, advice.render())
    # not offered here: the page, like which, gives the command of the package that works
    assert shown["pip"] == (advice.command or advice.instead), (shown, advice.render())
    if advice.command or not advice.instead:
        assert shown["uv"] == advice.uv_command
    if not advice.ok:
        # The page's sentence is which's sentence (which is a single problem here).
        assert shown["verdict"] == "Not covered: " + advice.problems[0], advice.render()
    assert errors == []


@pytest.mark.parametrize(("setup", "gpu_key"), GPU_SETUPS,
                         ids=["-".join((*s, g)) for s, g in GPU_SETUPS])
def test_gpu_picker_agrees_with_which(page, served_index, setup, gpu_key) -> None:
    """Covered or not, as which.advise() says for a machine with that GPU; the sentence
    is the page's own plainer one (product names, not sm_ numbers)."""
    pg, errors = page
    root, _ = served_index
    package, platform, python, torch, cuda = setup
    shown = choose(pg, *setup, gpu_key)
    advice = which.advise(machine(platform, python, torch, cuda, gpu(gpu_key)), package,
                          list(MANIFEST.files), index_root=root)
    assert shown["ok"] == advice.ok, (shown, advice.render())
    if shown["ok"]:
        assert shown["pip"] == advice.command
    problem = landing.gpu_problems(landing.landing_data(MANIFEST, root)["files"])
    if gpu_key in problem.get(package, {}):
        assert shown["verdict"] == "Not covered: " + problem[package][gpu_key]
        assert advice.command is None and shown["pip"] == advice.instead
    note = pg.inner_text("#gpu-note")
    assert note.startswith(f"The {gpu(gpu_key).short} is compute capability "
                           f"{gpu(gpu_key).capability_text}."), note
    assert errors == []


def test_gpu_misfit_names_the_gpu_and_the_nearest_setup(page, served_index) -> None:
    pg, errors = page
    root, _ = served_index
    shown = choose(pg, "sageattn3", "linux-x86_64", "3.12", "2.8", "12.8", "gb10")
    assert shown["verdict"] == (
        "Not covered: the sageattn3 wheels for torch 2.8 with CUDA 12.8 have no kernels for "
        "the GB10 / DGX Spark (compute capability 12.1; their GPU targets: 12.0a): nearest is "
        "torch 2.14 with CUDA 13.0: python -m pip install \"torch==2.14.*\" --index-url "
        f"https://download.pytorch.org/whl/cu130, then: {shown['pip']}")
    assert shown["pip"] == ("python -m pip install sageattn3 --extra-index-url "
                            f"{root}/cu130/torch2.14/simple/")
    assert errors == []


@pytest.mark.parametrize("agent", sorted(USER_AGENTS))
@pytest.mark.parametrize("width", [PHONE, LAPTOP])
def test_seed_user(browser, served_index, width, agent) -> None:
    """A ComfyUI user with an RTX 5090 on Windows who does not know the GPU is "12.0a"."""
    root, _ = served_index
    pg, errors = open_page(browser, root, width=width, user_agent=USER_AGENTS[agent])
    # The OS comes from the browser.
    expected_os = {"windows": "windows-amd64", "linux": "linux-x86_64"}[agent]
    assert pg.input_value("#sel-platform") == expected_os
    assert pg.is_visible("#portable") == (agent == "windows")
    assert page_width(pg) <= width
    screenshot(pg, f"landing-{agent}-{width}-first-view.png")
    shown = choose(pg, "sageattention", "windows-amd64", "3.12", "2.9", "12.8", "rtx50")
    view = f"{root}/cu128/torch2.9/simple/"
    assert shown["ok"], shown
    assert shown["pip"] == f"python -m pip install sageattention --extra-index-url {view}"
    assert shown["portable"] == (
        f"python_embeded\\python.exe -m pip install sageattention --extra-index-url {view}")
    assert "RTX 50 series is compute capability 12.0" in pg.inner_text("#gpu-note")
    assert "which run on the RTX 50 series" in pg.inner_text("#detail")
    # The copy button hands the command to the clipboard.
    pg.click("button[data-copy=cmd-pip]")
    pg.wait_for_function("window.__copied.length > 0")
    assert pg.evaluate("window.__copied") == [shown["pip"]]
    assert pg.evaluate("navigator.clipboard.readText()") == shown["pip"]
    assert pg.inner_text("button[data-copy=cmd-pip]") == "Copied"
    assert page_width(pg) <= width  # no horizontal scrolling, phone included
    screenshot(pg, f"landing-{agent}-{width}.png")
    # The same user on an A100 asking for sageattn3 is told why not, and given the
    # sageattention command that works there.
    shown = choose(pg, "sageattn3", "windows-amd64", "3.12", "2.8", "12.8", "a100")
    assert not shown["ok"]
    assert shown["pip"] == f"python -m pip install sageattention --extra-index-url {root}/cu128/torch2.8/simple/"
    assert shown["verdict"].startswith(
        "Not covered: sageattn3 needs an RTX 50 series, RTX PRO Blackwell, B200 or "
        "GB10 / DGX Spark GPU (compute capability 10.0, 12.0 or 12.1): the A100 is compute "
        "capability 8.0"), shown["verdict"]
    assert page_width(pg) <= width
    screenshot(pg, f"landing-{agent}-{width}-a100-sageattn3.png")
    assert errors == []
    pg.context.close()


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
def test_full_plan_coverage(browser, full_plan_root, width) -> None:
    """Every planned cell published: the page stays small, fits the screen, shows every OS
    at laptop width, and a tap on a badge lists its files (no hover-only information)."""
    pg, errors = open_page(browser, full_plan_root, width=width,
                           user_agent=USER_AGENTS["windows"])
    size = len(pg.request.get(full_plan_root + "/index.html").body())
    assert size < 300_000, size
    assert page_width(pg) <= width
    if width == LAPTOP:
        overflow = pg.eval_on_selector_all(
            "#coverage th[data-platform]",
            "ths => ths.filter(th => th.getBoundingClientRect().right > innerWidth)"
            ".map(th => th.textContent)")
        assert overflow == []
    # A badge of two versions (sageattention 2.2.0 and its post-release) lists both.
    badge = pg.locator("table[data-project=sageattention] a.py[data-f*=' ']").first
    rows = badge.get_attribute("data-f").split()
    assert len(rows) == 2
    badge.tap() if width == PHONE else badge.click()
    items = pg.locator("tr.cell-files li")
    assert items.count() == 2
    names = [pg.text_content(f"#f{n} td.fn a") for n in rows]
    assert [items.nth(i).locator("a").first.inner_text() for i in range(2)] == names
    first = items.first.inner_text()
    assert "GPU targets" in first and "built 2026-11-24" in first
    assert page_width(pg) <= width
    screenshot(pg, f"full-plan-{width}.png")
    # From a badge to its install command: the selector takes the badge's setup.
    setup = badge.evaluate("""b => {
        const td = b.closest("td"), cuda = td.parentNode.querySelector("td[data-cuda]");
        const th = td.closest("table").tHead.rows[0].cells[td.cellIndex];
        return [th.dataset.platform, b.textContent.replace(/[+]$/, ""), cuda.dataset.torch, cuda.dataset.cuda];
    }""")
    pg.click("tr.cell-files button")
    assert [pg.input_value(f"#sel-{k}") for k in ("platform", "python", "torch", "cuda")] == setup
    assert pg.get_attribute("#result", "data-ok") == "1", pg.inner_text("#verdict")
    assert errors == []
    pg.context.close()


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
    torch_cmd = '"torch==2.14.*" --index-url https://download.pytorch.org/whl/cu130'
    assert torch_cmd in data["problems"][0]


# --------------------------------------------------------------------------- first visit

FIRST_SCREEN = {"width": PHONE, "height": 844}  # a 390 x 844 phone (iPhone 12 to 15)


def _published_index(tmp_path: Path, wheels: list[tuple[str, str, str, str]]):
    """Publish sageattention wheels ((CUDA tag, torch, CPython tag, platform tag)) made by
    tests/_index_wheels.py into a real index (publish.publish, landing page included) and
    serve it on 127.0.0.1; yield its root URL."""
    from _index_wheels import make_wheel
    from _records import record_json
    from wheelfactory import publish

    site = tmp_path / "site"
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    root = f"http://127.0.0.1:{server.server_address[1]}"
    paths = [make_wheel(tmp_path / "wheels", name="sageattention", version="2.2.0", cuda=cuda,
                        torch=torch, python_tag=py, abi_tag=py, platform_tag=plat,
                        build_record=record_json(
                            package="sageattention", targets=SA2, torch=f"{torch}.0",
                            package_version=f"2.2.0+cu{cuda}torch{torch}",
                            torch_requirement=f"torch=={torch}.*", cuda=f"{cuda[:-1]}.{cuda[-1]}",
                            python_tag=f"{py}-{py}",
                            platform="windows-amd64" if plat == "win_amd64" else "linux-x86_64"))
             for cuda, torch, py, plat in wheels]
    publish.publish(paths, site, index_url=root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root
    server.shutdown()
    server.server_close()


def first_view(pg) -> dict:
    """What the page shows before the visitor touches anything."""
    setup = {k: pg.input_value(f"#sel-{k}") for k in ("project", "platform", "gpu", "python",
                                                       "torch", "cuda")}
    return {"setup": setup, "ok": pg.get_attribute("#result", "data-ok") == "1",
            "verdict": pg.inner_text("#verdict"),
            "pip": pg.inner_text("#cmd-pip") if pg.is_visible("#cmd-pip") else None}


def assert_which_agrees(root: str, files: list, shown: dict) -> None:
    """The page's first command is which.advise()'s for a machine with the shown setup."""
    s = shown["setup"]
    advice = which.advise(machine(s["platform"], s["python"], s["torch"], s["cuda"]),
                          s["project"], files, index_root=root)
    assert advice.ok, advice.render()
    assert shown["pip"] == advice.command


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
def test_windows_visitor_starts_on_a_covered_setup(browser, full_plan_root, width) -> None:
    """Every planned cell published: the newest torch and CUDA have no Windows wheels, yet a
    Windows visitor's first view, defaults untouched, is a covered sageattention command."""
    pg, errors = open_page(browser, full_plan_root, width=width,
                           user_agent=USER_AGENTS["windows"])
    shown = first_view(pg)
    assert shown["setup"]["platform"] == "windows-amd64"
    assert shown["setup"]["project"] == "sageattention"
    assert shown["ok"] and shown["verdict"] == "This setup is covered.", shown
    assert shown["pip"].startswith("python -m pip install sageattention --extra-index-url ")
    assert pg.is_visible("#cmd-portable")
    assert_which_agrees(full_plan_root, list(full_plan_manifest().files), shown)
    # The newest setup covered there: torch 2.15 through the stable-ABI wheels.
    assert (shown["setup"]["torch"], shown["setup"]["python"]) == ("2.15", "3.12")
    # The seed user (issue 24): an RTX 5090 and sageattn3, in ComfyUI portable's form.
    s = shown["setup"]
    sa3 = choose(pg, "sageattn3", "windows-amd64", s["python"], s["torch"], s["cuda"], "rtx50")
    assert sa3["ok"], sa3
    assert sa3["portable"] == (r"python_embeded\python.exe -m pip install sageattn3 --extra-index-url "
                               f"{full_plan_root}/{naming.view_path(s['cuda'], s['torch'])}/simple/")
    m = machine("windows-amd64", s["python"], s["torch"], s["cuda"], gpu("rtx50"))
    advice = which.advise(m, "sageattn3", list(full_plan_manifest().files), index_root=full_plan_root)
    assert advice.ok and advice.command == sa3["pip"], advice.render()
    assert errors == []
    pg.context.close()


def test_windows_visitor_of_an_older_windows_build(browser, tmp_path) -> None:
    """A published index whose Windows wheels are older than its Linux ones: the Windows
    visitor starts on the Windows wheel's torch and CUDA, the Linux visitor on Linux's."""
    wheels = [("130", "2.15", "cp312", "manylinux_2_28_x86_64"),
              ("128", "2.9", "cp312", "win_amd64"), ("128", "2.9", "cp313", "win_amd64")]
    for root in _published_index(tmp_path, wheels):
        files = json.loads((tmp_path / "site" / "manifest.json").read_text())["files"]
        for agent, want in (("windows", ("windows-amd64", "2.9", "12.8", "3.12")),
                            ("linux", ("linux-x86_64", "2.15", "13.0", "3.12"))):
            pg, errors = open_page(browser, root, user_agent=USER_AGENTS[agent])
            shown = first_view(pg)
            s = shown["setup"]
            assert (s["platform"], s["torch"], s["cuda"], s["python"]) == want, shown
            assert shown["ok"], shown
            assert_which_agrees(root, files, shown)
            assert errors == []
            pg.context.close()


def test_index_without_windows_wheels_tells_the_windows_visitor(browser, tmp_path) -> None:
    """Linux wheels only: the Windows visitor stays on Windows and is told there are no
    Windows wheels, with no command to copy; the Linux visitor gets the Linux command."""
    wheels = [("130", "2.14", "cp312", "manylinux_2_28_x86_64"),
              ("128", "2.9", "cp312", "manylinux_2_28_x86_64")]
    for root in _published_index(tmp_path, wheels):
        pg, errors = open_page(browser, root, user_agent=USER_AGENTS["windows"])
        shown = first_view(pg)
        assert shown["setup"]["platform"] == "windows-amd64"
        assert not shown["ok"] and shown["pip"] is None, shown
        assert shown["verdict"] == ("No Windows x64 wheels are published yet: this index has "
                                    "wheels for Linux x86_64 only. Open an issue to ask for "
                                    "Windows x64 wheels.")
        assert not pg.is_visible("#commands")
        # Choosing Linux by hand gives the Linux command.
        pg.select_option("#sel-platform", "linux-x86_64")
        assert pg.get_attribute("#result", "data-ok") == "1", pg.inner_text("#verdict")
        pg.context.close()
        pg, errors2 = open_page(browser, root, user_agent=USER_AGENTS["linux"])
        shown = first_view(pg)
        assert shown["setup"]["platform"] == "linux-x86_64" and shown["ok"], shown
        assert shown["pip"] == ("python -m pip install sageattention --extra-index-url "
                                f"{root}/cu130/torch2.14/simple/")
        pg.context.close()
        assert errors == [] and errors2 == []


def test_one_package_without_wheels_for_the_os(page) -> None:
    """sageattn3 has no Linux aarch64 wheels in MANIFEST (sageattention has): said so."""
    pg, errors = page
    shown = choose(pg, "sageattn3", "linux-aarch64", "3.12", "2.14", "13.0")
    assert not shown["ok"]
    assert shown["pip"].startswith("python -m pip install sageattention "), shown  # what works there
    assert shown["verdict"] == ("No sageattn3 wheels for Linux aarch64 (GH200, DGX Spark) are "
                                "published yet (sageattn3 has wheels for Linux x86_64, Windows "
                                "x64). Open an issue to ask for them.")
    assert errors == []


@pytest.mark.parametrize("agent", sorted(USER_AGENTS))
def test_selector_is_on_the_first_screen_of_a_phone(browser, full_plan_root, agent) -> None:
    """At 390 x 844 the whole selector, and the verdict under it, show without scrolling."""
    context = browser.new_context(viewport=FIRST_SCREEN, user_agent=USER_AGENTS[agent],
                                  has_touch=True, is_mobile=True)
    pg = context.new_page()
    pg.goto(full_plan_root + "/")
    box = pg.locator("#selector").bounding_box()
    verdict = pg.locator("#verdict").bounding_box()
    assert box is not None and verdict is not None
    assert 0 <= box["y"] and box["y"] + box["height"] <= FIRST_SCREEN["height"], box
    assert verdict["y"] + verdict["height"] <= FIRST_SCREEN["height"], verdict
    assert page_width(pg) <= PHONE
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(Path(SHOTS) / f"landing-{agent}-390x844-first-screen.png"))
    context.close()


def test_stable_abi_wheels_count_in_notes_and_verdicts(browser, full_plan_root) -> None:
    """Stable-ABI wheels (+cu130torchabi, every torch from their floor on) are named in the
    GPU note, and count as covering their torch in a verdict about another CUDA."""
    pg, errors = open_page(browser, full_plan_root, user_agent=USER_AGENTS["windows"])
    choose(pg, "sageattention", "windows-amd64", "3.12", "2.9", "12.8", "rtx40")
    note = pg.inner_text("#gpu-note")
    assert note == ("The RTX 40 series is compute capability 8.9. sageattention wheels for "
                    "Windows x64 that run on it: CUDA 12.4, 12.6, 12.8, 12.9, 13.0, 13.2 "
                    "(torch 2.6 to 2.15; stable-ABI wheels serve torch 2.10 and later)."), note
    # torch 2.15 with CUDA 12.4: no wheel of that CUDA, but stable-ABI ones serve 2.15.
    shown = choose(pg, "sageattention", "windows-amd64", "3.12", "2.15", "12.4")
    assert not shown["ok"]
    assert shown["verdict"].startswith(
        "Not covered: no sageattention wheels for torch 2.15 (CUDA 12.4) (torch 2.15 is covered "
        "with CUDA 12.6, 12.8, 13.0, 13.2): nearest is torch 2.15 with CUDA 12.6"), shown
    assert shown["pip"] == ("python -m pip install sageattention --extra-index-url "
                            f"{full_plan_root}/cu126/torchabi/simple/")
    assert errors == []
    pg.context.close()


def test_where_sageattn3_is_not_offered_the_page_gives_the_sageattention_command(page, served_index) -> None:
    """Issue 24: the reason in one sentence, and the command that does work on this setup."""
    pg, errors = page
    root, _ = served_index
    shown = choose(pg, "sageattn3", "linux-x86_64", "3.12", "2.14", "13.0", "h100")
    assert shown["verdict"].startswith("Not covered: sageattn3 needs"), shown
    assert shown["pip"] == f"python -m pip install sageattention --extra-index-url {root}/cu130/torch2.14/simple/"
    assert "install sageattention, which runs on this setup instead" in pg.inner_text("#detail")
    assert errors == []
