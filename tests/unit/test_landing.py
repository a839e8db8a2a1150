"""The landing page: deterministic bytes, escaping of hostile manifest values, which.py
served with the index root filled in, and the hook into the index renderer."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from wheelfactory import arch, index, landing, which
from wheelfactory.errors import ConfigError
from wheelfactory.manifest import Manifest, PublishedFile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
ROOT = "https://wheels.example.org/idx"
HOSTILE = '</script><script>alert("x")</script><img src=x onerror=alert(1)>&amp;\u2028'


def pf(filename: str, **kw) -> PublishedFile:
    info = which.parse_wheel(filename)
    base = dict(filename=filename, project=info.project, version=info.version, sha256="a" * 64,
                size=9_123_456, url=f"files/{filename}", upload_time="2026-11-24T10:00:00.000000Z",
                build_record={"targets": ["8.0", "9.0a", "12.0a"], "torch": "2.14.1"})
    base.update(kw)
    return PublishedFile(**base)


def manifest() -> Manifest:
    return Manifest(files=(
        pf("sageattention-2.2.0+cu130torch2.14-cp312-cp312-manylinux_2_28_x86_64.whl"),
        pf("sageattention-2.2.0+cu128torch2.8-cp312-cp312-win_amd64.whl",
           provenance_url="https://attest.example.org/p/1"),
        pf("sageattention-2.1.0+cu130torch2.14-cp311-cp311-manylinux_2_28_x86_64.whl",
           yanked=True, yank_reason=HOSTILE, build_record={"targets": ["9.0a"], "note": HOSTILE}),
        pf("sageattn3-1.0.0+cu130torch2.14-cp312-cp312-manylinux_2_28_aarch64.whl",
           build_record={"targets": ["12.1a"]}),
    ))


def test_render_is_deterministic() -> None:
    a = landing.render_landing(manifest(), ROOT)
    b = landing.render_landing(Manifest(files=tuple(reversed(manifest().files))), ROOT)
    assert a == b
    assert list(a) == sorted(a)
    assert {"index.html", "which.py", "assets/landing.css", "assets/landing.js"} <= set(a)


def test_json_form_of_the_manifest_gives_the_same_page() -> None:
    m = manifest()
    assert landing.render_landing(m.to_json(), ROOT) == landing.render_landing(m, ROOT)


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict] = []
        self.handlers: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        d = dict(attrs)
        if tag == "script":
            self.scripts.append(d)
        self.handlers += [k for k in d if k.startswith("on")]
        if "href" in d or "src" in d:
            self.hrefs.append(d.get("href") or d.get("src") or "")


def test_hostile_values_are_escaped() -> None:
    page = landing.render_landing(manifest(), ROOT)["index.html"].decode()
    parser = _Collect()
    parser.feed(page)
    # Exactly our two scripts: the JSON data island and the local landing.js.
    assert parser.scripts == [{"id": "wf-data", "type": "application/json"},
                              {"src": "assets/landing.js"}]
    assert parser.handlers == []
    assert "<img" not in page and "</script><script>" not in page
    # No external assets: every link or source is relative, an anchor, data: or one of
    # the manifest's own absolute URLs.
    for ref in parser.hrefs:
        assert not re.match(r"^(javascript|vbscript):", ref, re.I), ref
        if ref.startswith(("http://", "https://")):
            assert ref.startswith(("https://attest.example.org/",)), ref
    # The data island still decodes to the hostile text's absence-free, exact data.
    island = re.search(r'<script id="wf-data" type="application/json">(.*?)</script>', page, re.S)
    data = json.loads(island.group(1))
    assert data["root"] == ROOT
    assert {e["file"] for e in data["files"]} == {f.filename for f in manifest().files
                                                    if not f.yanked}


def test_data_island_cannot_end_its_script() -> None:
    text = landing._script_json({"x": HOSTILE, "<!--": "-->"})
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert json.loads(text) == {"x": HOSTILE, "<!--": "-->"}


def test_build_records_are_published_as_json() -> None:
    out = landing.render_landing(manifest(), ROOT)
    name = "sageattention-2.1.0+cu130torch2.14-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert json.loads(out[f"records/{name}.json"])["note"] == HOSTILE
    assert 'href="records/sageattention-2.1.0%2Bcu130torch2.14' in out["index.html"].decode()


def test_coverage_matrix_lists_each_setup() -> None:
    page = landing.render_landing(manifest(), ROOT)["index.html"].decode()
    assert '<h3 id="cov-sageattention">' in page and '<h3 id="cov-sageattn3">' in page
    assert "Windows x64" in page and "9.1 MB" in page and "2026-11-24" in page
    assert 'class="py yanked"' in page


def test_which_py_is_served_with_the_root(tmp_path) -> None:
    script = tmp_path / "which.py"
    script.write_bytes(landing.render_landing(manifest(), ROOT)["which.py"])
    assert f"INDEX_ROOT = {ROOT!r}  # wheelfactory:index-root" in script.read_text()
    out = subprocess.run([sys.executable, "-I", str(script), "--json", "--offline"],
                         capture_output=True, text=True, timeout=60, check=False)
    data = json.loads(out.stdout)
    assert data["ok"] is False  # no torch in an isolated interpreter here
    assert data["problems"][0].startswith("torch is not installed in this Python: install a CUDA")
    assert "<INDEX_ROOT>" not in out.stdout  # the served copy never asks for its own root
    # the root is written once, into the INDEX_ROOT line every command is built from
    assert landing.render_landing(manifest(), ROOT)["which.py"].count(ROOT.encode()) == 1


def test_root_must_be_http() -> None:
    with pytest.raises(ConfigError, match="http"):
        landing.render_landing(manifest(), "javascript:alert(1)")


def test_hooks_put_the_landing_page_into_the_index() -> None:
    pages = index.render_index(manifest(), hooks=landing.landing_hooks(ROOT))
    assert pages["index.html"] == landing.render_landing(manifest(), ROOT)["index.html"]
    assert "which.py" in pages and "assets/landing.js" in pages
    assert any(p.startswith("cu130/torch2.14/simple/") for p in pages)


# --------------------------------------------------------------------------- GPUs by name

# The picker's rows as the issue names them: product -> compute capability.
PRODUCTS = {"rtx30": "8.6", "rtx40": "8.9", "rtx50": "12.0", "rtx-pro-blackwell": "12.0",
            "a100": "8.0", "h100": "9.0", "b200": "10.0", "b300": "10.3", "gb10": "12.1"}


def test_gpu_table_is_the_products_with_known_capabilities() -> None:
    products = landing.gpu_products()
    assert {g.key: g.capability_text for g in products} == PRODUCTS
    assert len({g.key for g in products}) == len(products)
    for g in products:
        assert g.name and g.short
        assert g.capability_text in arch.target_table(), g  # a row of gpu-targets.toml


@pytest.mark.parametrize(("targets", "gpus"), [
    (("12.0a", "12.1a"), {"rtx50", "rtx-pro-blackwell", "gb10"}),
    (("12.0a",), {"rtx50", "rtx-pro-blackwell"}),  # "a": exactly 12.0, not the GB10's 12.1
    (("12.0",), {"rtx50", "rtx-pro-blackwell", "gb10"}),  # plain: later minors of 12 too
    (("9.0a",), {"h100"}),
    (("8.0",), {"rtx30", "rtx40", "a100"}),  # 8.6 and 8.9 run 8.0's SASS, 9.0 does not
    (("8.9+PTX",), {"rtx40", "h100", "b200", "b300", "rtx50", "rtx-pro-blackwell", "gb10"}),
    (("10.0a",), {"b200"}),
    (("10.0f",), {"b200", "b300"}),
    (("sm_bogus", "9.0a"), {"h100"}),  # a target that does not parse runs on nothing
    ((), set()),
])
def test_gpus_running(targets, gpus) -> None:
    assert set(landing.gpus_running(targets)) == gpus
    # The same answer as which.py's copy of the rule (the one users run).
    for g in landing.gpu_products():
        parsed = [t for t in targets if t != "sm_bogus"]
        assert (g.key in gpus) == which.targets_run_on(parsed, g.capability), g


def _entries(*files: tuple[str, list[str]]) -> list[dict]:
    return [{"project": p, "targets": t} for p, t in files]


def test_gpu_problems_say_what_the_package_needs() -> None:
    entries = _entries(("sageattn3", ["12.0a", "12.1a"]), ("sageattn3", ["12.0a"]),
                       ("sageattention", ["8.0", "8.9", "9.0a", "12.0a"]))
    problems = landing.gpu_problems(entries)
    assert problems["sageattn3"]["a100"] == (
        "sageattn3 needs an RTX 50 series, RTX PRO Blackwell or GB10 / DGX Spark GPU "
        "(compute capability 12.0 or 12.1): the A100 is compute capability 8.0, and no "
        "sageattn3 wheel has kernels for it; sageattention runs on the A100")
    assert set(problems["sageattn3"]) == set(PRODUCTS) - {"rtx50", "rtx-pro-blackwell", "gb10"}
    # This sageattention runs on all but the B200 and B300 (no 10.x SASS, no PTX) and the
    # GB10 (12.1: 12.0a is for exactly 12.0); sageattn3 runs on the GB10 only.
    assert set(problems["sageattention"]) == {"b200", "b300", "gb10"}
    assert problems["sageattention"]["gb10"].endswith(
        "no sageattention wheel has kernels for it; sageattn3 runs on the GB10 / DGX Spark")
    assert problems["sageattention"]["b300"].endswith(
        "the B300 is compute capability 10.3, and no sageattention wheel has kernels for it")


def test_gpu_problems_leave_unknown_targets_unjudged() -> None:
    # A wheel without targets in its build record may run anywhere (which.py agrees).
    entries = _entries(("demo", ["9.0a"]), ("demo", []))
    assert landing.gpu_problems(entries) == {}


@pytest.mark.parametrize(("name", "article"), [
    ("RTX 50 series", "an"), ("A100", "an"), ("H100 / H200", "an"), ("B200", "a"),
    ("GB10 / DGX Spark", "a"), ("GeForce RTX 30 series", "a"), ("Orin", "an"),
])
def test_indefinite_article(name, article) -> None:
    assert landing._indefinite_article(name) == article


def test_page_data_maps_each_file_to_its_gpus() -> None:
    page = landing.render_landing(manifest(), ROOT)["index.html"].decode()
    data = _data(page)
    assert [g["key"] for g in data["gpus"]] == list(PRODUCTS)
    for entry in data["files"]:
        gpus = data["runs_on"][",".join(entry["targets"])]
        assert gpus == list(landing.gpus_running(tuple(entry["targets"])))
    assert data["runs_on"]["12.1a"] == ["gb10"]
    assert "a100" in data["gpu_problems"]["sageattn3"]
    assert data["portable_python"] == which.PORTABLE_PYTHON


def _data(page: str) -> dict:
    island = re.search(r'<script id="wf-data" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(island.group(1))


# --------------------------------------------------------------------------- the full plan


class _Coverage(HTMLParser):
    """Badges per (project, row, column), and the ids of the files table's rows."""

    def __init__(self) -> None:
        super().__init__()
        self.project = ""
        self.row = -1
        self.col = -1
        self.heads: dict[str, list[str]] = {}
        self.badges: dict[tuple[str, int, int], list[tuple[str, str]]] = {}
        self.row_ids: set[str] = set()
        self._badge: str | None = None
        self._in_head = False

    def handle_starttag(self, tag, attrs) -> None:
        d = dict(attrs)
        if tag == "table" and "data-project" in d:
            self.project, self.row = d["data-project"], -1
            self.heads[self.project] = []
        elif tag == "thead":
            self._in_head = True
        elif tag == "th" and self._in_head and self.project:
            self.heads[self.project].append(d.get("data-platform", ""))
        elif tag == "tr" and not self._in_head:
            self.row, self.col = self.row + 1, -1
            if "id" in d:
                self.row_ids.add(d["id"])
        elif tag in ("td", "th") and not self._in_head:
            self.col += 1
        elif tag == "a" and "py" in (d.get("class") or "").split():
            self._badge = d["data-f"]

    def handle_endtag(self, tag) -> None:
        if tag == "thead":
            self._in_head = False
        elif tag == "table":
            self.project = ""

    def handle_data(self, data) -> None:
        if self._badge is not None:
            key = (self.project, self.row, self.col)
            self.badges.setdefault(key, []).append((data, self._badge))
            self._badge = None


