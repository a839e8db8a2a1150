"""bench/sageattn_vs_upstream.py end to end on the CPU, with real torch and worker processes.

The SageAttention kernels need a GPU, so two stand-in ``sageattention`` packages play the
builds: one returns SDPA's output (as a bit-identical rebuild would), the other adds a small
perturbation (as a build with different numerics would). Everything else is the real
script: one worker process per build, seeded inputs, timing, cosine and output hashes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from _index_env import torch_env

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "sageattn_vs_upstream.py"

STAND_IN = '''"""Stand-in for sageattention (its kernels need a GPU)."""
import torch.nn.functional as F
from . import core

def sageattn(q, k, v, tensor_layout="HND", is_causal=False, **kwargs):
    assert tensor_layout == "HND"
    out = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    return out + {noise} * out.abs().mean()
'''


def _stand_in(root: Path, noise: float) -> Path:
    pkg = root / "sageattention"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(STAND_IN.format(noise=noise))
    (pkg / "core.py").write_text("SM90_ENABLED = False\n")
    return root


def test_two_builds_against_sdpa_on_cpu(tmp_path: Path) -> None:
    python = torch_env() / "bin" / "python"
    same = _stand_in(tmp_path / "same", 0.0)
    other = _stand_in(tmp_path / "other", 0.01)
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [str(python), "-W", "ignore", str(BENCH), "--device", "cpu", "--seqs", "128", "--dims", "64",
         "--warmup", "0", "--iters", "1", "--rounds", "1", "--build", f"same={same}",
         "--build", f"other={other}", "--baseline", "same", "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert {r["shape"].split("-")[-1] for r in rows} == {"full", "causal"}
    for row in rows:
        assert row["same_cosine"] == pytest.approx(1.0, abs=1e-9)  # SDPA vs itself
        assert row["other_cosine"] < row["same_cosine"]
        assert row["other_same_output_as_same"] is False
        assert row["sdpa_tflops"] > 0 and row["other_vs_same"] > 0
    # each build really ran from its own folder, in its own process
    assert data["collected"]["same"]["info"]["module"] == str(same / "sageattention")
    assert data["collected"]["other"]["info"]["module"] == str(other / "sageattention")
    assert "| shape |" in proc.stdout


def test_outputs_give_each_builds_largest_difference_from_the_baseline(tmp_path: Path) -> None:
    """--outputs: the workers save their outputs and the table gives max |build - baseline|
    per shape (the abi3 device run, issue 26: 0.0 where the hashes agree)."""
    python = torch_env() / "bin" / "python"
    base = _stand_in(tmp_path / "base", 0.0)
    twin = _stand_in(tmp_path / "twin", 0.0)
    other = _stand_in(tmp_path / "other", 0.01)
    out, saved = tmp_path / "results.json", tmp_path / "outputs"
    proc = subprocess.run(
        [str(python), "-W", "ignore", str(BENCH), "--device", "cpu", "--seqs", "128", "--dims", "64",
         "--warmup", "0", "--iters", "1", "--rounds", "1", "--no-sdpa", "--build", f"base={base}",
         "--build", f"twin={twin}", "--build", f"other={other}", "--baseline", "base",
         "--outputs", str(saved), "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 2 and len(list(saved.glob("*.pt"))) == 6  # 3 builds x 2 shapes
    for row in rows:
        assert row["twin_max_abs_diff_vs_base"] == 0.0 and row["twin_same_output_as_base"] is True
        # the stand-in adds 0.01 x mean |out| to every value
        assert 0.0 < row["other_max_abs_diff_vs_base"] < 0.05
    assert "other_max_abs_diff_vs_base" in proc.stdout
