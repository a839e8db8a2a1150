"""The CI steps cibuildwheel and publish.yml run, on a real fixture wheel (built once per
session by tests/integration/conftest.py's ``fixture_wheels``): `wheelfactory repair`
(auditwheel + the label edits) and `wheelfactory release-check` (size limit, tags, label,
RECORD, SASS via cuobjdump vs the build record), and `wheelfactory summary`."""

from __future__ import annotations

import zipfile
from dataclasses import replace

from conftest import SETTINGS, run_wheelfactory
from wheelfactory import label, naming, wheelfile
from wheelfactory.ci import summary


def test_release_check_passes_a_good_wheel_and_fails_a_tampered_one(fixture_wheels, tmp_path):
    wheel = fixture_wheels["quirky_ext"]
    proc = run_wheelfactory("release-check", wheel)
    assert proc.returncode == 0, proc.stderr
    # Tamper: drop one promised target from the build record -> SASS no longer matches.
    record = wheelfile.read_build_record(wheel)
    assert record and len(record.targets) >= 2
    fewer = replace(record, targets=record.targets[:1])
    bad = label.relabel(wheel, [label.write_build_record(fewer)], tmp_path / "bad", work=tmp_path)
    proc = run_wheelfactory("release-check", bad)
    assert proc.returncode == 8, proc.stderr  # VerifyError
    assert "SASS targets" in proc.stderr and "not promised" in proc.stderr


# What a build record says about the wheel, whichever path built it (the rest is about
# the build host: paths, tools, timings, the CI run).
SAME_IN_BOTH = (
    "package", "package_version", "upstream_version", "recipe", "recipe_sha256", "platform",
    "torch", "torch_requirement", "stable_abi_floor", "cuda", "nvcc", "python_tag", "targets",
    "compress_mode", "fixes", "guard", "index_url", "known_bad", "strip_debug",
)  # fmt: skip


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
    record = wheelfile.read_build_record(wheel)
    assert record is not None
    assert record.cell == "quirky-ext-test-cell" and record.builder == "cibuildwheel"
    assert record.targets == tuple(SETTINGS.arch.split(","))
    # One record schema, written the same by both paths: the local build's record of the
    # same wheel says the same about it, and sets the same build variables.
    local = wheelfile.read_build_record(src)
    assert local is not None and local.builder == "wheelfactory build"
    for field in SAME_IN_BOTH:
        assert getattr(record, field) == getattr(local, field), field
    # the local build routes nvcc through the reproducibility wrapper (its two settings);
    # CI builds do not yet (docs/build.md, "reproducible": false there)
    wrapper = {"WHEELFACTORY_NVCC_REAL", "WHEELFACTORY_SOURCE_TARGETS"}
    assert local.reproducible and not record.reproducible
    assert set(record.env) == set(local.env) - wrapper
    assert record.repair and local.repair and record.repair.policy == local.repair.policy
    with zipfile.ZipFile(wheel) as zf:
        vendored = [n for n in zf.namelist() if ".libs/" in n]
    assert not any(("torch" in n or "c10" in n or "cudart" in n) for n in vendored), vendored
    assert run_wheelfactory("release-check", wheel).returncode == 0
    proc = run_wheelfactory("summary", out)
    assert proc.returncode == 0
    assert "quirky-ext-test-cell" in proc.stdout and wheel.name in proc.stdout
    assert summary.summary_rows([wheel])[0].targets == tuple(SETTINGS.arch.split(","))
