#!/usr/bin/env python3
"""Compare two (or more) builds of ``sageattention`` with each other and with torch's SDPA.

Each build is named ``LABEL=WHERE``: WHERE is a folder put first on ``sys.path`` (a
``pip install --target DIR`` of one wheel), or ``installed`` for whatever the running
Python imports. Two builds of one package cannot share a process (same module names, and
both register the same ``torch.library`` ops), so every build, and SDPA, runs in a worker
process of its own (this script, re-run with ``--worker``); the parent only collects.

For each shape (sequence length x head dim x causal, bf16, layout HND) a worker makes the
same seeded q, k, v, computes SDPA's output as the reference, times the build's
``sageattn`` with CUDA events (warm-up first, median of the timed calls), and reports
TFLOP/s (FLOPs = 4*b*h*s*s*d, halved for causal), the cosine similarity of its output to
SDPA's, and a sha256 of its output bytes (equal hashes = bitwise identical outputs).
With ``--outputs DIR`` each worker also saves its outputs there, and the parent reports
every build's largest absolute difference from the baseline's output, shape by shape.

  python bench/sageattn_vs_upstream.py --build factory=installed \\
      --build upstream=/tmp/upstream-site --baseline upstream --json results.json

``--device cpu --seqs 256 --dims 64 --sdpa-only`` checks the plumbing without a GPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SDPA = "sdpa"
# (batch, heads) per sequence length: about the same work per call, each fits an 80 GB GPU.
DEFAULT_BATCH_HEADS = {4096: (4, 32), 16384: (1, 32), 32768: (1, 32)}


@dataclass(frozen=True, kw_only=True)
class Shape:
    batch: int
    heads: int
    seq: int
    dim: int
    causal: bool

    @property
    def key(self) -> str:
        return f"b{self.batch}-h{self.heads}-s{self.seq}-d{self.dim}-{'causal' if self.causal else 'full'}"

    @property
    def flops(self) -> float:
        f = 4.0 * self.batch * self.heads * self.seq * self.seq * self.dim
        return f / 2 if self.causal else f


def make_shapes(seqs: list[int], dims: list[int], batch_heads: dict[int, tuple[int, int]]) -> list[Shape]:
    shapes = []
    for seq in seqs:
        batch, heads = batch_heads.get(seq, (1, 32))
        for dim in dims:
            for causal in (False, True):
                shapes.append(Shape(batch=batch, heads=heads, seq=seq, dim=dim, causal=causal))
    return shapes


# ------------------------------------------------------------------------------- worker


def _worker(args: argparse.Namespace) -> int:
    if args.where not in ("installed", SDPA):
        sys.path.insert(0, str(Path(args.where).resolve()))
    import torch
    import torch.nn.functional as F  # noqa: N812

    device = torch.device(args.device)
    info: dict[str, object] = {"label": args.label, "torch": torch.__version__}
    attn = None
    if args.where != SDPA:
        import sageattention
        from sageattention import core

        attn = sageattention.sageattn
        info["module"] = str(Path(sageattention.__file__).parent)
        # upstream disables a kernel family silently when its module fails to import
        info["kernels_enabled"] = {
            k: getattr(core, k) for k in ("SM80_ENABLED", "SM89_ENABLED", "SM90_ENABLED") if hasattr(core, k)
        }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["capability"] = list(torch.cuda.get_device_capability(device))

    shapes = [Shape(**s) for s in json.loads(Path(args.shapes).read_text())]
    results = []
    for shape in shapes:
        gen = torch.Generator(device=device).manual_seed(1234 + shape.seq + shape.dim)
        dims = (shape.batch, shape.heads, shape.seq, shape.dim)
        q, k, v = (torch.randn(dims, generator=gen, device=device, dtype=torch.bfloat16) for _ in range(3))
        ref = F.scaled_dot_product_attention(q, k, v, is_causal=shape.causal)

        if attn is None:
            def call(q=q, k=k, v=v, shape=shape):
                return F.scaled_dot_product_attention(q, k, v, is_causal=shape.causal)
        else:
            def call(q=q, k=k, v=v, shape=shape):
                return attn(q, k, v, tensor_layout="HND", is_causal=shape.causal)

        out = call()
        cos = F.cosine_similarity(out.double().flatten(), ref.double().flatten(), dim=0).item()
        max_abs = (out.float() - ref.float()).abs().max().item()
        digest = _digest(out)
        if args.outputs:
            torch.save(out.cpu(), Path(args.outputs) / f"{args.label}-{shape.key}.pt")
        times = _time(call, device, warmup=args.warmup, iters=args.iters)
        ms = statistics.median(times)
        results.append(
            {
                "shape": asdict(shape),
                "key": shape.key,
                "ms": ms,
                "ms_min": min(times),
                "tflops": shape.flops / (ms * 1e-3) / 1e12,
                "cosine": cos,
                "max_abs_err": max_abs,
                "out_sha256": digest,
                "finite": bool(torch.isfinite(out).all().item()),
            }
        )
        del q, k, v, ref, out
        if device.type == "cuda":
            torch.cuda.empty_cache()
    Path(args.out).write_text(json.dumps({"info": info, "results": results}, indent=1))
    return 0


def _digest(out) -> str:
    """sha256 of the output's bytes (through numpy), else a position-weighted checksum."""
    import torch

    try:
        return hashlib.sha256(out.contiguous().view(torch.uint8).cpu().numpy().tobytes()).hexdigest()[:16]
    except (ImportError, RuntimeError):  # torch without numpy
        u = out.contiguous().view(torch.int16).flatten().to(torch.int64)
        w = torch.arange(u.numel(), device=u.device, dtype=torch.int64) % 1000003 + 1
        return f"sum:{int(u.sum())}:{int((u * w).sum())}"


