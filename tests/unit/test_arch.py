from __future__ import annotations

import pytest
from wheelfactory import arch
from wheelfactory.arch import GpuTarget
from wheelfactory.errors import ConfigError


def test_parse_forms() -> None:
    assert GpuTarget.parse("9.0a") == GpuTarget(9, 0, "a")
    assert GpuTarget.parse("sm_120a") == GpuTarget(12, 0, "a")
    assert GpuTarget.parse("8.9+PTX") == GpuTarget(8, 9, "", True)
    assert str(GpuTarget.parse("12.0f")) == "12.0f"
    assert GpuTarget.parse("10.0a").sm == "sm_100a"


@pytest.mark.parametrize("bad", ["9", "sm_9x", "9.0b", "12.0a+PTX", ""])
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(ConfigError):
        GpuTarget.parse(bad)


def test_parse_targets_sorts_and_dedups() -> None:
    assert arch.torch_arch_list(arch.parse_targets("12.0a, 9.0a;9.0a")) == "9.0a;12.0a"


@pytest.mark.parametrize(
    ("target", "cuda", "ok"),
    [
        ("12.0a", "12.8", True),
        ("12.0a", "12.6", False),
        ("12.1a", "12.8", False),
        ("12.1a", "12.9", True),
        ("10.3a", "12.9", True),
        ("7.0", "12.9", True),
        ("7.0", "13.0", False),
        ("7.5", "13.0", True),
        ("10.1a", "13.0", False),
        ("11.0a", "13.0", True),
    ],
)
def test_buildable(target: str, cuda: str, ok: bool) -> None:
    assert (arch.why_not_buildable(GpuTarget.parse(target), cuda) is None) is ok


def test_check_buildable_message_names_fix() -> None:
    with pytest.raises(ConfigError, match=r"12.0a .* needs CUDA >= 12.8, not 12.6: drop it"):
        arch.check_buildable(arch.parse_targets("9.0a,12.0a"), "12.6")


def test_runs_on() -> None:
    assert GpuTarget.parse("9.0a").runs_on((9, 0))
    assert not GpuTarget.parse("9.0a").runs_on((10, 0))
    assert GpuTarget.parse("8.0").runs_on((8, 6))
    assert not GpuTarget.parse("8.0").runs_on((9, 0))
    assert GpuTarget.parse("8.0+PTX").runs_on((9, 0))
    assert GpuTarget.parse("12.0f").runs_on((12, 1))
    assert not GpuTarget.parse("12.0a").runs_on((12, 1))


def test_table_consistent() -> None:
    table = arch.target_table()
    for row in table.values():
        assert row.max_cuda is None or row.max_cuda > row.min_cuda
        GpuTarget.parse(row.arch)
    assert arch.known_cuda_releases() == tuple(sorted(arch.known_cuda_releases()))
