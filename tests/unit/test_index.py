from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from wheelfactory.index import (
    Hooks,
    affected_pages,
    render_index,
    render_pages,
    views_of,
)
from wheelfactory.manifest import Manifest, PublishedFile

T0 = "2026-05-01T12:00:00.000000Z"


def pf(filename: str, **kw: object) -> PublishedFile:
    from wheelfactory.naming import parse_wheel

    label = parse_wheel(filename)
    base: dict[str, object] = {
        "filename": filename,
        "project": label.project,
        "version": label.version,
        "sha256": "a" * 64,
        "size": 1234,
        "url": f"files/{filename}",
        "requires_python": ">=3.10",
        "metadata_sha256": "b" * 64,
        "upload_time": T0,
    }
    base.update(kw)
    return PublishedFile(**base)  # type: ignore[arg-type]


W14 = "sageattention-2.2.0+cu130torch2.14-cp311-cp311-manylinux_2_34_x86_64.whl"
W13 = "sageattention-2.2.0+cu130torch2.13-cp311-cp311-manylinux_2_34_x86_64.whl"
W128 = "sageattention-2.2.0+cu128torch2.14-cp311-cp311-manylinux_2_34_x86_64.whl"


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.meta: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))
        elif tag == "meta":
            self.meta.append(dict(attrs))


def parse(page: bytes) -> Links:
    p = Links()
    p.feed(page.decode())
    return p


def test_golden_project_page() -> None:
    """The exact bytes of a project page: this is the format pip and uv read."""
    m = Manifest(files=(pf(W14, yanked=True, yank_reason="black output"),))
    page = render_index(m)["cu130/torch2.14/simple/sageattention/index.html"]
    href = "../../../../files/sageattention-2.2.0%2Bcu130torch2.14-cp311-cp311-manylinux_2_34_x86_64.whl"
    expected = (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta name="pypi:repository-version" content="1.1">\n'
        "<title>Links for sageattention</title>\n</head>\n<body>\n"
        "<h1>Links for sageattention</h1>\n"
        f'<a href="{href}#sha256={"a" * 64}" data-requires-python="&gt;=3.10"'
        f' data-core-metadata="sha256={"b" * 64}" data-dist-info-metadata="sha256={"b" * 64}"'
        f' data-yanked="black output" data-upload-time="{T0}" data-size="1234">{W14}</a><br>\n'
        "</body>\n</html>\n"
    )
    assert page.decode() == expected


def test_golden_project_json() -> None:
    m = Manifest(files=(pf(W14, provenance_url="https://example.invalid/prov.json"),))
    data = json.loads(render_index(m)["cu130/torch2.14/simple/sageattention/index.json"])
    assert data == {
        "meta": {"api-version": "1.1"},
        "name": "sageattention",
        "versions": ["2.2.0+cu130torch2.14"],
        "files": [
            {
                "filename": W14,
                "url": "../../../../files/"
                + W14.replace("+", "%2B"),
                "hashes": {"sha256": "a" * 64},
                "requires-python": ">=3.10",
                "core-metadata": {"sha256": "b" * 64},
                "size": 1234,
                "upload-time": T0,
                "yanked": False,
                "provenance": "https://example.invalid/prov.json",
            }
        ],
    }
    assert "dist-info-metadata" not in json.dumps(data)  # crashes pip >= 22.3 in JSON


def test_yanked_files_read_as_yanked_in_pep691_json() -> None:
    """PEP 691: "yanked" is false, true, or the reason (a non-empty string, which installers
    treat as true); uv and pip with JSON never see the HTML page's data-yanked."""
    w13, w128 = W13, W14.replace("torch2.14", "torch2.13").replace("cp311", "cp312")
    m = Manifest(files=(pf(W14, yanked=True, yank_reason="black output"),
                        pf(w13, yanked=True), pf(w128, yanked=True, yank_reason="")))  # fmt: skip
    pages = render_index(m)
    got = {f["filename"]: f["yanked"] for f in json.loads(pages["cu130/simple/sageattention/index.json"])["files"]}
    assert got == {W14: "black output", w13: True, w128: True}
    strict = json.loads(pages["cu130/torch2.14/simple/sageattention/index.json"])["files"]
    assert [f["yanked"] for f in strict] == ["black output"]
    unyanked = json.loads(render_index(Manifest(files=(pf(W14),)))["cu130/simple/sageattention/index.json"])
    assert unyanked["files"][0]["yanked"] is False


def test_views_are_strict_and_per_cuda() -> None:
    m = Manifest(files=(pf(W14), pf(W13), pf(W128)))
    pages = render_index(m)
    strict = parse(pages["cu130/torch2.14/simple/sageattention/index.html"])
    assert [a["href"].split("#")[0].rsplit("/", 1)[1].replace("%2B", "+") for a in strict.links] == [W14]
    per_cuda = parse(pages["cu130/simple/sageattention/index.html"])
    assert len(per_cuda.links) == 2
    assert {views_of(pf(W128))[0], views_of(pf(W128))[1]} == {"cu128/torch2.14", "cu128"}
    root = parse(pages["index.html"])
    assert [a["href"] for a in root.links] == [
        "cu128/simple/",
        "cu128/torch2.14/simple/",
        "cu130/simple/",
        "cu130/torch2.13/simple/",
        "cu130/torch2.14/simple/",
    ]
    view = parse(pages["cu130/torch2.14/simple/index.html"])
    assert [a["href"] for a in view.links] == ["sageattention/"]
    assert json.loads(pages["cu130/torch2.14/simple/index.json"])["projects"] == [
        {"name": "sageattention"}
    ]
    for path, page in pages.items():
        if path.endswith(".html"):
            assert {"name": "pypi:repository-version", "content": "1.1"} in parse(page).meta