def test_full_plan_page_stays_small_and_grouped() -> None:
    from _full_plan import full_plan_manifest

    m = full_plan_manifest()
    page = landing.render_landing(m, m.index_url)["index.html"]
    assert len(page) < 300_000, len(page)
    parser = _Coverage()
    parser.feed(page.decode())
    oses = list(landing.PLATFORMS)
    assert parser.heads == {p: ["", ""] + oses for p in ("sageattention", "sageattn3")}
    grouped = 0
    for key, badges in parser.badges.items():
        labels = [label for label, _ in badges]
        assert len(labels) == len(set(labels)), (key, labels)  # one badge per Python
        for _, rows in badges:
            assert {f"f{n}" for n in rows.split()} <= parser.row_ids
            grouped += len(rows.split()) > 1
    assert grouped  # sageattention 2.2.0 and its post-release share their badges
    refs = [n for b in parser.badges.values() for _, rows in b for n in rows.split()]
    assert len(set(refs)) == len(m.files)  # every file has a place
    # after cover, a stable-ABI wheel sits under each torch whose view lists it
    assert len(refs) > len(set(refs))


def test_templates_ship_as_package_data() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["wheelfactory"]
    package = Path(landing.__file__).parent
    assert landing.TEMPLATES.is_relative_to(package)
    for name in ("landing.html", "landing.css", "landing.js"):
        rel = (landing.TEMPLATES / name).relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel
    assert any(fnmatch.fnmatch(landing.GPUS.relative_to(package).as_posix(), p) for p in patterns)


