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
COPIED = ("tools", "tests", "recipes", "pyproject.toml", "README.md", "docs", "scripts", "bench", ".github")


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
        '*(view_path(file.cuda, m) for m in file.covers))',
        '*(view_path(file.cuda, m) for m in (*file.covers, "2.13")))',
        ("tests/unit/test_index.py",),
    ),
    Break(
        "strict views: Requires-Dist does not pin the torch minor",
        "tools/wheelfactory/naming.py",
        '        return f"torch>={self.floor}" if self.floor is not None else f"torch=={self.minor}.*"',
        '        return f"torch>={self.floor}" if self.floor is not None else "torch"',
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
        '{root or _UNKNOWN_ROOT}/{_view_path(cuda, torch_minor)}/simple/',
        '{root or "https://wheelfactory.invalid"}/{_view_path(cuda, torch_minor)}/simple/',
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
        "def check_members(path: Path, zf: zipfile.ZipFile, limits: ArchiveLimits = LIMITS) -> list[str]:\n",
        "def check_members(path: Path, zf: zipfile.ZipFile, limits: ArchiveLimits = LIMITS) -> list[str]:\n"
        "    return [i.filename for i in zf.infolist()]\n",
        ("tests/unit/test_wheelfile.py",),
    ),
    Break(
        "GPU gate: a wheel is held only when all its targets are gated (never, for multi-target wheels)",
        "tools/wheelfactory/publish.py",
        "        if any(GpuTarget.parse(t).runs_on(cap) for t in file.targets)",
        "        if all(GpuTarget.parse(t).runs_on(cap) for t in file.targets)",
        ("tests/unit/test_gpucheck.py",),
    ),
    Break(
        "GPU gate: a check that could not run releases a held wheel",
        "tools/wheelfactory/publish.py",
        '        entry = replace(entry, held=f"GPU check could not run on {where}: {check.detail}")',
        "        entry = replace(entry, held=None)",
        ("tests/unit/test_gpucheck.py",),
    ),
    Break(
        "GPU gate: a check that timed out counts as the guard's refusal (which releases)",
        "tools/wheelfactory/gpucheck.py",
        '        return result("error", f"timed out after {spec.timeout:.0f} s")',
        '        return result("refused", f"timed out after {spec.timeout:.0f} s")',
        ("tests/unit/test_gpucheck.py",),
    ),
    Break(
        "import guard: a known-bad arch refuses its whole major",
        "tools/wheelfactory/resources/guard_template.py",
        "        if caps and any(tuple(c) == want for c in caps):",
        "        if caps and any(c[0] == want[0] for c in caps):",
        ("tests/unit/test_guard.py",),
    ),
    Break(
        "stable-ABI floor: the import guard refuses the floor torch itself",
        "tools/wheelfactory/resources/guard_template.py",
        '        torch_ok = _minor(version) >= _minor(BUILD["torch_floor"])',
        '        torch_ok = _minor(version) > _minor(BUILD["torch_floor"])',
        ("tests/unit/test_guard.py",),
    ),
    Break(
        "stable-ABI floor: which and gpu-check skip the wheel at its floor torch",
        "tools/wheelfactory/which.py",
        "        return floor is None or _vtuple(torch) >= _vtuple(str(floor))",
        "        return floor is None or _vtuple(torch)[:2] > _vtuple(str(floor))",
        ("tests/unit/test_which.py", "tests/unit/test_gpucheck.py"),
    ),
    Break(
        "stable-ABI floor: add_covers refuses the floor's own view",
        "tools/wheelfactory/publish.py",
        '        if tuple(map(int, torch_minor.split("."))) < tuple(map(int, floor.split("."))):',
        '        if tuple(map(int, torch_minor.split("."))) <= tuple(map(int, floor.split("."))):',
        ("tests/unit/test_cover.py",),
    ),
    Break(
        "stable-ABI floor: verify says a module does not load on the torch that first exports its symbols",
        "tools/wheelfactory/verify.py",
        "        if since is not None and Version(since) > Version(floor):",
        "        if since is not None and Version(since) >= Version(floor):",
        ("tests/unit/test_verify.py",),
    ),
    Break(
        "stable-ABI floor: cover import-checks a torch below the floor",
        "tools/wheelfactory/cover.py",
        '        if Version(minor) < Version(f.stable_abi_floor or "999.0"):',
        "        if False:",
        ("tests/unit/test_cover.py",),
    ),
    Break(
        "atomic manifest: save_manifest (provenance) writes in place and can leave half a file",
        "tools/wheelfactory/manifest.py",
        "    atomicfile.write_bytes(path, manifest.dumps())",
        "    path.write_bytes(manifest.dumps())",
        ("tests/unit/test_ci.py",),
    ),
    Break(
        "serve: a symlink that leaves the root is served",
        "tools/wheelfactory/serve.py",
        "            target.resolve().relative_to(root.resolve())",
        "            target.absolute().relative_to(root.absolute())",
        ("tests/unit/test_serve.py",),
    ),
    Break(
        "yank markup: PEP 691 JSON says a yanked file is not yanked",
        "tools/wheelfactory/index.py",
        '            "yanked": (f.yank_reason or True) if f.yanked else False,',
        '            "yanked": False,',
        ("tests/unit/test_index.py",),
    ),
    Break(
        "download digest: GitHub's sha256 of a release asset is not checked",
        "tools/wheelfactory/download.py",
        '        if isinstance(digest, str) and digest.startswith("sha256:") and digest[7:] != sha:',
        "        if False:",
        ("tests/unit/test_download.py",),
    ),
    Break(
        "download digest: a published name downloaded with other bytes is accepted",
        "tools/wheelfactory/download.py",
        "            if manifest_hashes[path.name] != sha:",
        "            if False:",
        ("tests/unit/test_download.py",),
    ),
    Break(
        "archive caps: a member past the compression-ratio cap is read",
        "tools/wheelfactory/wheelfile.py",
        "        if size > limits.ratio_floor and size > limits.ratio * info.compress_size:",
        "        if False:",
        ("tests/unit/test_wheelfile.py",),
    ),
    Break(
        "archive caps: the whole file's compression ratio is not checked",
        "tools/wheelfactory/wheelfile.py",
        "    if total > limits.ratio_floor and total > limits.ratio * on_disk:",
        "    if False:",
        ("tests/unit/test_wheelfile.py",),
    ),
    Break(
        "archive caps: any number of members is parsed",
        "tools/wheelfactory/wheelfile.py",
        "    if count > limits.members:",
        "    if False:",
        ("tests/unit/test_wheelfile.py",),
    ),
    Break(
        "archive caps: the zip directory's byte size is not capped",
        "tools/wheelfactory/wheelfile.py",
        "    if size > limits.directory_bytes:",
        "    if False:",
        ("tests/unit/test_wheelfile.py",),
    ),
    Break(
        "archive caps: an end record that understates the member count is believed",
        "tools/wheelfactory/wheelfile.py",
        "    if len(infos) > limits.members:",
        "    if False:",
        ("tests/unit/test_wheelfile.py",),
    ),
    Break(
        "archive caps: member and total sizes are not capped",
        "tools/wheelfactory/wheelfile.py",
        "        if size > limits.member_bytes:",
        "        if False:",
        ("tests/unit/test_wheelfile.py",),
    ),
    Break(
        "archive caps: RECORD over its byte cap is read",
        "tools/wheelfactory/wheelfile.py",
        "    if size > limits.record_bytes:",
        "    if False:",
        ("tests/unit/test_wheelfile.py",),
    ),
    Break(
        "archive caps: RECORD rows are not capped as they stream",
        "tools/wheelfactory/wheelfile.py",
        "                if len(recorded) >= limits.members:",
        "                if False:",
        ("tests/unit/test_wheelfile.py",),
    ),
    Break(
        "archive caps: the RECORD check is quadratic (a list search per row)",
        "tools/wheelfactory/wheelfile.py",
        "    present = set(files)  # membership tests below: a set keeps them linear",
        "    present = list(files)",
        ("tests/unit/test_wheelfile.py",),
    ),
    Break(
        "archive caps: a name that is both file and folder is unpacked",
        "tools/wheelfactory/wheelfile.py",
        "    if clash is not None:",
        "    if False:",
        ("tests/unit/test_wheelfile.py",),
    ),
    Break(
        "repair traversal: relabel unpacks a wheel it has not checked",
        "tools/wheelfactory/label.py",
        "    with wheelfile.open_archive(wheel) as (z, _files):",
        "    with zipfile.ZipFile(wheel) as z:",
        ("tests/unit/test_repair.py", "tests/unit/test_fuzz_inputs.py"),
    ),
    Break(
        "repair traversal: the repairers get a wheel nobody checked",
        "tools/wheelfactory/repair.py",
        "    wheelfile.archive_files(wheel)\n    return repairer",
        "    return repairer",
        ("tests/unit/test_repair.py",),
    ),
    Break(
        "confinement: a path from data may leave its root",
        "tools/wheelfactory/confine.py",
        "    if _BAD_SEGMENT_RE.search(relative):",
        "    if False:",
        ("tests/unit/test_publish.py", "tests/unit/test_fuzz_inputs.py"),
    ),
    Break(
        "confinement: journal ops are followed unchecked",
        "tools/wheelfactory/publish.py",
        "    ops = _journal_ops(index, state)  # every op checked before any is applied",
        '    ops = state["ops"]',
        ("tests/unit/test_publish.py", "tests/unit/test_fuzz_inputs.py"),
    ),
    Break(
        "confinement: covers entries are not checked as torch minors",
        "tools/wheelfactory/manifest.py",
        "            if not isinstance(minor, str) or not _TORCH_MINOR_RE.fullmatch(minor):",
        "            if False:",
        ("tests/unit/test_manifest.py", "tests/unit/test_publish.py"),
    ),
    Break(
        "trusted data: a manifest size of true is a size",
        "tools/wheelfactory/manifest.py",
        "        ok = bool in expected if isinstance(value, bool) else isinstance(value, expected)",
        "        ok = isinstance(value, expected)",
        ("tests/unit/test_manifest.py", "tests/unit/test_publish.py"),
    ),
    Break(
        "trusted data: a manifest size has no upper bound",
        "tools/wheelfactory/manifest.py",
        "        if not 0 <= self.size <= MAX_SIZE:",
        "        if not 0 <= self.size:",
        ("tests/unit/test_manifest.py", "tests/unit/test_publish.py"),
    ),
    Break(
        "trusted data: a build record's targets need not parse",
        "tools/wheelfactory/record.py",
        "        GpuTarget.parse(target)\n    except ConfigError:",
        "        pass\n    except ConfigError:",
        ("tests/unit/test_record.py", "tests/unit/test_publish.py"),
    ),
    Break(
        "trusted data: an edited sha256 is re-rendered",
        "tools/wheelfactory/publish.py",
        "    _refuse_changed_hashes(index, pages, manifest)\n",
        "",
        ("tests/unit/test_publish.py",),
    ),
    Break(
        "trusted data: a page's wrong sha256 is kept instead of repaired",
        "tools/wheelfactory/publish.py",
        "            if _stored_sha256(index, entry) == entry.sha256:",
        "            if False:",
        ("tests/unit/test_publish.py",),
    ),
    Break(
        "trusted data: watch takes an epoch release into the table",
        "tools/wheelfactory/releases.py",
        "    if parsed.epoch or parsed.is_prerelease or parsed.is_postrelease or parsed.local:",
        "    if parsed.is_prerelease or parsed.local:",
        ("tests/unit/test_watch.py", "tests/unit/test_releases.py"),
    ),
    Break(
        "GPU gate: coverage counts a held wheel as published",
        "tools/wheelfactory/coverage.py",
        "    for torch in _strict_minors(views_of(file)):",
        "    for torch in _strict_minors(views_of(replace(file, held=None))):",
        ("tests/unit/test_coverage.py",),
    ),
    Break(
        "environments: coverage counts a stable-ABI cell for its build torch only (issue 22)",
        "tools/wheelfactory/coverage.py",
        "        minors = set(cell.covers)",
        "        minors = {naming.torch_minor(cell.torch)}",
        ("tests/unit/test_coverage.py",),
    ),
    Break(
        "environments: coverage counts an abi3 stable-ABI cell for its build torch only",
        "tools/wheelfactory/coverage.py",
        '            minors = {c[len("torch"):] for c in cell.covers if c.startswith("torch")}',
        "            minors = {naming.torch_minor(cell.torch)}",
        ("tests/unit/test_coverage.py",),
    ),
    Break(
        "environments: coverage ignores pip's tags",
        "tools/wheelfactory/coverage.py",
        "    if not tags & accepted_tags(python, platform).keys():",
        "    if not tags:",
        ("tests/unit/test_coverage.py",),
    ),
    Break(
        "environments: coverage ignores Requires-Python",
        "tools/wheelfactory/coverage.py",
        "    if requires_python:",
        "    if False:",
        ("tests/unit/test_coverage.py",),
    ),
    Break(
        "environments: coverage takes a glibc newer than torch's own wheels need",
        "tools/wheelfactory/coverage.py",
        "USER_GLIBC_MINOR = 28",
        "USER_GLIBC_MINOR = 40",
        ("tests/unit/test_coverage.py",),
    ),
    Break(
        "environments: the landing matrix puts a stable-ABI wheel in a row of its own",
        "tools/wheelfactory/landing.py",
        "dict.fromkeys((e.torch, e.cuda, e.platform) for e in served)",
        "dict.fromkeys((info.torch or e.torch, e.cuda, e.platform) for e in served)",
        ("tests/unit/test_coverage.py",),
    ),
    Break(
        "GPU gate: plan --missing counts a held wheel as published",
        "tools/wheelfactory/plan.py",
        '            if not f.yanked and not entry_field(f, "held")',
        "            if not f.yanked",
        ("tests/unit/test_plan.py",),
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
        "download: a digest that differs from GitHub's is accepted",
        "tools/wheelfactory/download.py",
        '        if isinstance(digest, str) and digest.startswith("sha256:") and digest[7:] != sha:',
        "        if False:",
        ("tests/unit/test_download.py",),
    ),
    Break(
        "download: a redirect to file:// is followed and stored as a wheel",
        "tools/wheelfactory/github.py",
        "            if not _fetchable(url):",
        "            if False:",
        ("tests/unit/test_download.py",),
    ),
    Break(
        "download: two artifacts holding one wheel name replace each other",
        "tools/wheelfactory/download.py",
        "                if name in taken:",
        "                if False:",
        ("tests/unit/test_download.py",),
    ),
    Break(
        "download: an artifact listing goes on past a short page",
        "tools/wheelfactory/github.py",
        "            if len(batch) < PER_PAGE or len(artifacts) >=",
        "            if len(artifacts) >=",
        ("tests/unit/test_download.py",),
    ),
    Break(
        "download: an artifact listing that never ends is cut short in silence",
        "tools/wheelfactory/github.py",
        "        raise NetworkError(msg)\n",
        "        return artifacts\n",
        ("tests/unit/test_download.py",),
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
        "(42 s on 2 cores at load",
        "(about 10 s on 2 cores at load",
        ("tests/unit/test_doc_blocks.py",),
    ),
    Break(
        "which: a wheel held by the GPU gate is offered",
        "tools/wheelfactory/which.py",
        '    return not _get(item, "yanked") and not _get(item, "held")',
        '    return not _get(item, "yanked")',
        ("tests/unit/test_which.py",),
    ),
    Break(
        "which: reading manifest.json has no overall deadline",
        "tools/wheelfactory/which.py",
        "    reader.join(deadline)",
        "    reader.join()",
        ("tests/unit/test_which.py",),
    ),
    Break(
        "which: manifest.json has no size cap",
        "tools/wheelfactory/which.py",
        "                if len(body) > max_bytes:",
        "                if False:",
        ("tests/unit/test_which.py",),
    ),
    Break(
        "which: a file name with escape sequences passes as a wheel",
        "tools/wheelfactory/which.py",
        'r"^(?P<name>[A-Za-z0-9._]+)-(?P<version>[A-Za-z0-9._+!]+)',
        'r"^(?P<name>[A-Za-z0-9._]+)-(?P<version>[^-]+)',
        ("tests/unit/test_which.py",),
    ),
    Break(
        "which: its output is printed with non-printable characters",
        "tools/wheelfactory/which.py",
        '        return "\\n".join(printable(line) for line in lines)',
        '        return "\\n".join(lines)',
        ("tests/unit/test_which.py",),
    ),
    Break(
        "which: --layout portable is ignored",
        "tools/wheelfactory/which.py",
        "    py = PORTABLE_PYTHON if machine.portable else python_command(machine.executable, machine.os)",
        "    py = python_command(machine.executable, machine.os)",
        ("tests/unit/test_which.py",),
    ),
    Break(
        "which: --gpu takes a model number for the wrong series",
        "tools/wheelfactory/which.py",
        "    return want.group(1) == prefix and int(lo_m.group(2)) <= int(want.group(2))",
        "    return want.group(1) == prefix and int(lo_m.group(2)) < int(want.group(2))",
        ("tests/unit/test_which.py",),
    ),
    Break(
        "which: gpucheck uses a private helper of which.py",
        "tools/wheelfactory/gpucheck.py",
        "        os_name, arch = which.host_platform()",
        "        os_name, arch = which.host_platform()[0], which._normalise_arch(_platform.machine())",
        ("tests/unit/test_which.py",),
    ),
    Break(
        "view path: which.py's copy spells the stable-ABI view another way",
        "tools/wheelfactory/which.py",
        """    return f"{cuda_tag(cuda)}/torch{torch_minor(torch) if torch != 'abi' else 'abi'}\"""",
        """    return f"{cuda_tag(cuda)}/torch{torch_minor(torch) if torch != 'abi' else 'stable'}\"""",
        ("tests/unit/test_view_path.py",),
    ),
    Break(
        "view path: the guard's copy drops the CUDA minor",
        "tools/wheelfactory/resources/guard_template.py",
        '    return "cu" + "".join(cuda.split(".")[:2]) + "/torch" + torch_minor',
        '    return "cu" + "".join(cuda.split(".")[:1]) + "/torch" + torch_minor',
        ("tests/unit/test_view_path.py",),
    ),
    Break(
        "view path: the landing page's copy differs",
        "tools/wheelfactory/resources/landing/landing.js",
        'cudaTag(cuda) + "/torch" + torch + "/simple/"',
        'cudaTag(cuda) + "/torch-" + torch + "/simple/"',
        ("tests/unit/test_view_path.py",),
    ),
    Break(
        "view path: index.py spells the strict view itself",
        "tools/wheelfactory/index.py",
        "    return (view_path(file.cuda, file.torch), view_path(file.cuda),",
        '    return (f"cu{file.cuda}/torch{file.torch}", view_path(file.cuda),',
        ("tests/unit/test_view_path.py",),
    ),
    Break(
        "landing first visit: an OS without wheels is dropped from the selector",
        "tools/wheelfactory/landing.py",
        '        "platforms": [[k, v[0]] for k, v in PLATFORMS.items()],',
        '        "platforms": [[k, v[0]] for k, v in PLATFORMS.items()\n'
        '                      if any(k in e["platforms"] for e in entries)],',
        ("tests/unit/test_landing.py::test_every_os_is_offered_and_defaults_reach_the_page",),
    ),
    Break(
        "landing first visit: defaults are the index's newest, whatever the OS",
        "tools/wheelfactory/landing.py",
        '        here = [e for e in entries if platform in e["platforms"]]',
        "        here = list(entries)",
        ("tests/unit/test_landing.py::test_each_os_starts_on_a_setup_covered_there",),
    ),
    Break(
        "landing first visit: stable-ABI wheels serve no torch",
        "tools/wheelfactory/landing.py",
        "    return not floor or _sort_version(torch) >= _sort_version(str(floor))",
        "    return False",
        ("tests/unit/test_landing.py::test_stable_abi_wheels_serve_every_torch_from_their_floor",),
    ),
    Break(
        "landing first visit: the page ignores its OS defaults",
        "tools/wheelfactory/resources/landing/landing.js",
        "    var start = data.defaults[platform] || {",
        "    var start = {",
        ("tests/integration/test_landing_browser.py::test_windows_visitor_starts_on_a_covered_setup",),
        integration=True,
    ),
    Break(
        "landing first visit: an OS without wheels is not said plainly",
        "tools/wheelfactory/resources/landing/landing.js",
        "    if (noOs) return noOs;",
        "    if (noOs) noOs = null;",
        ("tests/integration/test_landing_browser.py"
         "::test_index_without_windows_wheels_tells_the_windows_visitor",),
        integration=True,
    ),
    Break(
        "landing first visit: the GPU note leaves out stable-ABI wheels",
        "tools/wheelfactory/resources/landing/landing.js",
        "    var served = torchRanges(torchesServed(files));",
        "    var served = torchRanges(torchesServed(files.filter(function (f) { return f.torch !== \"abi\"; })));",
        ("tests/integration/test_landing_browser.py"
         "::test_stable_abi_wheels_count_in_notes_and_verdicts",),
        integration=True,
    ),
    Break(
        "landing first visit: the selector is below a phone's first screen",
        "tools/wheelfactory/resources/landing/landing.html",
        '<section id="install">',
        '<section id="about"><p>{{ coverage }}</p></section>\n<section id="install">',
        ("tests/integration/test_landing_browser.py"
         "::test_selector_is_on_the_first_screen_of_a_phone",),
        integration=True,
    ),
    Break(
        "check chain: publish accepts a binary wheel without a build record",
        "tools/wheelfactory/verify.py",
        "    missing = s.wheel.build_record is None and bool(s.wheel.extension_modules())",
        "    missing = False",
        ("tests/unit/test_check_chain.py",),
    ),
    Break(
        "check chain: a stage runs only its own list of links",
        "tools/wheelfactory/verify.py",
        "    links = [link for link in CHAIN if link.name not in LEFT_OUT[stage]]",
        "    links = [link for link in CHAIN[:5] if link.name not in LEFT_OUT[stage]]",
        ("tests/unit/test_check_chain.py",),
    ),
    Break(
        "patches: a wheel without its recipe's patches is published",
        "tools/wheelfactory/verify.py",
        "    if got == want:",
        "    if True:",
        ("tests/unit/test_patches.py",),
    ),
    Break(
        "patches: the patches are not applied",
        "tools/wheelfactory/source.py",
        "        _proc.run([*git, patch.file], cwd=tree, echo=False)",
        "        pass",
        ("tests/unit/test_patches.py",),
    ),
    Break(
        "index URL: a URL a shell acts on reaches the pip commands",
        "tools/wheelfactory/naming.py",
        "    if not _INDEX_URL_RE.fullmatch(url):",
        "    if not url.startswith(('http://', 'https://')):",
        ("tests/unit/test_label.py", "tests/unit/test_publish_landing.py"),
    ),
    Break(
        "serve bounds: an idle connection is never closed",
        "tools/wheelfactory/serve.py",
        "and now - conn.idle_since > self.idle_timeout:",
        "and False:",
        ("tests/integration/test_serve_http.py::test_an_idle_connection_is_closed_after_the_timeout_and_logged",),
        integration=True,
    ),
    Break(
        "serve bounds: past --max-connections a client is still taken",
        "tools/wheelfactory/serve.py",
        "            over = self._open >= self.max_connections",
        "            over = False",
        ("tests/integration/test_serve_http.py::test_past_max_connections_a_client_gets_503_and_the_drop_is_logged",),
        integration=True,
    ),
    Break(
        "serve bounds: running out of descriptors on accept is not explained",
        "tools/wheelfactory/serve.py",
        "            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):",
        "            if False:",
        ("tests/integration/test_serve_http.py::test_out_of_file_descriptors_on_accept_is_logged",),
        integration=True,
    ),
    Break(
        "serve bounds: the worker threads grow with the connections",
        "tools/wheelfactory/serve.py",
        "        self.workers = limits.workers\n",
        "        self.workers = limits.workers * 40\n",
        ("tests/integration/test_serve_http.py::test_answers_a_new_client_within_1s_while_1000_idle_connections_are_open",),
        integration=True,
    ),
    Break(
        "serve: a pipelined request waits in the reader unanswered",
        "tools/wheelfactory/serve.py",
        "                if not conn.has_buffered_request():",
        "                if True:",
        ("tests/integration/test_serve_http.py::test_pipelined_requests_on_one_connection_are_all_answered",),
        integration=True,
    ),
    Break(
        "serve: a symlink that leaves the root is served",
        "tools/wheelfactory/serve.py",
        "            target.resolve().relative_to(root.resolve())",
        "            target.relative_to(root)",
        ("tests/integration/test_serve_http.py::test_a_symlink_that_leaves_the_root_is_refused",),
        integration=True,
    ),
    Break(
        "verify modules: a build imports modules its GPU targets do not make",
        "tools/wheelfactory/recipe.py",
        "                if any(t.capability in built for t in made_by)]  # fmt: skip",
        "                if True]  # fmt: skip",
        ("tests/unit/test_recipe.py", "tests/unit/test_recipes_sageattention.py"),
    ),
    Break(
        "torch cuda: a torch built for another CUDA passes the pre-download check",
        "tools/wheelfactory/buildenv.py",
        "    if found_cuda is not None and _same_cuda(found_cuda, cuda):",
        "    if True:",
        ("tests/unit/test_buildenv.py::test_torch_built_for_another_cuda_is_refused_before_any_download",),
    ),
    Break(
        "torch cuda: the CUDA runtime torch requires is not read",
        "tools/wheelfactory/buildenv.py",
        "        if canonicalize_name(req.name) in _CUDA_RUNTIME_DISTS and pins:",
        "        if False:",
        ("tests/unit/test_buildenv.py",),
    ),
    Break(
        "network failure: a DNS failure is taken for a refused shallow fetch",
        "tools/wheelfactory/source.py",
        "        reason = network_failure(shallow.stdout)",
        "        reason = None",
        ("tests/unit/test_source.py",),
    ),
    Break(
        "heartbeat: a long compile is silent",
        "tools/wheelfactory/_log.py",
        '                log.info("  still in %s, %.0f s: %s", step, now - started, what())',
        "                pass",
        ("tests/unit/test_build.py",),
    ),
    Break(
        "kept work dir: a failed build does not say where its work dir is",
        "tools/wheelfactory/pipeline.py",
        '        e.args = (f"{e}{kept_work_dir(work)}",)  # same class, return code and tip',
        "        pass",
        ("tests/integration/test_build_fixtures.py::test_a_failed_build_names_the_work_dir_it_keeps",),
        integration=True,
    ),
    Break(
        "NaN check: a NaN at a short length passes when the cosine looks fine",
        "tools/wheelfactory/gpucheck.py",
        "    if nan_cases:",
        "    if False:",
        ("tests/unit/test_gpucheck_source.py",),
    ),
    Break(
        "NaN check: a source check builds the tree without the recipe's patches",
        "tools/wheelfactory/gpucheck.py",
        "work) if with_patches else ()",
        "work) if False else ()",
        ("tests/unit/test_gpucheck_source.py",),
    ),
    Break(
        "NaN check: a source check builds PTX targets this GPU cannot run",
        "tools/wheelfactory/gpucheck.py",
        "if t.runs_on(machine.capability) and (not only or t in only)",
        "if (not only or t in only)",
        ("tests/unit/test_gpucheck_source.py",),
    ),
    Break(
        "cibw build python: the repair runs wheelfactory in the build Python (cp39 on Linux)",
        "tools/wheelfactory/ci/cibw.py",
        '    env["CIBW_REPAIR_WHEEL_COMMAND"] = _factory(plat, repair)',
        '    env["CIBW_REPAIR_WHEEL_COMMAND"] = " ".join(["python", _command(["-m", "wheelfactory", *repair])])',
        ("tests/unit/test_ci_jobs.py",),
    ),
    Break(
        "cibw build python: before-build installs wheelfactory into the build Python",
        "tools/wheelfactory/ci/cibw.py",
        "        _pip_install(table.build_requires),",
        '        _pip_install([*table.build_requires, "{project}"]),',
        ("tests/unit/test_ci_jobs.py",),
    ),
    Break(
        "cibw build python: the build record describes the factory's Python, not the build's",
        "tools/wheelfactory/ci/cibw.py",
        '        "--build-python", "python",\n',
        "",
        ("tests/unit/test_ci_jobs.py",),
    ),
    Break(
        "cibw job size: a job builds every Python of a (recipe, torch, CUDA, platform) again",
        "tools/wheelfactory/plan.py",
        '                "minutes": budget.minutes(platform=c.platform, targets=len(c.targets), wheels=1),',
        '                "minutes": budget.minutes(platform=c.platform, targets=len(c.targets), wheels=5),',
        ("tests/unit/test_ci_jobs.py",),
    ),
    Break(
        "cibw job size: cibw-env accepts a job over the time budget",
        "tools/wheelfactory/ci/cibw.py",
        "    if minutes > budget.limit_minutes:",
        "    if False:",
        ("tests/unit/test_ci_jobs.py",),
    ),
    Break(
        "cibw disk: cibw-env accepts a job over the runner's disk",
        "tools/wheelfactory/ci/cibw.py",
        "    if need > budget.disk_gb[plat]:",
        "    if False:",
        ("tests/unit/test_ci_jobs.py",),
    ),
    Break(
        "cibw smoke: no libcuda stub for a driver-less Linux runner",
        "tools/wheelfactory/ci/cell.py",
        "        stub_dir = cudastub.make_stub(cuda_home, work / \"stubs\")",
        "        stub_dir = None",
        ("tests/unit/test_ci_jobs.py",),
    ),
    Break(
        "cibw smoke: Windows imports a module that needs nvcuda.dll on a driver-less runner",
        "tools/wheelfactory/ci/cell.py",
        "            if DRIVER_DLL in (d.lower() for d in dlls):",
        "            if False:",
        ("tests/unit/test_ci_jobs.py",),
    ),
    Break(
        "cibw smoke: Windows leaves out every module, imported or not",
        "tools/wheelfactory/ci/cell.py",
        "    to_import = [n for n in names if n not in skipped]",
        "    to_import = []",
        ("tests/unit/test_ci_jobs.py",),
    ),
    Break(
        "download disk: each artifact zip stays on disk until all are unpacked",
        "tools/wheelfactory/download.py",
        "            zpath.unlink()  # peak disk",
        "            pass  # peak disk",
        ("tests/unit/test_download.py",),
    ),
    Break(
        "watch proposal: a table the proposal branch already holds is proposed again",
        "tools/wheelfactory/watch.py",
        "    return on_branch != written",
        "    return True",
        ("tests/unit/test_watch_publish_workflows.py",),
    ),
    Break(
        "watch pipefail: a failing watch passes as tee's success",
        ".github/workflows/watch.yml",
        "          set -o pipefail",
        "          set +o pipefail",
        ("tests/unit/test_watch_publish_workflows.py",),
    ),
    Break(
        "release drafts: a new release is created published, before its assets",
        "tools/wheelfactory/ghrelease.py",
        '"body": RELEASE_BODY, "draft": True}',
        '"body": RELEASE_BODY, "draft": False}',
        ("tests/unit/test_release_drafts.py",),
    ),
    Break(
        "release drafts: a later publish uploads into a published release",
        "tools/wheelfactory/ghrelease.py",
        '        if not self.release().get("draft"):',
        "        if False:",
        ("tests/unit/test_release_drafts.py",),
    ),
    Break(
        "release drafts: the drafts are never published",
        "tools/wheelfactory/publish.py",
        "            store.finish()",
        "            pass",
        ("tests/unit/test_release_drafts.py",),
    ),
    Break(
        "publish manifest: read from the Pages CDN although the last publish left it",
        "tools/wheelfactory/download.py",
        "    if artifact is not None:",
        "    if False:",
        ("tests/unit/test_watch_publish_workflows.py",),
    ),
    Break(
        "publish manifest: a pull request's artifact is taken for the manifest",
        "tools/wheelfactory/github.py",
        'ours and run.get("head_branch") == branch',
        "True",
        ("tests/unit/test_watch_publish_workflows.py",),
    ),
    Break(
        "artifact overwrite: a re-run of the GPU check job fails on its artifact's name",
        ".github/workflows/build.yml",
        "          overwrite: true # a re-run replaces",
        "          overwrite: false # a re-run replaces",
        ("tests/unit/test_workflows_contract.py",),
    ),
    Break(
        "watch PR token: the pull request is opened with GITHUB_TOKEN and gets no checks",
        ".github/workflows/watch.yml",
        "GH_TOKEN: ${{ secrets.WHEELFACTORY_PR_TOKEN || github.token }}",
        "GH_TOKEN: ${{ github.token }}",
        ("tests/unit/test_watch_publish_workflows.py",),
    ),
    Break(
        "release drafts: publish.yml reuses one release tag across publish runs",
        ".github/workflows/publish.yml",
        '@$TAG-$GITHUB_RUN_ID"',
        '@$TAG"',
        ("tests/unit/test_watch_publish_workflows.py",),
    ),
    Break(
        "publish manifest: publish.yml keeps no manifest for the next publish",
        ".github/workflows/publish.yml",
        "name: wheelfactory-manifest",
        "name: site-manifest",
        ("tests/unit/test_watch_publish_workflows.py",),
    ),
    Break(
        "release path cover: only the newest torch of the table is checked",
        "tools/wheelfactory/cover.py",
        "    for release in table.planning_releases():",
        "    for release in table.planning_releases()[-1:]:",
        ("tests/unit/test_cover.py",),
    ),
    Break(
        "release path cover: a torch that does not ship the wheel's CUDA is checked",
        "tools/wheelfactory/cover.py",
        "                v.cuda == f.cuda and (not wheel_platforms",
        "                True and (not wheel_platforms",
        ("tests/unit/test_cover.py",),
    ),
    Break(
        "release path cover: a Linux wheel is checked for a torch that ships its CUDA on Windows only",
        "tools/wheelfactory/cover.py",
        "(not wheel_platforms or wheel_platforms & set(v.platforms))",
        "True",
        ("tests/unit/test_cover.py",),
    ),
    Break(
        "release path cover: the symbol audit passes a symbol that torch exports only later",
        "tools/wheelfactory/verify.py",
        "        if since is None or Version(since) > Version(minor):",
        "        if since is None:",
        ("tests/unit/test_cover.py",),
    ),
    Break(
        "release path cover: the symbol audit passes a symbol that torch removed",
        "tools/wheelfactory/verify.py",
        "        if name in removed:",
        "        if False:",
        ("tests/unit/test_cover.py",),
    ),
    Break(
        "release path cover: a wheel that fails the check is listed in that torch's view",
        "tools/wheelfactory/cover.py",
        "    if result.ok:\n        publish.add_covers(index, result.filename, minor)",
        "    if True:\n        publish.add_covers(index, result.filename, minor)",
        ("tests/unit/test_cover.py",),
    ),
    Break(
        "release path cover: a local copy with other bytes than the published file is checked",
        "tools/wheelfactory/cover.py",
        "    if got != f.sha256:",
        "    if False:",
        ("tests/unit/test_cover.py",),
    ),
    Break(
        "release path cover: a gap is not recorded in the manifest",
        "tools/wheelfactory/cover.py",
        "        publish.add_gap(index, result.filename, minor, result.detail)",
        "        pass",
        ("tests/unit/test_cover.py",),
    ),
    Break(
        "release path cover: a recorded gap is checked again (a torch install) on every run",
        "tools/wheelfactory/cover.py",
        "        if not retry_gaps and minor in f.not_covered:",
        "        if False:",
        ("tests/unit/test_cover.py",),
    ),
    Break(
        "release path cover: a later pass leaves the old gap recorded",
        "tools/wheelfactory/publish.py",
        "        gaps = {m: why for m, why in entry.not_covered.items() if m != torch_minor}  # a re-check passed",
        "        gaps = dict(entry.not_covered)",
        ("tests/unit/test_cover.py",),
    ),
    Break(
        "release path cover: a wheel whose import failed is listed",
        "tools/wheelfactory/cover.py",
        "results.append(CoverResult(filename=w.file.filename, torch=torch, ok=bad is None, detail=detail))",
        "results.append(CoverResult(filename=w.file.filename, torch=torch, ok=True, detail=detail))",
        ("tests/integration/test_cover_release.py",),
        integration=True,
    ),
    Break(
        "release path cover: the torch env made for the check stays on disk",
        "tools/wheelfactory/cover.py",
        '            if env.kind == "cached" and env.root not in before:',
        "            if False:",
        ("tests/integration/test_cover_release.py",),
        integration=True,
    ),
    Break(
        "limited-API sageattention: the recipe's abi3 tag is not the one patch 0002 gives",
        "recipes/sageattention-main.toml",
        'abi3 = "cp39"',
        'abi3 = "cp310"',
        ("tests/unit/test_recipes_sageattention.py",),
    ),
    Break(
        "limited-API sageattention: the v2.2.0 recipe plans per-Python cells again",
        "recipes/sageattention.toml",
        'abi3 = "cp39"\n',
        "",
        ("tests/unit/test_recipes_sageattention.py",),
    ),
    Break(
        "sageattn3 stable: the per-torch abi3 recipe still builds torch >= 2.10 beside the stable wheel",
        "recipes/sageattn3-abi3.toml",
        'torch = ">=2.7,<2.10"',
        'torch = ">=2.7"',
        ("tests/unit/test_recipes_sageattention.py",),
    ),
    Break(
        "reproducible: nvcc is not seeded per source file",
        "tools/wheelfactory/resources/nvcc_filter.py",
        '        f"-frandom-seed={rel}",',
        '        "-frandom-seed=0",',
        ("tests/unit/test_rebuild.py",),
    ),
    Break(
        "reproducible: nvcc hashes the tree's absolute path into symbol names",
        "tools/wheelfactory/resources/nvcc_filter.py",
        '"-Xcudafe", f"--orig_src_path_name={rel}",',
        "",
        ("tests/unit/test_rebuild.py", "tests/integration/test_rebuild_real.py"),
    ),
    Break(
        "reproducible: a build is not told its source tree (no path map, no seeds)",
        "tools/wheelfactory/pipeline.py",
        "        source_root=prepared.tree if reproducible else None,",
        "        source_root=None,",
        ("tests/integration/test_rebuild_real.py",),
        integration=True,
    ),
    Break(
        "reproducible: the rebuild comparison ignores member content",
        "tools/wheelfactory/rebuild.py",
        "            if ours != theirs:",
        "            if False:",
        ("tests/unit/test_rebuild.py",),
    ),
    Break(
        "reproducible: the wheel's record carries this run's timings",
        "tools/wheelfactory/finish.py",
        "    in_wheel = record.without_run_facts() if record.reproducible else record",
        "    in_wheel = record",
        ("tests/integration/test_rebuild_real.py",),
        integration=True,
    ),
    Break(
        "rehearsal: a Python checked by resolution is resolved for another Python",
        "scripts/rehearse_release.py",
        '"--target", r.settings.work / "resolve" / "target", "--python-version", version,',
        '"--target", r.settings.work / "resolve" / "target", "--python-version", "3.14",',
        ("tests/integration/test_rehearse_release.py::test_a_python_checked_by_resolution_passes_where_pip_resolves_it",),
        integration=True,
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
