"""Byte-identical rebuilds with the real nvcc, gcc, torch and auditwheel: the stable_ext
fixture built in two folders gives the same binaries, and `wheelfactory verify --rebuild`
rebuilds a wheel from its build record into the same bytes, or names the member that
differs."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from conftest import SETTINGS, build_args, run_wheelfactory
from wheelfactory import label, wheelfile
from wheelfactory.record import RUN_FACTS, RECORD_NAME

ARCH = "9.0a"  # one target: the rebuild compiles everything again


def build_into(folder: Path) -> Path:
    """`wheelfactory build` of stable_ext with its work dir in ``folder``; the wheel."""
    out = folder / "out"
    proc = run_wheelfactory(
        *build_args("stable_ext", out, "--no-verify", "--work-dir", str(folder / "work"), arch=ARCH)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    return wheel


def members(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as z:
        return {name: z.read(name) for name in z.namelist()}


def test_two_folders_give_the_same_binaries_and_verify_rebuild_agrees(tmp_path: Path) -> None:
    first = build_into(tmp_path / "a")
    second = build_into(tmp_path / "b" / "a-deeper-folder")
    record = wheelfile.read_build_record(first)
    assert record is not None and record.reproducible is True
    # byte-identical wheels: every member the same, the compiled module included; the
    # record carries no run facts (timings, compile steps: they describe a run)
    assert first.read_bytes() == second.read_bytes()
    ours = members(first)
    so = next(n for n in ours if n.endswith(".so"))
    run_a = json.loads(ours[next(n for n in ours if n.endswith(RECORD_NAME))])
    assert all(not run_a[k] for k in RUN_FACTS), {k: run_a[k] for k in RUN_FACTS}
    # the host paths of the build stayed out of the record
    assert not any(str(tmp_path) in str(v) for v in run_a["env"].values())

    # verify --rebuild: built again from the record, in a folder of its own, byte for byte
    proc = run_wheelfactory("verify", first, "--rebuild", "--torch-index-url", SETTINGS.index_url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{first.name} is byte-identical to its rebuild" in proc.stdout

    # a wheel whose module was changed after the build (RECORD redone: a sound wheel)
    def tamper(root: Path) -> None:
        module = root / so
        module.write_bytes(module.read_bytes() + b"\0")

    tampered = label.relabel(first, [tamper], tmp_path / "tampered", work=tmp_path / "edit")
    proc = run_wheelfactory("verify", tampered, "--rebuild", "--torch-index-url", SETTINGS.index_url)
    assert proc.returncode == 13, proc.stderr[-3000:]
    assert f"{so}: content differs" in proc.stderr
