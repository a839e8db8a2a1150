"""An import-time guard for the wheels the factory builds.

``add_guard(unpacked_wheel_dir, info)`` edits an unpacked wheel (the labelling step
unpacks, edits and repacks it with a fresh RECORD) so that importing the package first
checks that the running torch minor, its CUDA major and the GPU fit what the wheel was
built for. On a mismatch the import raises ImportError with one sentence naming the
wheel's build, the user's setup and the command that installs the right wheel, instead
of "undefined symbol", "DLL load failed" or "no kernel image is available" later.
``WHEELFACTORY_SKIP_GUARD=1`` bypasses it.

How the guard runs first, without touching upstream's files in the repository:

- A package with ``__init__.py`` gets ``<pkg>/_wheelfactory_guard.py`` and one line
  ``from . import _wheelfactory_guard  # added by wheelfactory`` placed before any other
  statement (after the module docstring and ``from __future__`` imports, which must stay
  first).
- A top-level extension module (sageattn3's ``fp4attn_cuda``), or an extension in a
  folder without ``__init__.py``, cannot run Python before it loads. It is moved into a
  private package ``_wheelfactory_<project>/`` and replaced by a pure-Python module of the
  same name that runs the guard and then puts the real extension in its place in
  ``sys.modules``. ``import fp4attn_cuda`` keeps working. This needs no ``.pth`` file, so
  nothing runs at interpreter start-up and nothing runs unless the package is imported.
  It must happen before ``auditwheel repair``: a repaired extension finds its vendored
  libraries through an ``$ORIGIN``-relative RUNPATH, which a move would break, so
  add_guard refuses such a file.
"""

from __future__ import annotations

import ast
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from wheelfactory import naming, resources
from wheelfactory.arch import parse_targets
from wheelfactory.errors import BuildError, ConfigError
from wheelfactory.recipe import KnownBad

log = logging.getLogger(__name__)

GUARD_TEMPLATE = resources.GUARD_TEMPLATE
GUARD_MODULE = "_wheelfactory_guard"
GUARD_LINE = f"from . import {GUARD_MODULE}  # added by wheelfactory"
SKIP_ENV = "WHEELFACTORY_SKIP_GUARD"
_BUILD_LINE = "BUILD: dict = {}  # wheelfactory:build-info"
_EXT_RE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.(?:[A-Za-z0-9_.-]+\.)?(?:so|pyd)$")


@dataclass(frozen=True, kw_only=True)
class GuardInfo:
    """What the wheel was built for, baked into its guard."""

    package: str  # distribution name: "sageattention"
    version: str  # full version, label included: "2.2.0+cu128torch2.8"
    cuda: str  # "12.8"
    torch: str  # torch minor "2.8", or "abi" for a stable-ABI build
    torch_floor: str | None = None  # with torch="abi": the oldest torch it loads on, "2.10"
    targets: tuple[str, ...] = ()  # GPU targets: ("9.0a", "12.0a")
    # The index root the fix command names (the build's --index-url, the index it is
    # published to). None: not known at build time; the command then says where to look
    # instead of naming a made-up host. $WHEELFACTORY_INDEX_URL overrides it at run time.
    index_url: str | None = None
    # GPUs on which this build computes wrong results: the guard refuses to load there
    known_bad: tuple[KnownBad, ...] = ()

    def __post_init__(self) -> None:
        if self.torch == "abi":
            if not self.torch_floor:
                raise ConfigError("a stable-ABI guard needs torch_floor (e.g. '2.10'): pass it")
        elif not re.fullmatch(r"\d+\.\d+", self.torch):
            raise ConfigError(f"guard torch {self.torch!r} must be a minor like 2.8 or 'abi'")
        if not re.fullmatch(r"\d+\.\d+", self.cuda):
            msg = f"guard cuda {self.cuda!r} must look like 12.8; pass the build's CUDA"
            raise ConfigError(msg)
        parse_targets(list(self.targets))  # raises ConfigError with the accepted forms
        if self.index_url is not None:
            naming.index_url(self.index_url, given_as="the guard's index URL")

    def build_dict(self) -> dict[str, object]:
        return {
            "project": str(canonicalize_name(self.package)),
            "version": self.version,
            "public_version": Version(self.version).public,
            "cuda": self.cuda,
            "torch": self.torch,
            "torch_floor": self.torch_floor,
            "targets": [str(t) for t in parse_targets(list(self.targets))],
            "index_url": self.index_url.rstrip("/") if self.index_url else None,
            "known_bad": [
                {"arch": k.arch, "reason": k.reason, "use_instead": k.use_instead}
                for k in self.known_bad
            ],
        }


