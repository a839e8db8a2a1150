"""bench/sageattn_vs_upstream.py: shapes, FLOP counts and the summary table (no torch, no GPU)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("sage_bench", ROOT / "bench" / "sageattn_vs_upstream.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_shapes_cover_every_combination_and_causal_halves_flops(bench) -> None:
    shapes = bench.make_shapes([4096, 16384], [64, 128], {4096: (4, 8)})
    assert len(shapes) == 2 * 2 * 2
    assert len({s.key for s in shapes}) == len(shapes)
    for s in shapes:
        full = 4.0 * s.batch * s.heads * s.seq * s.seq * s.dim
        assert s.flops == (full / 2 if s.causal else full)
    assert {(s.batch, s.heads) for s in shapes if s.seq == 4096} == {(4, 8)}


def _collected(bench, shapes, label, speed, digest):
    results = {s.key: {"tflops": s.flops / 1e12 * speed, "cosine": 0.999, "out_sha256": digest} for s in shapes}
    return {"info": {"label": label}, "results": results}


def test_summary_ratios_and_same_output(bench) -> None:
    shapes = bench.make_shapes([4096], [64], {})
    collected = {
        bench.SDPA: _collected(bench, shapes, "sdpa", 1.0, "s"),
        "factory": _collected(bench, shapes, "factory", 3.0, "x"),
        "upstream": _collected(bench, shapes, "upstream", 2.0, "x"),
    }
    rows, table = bench.summarize(collected, "upstream", shapes)
    assert len(rows) == len(shapes)
    for row in rows:
        assert row["factory_vs_upstream"] == pytest.approx(3.0 / 2.0)
        assert row["factory_vs_sdpa"] == pytest.approx(3.0)
        assert row["factory_same_output_as_upstream"] is True
    assert table.count("\n") == len(shapes) + 1
    collected["factory"]["results"][shapes[0].key]["out_sha256"] = "y"
    rows, _ = bench.summarize(collected, "upstream", shapes)
    assert rows[0]["factory_same_output_as_upstream"] is False


def test_best_of_rounds_keeps_fastest(bench) -> None:
    runs = [
        {"info": {}, "results": [{"key": "a", "ms": 2.0}, {"key": "b", "ms": 1.0}]},
        {"info": {}, "results": [{"key": "a", "ms": 1.5}, {"key": "b", "ms": 3.0}]},
    ]
    best = bench._best_of(runs)
    assert {k: v["ms"] for k, v in best["results"].items()} == {"a": 1.5, "b": 1.0}
    assert best["rounds"] == 2


def test_cli_rejects_bad_build_spec(bench, tmp_path) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--build", "noequals"])
    with pytest.raises(SystemExit):
        bench.main(["--build", f"x={tmp_path / 'missing'}"])
