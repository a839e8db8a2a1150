"""The CI steps cibuildwheel and publish.yml run, on a real fixture wheel (built once per
session by tests/integration/conftest.py's ``fixture_wheels``): `wheelfactory repair`
(auditwheel + the label edits) and `wheelfactory release-check` (size limit, tags, label,
RECORD, SASS via cuobjdump vs the build record), and `wheelfactory summary`."""

from __future__ import annotations

import zipfile
from pathlib import Path

from conftest import SETTINGS, run_wheelfactory

from wheelfactory import ci, label, naming


def test_release_check_passes_a_good_wheel_and_fails_a_tampered_one(fixture_wheels, tmp_path):
    wheel = fixture_wheels["quirky_ext"]
    proc = run_wheelfactory("release-check", wheel)
    assert proc.returncode == 0, proc.stderr
    # Tamper: drop one promised target from the build record -> SASS no longer matches.
    record = label.read_build_record(wheel)
    assert record and len(record["targets"]) >= 2
    bad = label.relabel(wheel, [label.write_build_record({**record, "targets": record["targets"][:1]})], tmp_path / "bad", work=tmp_path)
    proc = run_wheelfactory("release-check", bad)
    assert proc.returncode == 8, proc.stderr  # VerifyError
    assert "SASS targets" in proc.stderr and "not promised" in proc.stderr


def test_repair_then_label_like_cibuildwheel(fixture_wheels, tmp_path):
    # cibuildwheel hands the repair command a wheel fresh from the build: here, the
    # fixture wheel with its label removed again (plain version, plain linux tag kept by auditwheel).
    src = fixture_wheels["quirky_ext"]
    info = naming.parse_wheel(src.name)
    plain = label.relabel(src, [label.set_version(info.public_version)], tmp_path / "plain", work=tmp_path / "w1")
    assert "+" not in naming.parse_wheel(plain.name).version
    out = tmp_path / "out"
    proc = run_wheelfactory(
        "repair", plain, "--out", out, "--recipe", "tests/fixtures/quirky_ext.toml", "--torch", SETTINGS.torch,
        "--cuda", SETTINGS.cuda, "--arch", SETTINGS.arch, "--cell", "quirky-ext-test-cell",
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("*.whl")
    got = naming.parse_wheel(wheel.name)
    assert got.cuda == SETTINGS.cuda and got.torch == naming.torch_minor(SETTINGS.torch)
    record = label.read_build_record(wheel)
    assert record["cell"] == "quirky-ext-test-cell" and record["builder"] == "cibuildwheel"
    assert record["targets"] == SETTINGS.arch.split(",")
    with zipfile.ZipFile(wheel) as zf:
        vendored = [n for n in zf.namelist() if ".libs/" in n]
    assert not any(("torch" in n or "c10" in n or "cudart" in n) for n in vendored), vendored
    assert run_wheelfactory("release-check", wheel).returncode == 0
    summary = run_wheelfactory("summary", out)
    assert summary.returncode == 0
    assert "quirky-ext-test-cell" in summary.stdout and wheel.name in summary.stdout
    assert ci.summary_rows([wheel])[0].targets == tuple(SETTINGS.arch.split(","))
