"""Mutation smoke check: break one promise of the factory at a time, in a scratch copy of
the repository, and run the tests that must notice. Reports caught / survived per break.

    python scripts/mutation_smoke.py                    # every break, unit-tier tests
    python scripts/mutation_smoke.py --integration      # also the breaks only integration sees
    python scripts/mutation_smoke.py --only vendoring    # breaks whose name contains a word

A break is a literal text replacement (it must match exactly once, so a refactor that
moves the code makes the script fail loudly instead of testing nothing). The scratch copy
is imported through PYTHONPATH, ahead of the editable install, by the tests and by every
`python -m wheelfactory` they start. Before the breaks, the listed tests must pass on the
unbroken copy. All caught is the bar; add a break when a promise is added.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("tools", "tests", "recipes", "pyproject.toml", "README.md", "docs", "scripts", "bench")


@dataclass(frozen=True)
class Break:
    name: str  # the promise it breaks
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    integration: bool = False  # only integration-tier tests can see it


BREAKS = (
    Break(
        "immutability: another file under a published name is accepted",
        "tools/wheelfactory/publish.py",
        "                if known.sha256 != info.sha256:",
        "                if False:",
        ("tests/unit/test_publish.py",),
    ),
    Break(
        "immutability: another spelling of a published file is accepted",
        "tools/wheelfactory/publish.py",
        "            if other is not None and other.filename != info.filename:",
        "            if False:",
        ("tests/unit/test_fuzz_inputs.py",),
    ),
    Break(
        "immutability: stored bytes are not checked against the hash",
        "tools/wheelfactory/publish.py",
        "            if sha256 is not None and digest.hexdigest() != sha256:",
        "            if False:",
        ("tests/unit/test_publish.py",),
    ),
    Break(
        "strict views: a wheel is listed in another torch's view",
        "tools/wheelfactory/index.py",
        '*(f"{cuda}/torch{m}" for m in file.covers))',
        '*(f"{cuda}/torch{m}" for m in (*file.covers, "2.13")))',
        ("tests/unit/test_index.py",),
    ),
    Break(
        "strict views: Requires-Dist does not pin the torch minor",
        "tools/wheelfactory/naming.py",
        '    return f"torch=={torch_minor(torch)}.*"',
        '    return "torch"',
        ("tests/unit/test_label.py", "tests/unit/test_verify.py", "tests/unit/test_publish.py"),
    ),
    Break(
        "GPU gate: a held wheel is listed",
        "tools/wheelfactory/index.py",
        "    if file.held:\n        return ()",
        "    if False:\n        return ()",
        ("tests/unit/test_index.py", "tests/unit/test_publish.py", "tests/unit/test_gpucheck.py"),
    ),
    Break(
        "buildable targets: 12.1a planned for CUDA 12.8",
        "tools/wheelfactory/resources/gpu-targets.toml",
        'arch = "12.1a"\ngpus = "DGX Spark, GB10"\nmin-cuda = "12.9"',
        'arch = "12.1a"\ngpus = "DGX Spark, GB10"\nmin-cuda = "12.8"',
        ("tests/unit/test_plan.py", "tests/unit/test_arch.py"),
    ),
    Break(
        "no vendoring: the never-vendor rule matches nothing",
        "tools/wheelfactory/repair.py",
        "            bad.append(name)",
        "            pass",
        ("tests/unit/test_verify.py", "tests/unit/test_repair.py", "tests/unit/test_publish.py"),
    ),
    Break(
        "no vendoring: auditwheel is not told what to exclude",
        "tools/wheelfactory/repair.py",
        '        argv += ["--exclude", pattern]',
        "        pass",
        ("tests/unit/test_repair.py",),
    ),
    Break(
        "no vendoring: the repairer's own copies are not recognised",
        "tools/wheelfactory/repair.py",
        '        candidates = (base, _RENAMED.sub(r"\\1", base))',
        "        candidates = (base,)",
        ("tests/unit/test_verify.py", "tests/unit/test_repair.py"),
    ),
    Break(
        "import guard: a wheel loads under another torch minor",
        "tools/wheelfactory/resources/guard_template.py",
        '        torch_ok = _minor(version) == _minor(BUILD["torch"])',
        "        torch_ok = True",
        ("tests/unit/test_guard.py",),
    ),
    Break(
        "import guard: a wheel loads on a GPU outside its targets",
        "tools/wheelfactory/resources/guard_template.py",
        '    major, minor = t.rstrip("af").split(".")',
        '    return True\n    major, minor = t.rstrip("af").split(".")',
        ("tests/unit/test_guard.py",),
    ),
    Break(
        "import guard: Linux CI wheels name no index (the container never sees the URL)",
        "tools/wheelfactory/ci/cibw.py",
        '        env["CIBW_ENVIRONMENT_PASS_LINUX"] = " ".join(HOST_VARIABLES)',
        "        pass",
        ("tests/unit/test_cibw.py",),
    ),
    Break(
        "import guard: a fix command names a made-up host",
        "tools/wheelfactory/resources/guard_template.py",
        '{root or _UNKNOWN_ROOT}/{cu}/torch{torch_minor}/simple/',
        '{root or "https://wheelfactory.invalid"}/{cu}/torch{torch_minor}/simple/',
        ("tests/unit/test_guard.py",),
    ),
    Break(
        "yank markup: HTML pages lose data-yanked",
        "tools/wheelfactory/index.py",
        """            attrs.append(f'data-yanked="{_esc(f.yank_reason or "")}"')""",
        "            pass",
        ("tests/unit/test_index.py",),
    ),
    Break(
        "SASS audit: targets nobody promised pass",
        "tools/wheelfactory/verify.py",
        '    return Check(name="SASS targets", ok=not missing and not extra, detail=detail)',
        '    return Check(name="SASS targets", ok=not missing, detail=detail)',
        ("tests/unit/test_verify.py",),
    ),
    Break(
        "SASS audit: missing targets pass",
        "tools/wheelfactory/verify.py",
        '    return Check(name="SASS targets", ok=not missing and not extra, detail=detail)',
        '    return Check(name="SASS targets", ok=not extra, detail=detail)',
        ("tests/unit/test_verify.py",),
    ),
    Break(
        "stable ABI: a module with torch C++ symbols passes",
        "tools/wheelfactory/verify.py",
        "    symbols = torch_cxx_symbols(so)\n    if not symbols:",
        "    symbols = torch_cxx_symbols(so)\n    if True:",
        ("tests/unit/test_verify.py",),
    ),
    Break(
        "build record: the targets built are not recorded",
        "tools/wheelfactory/finish.py",
        "        targets=tuple(str(t) for t in targets),",
        "        targets=(),",
        ("tests/unit/test_finish.py", "tests/unit/test_record.py"),
    ),
    Break(
        "build record: non-finite numbers reach the manifest",
        "tools/wheelfactory/record.py",
        "        data = json.loads(raw, parse_constant=refuse_constant)",
        "        data = json.loads(raw)",
        ("tests/unit/test_record.py",),
    ),
    Break(
        "one validator: duplicate zip members are accepted",
        "tools/wheelfactory/wheelfile.py",
        "def _check_members(path: Path, zf: zipfile.ZipFile) -> list[str]:\n",
        "def _check_members(path: Path, zf: zipfile.ZipFile) -> list[str]:\n"
        "    return [i.filename for i in zf.infolist()]\n",
        ("tests/unit/test_wheelfile.py",),
    ),
    Break(
        "crash recovery: temp files of an interrupted run stay",
        "tools/wheelfactory/publish.py",
        '        return "removed temp files" if _remove_debris(index) else None',
        "        return None",
        ("tests/integration/test_crash_recovery.py",),
        integration=True,
    ),
    Break(
        "crash recovery: lists link project pages before they exist",
        "tools/wheelfactory/publish.py",
        "    for path in sorted({*pages, MANIFEST_NAME}, key=_depth_first):",
        "    for path in sorted({*pages, MANIFEST_NAME}, key=_depth_first, reverse=True):",
        ("tests/integration/test_crash_recovery.py",),
        integration=True,
    ),
    Break(
        "yank markup: HTML-only hosts serve a yanked file to unpinned installs",
        "tools/wheelfactory/index.py",
        """            attrs.append(f'data-yanked="{_esc(f.yank_reason or "")}"')""",
        "            pass",
        ("tests/integration/test_index_e2e.py::test_pip_installs_from_strict_view",),
        integration=True,
    ),
    Break(
        "mistakes: plan of a torch the table lacks prints no cells and passes",
        "tools/wheelfactory/releases.py",
        "        if not text.strip() or any(spec.contains(r.version, prereleases=True) for r in self.releases):",
        "        if True:",
        ("tests/unit/test_cli_mistakes.py",),
    ),
    Break(
        "mistakes: coverage of a missing index folder reads it as empty",
        "tools/wheelfactory/manifest.py",
        "    if _is_url(index) or Path(index).is_dir():",
        "    if True:",
        ("tests/unit/test_cli_mistakes.py",),
    ),
    Break(
        "mistakes: publish of a missing wheel blames its filename",
        "tools/wheelfactory/publish.py",
        "    if not path.is_file():  # before the name",
        "    check_filename(path.name)\n    if not path.is_file():  # before the name",
        ("tests/unit/test_cli_mistakes.py",),
    ),
    Break(
        "docs: the README's command list leaves out cover",
        "README.md",
        "coverage, watch, cover, gpu-check,",
        "coverage, watch, gpu-check,",
        ("tests/unit/test_doc_blocks.py",),
    ),
    Break(
        "docs: the README quotes a time nothing measured",
        "README.md",
        "(29 s on 2 cores at load",
        "(about 10 s on 2 cores at load",
        ("tests/unit/test_doc_blocks.py",),
    ),
)


def scratch_copy(dest: Path) -> None:
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, dest / name)


def run_tests(copy: Path, tests: tuple[str, ...], integration: bool) -> tuple[bool, float]:
    """True when the tests pass."""
    env = dict(os.environ, PYTHONPATH=str(copy / "tools"), PYTHONDONTWRITEBYTECODE="1")
    env.pop("CI", None)  # skips stay skips here: the break, not the set-up, is under test
    argv = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    if integration:
        argv.append("--run-integration")
    start = time.monotonic()
    done = subprocess.run(argv, cwd=copy, env=env, capture_output=True, text=True, check=False)
    return done.returncode == 0, time.monotonic() - start


def apply(copy: Path, brk: Break) -> None:
    path = copy / brk.file
    text = path.read_text()
    count = text.count(brk.old)
    if count != 1:
        raise SystemExit(
            f"break {brk.name!r}: its text occurs {count} times in {brk.file}, not once; update it"
        )
    path.write_text(text.replace(brk.old, brk.new))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--integration", action="store_true", help="also the integration-tier breaks"
    )
    parser.add_argument("--only", metavar="WORD", help="only breaks whose name contains WORD")
    args = parser.parse_args()
    breaks = [b for b in BREAKS if (args.integration or not b.integration)]
    if args.only:
        breaks = [b for b in breaks if args.only in b.name]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wf-mutation-") as tmp:
        baseline = Path(tmp) / "baseline"
        scratch_copy(baseline)
        all_tests = tuple(sorted({t for b in breaks for t in b.tests}))
        ok, seconds = run_tests(baseline, all_tests, args.integration)
        if not ok:
            raise SystemExit("the tests fail on the unbroken copy: fix them first")
        print(f"baseline: {len(all_tests)} test files pass ({seconds:.0f} s)")
        survived = []
        for n, brk in enumerate(breaks, 1):
            copy = Path(tmp) / f"break-{n}"
            scratch_copy(copy)
            apply(copy, brk)
            passed, seconds = run_tests(copy, brk.tests, brk.integration)
            verdict = "SURVIVED" if passed else "caught"
            print(f"{verdict:8}  {brk.name}  ({seconds:.0f} s)")
            if passed:
                survived.append(brk.name)
            shutil.rmtree(copy)
    total = time.monotonic() - started
    print(f"{len(breaks) - len(survived)}/{len(breaks)} caught in {total:.0f} s")
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