# --------------------------------------------------------------------------- first visit


def _entry(torch: str, cuda: str, platforms: list[str], pythons: list[str],
           project: str = "sageattention", **kw) -> dict:
    return {"project": project, "torch": torch, "cuda": cuda, "platforms": platforms,
            "pythons": pythons, "targets": ["8.0"], **kw}


def test_each_os_starts_on_a_setup_covered_there() -> None:
    """The newest torch and CUDA of the index have no Windows wheels: the Windows default
    is the newest setup Windows wheels cover, not the index's newest."""
    lin, win = ["linux-x86_64"], ["windows-amd64"]
    entries = [_entry("2.15", "13.4", lin, ["3.12", "3.13", "3.14t"]),
               _entry("2.9", "12.8", win, ["3.11", "3.12", "3.13"]),
               _entry("2.8", "12.8", win, ["3.13"])]
    defaults = landing.default_setups(entries, ["sageattention"], ["2.8", "2.9", "2.15"])
    assert defaults == {
        "linux-x86_64": {"project": "sageattention", "torch": "2.15", "cuda": "13.4",
                         "python": "3.12"},
        "windows-amd64": {"project": "sageattention", "torch": "2.9", "cuda": "12.8",
                          "python": "3.12"},
    }  # no aarch64 wheels: no default there