def render_guard(info: GuardInfo) -> str:
    """The guard module's source for ``info`` (the template with its BUILD line filled)."""
    template = GUARD_TEMPLATE.read_text(encoding="utf-8")
    if template.count(_BUILD_LINE) != 1:  # pragma: no cover - the template is ours
        raise BuildError(f"{GUARD_TEMPLATE} lost its {_BUILD_LINE!r} line; restore it")
    filled = f"BUILD: dict = {info.build_dict()!r}  # wheelfactory:build-info"
    return template.replace(_BUILD_LINE, filled)


def _insert_line(source: str, line: str) -> str:
    """``source`` with ``line`` as its first statement (after docstring and __future__)."""
    if line in source.splitlines():
        return source  # already guarded
    tree = ast.parse(source)
    after = 0
    for i, node in enumerate(tree.body):
        is_doc = (i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                  and isinstance(node.value.value, str))
        if is_doc or (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            after = node.end_lineno or node.lineno
        else:
            break
    lines = source.splitlines(keepends=True)
    if after == 0:  # keep a shebang / coding cookie / licence header on top
        while after < len(lines) and lines[after].lstrip().startswith("#"):
            after += 1
    newline = "\r\n" if "\r\n" in source else "\n"
    if after and after <= len(lines) and not lines[after - 1].endswith(("\n", "\r")):
        lines[after - 1] += newline
    lines.insert(after, line + newline)
    return "".join(lines)


def _shim_source(module: str, private: str) -> str:
    return (
        f'"""{module}: added by wheelfactory. Checks torch, CUDA and the GPU, then loads the\n'
        f'compiled module, kept at {private}/{module}; set {SKIP_ENV}=1 to skip the check."""\n'
        f"import importlib\nimport sys\n\n"
        f"from {private} import {GUARD_MODULE}  # noqa: F401 - raises ImportError on a mismatch\n\n"
        f'sys.modules[__name__] = importlib.import_module("{private}.{module}")\n'
    )


def add_guard(unpacked_wheel_dir: Path, info: GuardInfo) -> None:
    """Add the import-time guard to the unpacked wheel at ``unpacked_wheel_dir`` (in place)."""
    root = Path(unpacked_wheel_dir)
    guard_source = render_guard(info)
    guarded: list[str] = []
    entries = sorted(p for p in root.iterdir()
                     if not p.name.endswith((".dist-info", ".data")) and p.name != "__pycache__")
    private_name = "_wheelfactory_" + re.sub(r"\W", "_", str(canonicalize_name(info.package)))
    private = root / private_name

    def move_extension(path: Path, module: str, parent: str) -> None:
        if b"$ORIGIN" in path.read_bytes():
            msg = (f"{path.name} has an $ORIGIN RUNPATH (already repaired): add the guard "
                   "before auditwheel/delvewheel repair")
            raise BuildError(msg)
        dest = private / path.name
        private.mkdir(exist_ok=True)
        (private / "__init__.py").write_text("", encoding="utf-8")
        (private / f"{GUARD_MODULE}.py").write_text(guard_source, encoding="utf-8")
        path.rename(dest)
        shim = path.parent / f"{module}.py"
        if shim.exists():
            raise BuildError(f"{shim} exists beside extension {path.name}: rename one of them")
        qual = f"{parent}.{module}" if parent else module
        shim.write_text(_shim_source(module, private_name), encoding="utf-8")
        guarded.append(f"{qual} (shim)")

    for entry in entries:
        if entry.is_dir() and (entry / "__init__.py").is_file():
            init = entry / "__init__.py"
            (entry / f"{GUARD_MODULE}.py").write_text(guard_source, encoding="utf-8")
            init.write_text(_insert_line(init.read_text(encoding="utf-8"), GUARD_LINE),
                            encoding="utf-8")
            guarded.append(entry.name)
        elif entry.is_dir():  # a namespace folder: guard each extension module in it
            for ext in sorted(entry.iterdir()):
                m = _EXT_RE.match(ext.name)
                if m and ext.is_file():
                    move_extension(ext, m.group("name"), entry.name)
        elif entry.is_file():
            m = _EXT_RE.match(entry.name)
            if m:
                move_extension(entry, m.group("name"), "")
    if not guarded:
        msg = (f"{root} has no package folder or extension module to guard: pass the folder "
               "the wheel was unpacked into")
        raise BuildError(msg)
    log.info("guard added to %s (%s)", ", ".join(guarded), info.version)
