"""GPU check of an attention kernel against torch's SDPA, for `wheelfactory gpu-check`.

Kept with the recipes and named by their [gpu-check] script key. wheelfactory runs it in
a fresh environment where the wheel under test is installed the way users install it (or,
for a source check, with a freshly built tree on PYTHONPATH), as

    python attention.py '<spec JSON>'

and reads the last line of its output: a JSON object with this GPU, torch, and one result
per (call, shape): cosine similarity and largest absolute error against SDPA, how many
output elements were not finite, TFLOP/s. It only measures; wheelfactory judges the
numbers against the recipe's tolerances.

The spec: {"call": "module:function", "kwargs": {...}, "shapes": [{"batch", "heads",
"seq", "dim", "causal"}, ...], "dtype": "bfloat16", "iters": 20}, and optionally
- "calls": [{"call": ..., "kwargs": {...}}, ...]: check each of these instead of "call"
  (a call's kwargs are added to the spec's);
- "short": {"seqs": "1-65,127,129", "dims": [64, 128], "causal": [false, true],
  "batch": 2, "heads": 8, "repeats": 4}: short and non-multiple lengths, checked for
  accuracy and finiteness (not timed), each run "repeats" times because what a kernel
  reads from uninitialised memory changes from run to run.
A function is called as function(q, k, v, is_causal=..., **kwargs) with q, k, v of shape
(batch, heads, seq, dim).
"""

from __future__ import annotations

import importlib
import json
import math
import sys


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no NaN: null means "not a number"


def worse(seen: float, value: float, *, low_is_bad: bool) -> float:
    """The worse of two runs' numbers; NaN is the worst (min/max would drop it)."""
    if math.isnan(seen):
        return seen
    if math.isnan(value):
        return value
    return min(seen, value) if low_is_bad else max(seen, value)


def seq_list(text: str) -> list[int]:
    """"1-3,7" -> [1, 2, 3, 7]."""
    out: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        out += range(int(first), int(last or first) + 1)
    return out


def short_shapes(short: dict) -> list[dict]:
    """The shapes of the spec's "short" table (see the module docstring)."""
    return [
        {"batch": int(short.get("batch", 2)), "heads": int(short.get("heads", 8)), "seq": n, "dim": d,
         "causal": bool(c), "timed": False, "repeats": int(short.get("repeats", 4))}
        for d in short.get("dims", [64, 128])
        for c in short.get("causal", [False])
        for n in seq_list(short["seqs"])
    ]  # fmt: skip


def calls_of(spec: dict) -> list[dict]:
    """What to call: "calls" (each with the spec's kwargs under its own), else "call"."""
    if not spec.get("calls"):
        return [{"call": spec["call"], "kwargs": spec.get("kwargs", {})}]
    return [dict(c, kwargs={**spec.get("kwargs", {}), **c.get("kwargs", {})}) for c in spec["calls"]]


def label(call: dict, several: bool) -> str:
    if not several:
        return ""
    name = call["call"].partition(":")[2]
    extra = ",".join(f"{k}={v}" for k, v in sorted(call.get("kwargs", {}).items()) if k != "tensor_layout")
    return f"{name}[{extra}]:" if extra else f"{name}:"


def main() -> int:
    spec = json.loads(sys.argv[1])
    import torch
    import torch.nn.functional as F  # noqa: N812

    dtype = getattr(torch, spec.get("dtype", "bfloat16"))
    iters = int(spec.get("iters", 20))
    device = torch.device("cuda")
    shapes = [dict(s, timed=True, repeats=1) for s in spec.get("shapes", [])]
    if spec.get("short"):
        shapes += short_shapes(spec["short"])
    calls = calls_of(spec)
    cases = []
    for call in calls:
        module, _, name = call["call"].partition(":")
        op = getattr(importlib.import_module(module), name)
        kwargs = call.get("kwargs", {})
        for shape in shapes:
            b, h, n, d = shape["batch"], shape["heads"], shape["seq"], shape["dim"]
            causal = bool(shape.get("causal", False))
            gen = torch.Generator(device=device).manual_seed(1234 + n + d)
            q, k, v = (torch.randn(b, h, n, d, generator=gen, device=device, dtype=dtype) for _ in range(3))
            ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            cos, err, nonfinite = math.inf, 0.0, 0
            for _ in range(shape["repeats"]):
                out = op(q, k, v, is_causal=causal, **kwargs)
                nonfinite += int((~torch.isfinite(out)).sum().item())
                cos = worse(cos, F.cosine_similarity(out.double().flatten(), ref.double().flatten(), dim=0).item(), low_is_bad=True)
                err = worse(err, (out.float() - ref.float()).abs().max().item(), low_is_bad=False)
            case = {
                "shape": f"{label(call, len(calls) > 1)}b{b}-h{h}-s{n}-d{d}-{'causal' if causal else 'full'}",
                "cosine": _finite(cos),
                "max_abs_error": _finite(err),
                "nonfinite": nonfinite,
                "runs": shape["repeats"],
            }
            if shape["timed"]:
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
                case["tflops"] = round(flops / seconds / 1e12, 1)
            cases.append(case)
    cap = torch.cuda.get_device_capability()
    print(json.dumps({
        "gpu": torch.cuda.get_device_name(), "capability": f"{cap[0]}.{cap[1]}",
        "torch": torch.__version__, "cases": cases,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
