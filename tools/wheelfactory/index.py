"""Render a static package index from a manifest: a pure function, manifest -> {path: bytes}.

Layout (paths relative to the index root)::

    index.html                                   root: lists the views (replaceable, see Hooks)
    cu130/torch2.14/simple/index.html|.json      strict view: only CUDA 13.0 + torch 2.14 wheels
    cu130/torch2.14/simple/<project>/index.html|.json
    cu130/simple/index.html|.json                per-CUDA view: every torch of CUDA 13.0
    cu130/simple/<project>/index.html|.json

Users of pip take a strict view, so that pip never upgrades or swaps their torch to fit a
wheel built for another torch. ``index.json`` is the PEP 691 form of the page beside it,
for hosts that negotiate on Accept (serve.py does); hosts that cannot (GitHub Pages) serve
``index.html`` and installers fall back to HTML. The ``.metadata`` files (PEP 658) live
beside the wheels in the store and are written by publish.py, not here.

Stable-ABI wheels (label ``cu130torchabi``, one wheel for every torch from its floor on)
go to ``cu130/torchabi/simple/``, the per-CUDA view, and the strict view of each torch
minor they were import-checked against (``PublishedFile.covers``), so a user keeps the
command of their torch. A file held for a GPU check (``PublishedFile.held``) is in no view.

When a strict view lists both a per-torch wheel and a stable-ABI wheel of one project
and version, installers take the one PEP 440 ranks higher: local labels compare as text,
and ``cu130torchabi`` > ``cu130torch2.14``, so pip and uv both take the stable-ABI wheel.
Either loads there; the one rule keeps every user of a view on the same file.

An unknown project has no page, so a host must answer 404 for it (never 403: uv stops at
403 but moves on to the next index after a 404). serve.py does; on S3 make sure the
bucket policy allows ListBucket-less 404s (a private bucket answers 403).
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote, urlsplit

from packaging.version import Version

from wheelfactory.manifest import Manifest, PublishedFile
from wheelfactory.naming import view_path

REPOSITORY_VERSION = "1.1"  # PEP 700
HTML_PAGE = "index.html"
JSON_PAGE = "index.json"
ROOT_PAGE = "index.html"

_esc = html.escape  # quote=True: escapes & < > " '


def views_of(file: PublishedFile) -> tuple[str, ...]:
    """The views that list a file: strict ("cu130/torch2.14") and per-CUDA ("cu130"); a
    stable-ABI file also the strict view of each torch minor it covers; a held file none."""
    if file.held:
        return ()
    return (view_path(file.cuda, file.torch), view_path(file.cuda),
            *(view_path(file.cuda, m) for m in file.covers))


def project_dir(view: str, project: str) -> str:
    return f"{view}/simple/{project}"


def _link_url(file: PublishedFile, depth: int) -> str:
    """The URL a page ``depth`` folders below the root uses for ``file``."""
    if urlsplit(file.url).scheme:
        return file.url
    # Percent-encode: some hosts (S3) read a literal "+" in a path as a space.
    return "../" * depth + quote(file.url, safe="/")


def _html_page(title: str, body_lines: Iterable[str]) -> bytes:
    t = _esc(title)
    out = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        f'<meta name="pypi:repository-version" content="{REPOSITORY_VERSION}">',
        f"<title>{t}</title>",
        "</head>",
        "<body>",
        f"<h1>{t}</h1>",
        *body_lines,
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(out).encode()


def _json_bytes(obj: object) -> bytes:
    return (json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n").encode()


def render_project_html(project: str, files: Iterable[PublishedFile], *, depth: int) -> bytes:
    lines = []
    for f in files:
        url = _link_url(f, depth)
        attrs = [f'href="{_esc(url)}#sha256={f.sha256}"']
        if f.requires_python:
            attrs.append(f'data-requires-python="{_esc(f.requires_python)}"')
        if f.metadata_sha256:
            # PEP 714 name, plus the PEP 658 name that pip 22.3 - 23.1 read.
            attrs.append(f'data-core-metadata="sha256={f.metadata_sha256}"')
            attrs.append(f'data-dist-info-metadata="sha256={f.metadata_sha256}"')
        if f.yanked:
            attrs.append(f'data-yanked="{_esc(f.yank_reason or "")}"')
        # Not standard in HTML, but uv reads them (--exclude-newer needs the upload time).
        attrs.append(f'data-upload-time="{f.upload_time}"')
        attrs.append(f'data-size="{f.size}"')
        if f.provenance_url:
            attrs.append(f'data-provenance="{_esc(f.provenance_url)}"')
        lines.append(f"<a {' '.join(attrs)}>{_esc(f.filename)}</a><br>")
    return _html_page(f"Links for {project}", lines)


def render_project_json(project: str, files: Iterable[PublishedFile], *, depth: int) -> bytes:
    files = list(files)
    entries = []
    for f in files:
        entry: dict[str, object] = {
            "filename": f.filename,
            "url": _link_url(f, depth),
            "hashes": {"sha256": f.sha256},
            "size": f.size,
            "upload-time": f.upload_time,
            "yanked": (f.yank_reason or True) if f.yanked else False,
            # Never "dist-info-metadata" in JSON: it crashes pip >= 22.3.
            "core-metadata": {"sha256": f.metadata_sha256} if f.metadata_sha256 else False,
        }
        if f.requires_python:
            entry["requires-python"] = f.requires_python
        if f.provenance_url:
            entry["provenance"] = f.provenance_url
        entries.append(entry)
    versions = sorted({f.version for f in files}, key=Version)
    return _json_bytes(
        {
            "meta": {"api-version": REPOSITORY_VERSION},
            "name": project,
            "versions": versions,
            "files": entries,
        }
    )


def render_view_html(view: str, projects: Iterable[str]) -> bytes:
    lines = [f'<a href="{_esc(p)}/">{_esc(p)}</a><br>' for p in projects]
    return _html_page(f"Simple index: {view}", lines)


def render_view_json(projects: Iterable[str]) -> bytes:
    return _json_bytes(
        {"meta": {"api-version": REPOSITORY_VERSION}, "projects": [{"name": p} for p in projects]}
    )


def _describe_view(view: str) -> str:
    parts = view.split("/")
    cuda = parts[0][2:]
    text = f"CUDA {cuda[:-1]}.{cuda[-1]}"
    if len(parts) > 1:
        torch = parts[1][len("torch") :]
        text += ", stable ABI torch" if torch == "abi" else f", torch {torch}"
    else:
        text += ", every torch (pip may change your torch; prefer a torch view)"
    return text


def list_views(manifest: Manifest) -> list[str]:
    views = {v for f in manifest.files for v in views_of(f)}
    return sorted(views)


def render_root(manifest: Manifest) -> str:
    """The root page: one line per view with its install command. Depends only on the views."""
    lines = []
    for view in list_views(manifest):
        lines.append(
            f'<a href="{_esc(view)}/simple/">{_esc(view)}/simple/</a>'
            f" &mdash; {_esc(_describe_view(view))}<br>"
        )
    return _html_page("wheelfactory index", lines).decode()


@dataclass(frozen=True, kw_only=True)
class Hooks:
    """How the root of an index is rendered; another module may pass its own.

    ``render_root`` gives ``index.html`` at the root; ``extra_root_files`` any further
    files (``{"path": bytes}``, paths relative to the root). Both are re-rendered when the
    set of views changes, or on every change if ``root_depends_on_files``.
    ``file_root_paths`` names the root files that depend on one published file alone (a
    landing page's ``records/<name>.json``): only those of changed files are then
    re-rendered, and the old manifest's root files need not be rendered to find them.
    """

    render_root: Callable[[Manifest], str] = render_root
    extra_root_files: Callable[[Manifest], Mapping[str, bytes]] | None = None
    root_depends_on_files: bool = False
    file_root_paths: Callable[[PublishedFile], Iterable[str]] | None = None


DEFAULT_HOOKS = Hooks()


def _group(manifest: Manifest) -> dict[str, dict[str, list[PublishedFile]]]:
    """view -> project -> files (sorted by filename, as the manifest is)."""
    groups: dict[str, dict[str, list[PublishedFile]]] = defaultdict(lambda: defaultdict(list))
    for f in manifest.files:
        for view in views_of(f):
            groups[view][f.project].append(f)
    return groups


def _plan(manifest: Manifest, hooks: Hooks) -> dict[str, Callable[[], bytes]]:
    """Every page of the index, each as a thunk that renders it."""
    plan: dict[str, Callable[[], bytes]] = {}
    for view, projects in _group(manifest).items():
        names = sorted(projects)
        plan[f"{view}/simple/{HTML_PAGE}"] = partial(render_view_html, view, names)
        plan[f"{view}/simple/{JSON_PAGE}"] = partial(render_view_json, names)
        depth = view.count("/") + 3  # <view>/simple/<project>/
        for project, files in projects.items():
            d = project_dir(view, project)
            # partial binds the loop's values: the thunks run after the loop
            plan[f"{d}/{HTML_PAGE}"] = partial(render_project_html, project, files, depth=depth)
            plan[f"{d}/{JSON_PAGE}"] = partial(render_project_json, project, files, depth=depth)
    plan[ROOT_PAGE] = lambda: hooks.render_root(manifest).encode()
    return plan


def _root_files(manifest: Manifest, hooks: Hooks) -> dict[str, bytes]:
    out = {ROOT_PAGE: hooks.render_root(manifest).encode()}
    if hooks.extra_root_files is not None:
        for path, data in hooks.extra_root_files(manifest).items():
            out[path] = bytes(data)
    return out


def render_index(manifest: Manifest, *, hooks: Hooks = DEFAULT_HOOKS) -> dict[str, bytes]:
    """Every page of the index. Pure: the same manifest gives the same bytes."""
    pages = {path: thunk() for path, thunk in _plan(manifest, hooks).items()}
    pages.update(_root_files(manifest, hooks))
    return dict(sorted(pages.items()))


def render_pages(
    manifest: Manifest, paths: Iterable[str], *, hooks: Hooks = DEFAULT_HOOKS
) -> dict[str, bytes | None]:
    """Just ``paths`` of the index; ``None`` for a path the manifest no longer has."""
    paths = set(paths)
    plan = _plan(manifest, hooks)
    out: dict[str, bytes | None] = {}
    root = _root_files(manifest, hooks) if paths & _root_paths(manifest, hooks) else {}
    for path in sorted(paths):
        if path in root:
            out[path] = root[path]
        elif path in plan:
            out[path] = plan[path]()
        else:
            out[path] = None
    return out


def _root_paths(manifest: Manifest, hooks: Hooks) -> set[str]:
    paths = {ROOT_PAGE}
    if hooks.extra_root_files is not None:
        paths |= set(hooks.extra_root_files(manifest))
    return paths


def affected_pages(old: Manifest, new: Manifest, *, hooks: Hooks = DEFAULT_HOOKS) -> set[str]:
    """The pages that differ between the indexes of ``old`` and ``new``.

    One new wheel touches its project page (HTML + JSON) in its two views; a view's project
    list only if the project is new to the view; the root only if a view is new. With
    ``root_depends_on_files`` the root files of both manifests are rendered and only those
    whose bytes differ are returned (a landing page's per-file records stay untouched).
    """
    changed = [
        (old.get(name), new.get(name))
        for name in old.by_filename.keys() | new.by_filename.keys()
        if old.get(name) != new.get(name)
    ]
    pages: set[str] = set()
    if hooks.root_depends_on_files and (changed or old != new):
        if hooks.file_root_paths is not None:
            # Every root file but the per-file ones of unchanged files (O(changed) pages;
            # identical bytes are left for the writer to skip).
            per_file = {p for f in new.files for p in hooks.file_root_paths(f)}
            pages |= _root_paths(new, hooks) - per_file
            for pair in changed:
                for file in (x for x in pair if x is not None):
                    pages |= set(hooks.file_root_paths(file))
        else:
            before, after = _root_files(old, hooks), _root_files(new, hooks)
            pages |= {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    if not changed:
        return pages
    touched_views: set[str] = set()
    for old_file, new_file in changed:
        for f in (old_file, new_file):
            if f is None:
                continue
            for view in views_of(f):
                touched_views.add(view)
                d = project_dir(view, f.project)
                pages |= {f"{d}/{HTML_PAGE}", f"{d}/{JSON_PAGE}"}

    def projects_by_view(m: Manifest) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for f in m.files:
            for view in views_of(f):
                if view in touched_views:
                    out[view].add(f.project)
        return out

    old_projects, new_projects = projects_by_view(old), projects_by_view(new)
    for view in touched_views:
        if old_projects.get(view) != new_projects.get(view):
            pages |= {f"{view}/simple/{HTML_PAGE}", f"{view}/simple/{JSON_PAGE}"}
    if not hooks.root_depends_on_files and set(old_projects) != set(new_projects):
        pages |= _root_paths(old, hooks) | _root_paths(new, hooks)
    return pages