def test_names_are_normalized() -> None:
    name = "Sage_Attention.Extra-2.2.0+cu130torch2.14-py3-none-any.whl"
    m = Manifest(files=(pf(name),))
    pages = render_index(m)
    assert "cu130/torch2.14/simple/sage-attention-extra/index.html" in pages
    assert m.files[0].project == "sage-attention-extra"


def test_everything_is_escaped() -> None:
    nasty = '"><script>alert(1)</script>'
    m = Manifest(
        files=(
            pf(W14, requires_python='>=3.10,<4 "x"', yanked=True, yank_reason=nasty),
        )
    )
    page = render_index(m)["cu130/torch2.14/simple/sageattention/index.html"].decode()
    assert "<script>" not in page
    link = parse(page.encode()).links[0]
    assert link["data-yanked"] == nasty  # round-trips through an HTML parser intact
    assert link["data-requires-python"] == '>=3.10,<4 "x"'


def test_absolute_store_urls_are_kept() -> None:
    url = "https://github.com/o/r/releases/download/v1/" + W14.replace("+", "%2B")
    m = Manifest(files=(pf(W14, url=url),))
    link = parse(render_index(m)["cu130/simple/sageattention/index.html"]).links[0]
    assert link["href"] == f"{url}#sha256={'a' * 64}"


def test_render_is_pure() -> None:
    files = (pf(W14), pf(W13), pf(W128))
    a = render_index(Manifest(files=files))
    b = render_index(Manifest(files=tuple(reversed(files))))
    assert a == b


def test_one_new_wheel_touches_only_its_pages() -> None:
    old = Manifest(files=(pf(W14), pf(W13)))
    w2 = W14.replace("2.2.0", "2.2.1")
    new = old.with_files([pf(w2)])
    touched = affected_pages(old, new)
    assert touched == {
        "cu130/torch2.14/simple/sageattention/index.html",
        "cu130/torch2.14/simple/sageattention/index.json",
        "cu130/simple/sageattention/index.html",
        "cu130/simple/sageattention/index.json",
    }
    # And those are exactly the pages whose bytes changed.
    before, after = render_index(old), render_index(new)
    assert touched == {p for p in after if before.get(p) != after[p]}


def test_new_project_touches_view_list_and_new_view_touches_root() -> None:
    old = Manifest(files=(pf(W14),))
    other = "other_ext-1.0+cu130torch2.14-py3-none-any.whl"
    new = old.with_files([pf(other)])
    touched = affected_pages(old, new)
    assert "cu130/torch2.14/simple/index.html" in touched
    assert "index.html" not in touched
    newer = new.with_files([pf(W128)])
    touched = affected_pages(new, newer)
    assert "index.html" in touched
    before, after = render_index(new), render_index(newer)
    assert touched == {p for p in after if before.get(p) != after[p]}


def test_yank_touches_project_pages_only() -> None:
    old = Manifest(files=(pf(W14), pf(W13)))
    yanked = pf(W14, yanked=True, yank_reason="bad")
    new = old.with_files([yanked])
    assert affected_pages(old, new) == {
        "cu130/torch2.14/simple/sageattention/index.html",
        "cu130/torch2.14/simple/sageattention/index.json",
        "cu130/simple/sageattention/index.html",
        "cu130/simple/sageattention/index.json",
    }


def test_root_hooks() -> None:
    hooks = Hooks(
        render_root=lambda m: f"<p>{len(m.files)} wheels</p>",
        extra_root_files=lambda m: {"badge.txt": str(len(m.files)).encode()},
        root_depends_on_files=True,
    )
    old = Manifest(files=(pf(W14),))
    new = old.with_files([pf(W13)])
    assert render_index(new, hooks=hooks)["index.html"] == b"<p>2 wheels</p>"
    touched = affected_pages(old, new, hooks=hooks)
    assert {"index.html", "badge.txt"} <= touched
    assert render_pages(new, touched, hooks=hooks)["badge.txt"] == b"2"


@pytest.mark.parametrize(
    "bad",
    [
        "../evil-1.0+cu130torch2.14-py3-none-any.whl",
        "evil<b>-1.0+cu130torch2.14-py3-none-any.whl",
        "evil-1.0-py3-none-any.whl",  # no label: belongs to no view
        "not-a-wheel.zip",
    ],
)
def test_bad_filenames_are_refused(bad: str) -> None:
    from wheelfactory.errors import PublishError
    from wheelfactory.manifest import check_filename

    with pytest.raises(PublishError):
        check_filename(bad)


def test_relative_links_resolve_from_every_page() -> None:
    from urllib.parse import unquote, urljoin

    m = Manifest(files=(pf(W14), pf(W13), pf(W128)))
    root = "http://host/idx/"
    for path, page in render_index(m).items():
        if not path.endswith("/index.html") or path.split("/")[-3] != "simple":
            continue
        page_url = urljoin(root, path.rsplit("/", 1)[0] + "/")
        for a in parse(page).links:
            target = unquote(urljoin(page_url, a["href"]).split("#")[0])
            name = target.rsplit("/", 1)[1]
            assert target == root + "files/" + name, (path, a["href"])
            json_page = json.loads(render_index(m)[path.replace(".html", ".json")])
            assert name in {f["filename"] for f in json_page["files"]}