def test_stable_abi_wheels_serve_every_torch_from_their_floor() -> None:
    win = ["windows-amd64"]
    entries = [_entry("2.9", "12.8", win, ["3.12"]),
               _entry("abi", "13.0", win, ["3.10", "3.11", "3.12", "3.13"], floor="2.10"),
               _entry("2.15", "13.0", ["linux-x86_64"], ["3.12"], project="sageattn3")]
    defaults = landing.default_setups(entries, ["sageattention", "sageattn3"],
                                      ["2.9", "2.10", "2.15"])
    assert defaults["windows-amd64"] == {"project": "sageattention", "torch": "2.15",
                                         "cuda": "13.0", "python": "3.12"}
    # the first package with wheels for the OS
    assert defaults["linux-x86_64"]["project"] == "sageattn3"
    assert landing.torch_fits(entries[1], "2.10") and not landing.torch_fits(entries[1], "2.9")


def test_a_torch_build_that_exists_comes_first() -> None:
    """A stable-ABI wheel of CUDA 12.6 serves torch 2.15, but no torch 2.15 with CUDA 12.6
    is known: the default is a pair some torch-specific wheel has."""
    win = ["windows-amd64"]
    entries = [_entry("abi", "12.6", win, ["3.12"], floor="2.10"),
               _entry("2.12", "12.6", win, ["3.12"]),
               _entry("2.15", "13.0", ["linux-x86_64"], ["3.12"])]
    defaults = landing.default_setups(entries, ["sageattention"], ["2.12", "2.15"])
    assert defaults["windows-amd64"]["torch"] == "2.12"


