from __future__ import annotations

from pathlib import Path

import pytest
from wheelfactory import releases, resources
from wheelfactory.errors import ConfigError
from wheelfactory.releases import ReleaseTable, TorchRelease, Variant

MINIMAL = """
table-version = 1

[[release]]
version = "2.8.0"
pythons = ["3.12", "3.13t"]

[[release.variant]]
cuda = "12.8"
platforms = ["linux-x86_64"]
"""


def test_packaged_table_round_trips_unchanged() -> None:
    text = resources.TORCH_RELEASES.read_text(encoding="utf-8")
    assert releases.dumps(releases.parse(text)) == text


def test_dump_writes_canonical_file(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(MINIMAL)
    table = releases.load(path)
    releases.dump(table, path)
    canonical = path.read_text()
    assert canonical != MINIMAL  # header and layout were normalized
    assert releases.load(path) == table
    releases.dump(releases.load(path), path)
    assert path.read_text() == canonical


def test_packaged_table_facts() -> None:
    table = releases.load()
    versions = [r.version for r in table.releases]
    for v in ("2.6.0", "2.7.0", "2.7.1", "2.8.0", "2.9.0", "2.9.1", "2.10.0", "2.14.1", "2.15.0"):
        assert v in versions
    assert versions == sorted(versions, key=lambda v: tuple(int(x) for x in v.split(".")))
    # Patch releases stay in the table but only the newest of a minor plans.
    planning = [r.version for r in table.planning_releases()]
    assert "2.7.0" not in planning and "2.7.1" in planning
    assert len(planning) == len({r.minor for r in table.releases})
    r28 = table.get("2.8.0")
    assert r28 is not None and r28.cudas == ("12.6", "12.8", "12.9")
    # aarch64 CUDA variants differ from x86_64 before 2.9.
    assert {c for c, p, _ in r28.builds() if p == "linux-aarch64"} == {"12.9"}
    r215 = table.get("2.15.0")
    assert r215 is not None
    assert not any(c == "13.4" and p == "windows-amd64" for c, p, _ in r215.builds())
    assert "3.10" not in r215.pythons and "3.15t" in r215.pythons


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('version = "2.8.0"', 'version = "2.8"'), "full form"),
        (('version = "2.8.0"', 'version = "2.8.0rc1"'), "final"),
        (('cuda = "12.8"', 'cuda = "cu128"'), "not like"),
        (('"linux-x86_64"', '"linux-arm64"'), "unknown"),
        (('"3.13t"', '"3.13x"'), "3.13t"),
        (("table-version = 1", "table-version = 2"), "upgrade"),
        (('pythons = ["3.12", "3.13t"]', 'pythons = ["3.12"]\npypi-cuda = "12.6"'), "pypi-cuda"),
        (('version = "2.8.0"', 'version = "2.8.0"\ncolour = "red"'), "unknown key"),
    ],
)
def test_bad_tables_fail_with_a_fix(change: tuple[str, str], message: str) -> None:
    text = MINIMAL.replace(*change)
    with pytest.raises(ConfigError, match=message) as e:
        releases.parse(text, "t.toml")
    assert "\n" not in str(e.value)


def test_duplicate_cuda_platform_refused() -> None:
    text = MINIMAL + '\n[[release.variant]]\ncuda = "12.8"\nplatforms = ["linux-x86_64"]\n'
    with pytest.raises(ConfigError, match="listed twice"):
        releases.parse(text)


def test_normalize_variants_groups_platforms_by_python_set() -> None:
    builds = [
        ("12.8", "linux-x86_64", "3.12"),
        ("12.8", "linux-x86_64", "3.13"),
        ("12.8", "windows-amd64", "3.12"),
        ("12.8", "windows-amd64", "3.13"),
        ("12.8", "linux-aarch64", "3.12"),
    ]
    variants = releases.normalize_variants(builds, ("3.12", "3.13"))
    assert variants == (
        Variant(cuda="12.8", platforms=("linux-x86_64", "windows-amd64"), pythons=None),
        Variant(cuda="12.8", platforms=("linux-aarch64",), pythons=("3.12",)),
    )
    table = ReleaseTable(
        releases=(TorchRelease(version="2.8.0", pythons=("3.12", "3.13"), variants=variants),)
    )
    assert releases.parse(releases.dumps(table)) == table


def test_update_script_checks_and_rewrites(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "update_torch_releases",
        Path(__file__).resolve().parents[2] / "scripts" / "update_torch_releases.py",
    )
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--check"]) == 0  # the packaged table is canonical
    path = tmp_path / "t.toml"
    path.write_text(MINIMAL)
    assert script.main(["--check", "--table", str(path)]) == 1
    assert script.main(["--table", str(path)]) == 0
    assert script.main(["--check", "--table", str(path)]) == 0
