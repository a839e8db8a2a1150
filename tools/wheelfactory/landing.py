"""The index's landing page: ``render_landing(manifest, index_root_url) -> {path: bytes}``.

Rendered into the index root from the templates in ``resources/landing/`` (package data,
so an installed wheelfactory publishes it too; HTML, CSS, JS; no external assets, no
trackers, works offline and from ``file://``):

- ``index.html``: a selector (package, OS, GPU by product name, Python, torch, CUDA) that
  shows the install command, fed by the manifest's data embedded as JSON, first on the
  page and starting on the visitor's OS with a setup covered there (``default_setups``;
  every OS is offered, one without wheels is told so); what the index is; a coverage matrix per package (torch x CUDA rows, OS columns, one Python badge per
  cell whatever the versions; a badge opens its files); the list of files with links to
  their build records and attestations;
- ``which.py``: wheelfactory/which.py verbatim, its ``INDEX_ROOT`` line set to the root;
- ``assets/landing.css``, ``assets/landing.js``;
- ``records/<wheel filename>.json``: each file's build record, linked from the page.

Pure and deterministic: the same manifest and root give the same bytes (nothing is taken
from the clock or the environment). Which files fit which OS and Python is decided here,
with which.py's own rules, and which GPUs (resources/gpus.toml) their kernels run on, with
arch.py's, so the page's JavaScript only looks values up;
tests/integration/test_landing_browser.py checks in Chromium that the command the page
shows is the one ``which.advise()`` gives for the same setup.
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from wheelfactory import arch, platforms, releases, resources, which
from wheelfactory.coverage import environments_of
from wheelfactory.errors import ConfigError, WheelfactoryError
from wheelfactory.manifest import PublishedFile
from wheelfactory.manifest import entry_field as _get

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Package data (not the repository's top level), so that a non-editable install publishes
# the page too.
TEMPLATES = resources.LANDING
GPUS = resources.GPUS
INDEX_ROOT_LINE = "INDEX_ROOT = None  # wheelfactory:index-root"
# Shown where the root URL goes when the manifest has no index_url; landing.js replaces it
# (elements of class wf-root) with the root it reads from the browser's location.
UNKNOWN_ROOT_TEXT = "<index URL>"

# The selector's choices of OS, from platforms.toml; each maps to the machine which.py's
# rules test files on. key: (label, which.Machine.os, which.Machine.arch)
PLATFORMS: dict[str, tuple[str, str, str]] = {
    p.name: (p.label, p.os, p.cpu) for p in platforms.table().values()
}
# the Pythons the selector offers: those some torch release ships wheels for
PYTHONS = releases.load().pythons()

_PLACEHOLDER_RE = re.compile(r"\{\{ *([a-z_]+) *\}\}")


# --------------------------------------------------------------------------- GPUs by name


@dataclass(frozen=True)
class GpuProduct:
    """One row of resources/gpus.toml: a GPU as its owner knows it."""

    key: str  # "rtx50"
    name: str  # "GeForce RTX 50 series (5060 - 5090)", shown in the picker
    short: str  # "RTX 50 series", used in sentences
    capability: tuple[int, int]  # (12, 0)

    @property
    def capability_text(self) -> str:
        return f"{self.capability[0]}.{self.capability[1]}"

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "name": self.name, "short": self.short,
                "capability": self.capability_text}


@cache
def gpu_products() -> tuple[GpuProduct, ...]:
    """The GPU picker's rows, in the table's order."""
    with GPUS.open("rb") as f:
        rows = tomllib.load(f)["gpu"]
    products = []
    for row in rows:
        major, minor = (int(p) for p in str(row["capability"]).split("."))
        products.append(GpuProduct(key=row["key"], name=row["name"], short=row["short"],
                                   capability=(major, minor)))
    return tuple(products)


@lru_cache(maxsize=1024)
def gpus_running(targets: tuple[str, ...]) -> tuple[str, ...]:
    """Keys of the GPUs that kernels built for ``targets`` run on (arch.GpuTarget.runs_on).
    A target that does not parse runs on nothing (a manifest is data from outside)."""
    parsed = []
    for text in targets:
        try:
            parsed.append(arch.GpuTarget.parse(text))
        except ConfigError:
            continue
    return tuple(g.key for g in gpu_products()
                 if any(t.runs_on(g.capability) for t in parsed))


def _or_list(words: list[str]) -> str:
    """"a", "a or b", "a, b or c"."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _indefinite_article(name: str) -> str:
    """"an" before a vowel sound. Initialisms are read letter by letter: an RTX, an H100,
    an A100, a B200, a GB10; words as words: a GeForce."""
    initialism = len(name) > 1 and (name[1].isupper() or name[1].isdigit())
    vowel_sounds = "AEFHILMNORSX" if initialism else "AEIOU"
    return "an" if name[:1].upper() in vowel_sounds else "a"


