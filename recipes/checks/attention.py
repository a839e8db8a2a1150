"""GPU check of an attention kernel against torch's SDPA, for `wheelfactory gpu-check`.

Kept with the recipes and named by their [gpu-check] script key. wheelfactory runs it in
a fresh environment where the wheel under test is installed the way users install it, as

    python attention.py '<spec JSON>'

and reads the last line of its output: a JSON object with this GPU, torch, and one result
per shape (cosine similarity and largest absolute error against SDPA, TFLOP/s). It only
measures; wheelfactory judges the numbers against the recipe's tolerances.

The spec: {"call": "module:function", "kwargs": {...}, "shapes": [{"batch", "heads",
"seq", "dim", "causal"}, ...], "dtype": "bfloat16", "iters": 20}. The function is called as
function(q, k, v, is_causal=..., **kwargs) with q, k, v of shape (batch, heads, seq, dim).
"""

from __future__ import annotations

import importlib
import json
import math
import sys


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no NaN: null means "not a number"


def main() -> int:
    spec = json.loads(sys.argv[1])
    import torch
    import torch.nn.functional as F  # noqa: N812

    module, _, name = spec["call"].partition(":")
    op = getattr(importlib.import_module(module), name)
    kwargs = spec.get("kwargs", {})
    dtype = getattr(torch, spec.get("dtype", "bfloat16"))
    iters = int(spec.get("iters", 20))
    device = torch.device("cuda")
    cases = []
    for shape in spec["shapes"]:
        b, h, n, d = shape["batch"], shape["heads"], shape["seq"], shape["dim"]
        causal = bool(shape.get("causal", False))
        gen = torch.Generator(device=device).manual_seed(1234 + n + d)
        q, k, v = (torch.randn(b, h, n, d, generator=gen, device=device, dtype=dtype) for _ in range(3))
        ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        out = op(q, k, v, is_causal=causal, **kwargs)
        cos = F.cosine_similarity(out.double().flatten(), ref.double().flatten(), dim=0).item()
        err = (out.float() - ref.float()).abs().max().item()
        for _ in range(3):
            op(q, k, v, is_causal=causal, **kwargs)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            op(q, k, v, is_causal=causal, **kwargs)
        end.record()
        torch.cuda.synchronize()
        seconds = start.elapsed_time(end) / 1000 / iters
        flops = 4.0 * b * h * n * n * d / (2 if causal else 1)
        cases.append({
            "shape": f"b{b}-h{h}-s{n}-d{d}-{'causal' if causal else 'full'}",
            "cosine": _finite(cos),
            "max_abs_error": _finite(err),
            "tflops": round(flops / seconds / 1e12, 1),
        })  # fmt: skip
    cap = torch.cuda.get_device_capability()
    print(json.dumps({
        "gpu": torch.cuda.get_device_name(), "capability": f"{cap[0]}.{cap[1]}",
        "torch": torch.__version__, "cases": cases,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
