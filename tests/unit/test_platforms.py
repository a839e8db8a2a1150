"""platforms.py: the one platform table, and the modules that ask it."""

from __future__ import annotations

from pathlib import Path

import pytest
from wheelfactory import platforms
from wheelfactory.errors import ConfigError

TABLE = platforms.table()


def test_names_follow_os_and_machine() -> None:
    assert list(TABLE) == ["linux-x86_64", "linux-aarch64", "windows-amd64"]
    assert platforms.oses() == ("linux", "windows")
    for p in TABLE.values():
        assert p.name == f"{p.os}-{p.machine}"


@pytest.mark.parametrize(
    ("tag", "name"),
    [
        ("manylinux_2_28_x86_64", "linux-x86_64"),
        ("manylinux2014_x86_64", "linux-x86_64"),
        ("manylinux_2_39_aarch64", "linux-aarch64"),
        ("win_amd64", "windows-amd64"),
        ("linux_x86_64", None),  # an unrepaired build belongs to no index platform
        ("macosx_14_0_arm64", None),
        ("any", None),
    ],
)
def test_of_tag(tag: str, name: str | None) -> None:
    found = platforms.of_tag(tag)
    assert (found.name if found else None) == name


def test_unrepaired_tags_of_torch_wheels_map_for_watch() -> None:
    found = platforms.of_tag("linux_aarch64", unrepaired=True)
    assert found is not None and found.name == "linux-aarch64"


def test_scratch_paths_and_cpu() -> None:
    win = platforms.get("windows-amd64")
    assert win.gpu_shim_dir == "C:/wheelfactory-gpu-shim"
    assert win.nvcc_filter_path == "C:/wheelfactory-nvcc-filter/nvcc.bat"
    assert win.cpu == "x86_64" and win.is_windows
    linux = platforms.get("linux-x86_64")
    assert linux.nvcc_filter_path == "/tmp/wheelfactory-nvcc-filter/nvcc"


def test_unknown_platform_suggests_the_nearest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'linux-aarch64'"):
        platforms.get("linux-arm64")


def test_a_new_platform_is_one_row(tmp_path: Path) -> None:
    """windows-arm64 as the issue's example: a row with an existing repairer is enough
    for the planner's tags, the CI identifiers and the repair dispatch."""
    text = platforms.resources.PLATFORMS.read_text()
    row = text[text.index("[platform.windows-amd64]"):]
    row = (row.replace("windows-amd64", "windows-arm64").replace('machine = "amd64"', 'machine = "arm64"')
           .replace("win_amd64", "win_arm64").replace("AMD64", "ARM64"))  # fmt: skip
    path = tmp_path / "platforms.toml"
    path.write_text(text + "\n" + row)
    table = platforms._parse(path.read_text(), str(path))
    assert table["windows-arm64"].matches_tag("win_arm64")
    assert table["windows-arm64"].cibw_suffix == "win_arm64"
    assert table["windows-arm64"].cpu == "aarch64"


def test_a_row_missing_a_key_is_refused(tmp_path: Path) -> None:
    text = platforms.resources.PLATFORMS.read_text().replace('runner = "windows-2022"\n', "")
    with pytest.raises(ConfigError, match=r"\[platform.windows-amd64\] must have the keys"):
        platforms._parse(text, "platforms.toml")