def gpu_not_covered(project: str, gpu: GpuProduct, covered: list[GpuProduct],
                    alternatives: list[str]) -> str:
    """The sentence for a GPU that no wheel of ``project`` runs on: what the project needs,
    what this GPU is, and which other package in the index does run on it."""
    if covered:
        names = list(dict.fromkeys(p.short for p in covered))
        caps = sorted({p.capability for p in covered})
        needs = (f"{project} needs {_indefinite_article(names[0])} {_or_list(names)} GPU "
                 f"(compute capability {_or_list([f'{a}.{b}' for a, b in caps])})")
    else:
        needs = f"{project} has kernels for none of the GPUs listed here"
    text = (f"{needs}: the {gpu.short} is compute capability {gpu.capability_text}, and no "
            f"{project} wheel has kernels for it")
    if alternatives:
        text += f"; {_or_list(alternatives)} runs on the {gpu.short}"
    return text


def gpu_problems(entries: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """{project: {gpu key: why no wheel of it runs on that GPU}}; GPUs not listed are
    covered by some wheel. A project with a wheel of unknown targets is not judged (as
    which.py does not reject one)."""
    runs: dict[str, set[str]] = defaultdict(set)
    unknown: set[str] = set()
    for e in entries:
        if not e["targets"]:
            unknown.add(e["project"])
        runs[e["project"]].update(gpus_running(tuple(e["targets"])))
    problems: dict[str, dict[str, str]] = {}
    for project in sorted(set(runs) - unknown):
        covered = [g for g in gpu_products() if g.key in runs[project]]
        for gpu in gpu_products():
            if gpu.key in runs[project]:
                continue
            others = [p for p in sorted(runs) if p != project and gpu.key in runs[p]]
            problems.setdefault(project, {})[gpu.key] = gpu_not_covered(
                project, gpu, covered, others)
    return problems


def runs_on_table(entries: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """{targets joined by ",": GPU keys}: the page looks a file's GPUs up by its targets
    (a few distinct target lists serve thousands of files)."""
    return {",".join(e["targets"]): list(gpus_running(tuple(e["targets"])))
            for e in entries if e["targets"]}


class _Sorted(tuple):
    """Files already sorted by filename (render_landing sorts once, then passes this)."""


def _files(manifest: Any) -> list[Any] | _Sorted:
    if isinstance(manifest, _Sorted):
        return manifest
    files = _get(manifest, "files")
    return sorted(files or (), key=lambda f: str(_get(f, "filename")))


@cache
def _machine(platform: str, python: str) -> which.Machine:
    _, osname, arch = PLATFORMS[platform]
    return which.Machine(os=osname, arch=arch, python=python.rstrip("t"),
                         free_threaded=python.endswith("t"))


_parse_wheel = lru_cache(maxsize=1 << 16)(which.parse_wheel)  # names repeat across renders


@lru_cache(maxsize=4096)
def _fits(python_tags: tuple[str, ...], abi_tags: tuple[str, ...],
          platform_tags: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(selector platforms, selector Pythons) a wheel with these tags installs on, by
    which.py's rules; the tags alone decide, so thousands of wheels share a few answers."""
    info = which.WheelInfo(filename="", project="", version="", public_version="", cuda=None,
                           torch=None, python_tags=python_tags, abi_tags=abi_tags,
                           platform_tags=platform_tags)
    platforms = tuple(k for k in PLATFORMS
                      if which.platform_fits(info, _machine(k, "3.12"), check_glibc=False))
    pythons = tuple(p for p in PYTHONS if which.python_fits(info, _machine("linux-x86_64", p)))
    return platforms, pythons


def _fits_of(info: which.WheelInfo) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return _fits(info.python_tags, info.abi_tags, info.platform_tags)


_PLAIN_URL_RE = re.compile(r"^[A-Za-z0-9._~/+-]*$")


def _quote(url: str, safe: str) -> str:
    """urllib.parse.quote, with a fast path for the names a manifest allows."""
    if _PLAIN_URL_RE.match(url):
        return url.replace("+", "%2B")
    return quote(url, safe=safe)


def _safe_href(url: str | None) -> str | None:
    """An http(s) or root-relative URL fit for an href, else None (no javascript: links)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    if not parts.scheme and not parts.netloc and not url.startswith(("/", "\\")):
        return _quote(url, "/%#?=&")
    return None


def _human_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"


def _sort_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def record_path(filename: str) -> str:
    return f"records/{filename}.json"


def landing_data(manifest: Any, index_root_url: str) -> dict[str, Any]:
    """What the page's script needs: one entry per installable file, plus the choices."""
    entries: list[dict[str, Any]] = []
    for f in _files(manifest):
        name = str(_get(f, "filename"))
        try:
            info = _parse_wheel(name)
        except ValueError:
            continue
        if not info.cuda or _get(f, "yanked") or _get(f, "held"):
            continue
        fit_platforms, fit_pythons = _fits_of(info)
        platforms, pythons = list(fit_platforms), list(fit_pythons)
        record = _get(f, "build_record")
        targets = list(record.get("targets") or []) if hasattr(record, "get") else []
        floor = record.get("stable_abi_floor") if hasattr(record, "get") else None
        entry = {
            "file": name, "project": info.project, "version": info.public_version,
            "cuda": info.cuda, "torch": info.torch,
            "platforms": platforms, "pythons": pythons, "targets": [str(t) for t in targets],
        }
        # Only where set: the page has one entry per file, and the page must stay small.
        if floor:
            entry["floor"] = floor
        if _get(f, "covers"):
            entry["covers"] = list(_get(f, "covers"))
        entries.append(entry)
    # The torch minors with a view: each per-torch file's own, and each torch a stable-ABI
    # file is listed for (its covers: once cover ran, every torch from its floor), so a
    # torch only stable-ABI wheels serve is offered too.
    torches = sorted({e["torch"] for e in entries if e["torch"] != "abi"}
                     | {t for e in entries if e["torch"] == "abi" for t in e.get("covers", ())},
                     key=_sort_version)  # fmt: skip
    pythons = [p for p in PYTHONS if any(p in e["pythons"] for e in entries)]
    projects = sorted({e["project"] for e in entries})
    return {
        "root": index_root_url.rstrip("/"),
        "pytorch_index": which.PYTORCH_INDEX,
        "portable_python": which.PORTABLE_PYTHON,
        "files": entries,
        "gpus": [g.to_json() for g in gpu_products()],
        "runs_on": runs_on_table(entries),
        "gpu_problems": gpu_problems(entries),
        "projects": projects,
        # Every OS, wheels or not: a visitor's own OS is shown and told that it has none,
        # never swapped for another one.
        "platforms": [[k, v[0]] for k, v in PLATFORMS.items()],
        "pythons": pythons,
        "torches": torches,
        "cudas": sorted({e["cuda"] for e in entries}, key=_sort_version),
        "defaults": default_setups(entries, projects, torches),
    }


def torch_fits(entry: dict[str, Any], torch: str) -> bool:
    """Whether a file serves this torch minor: its own, or any from a stable-ABI file's
    floor on (as which.py and the page's script decide)."""
    if entry["torch"] != "abi":
        return bool(entry["torch"] == torch)
    floor = entry.get("floor")
    return not floor or _sort_version(torch) >= _sort_version(str(floor))


def default_setups(entries: list[dict[str, Any]], projects: list[str],
                   torches: list[str]) -> dict[str, dict[str, str]]:
    """{OS key: the setup the selector starts with for a visitor on that OS}: one that a
    wheel of the first package with wheels for that OS covers, with the newest torch, then
    the newest CUDA, and Python 3.12 (the most common one, and ComfyUI portable's) where
    covered, else the newest Python. A torch and CUDA that some torch-specific file pairs,
    or that a stable-ABI file is covered for, comes first (that torch build exists). An OS without wheels has no entry."""
    # a stable-ABI file's covers are torch views cover listed it in: only torch releases
    # that ship its CUDA (cover.planned), so they pair an existing torch build too
    known = ({(e["torch"], e["cuda"]) for e in entries if e["torch"] != "abi"}
             | {(t, e["cuda"]) for e in entries if e["torch"] == "abi" for t in e.get("covers", ())})
    defaults: dict[str, dict[str, str]] = {}
    for platform in PLATFORMS:
        here = [e for e in entries if platform in e["platforms"]]
        project = next((p for p in projects if any(e["project"] == p for e in here)), None)
        # Thousands of files share a few (torch, floor, CUDA, Pythons).
        kinds = {(e["torch"], e.get("floor"), e["cuda"], tuple(e["pythons"]))
                 for e in here if e["project"] == project}
        candidates = [
            ((torch, cuda) in known, _sort_version(torch), _sort_version(cuda),
             python == "3.12", _sort_version(python), torch, cuda, python)
            for file_torch, floor, cuda, pythons in kinds
            for torch in torches if torch_fits({"torch": file_torch, "floor": floor}, torch)
            for python in pythons if not python.endswith("t")  # nobody's default
        ]
        if candidates:  # none: no wheels for this OS (or free-threaded ones only)
            *_, torch, cuda, python = max(candidates)
            defaults[platform] = {"project": str(project), "torch": torch, "cuda": cuda,
                                  "python": python}
    return defaults


def _script_json(data: Any) -> str:
    """JSON safe inside <script>: no '</script>', no HTML comment openers, no U+2028."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                     ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return text


Cells = dict[str, dict[tuple[str, str], dict[str, dict[str, list[tuple[int, Any, Any]]]]]]


def _entry(f: Any) -> PublishedFile | None:
    """A manifest entry as a PublishedFile (the JSON form too); None for one that is not."""
    if isinstance(f, PublishedFile):
        return f
    try:
        return PublishedFile.from_json(f)
    except (WheelfactoryError, TypeError, ValueError):
        return None


def _coverage_cells(manifest: Any) -> Cells:
    """{project: {(torch, CUDA): {platform: {Python label: [(file row, file, info)]}}}};
    the file row is the file's place in the files table (its id, f<row>). A file sits in
    the cells of the environments it serves (coverage.environments_of, the count
    `wheelfactory coverage` makes): each torch whose strict view lists it, each OS pip
    installs it on; a yanked file where it would if it were not (struck through)."""
    cells: Cells = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for row, f in enumerate(_files(manifest)):
        try:
            info = _parse_wheel(str(_get(f, "filename")))
        except ValueError:
            continue
        entry = _entry(f) if info.cuda else None
        if entry is None:
            continue
        label = which._python_label(info)
        served = environments_of(replace(entry, yanked=False, yank_reason=None), PYTHONS, PLATFORMS)
        for torch, cuda, platform in dict.fromkeys((e.torch, e.cuda, e.platform) for e in served):
            cells[info.project][(torch, cuda)][platform][label].append((row, f, info))
    return cells


def _badge(label: str, files: list[tuple[int, Any, Any]]) -> str:
    """One Python of one cell, whatever the versions: newest first, struck through only
    when all are yanked. It links to the first file's row; data-f lists every row, which
    the page's script shows under the cell on a tap (no hover-only information)."""
    files = sorted(files, key=lambda p: (bool(_get(p[1], "yanked")),
                                         [-n for n in _sort_version(p[2].public_version)]))
    cls = "py yanked" if all(_get(f, "yanked") for _, f, _ in files) else "py"
    rows = " ".join(str(row) for row, _, _ in files)
    return (f'<a class="{cls}" href="#f{files[0][0]}" data-f="{rows}">'
            f"{html.escape(label)}</a>")


def _coverage_row(torch: str, cuda: str, cell: dict[str, dict[str, list]],
                  plats: list[str]) -> str:
    tds = []
    for key in plats:
        labels = sorted(cell.get(key, {}), key=lambda label: (_sort_version(label), label))
        badges = "".join(_badge(label, cell[key][label]) for label in labels)
        tds.append(f"<td>{badges or '<span class=none>-</span>'}</td>")
    esc = html.escape
    return f'<td data-torch="{esc(torch)}" data-cuda="{esc(cuda)}">{esc(cuda)}</td>{"".join(tds)}'


def _coverage_table(project: str, rows: dict[tuple[str, str], dict], plats: list[str]) -> str:
    """Rows grouped by torch (newest first), one per CUDA."""
    esc = html.escape
    versions = sorted({info.public_version for cell in rows.values() for labels in cell.values()
                       for files in labels.values() for _, _, info in files}, key=_sort_version)
    heads = "".join(f'<th data-platform="{esc(k)}">{esc(PLATFORMS[k][0])}</th>' for k in plats)
    out = [f'<h3 id="cov-{esc(project)}">{esc(project)}</h3>',
           f'<p class="small">Versions: {esc(", ".join(versions))}</p>',
           f'<div class="scroll"><table class="matrix" data-project="{esc(project)}">'
           f"<thead><tr><th>torch</th><th>CUDA</th>{heads}</tr></thead>"]
    by_torch: dict[str, list[str]] = defaultdict(list)
    for torch, cuda in rows:
        by_torch[torch].append(cuda)
    for torch in sorted(by_torch, key=_sort_version, reverse=True):
        cudas = sorted(by_torch[torch], key=_sort_version, reverse=True)
        label = torch
        out.append("<tbody>")
        for i, cuda in enumerate(cudas):
            # The torch on its group's first row only (no rowspan: the page's script
            # inserts a row of files under any row).
            head = f"<th>{esc(label)}</th>" if i == 0 else "<th></th>"
            out.append(f"<tr>{head}{_coverage_row(torch, cuda, rows[(torch, cuda)], plats)}</tr>")
        out.append("</tbody>")
    out.append("</table></div>")
    return "\n".join(out)


def _coverage_html(manifest: Any) -> str:
    """Per package: rows torch x CUDA, one column per OS of the index (every package shows
    every OS, so a missing one reads as "-"), cells = Python badges."""
    cells = _coverage_cells(manifest)
    if not cells:
        return "<p>No wheels are published yet.</p>"
    plats = [k for k in PLATFORMS
             if any(k in cell for rows in cells.values() for cell in rows.values())]
    return "\n".join(_coverage_table(project, cells[project], plats) for project in sorted(cells))


def patches_of(record: Any) -> list[dict[str, str]]:
    """The patches a file's build record lists (name, why, the upstream PR or issue)."""
    raw = record.get("patches") if hasattr(record, "get") else None
    return [
        {"name": str(p.get("file", "")).rsplit("/", 1)[-1], "why": str(p.get("why", "")),
         "mirrors": str(p.get("mirrors", ""))}
        for p in (raw if isinstance(raw, list) else []) if hasattr(p, "get")
    ]  # fmt: skip


def gpu_status(f: Any) -> tuple[str, str]:
    """(css class, one line): whether and where a file's kernels ran on a GPU."""
    checks = list(_get(f, "gpu_checks") or ())
    if not checks:
        return "unchecked", "not GPU-checked"
    parts = []
    for c in checks:
        where = f"{_get(c, 'gpu')} (sm_{str(_get(c, 'arch')).replace('.', '')}, torch {_get(c, 'torch')}, {str(_get(c, 'date'))[:10]})"
        verdict = _get(c, "verdict")
        if verdict == "pass":
            cos, tf = _get(c, "cosine"), _get(c, "tflops")
            numbers = ", ".join(x for x in (f"cosine {cos:.4f}" if cos is not None else "",
                                            f"{tf:.0f} TFLOP/s" if tf is not None else "") if x)
            parts.append(f"GPU-checked on {where}{': ' + numbers if numbers else ''}")
        elif verdict == "refused":
            parts.append(f"refuses to load on {where}: known wrong there")
        else:
            parts.append(f"GPU check {verdict} on {where}: {_get(c, 'detail')}")
    worst = {"fail": "failed", "error": "failed"}
    cls = next((worst[v] for v in (str(_get(c, "verdict")) for c in checks) if v in worst), "checked")
    return cls, "; ".join(parts)


def _files_html(manifest: Any) -> str:
    esc = html.escape
    rows = []
    for row, f in enumerate(_files(manifest)):  # row: the id the coverage badges link to
        name = str(_get(f, "filename"))
        href = _safe_href(str(_get(f, "url") or ""))
        link = f'<a href="{esc(href)}">{esc(name)}</a>' if href else esc(name)
        record = _get(f, "build_record")
        targets = ", ".join(str(t) for t in (record.get("targets") or [])) if hasattr(
            record, "get") else ""
        links = []
        if record is not None:
            links.append(f'<a href="{esc(_quote(record_path(name), "/"))}">build record</a>')
        prov = _safe_href(_get(f, "provenance_url"))
        if prov and urlsplit(prov).scheme:
            links.append(f'<a href="{esc(prov)}">attestation</a>')
        status = ""
        if _get(f, "yanked"):
            reason = _get(f, "yank_reason") or "no reason given"
            status = f'<span class="tag yanked">yanked: {esc(str(reason))}</span>'
        if _get(f, "held"):
            status += f' <span class="tag held">held back: {esc(str(_get(f, "held")))}</span>'
        for patch in patches_of(record):
            status += f' <span class="tag patched" title="{esc(patch["why"])}">patched: {esc(patch["name"])} ({esc(patch["mirrors"])})</span>'
        gpu_cls, gpu_text = gpu_status(f)
        sha = str(_get(f, "sha256") or "")
        size = _human_size(int(_get(f, "size") or 0))
        rows.append(
            f"<tr id=f{row}><td class=fn>{link} {status}</td><td>{esc(size)}"
            f"</td><td>{esc(str(_get(f, 'upload_time') or '')[:10])}</td>"
            f"<td>{esc(targets)}</td><td class=\"gpu {gpu_cls}\">{esc(gpu_text)}</td>"
            f"<td><code>{esc(sha[:12])}</code></td>"  # all 64: manifest.json, the views
            f"<td>{' · '.join(links)}</td></tr>"
        )
    return "\n".join(rows)


def _fill(template: str, values: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise ConfigError(f"landing template uses {{{{ {key} }}}}, which landing.py does "
                              "not provide; fix resources/landing/landing.html")
        return values[key]

    return _PLACEHOLDER_RE.sub(sub, template)


def render_which(index_root_url: str) -> bytes:
    """which.py with its INDEX_ROOT line set to this index."""
    source = Path(which.__file__).read_text(encoding="utf-8")
    if source.count(INDEX_ROOT_LINE) != 1:  # pragma: no cover - the line is ours
        raise ConfigError(f"which.py lost its {INDEX_ROOT_LINE!r} line; restore it")
    if not index_root_url:  # unknown: which.py asks for --index-url
        return source.encode("utf-8")
    line = f"INDEX_ROOT = {index_root_url.rstrip('/')!r}  # wheelfactory:index-root"
    return source.replace(INDEX_ROOT_LINE, line).encode("utf-8")


def _read_template(name: str) -> str:
    path = TEMPLATES / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"landing template {path} is missing ({e}): the wheelfactory "
                          "install is incomplete; reinstall it") from e


def render_landing(manifest: Any, index_root_url: str) -> dict[str, bytes]:
    """The landing page and its files: ``{relative path: bytes}``. Pure and deterministic.

    ``manifest``: a manifest.Manifest, or its JSON form (``{"files": [...]}``).
    ``index_root_url``: "" when unknown; the page's script then takes the root from the
    browser's location, and which.py asks for ``--index-url``.
    """
    parts = urlsplit(index_root_url)
    if index_root_url and (parts.scheme not in ("http", "https") or not parts.netloc):
        raise ConfigError(f"index root {index_root_url!r} must be an http(s) URL; pass the "
                          "URL the index is served at")
    root = index_root_url.rstrip("/")
    manifest = _Sorted(_files(manifest))  # sort once; the helpers below take it as is
    data = landing_data(manifest, root)
    esc = html.escape
    example_project = data["projects"][0] if data["projects"] else "sageattention"
    page = _fill(_read_template("landing.html"), {
        "root": esc(root or UNKNOWN_ROOT_TEXT),
        "data_json": _script_json(data),
        "coverage": _coverage_html(manifest),
        "files": _files_html(manifest),
        "file_count": str(len(_files(manifest))),
        "project": esc(example_project),
        "projects": esc(", ".join(data["projects"]) or "none yet"),
        "portable_python": esc(which.PORTABLE_PYTHON),
    })
    out = {
        "index.html": page.encode("utf-8"),
        "which.py": render_which(root),
        "assets/landing.css": _read_template("landing.css").encode("utf-8"),
        "assets/landing.js": _read_template("landing.js").encode("utf-8"),
    }
    for f in _files(manifest):
        record = _get(f, "build_record")
        if record is not None:
            # One line: json's C encoder (indent= would take the pure-Python one, 5x slower).
            body = json.dumps(dict(record), sort_keys=True, default=str) + "\n"
            out[record_path(str(_get(f, "filename")))] = body.encode("utf-8")
    return dict(sorted(out.items()))


def landing_hooks(index_root_url: str | None = None) -> Any:
    """index.Hooks that render this landing page at the index root.

    ``index_root_url`` None (the default): the URL the manifest records (``index_url``),
    so rendering stays a function of the manifest alone. The page and its files are
    rendered once per manifest, although the renderer asks for the root page and the
    other root files separately (and for old and new manifest when publishing).
    """
    from wheelfactory import index

    cache: list[tuple[Any, str, dict[str, bytes]]] = []  # (manifest, root, files), newest last

    def files_of(manifest: Any) -> dict[str, bytes]:
        root = index_root_url if index_root_url is not None else str(
            _get(manifest, "index_url") or "")
        for m, r, files in cache:
            # A Manifest is immutable, so identity is enough (its JSON form is not cached).
            if m is manifest and r == root and not isinstance(manifest, Mapping):
                return files
        files = render_landing(manifest, root)
        cache.append((manifest, root, files))
        del cache[:-2]
        return files

    def root_page(manifest: Any) -> str:
        return files_of(manifest)["index.html"].decode("utf-8")

    def extra(manifest: Any) -> Mapping[str, bytes]:
        return {k: v for k, v in files_of(manifest).items() if k != "index.html"}

    def per_file(file: Any) -> tuple[str, ...]:
        has_record = _get(file, "build_record") is not None
        return (record_path(str(_get(file, "filename"))),) if has_record else ()

    return index.Hooks(render_root=root_page, extra_root_files=extra, root_depends_on_files=True,
                       file_root_paths=per_file)
