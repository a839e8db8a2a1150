"""The command blocks of README.md and docs/users.md, and what each one needs to run here.

Every fenced bash/sh/shell/console/powershell block of DOCS is either run by
tests/integration/test_doc_commands.py, with the local stand-ins its RUNS entry names, or
listed in CANNOT_RUN with the reason (Windows, GPU, GitHub). Blocks are keyed by their first
command line (its trailing comment dropped, spaces collapsed), so editing the prose around a
block keeps its entry; a new block, or a changed first line, fails
tests/unit/test_doc_blocks.py until it is put in one of the two tables: the docs cannot
drift away from what is tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/users.md")
SHELLS = frozenset({"bash", "sh", "shell", "console", "powershell", "pwsh", "ps1", "bat", "cmd"})
_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")


@dataclass(frozen=True)
class Block:
    doc: str  # "README.md"
    line: int  # of the opening fence, 1-based
    lang: str
    text: str

    @property
    def commands(self) -> list[str]:
        """The command lines: in a console block those after "$ ", else every line that is
        not blank or a comment."""
        lines = self.text.splitlines()
        if self.lang == "console":
            return [line[2:] for line in lines if line.startswith("$ ")]
        return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]

    @property
    def key(self) -> str:
        first = self.commands[0] if self.commands else ""
        return " ".join(re.sub(r"\s+#.*$", "", first).split())

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(root: Path = ROOT, docs: tuple[str, ...] = DOCS) -> list[Block]:
    """Every fenced shell block of ``docs``, in order."""
    out: list[Block] = []
    for doc in docs:
        fence: str | None = None
        for number, line in enumerate((root / doc).read_text(encoding="utf-8").splitlines(), 1):
            if fence is None:
                if m := _FENCE.match(line):
                    fence, lang, start, body = m.group(1), m.group(2).lower(), number, []
            elif line.startswith(fence):
                if lang in SHELLS:
                    out.append(Block(doc=doc, line=start, lang=lang, text="\n".join(body)))
                fence = None
            else:
                body.append(line)
    return out


@dataclass(frozen=True)
class Run:
    """How a block runs here. ``stand_ins``: (text of the doc, what runs here instead); each
    must occur in the block. In the replacements, {root} is the URL of a local index that
    holds the fixture wheels, {port} a free port. ``check``: shell lines run after the
    block, in the same shell, that test it did what the docs say (same placeholders). ``dist``: dist/ holds the
    fixture wheels first. ``pypi``: pip may use the machine's own configuration (PyPI);
    otherwise its index is an empty local one, so only {root} can answer."""

    why: str  # why the stand-ins
    stand_ins: tuple[tuple[str, str], ...] = ()
    check: str = ""
    dist: bool = False
    pypi: bool = False
    elsewhere: tuple[tuple[str, str], ...] = field(default=())  # (test file, text it runs)


_SAGE_AND_ROOT = (("sageattention", "stable-ext"), ("<ROOT>", "{root}"))
_INSTALLED = 'test "$(pip show stable-ext | sed -n "s/^Version: //p")" = 0.2.0+cu130torchabi'

RUNS: dict[str, Run] = {
    "pip install sageattention --extra-index-url <ROOT>/cu130/torch2.14/simple/": Run(
        why="the index holds the fixture stable_ext (a stable-ABI build like sageattention's)",
        stand_ins=_SAGE_AND_ROOT,
        check=_INSTALLED,
    ),
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[build,publish,test]'": Run(
        why="the quickstart compiles for minutes: tests/integration/test_quickstart.py runs it",
        stand_ins=(("bash examples/quickstart.sh", "wheelfactory --help >/dev/null"),),
        check='test "$(command -v wheelfactory)" = "$PWD/.venv/bin/wheelfactory"',
        pypi=True,
        elsewhere=(("tests/integration/test_quickstart.py", '"examples" / "quickstart.sh"'),),
    ),
    "wheelfactory build recipes/sageattention-stable.toml --torch 2.14.1 --cuda 13.0 --python"
    " 3.11 --arch 9.0a --out dist/": Run(
        why="GitHub is out of reach: the stable_ext fixture, built the same way (stable ABI,"
        " plain arch list, the same fixes), stands in for SageAttention's tree",
        stand_ins=(
            ("recipes/sageattention-stable.toml",
             "tests/fixtures/stable_ext.toml --source tests/fixtures/stable_ext"),
        ),  # fmt: skip
        check="ls dist/stable_ext-0.2.0+cu130torchabi-cp310-abi3-manylinux_*_x86_64.whl",
        pypi=True,
    ),
    "wheelfactory publish dist/*.whl --index site/ --index-url https://example.org/wheels": Run(
        why="dist/ holds the fixture wheels; serve runs in the background on a free port while"
        " its view answers; coverage exits 11 (documented) since the fixtures are not the"
        " recipes' wheels",
        stand_ins=(
            ("wheelfactory serve site/ --port 8000",
             "wheelfactory serve site/ --port {port} & served=$!; trap 'kill $served' EXIT;"
             " wait_for_http http://127.0.0.1:{port}/cu130/torch2.14/simple/"),
            ("wheelfactory coverage --index site/", "wheelfactory coverage --index site/ || test $? -eq 11"),
        ),  # fmt: skip
        check="test -f site/manifest.json && test -f site/cu130/torch2.14/simple/stable-ext/index.html",
        dist=True,
    ),
    "curl -fsSLO <ROOT>/which.py && python which.py sageattention": Run(
        why="the index holds the fixture stable_ext; this Python has torch 2.14.1+cu130 (no GPU)",
        stand_ins=_SAGE_AND_ROOT,
        check='python which.py stable-ext | grep -F -- "--extra-index-url {root}/cu130/torch2.14/simple/"',
    ),
    'python -c "import torch; print(torch.__version__, torch.version.cuda)"': Run(
        why="the index holds the fixture stable_ext; this Python has torch 2.14.1+cu130",
        stand_ins=_SAGE_AND_ROOT,
        check=_INSTALLED,
    ),
}

_WINDOWS = (
    "Windows (PowerShell); tests/unit/test_which.py checks which.py's advice for Windows"
    " machines it describes"
)
CANNOT_RUN: dict[str, str] = {
    r"Invoke-WebRequest <ROOT>/which.py -OutFile which.py; python_embeded\python.exe which.py"
    " sageattention": _WINDOWS + " and for ComfyUI portable's layout made on disk",
    "Invoke-WebRequest <ROOT>/which.py -OutFile which.py; python which.py sageattention": _WINDOWS,
    "python -m pytest --run-integration": "it is this test suite (.ci/run runs it); run from"
    " inside itself it would recurse",
}