def _time(call, device, *, warmup: int, iters: int) -> list[float]:
    """Per-call milliseconds: CUDA events on a GPU, perf_counter on the CPU."""
    import torch

    for _ in range(warmup):
        call()
    if device.type != "cuda":
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1e3)
        return times
    torch.cuda.synchronize(device)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for s, e in zip(starts, ends):
        s.record()
        call()
        e.record()
    torch.cuda.synchronize(device)
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


# ------------------------------------------------------------------------------- parent


def _run_worker(label: str, where: str, shapes_file: Path, args: argparse.Namespace, tmp: Path) -> dict:
    out = tmp / f"{label}-{time.monotonic_ns()}.json"
    cmd = [
        sys.executable, os.path.abspath(__file__), "--worker", "--label", label, "--where", where,
        "--shapes", str(shapes_file), "--out", str(out), "--device", args.device,
        "--warmup", str(args.warmup), "--iters", str(args.iters),
    ]
    if args.outputs:
        cmd += ["--outputs", args.outputs]
    print(f"[bench] {label}: {where}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, text=True, capture_output=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise SystemExit(f"[bench] worker {label!r} failed (exit {proc.returncode}):\n" + "\n".join(tail))
    return json.loads(out.read_text())


def _best_of(runs: list[dict]) -> dict:
    """Across rounds keep, per shape, the fastest run (clocks vary between processes)."""
    best: dict[str, dict] = {}
    for run in runs:
        for r in run["results"]:
            if r["key"] not in best or r["ms"] < best[r["key"]]["ms"]:
                best[r["key"]] = r
    return {"info": runs[0]["info"], "results": best, "rounds": len(runs)}


def max_abs_diff(outputs: Path, label: str, baseline: str, key: str) -> float:
    """Largest |label's output - baseline's| at one shape, from the workers' saved outputs."""
    import torch

    a, b = (torch.load(outputs / f"{name}-{key}.pt").float() for name in (label, baseline))
    return (a - b).abs().max().item()


def summarize(
    collected: dict[str, dict], baseline: str | None, shapes: list[Shape], outputs: Path | None = None
) -> tuple[list[dict], str]:
    """Rows per shape and a markdown table: TFLOP/s, cosine to SDPA, ratio to baseline."""
    labels = [label for label in collected if label != SDPA]
    rows = []
    for shape in shapes:
        row: dict[str, object] = {"shape": shape.key}
        if SDPA in collected:
            row["sdpa_tflops"] = collected[SDPA]["results"][shape.key]["tflops"]
        for label in labels:
            r = collected[label]["results"][shape.key]
            row[f"{label}_tflops"] = r["tflops"]
            row[f"{label}_cosine"] = r["cosine"]
            row[f"{label}_sha256"] = r["out_sha256"]
            if SDPA in collected:
                row[f"{label}_vs_sdpa"] = r["tflops"] / collected[SDPA]["results"][shape.key]["tflops"]
        if baseline and baseline in labels:
            base = collected[baseline]["results"][shape.key]
            for label in labels:
                if label == baseline:
                    continue
                r = collected[label]["results"][shape.key]
                row[f"{label}_vs_{baseline}"] = r["tflops"] / base["tflops"]
                row[f"{label}_same_output_as_{baseline}"] = r["out_sha256"] == base["out_sha256"]
                if outputs:
                    row[f"{label}_max_abs_diff_vs_{baseline}"] = max_abs_diff(outputs, label, baseline, shape.key)
        rows.append(row)
    cols = list(rows[0]) if rows else []
    cols = [c for c in cols if not c.endswith("_sha256")]

    def fmt(v: object) -> str:
        if isinstance(v, bool):
            return "yes" if v else "NO"
        if isinstance(v, float):
            return f"{v:.5f}" if v < 1.5 and not isinstance(v, bool) else f"{v:.1f}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(row[c]) for c in cols) + " |" for row in rows]
    return rows, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", action="append", default=[], metavar="LABEL=WHERE",
                   help="a build to time: WHERE is a sys.path folder or 'installed' (repeatable)")
    p.add_argument("--baseline", help="label the others are divided by (speed ratio, same-output check)")
    p.add_argument("--sdpa-only", action="store_true", help="time SDPA only (plumbing check)")
    p.add_argument("--no-sdpa", action="store_true", help="skip timing SDPA (cosines still use it)")
    p.add_argument("--seqs", type=int, nargs="+", default=[4096, 16384, 32768])
    p.add_argument("--dims", type=int, nargs="+", default=[64, 128])
    p.add_argument("--batch-heads", default="", help="override, e.g. '4096:4x32,16384:1x32'")
    p.add_argument("--device", default="cuda")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--rounds", type=int, default=2, help="run every build this often, interleaved; keep the best")
    p.add_argument("--json", help="write the full results here")
    p.add_argument("--markdown", help="write the table here")
    p.add_argument("--outputs", help="save every build's outputs here; report max |difference| from --baseline")
    # worker mode (internal)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--label", help=argparse.SUPPRESS)
    p.add_argument("--where", help=argparse.SUPPRESS)
    p.add_argument("--shapes", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return _worker(args)

    builds: list[tuple[str, str]] = []
    for spec in [] if args.sdpa_only else args.build:
        label, sep, where = spec.partition("=")
        if not sep or not label or label == SDPA or not where:
            p.error(f"--build {spec!r}: write LABEL=DIR or LABEL=installed")
        if where != "installed" and not Path(where).is_dir():
            p.error(f"--build {spec!r}: {where} is not a folder; pip install --target it first")
        builds.append((label, where))
    if not builds and not args.sdpa_only:
        p.error("name at least one --build LABEL=WHERE, or pass --sdpa-only")
    if args.baseline and args.baseline not in {label for label, _ in builds}:
        p.error(f"--baseline {args.baseline!r} is not one of the --build labels")
    batch_heads = dict(DEFAULT_BATCH_HEADS)
    for item in filter(None, args.batch_heads.split(",")):
        seq, _, bh = item.partition(":")
        b, _, h = bh.partition("x")
        batch_heads[int(seq)] = (int(b), int(h))
    shapes = make_shapes(args.seqs, args.dims, batch_heads)

    if args.outputs:
        Path(args.outputs).mkdir(parents=True, exist_ok=True)
    runners = [] if args.no_sdpa else [(SDPA, SDPA)]
    runners += builds
    with tempfile.TemporaryDirectory(prefix="sagebench-") as tmp_name:
        tmp = Path(tmp_name)
        shapes_file = tmp / "shapes.json"
        shapes_file.write_text(json.dumps([asdict(s) for s in shapes]))
        runs: dict[str, list[dict]] = {label: [] for label, _ in runners}
        for _ in range(max(1, args.rounds)):
            for label, where in runners:
                runs[label].append(_run_worker(label, where, shapes_file, args, tmp))
    collected = {label: _best_of(r) for label, r in runs.items()}
    rows, table = summarize(collected, args.baseline, shapes, Path(args.outputs) if args.outputs else None)
    for label, c in collected.items():
        print(f"[bench] {label}: {json.dumps(c['info'])}", file=sys.stderr)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"builds": dict(runners), "collected": collected, "rows": rows}, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
