"""The recorded proofs of the sageattn3 stable-ABI wheel (bench/results/sageattn3-stable.json,
from bench/sageattn3_stable_ops.py over a real build: ~40 min of nvcc here, too long for CI)
still describe the recipe as it is: the same patches byte for byte (a changed patch or a new
one makes the record stale, and this fails until the build and the script are run again),
and every claim the port makes held in it."""

from __future__ import annotations

import json
from pathlib import Path

from wheelfactory.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
RESULT = ROOT / "bench" / "results" / "sageattn3-stable.json"


def test_the_recorded_stable_build_is_of_the_recipes_patches_and_its_claims_held() -> None:
    recipe = load_recipe(ROOT / "recipes" / "sageattn3-stable.toml")
    rec = json.loads(RESULT.read_text())
    assert [(Path(p["file"]).name, p["sha256"]) for p in rec["stable_patches"]] == [
        (p.file.name, p.sha256) for p in recipe.patches_for("linux")
    ], "the recipe's patches changed since bench/results/sageattn3-stable.json: rebuild and re-run the bench"
    assert rec["stable_requires_torch"] == f"torch>={recipe.matrix.stable_abi_floor}"
    assert set(rec["stable_targets"]) == {"12.0a", "12.1a"} and rec["stable_tags"] == ["cp310", "abi3"]
    # no torch C++ symbol and no shim newer than the floor; the per-torch build has both kinds
    assert all(v == "none" for audit in rec["audit_stable"].values() for v in audit.values())
    assert all("torch C++ symbol" in v for v in rec["audit_per_torch"].values())
    assert rec["schemas_equal_per_torch"] and len(rec["schemas"]) == 4
    assert all(k == ["CUDA", "Meta"] for k in rec["kernels_stable"].values())
    calls = rec["meta_calls"]
    assert calls["fwd(is_bf16=True)"] == {"out": [[2, 8, 256, 128], "torch.bfloat16"], "lse": [[2, 8, 256], "torch.float32"]}
    assert all(c["wrong_output_shape"].startswith("refused") for c in calls.values() if "wrong_output_shape" in c)
    assert rec["verify"]["ok"] and rec["all_claims_hold"]
