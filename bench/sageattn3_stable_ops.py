"""What the sageattn3 stable-ABI wheel proves without a Blackwell GPU, against the per-torch one.

    python bench/sageattn3_stable_ops.py --stable S.whl --per-torch P.whl \
        --python ~/.cache/wheelfactory/envs/cp311-torch2.14.1-cu130/bin/python \
        [--build-outcome outcome.json] --out bench/results/sageattn3-stable.json

For each wheel, in a worker process of its own (both register the same op namespaces):
load its two modules into torch with torch.ops.load_library (no GPU: the driver is the
factory's libcuda stub; loading runs only the op registrations), and report every op's
schema and which dispatch keys have a kernel. For the stable wheel, also call each op on
the meta device with sageattn3_blackwell's shapes (batch 2, 8 heads, 256 tokens, head dim
128) and report the output shapes and dtypes. Then: verify's stable-ABI audit of each module
(torch C++ symbols; shim symbols newer than the floor), the schemas compared, and, given
the build's --json outcome, its verify report. Exit 1 when a claim does not hold.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from wheelfactory import cudastub, naming, verify, wheelfile

NAMESPACES = ("sageattn3_fp4attn_cuda", "sageattn3_fp4quant_cuda")

WORKER = r"""
import json, sys, torch
for so in sys.argv[2:]:
    torch.ops.load_library(so)
ops = {}
for schema in torch._C._jit_get_all_schemas():
    ns, _, name = schema.name.partition("::")
    if ns in %(namespaces)r:
        ops[schema.name] = {"schema": str(schema), "kernels": [
            k for k in ("CUDA", "Meta", "CPU", "CompositeImplicitAutograd")
            if torch._C._dispatch_has_kernel_for_dispatch_key(schema.name, k)]}
