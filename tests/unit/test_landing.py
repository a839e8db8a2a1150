"""The landing page: deterministic bytes, escaping of hostile manifest values, which.py
served with the index root filled in, and the hook into the index renderer."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from wheelfactory import index, landing, which
from wheelfactory.errors import ConfigError
from wheelfactory.manifest import Manifest, PublishedFile

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
    assert any("<INDEX_ROOT>" not in n for n in data["notes"]) or data["problems"]


def test_root_must_be_http() -> None:
    with pytest.raises(ConfigError, match="http"):
        landing.render_landing(manifest(), "javascript:alert(1)")


def test_hooks_put_the_landing_page_into_the_index() -> None:
    pages = index.render_index(manifest(), hooks=landing.landing_hooks(ROOT))
    assert pages["index.html"] == landing.render_landing(manifest(), ROOT)["index.html"]
    assert "which.py" in pages and "assets/landing.js" in pages
    assert any(p.startswith("cu130/torch2.14/simple/") for p in pages)