def test_every_os_is_offered_and_defaults_reach_the_page() -> None:
    """An index of Linux wheels only still offers Windows (its visitor is told there are no
    Windows wheels, not moved to Linux)."""
    m = Manifest(files=(
        pf("sageattention-2.2.0+cu130torch2.14-cp312-cp312-manylinux_2_28_x86_64.whl"),))
    data = _data(landing.render_landing(m, ROOT)["index.html"].decode())
    assert [key for key, _ in data["platforms"]] == list(landing.PLATFORMS)
    assert data["defaults"] == {"linux-x86_64": {"project": "sageattention", "torch": "2.14",
                                                 "cuda": "13.0", "python": "3.12"}}


def test_selector_comes_before_the_about_text() -> None:
    """The selector is the page's first section (a phone shows it on its first screen;
    tests/integration/test_landing_browser.py measures that in Chromium)."""
    page = landing.render_landing(manifest(), ROOT)["index.html"].decode()
    main = page[page.index("<main"):]
    assert main.index('<form id="selector"') < main.index('<section id="about">')
    assert re.findall(r'<section id="([a-z]+)"', page)[0] == "install"


def test_each_wheel_shows_the_patches_it_carries() -> None:
    patch = {"file": "recipes/patches/sageattn3/0001-sm-count-from-device.patch", "sha256": "b" * 64,
             "why": f"the SM count from the device {HOSTILE}", "mirrors": "thu-ml/SageAttention#370"}
    m = Manifest(files=(
        pf("sageattn3-1.0.0+cu130torch2.14-cp312-cp312-manylinux_2_28_x86_64.whl",
           build_record={"targets": ["12.0a"], "patches": [patch]}),
        pf("sageattention-2.2.0+cu130torch2.14-cp312-cp312-manylinux_2_28_x86_64.whl"),
    ))
    page = landing.render_landing(m, ROOT)["index.html"].decode()
    row = next(ln for ln in page.split("\n") if "sageattn3-1.0.0" in ln and "<tr" in ln)
    assert "patched: 0001-sm-count-from-device.patch (thu-ml/SageAttention#370)" in row
    assert "<script>alert" not in page.split("<script", 1)[0]  # the why is escaped
    plain = next(ln for ln in page.split("\n") if "sageattention-2.2.0" in ln and "<tr" in ln)
    assert "patched:" not in plain