out = {"torch": torch.__version__, "ops": ops}
if sys.argv[1] == "meta":
    B, H, N, D = 2, 8, 256, 128
    m = dict(device="meta")
    x = torch.empty(B, H, N, D, dtype=torch.bfloat16, **m)
    q = torch.ops.sageattn3_fp4quant_cuda
    calls = {}
    for op, packed_shape, sf_shape in (
        ("scaled_fp4_quant", (B, H, N, D // 2), (B, H, N, D // 16)),
        ("scaled_fp4_quant_permute", (B, H, N, D // 2), (B, H, N, D // 16)),
        ("scaled_fp4_quant_trans", (B, H, D, N // 2), (B, H, D, N // 16)),
    ):
        packed = torch.empty(packed_shape, dtype=torch.uint8, **m)
        sf = torch.empty(sf_shape, dtype=torch.float8_e4m3fn, **m)
        getattr(q, op)(x, packed, sf, 1)
        calls[op] = {"accepted": [list(packed.shape), list(sf.shape)]}
        try:
            getattr(q, op)(x, torch.empty(B, H, N, D // 4, dtype=torch.uint8, **m), sf, 1)
            calls[op]["wrong_output_shape"] = "accepted"
        except RuntimeError as e:
            calls[op]["wrong_output_shape"] = "refused: " + str(e).splitlines()[0][:160]
    u8, f8 = dict(dtype=torch.uint8, **m), dict(dtype=torch.float8_e4m3fn, **m)
    args = (torch.empty(B, H, N, D // 2, **u8), torch.empty(B, H, N, D // 2, **u8),
            torch.empty(B, H, D, N // 2, **u8), torch.empty(B, H, N, D // 16, **f8),
            torch.empty(B, H, N, D // 16, **f8), torch.empty(B, H, D, N // 16, **f8),
            torch.empty(B, H, N // 128, N, dtype=torch.float32, **m))
    for is_bf16 in (True, False):
        o, lse = torch.ops.sageattn3_fp4attn_cuda.fwd(*args, N, D ** -0.5, False, True, is_bf16)
        calls[f"fwd(is_bf16={is_bf16})"] = {"out": [list(o.shape), str(o.dtype)], "lse": [list(lse.shape), str(lse.dtype)]}
    out["meta_calls"] = calls
print(json.dumps(out))
""" % {"namespaces": NAMESPACES}


def modules(wheel: Path, dest: Path) -> list[Path]:
    with zipfile.ZipFile(wheel) as z:
        z.extractall(dest)
    return sorted(dest.glob("sageattn3/*.so"))


def run_worker(python: Path, mode: str, sos: list[Path], stub: Path) -> dict:
    env = {"LD_LIBRARY_PATH": str(stub), "PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([str(python), "-c", WORKER, mode, *map(str, sos)],
                          capture_output=True, text=True, env=env, check=False)  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"worker failed for {sos[0].parent}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stable", type=Path, required=True)
    ap.add_argument("--per-torch", type=Path, required=True)
    ap.add_argument("--python", type=Path, required=True, help="a Python with torch (and no GPU needed)")
    ap.add_argument("--build-outcome", type=Path, help="wheelfactory build --json output of the stable wheel")
    ap.add_argument("--cuda-home", type=Path, default=Path("/usr/local/cuda"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        stub = cudastub.make_stub(args.cuda_home, Path(tmp) / "stub")
        stable_sos = modules(args.stable, Path(tmp) / "stable")
        per_torch_sos = modules(args.per_torch, Path(tmp) / "per-torch")
        stable = run_worker(args.python, "meta", stable_sos, stub)
        per_torch = run_worker(args.python, "schemas", per_torch_sos, stub)
        record = wheelfile.read_wheel(args.stable).build_record
        floor = record.stable_abi_floor if record else None
        audit = {
            so.name: {"torch C++ symbols": verify.stable_abi_problem(so) or "none",
                      f"shim symbols newer than {floor}": verify.floor_problem(so, floor or "2.10") or "none"}
            for so in stable_sos
        }  # fmt: skip
        per_torch_audit = {so.name: verify.stable_abi_problem(so) or "none" for so in per_torch_sos}

    schemas = {k: v["schema"] for k, v in stable["ops"].items()}
    result = {
        "stable_wheel": args.stable.name,
        "per_torch_wheel": args.per_torch.name,
        "stable_requires_torch": record.torch_requirement if record else None,
        "stable_targets": list(record.targets) if record else None,
        "stable_patches": [{"file": p.file, "sha256": p.sha256} for p in (record.patches if record else ())],
        "stable_recipe_sha256": record.recipe_sha256 if record else None,
        "stable_torch": record.torch if record else None,
        "loaded_in_torch": stable["torch"],
        "audit_stable": audit,
        "audit_per_torch": per_torch_audit,
        "schemas": schemas,
        "schemas_equal_per_torch": schemas == {k: v["schema"] for k, v in per_torch["ops"].items()},
        "kernels_stable": {k: v["kernels"] for k, v in stable["ops"].items()},
        "kernels_per_torch": {k: v["kernels"] for k, v in per_torch["ops"].items()},
        "meta_calls": stable["meta_calls"],
    }
    if args.build_outcome:
        outcome = json.loads(args.build_outcome.read_text())
        report = json.loads(Path(outcome["verify_report"]).read_text())
        result["verify"] = {"ok": report["ok"], "checks": {c["name"]: c["ok"] for c in report["checks"]}}
    info = naming.parse_wheel(args.stable.name)
    result["stable_tags"] = [*info.python_tags, *info.abi_tags]

    claims = [
        len(schemas) == 4 and result["schemas_equal_per_torch"],
        all(v == "none" for a in audit.values() for v in a.values()),
        all(v != "none" for v in per_torch_audit.values()),
        all("Meta" in k and "CUDA" in k for k in result["kernels_stable"].values()),
        all("refused" in c.get("wrong_output_shape", "refused") for c in result["meta_calls"].values()),
        result.get("verify", {}).get("ok", True),
    ]
    result["all_claims_hold"] = all(claims)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if all(claims) else 1


if __name__ == "__main__":
    raise SystemExit(main())
