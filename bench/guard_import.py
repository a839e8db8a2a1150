"""How much the import-time guard costs on the success path.

Measures, for the torch in this Python (a stand-in module when torch is missing):

1. cold imports in fresh subprocesses of a package that does ``import torch``, with and
   without the guard (alternating runs, many repetitions);
2. in-process timing of the guard's check function itself, torch already imported;
3. the GPU lookups the guard can use: NVML (what it uses), and for comparison what
   ``torch.cuda.is_available()`` and ``torch.cuda.get_device_capability()`` cost in a fresh
   process, and whether each initialises CUDA.

    python bench/guard_import.py [--reps 30] [--inproc 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from wheelfactory.guard import GuardInfo, add_guard, render_guard  # noqa: E402

FAKE_TORCH = """__version__ = "2.14.1+cu130"
class version:
    cuda = "13.0"
class cuda:
    @staticmethod
    def is_initialized():
        return False
"""

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
what = sys.argv[1]
r = None
if what == "is_available":
    r = torch.cuda.is_available()
elif what == "capability":
    r = torch.cuda.get_device_capability() if torch.cuda.is_available() else None
t2 = time.perf_counter()
print(json.dumps({"import_torch_s": t1 - t0, "call_s": t2 - t1, "result": r,
                  "cuda_initialized": torch.cuda.is_initialized()}))
"""


def stats(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    q = statistics.quantiles(s, n=4) if len(s) >= 4 else [s[0], statistics.median(s), s[-1]]
    return {"n": len(s), "min_ms": s[0] * 1e3, "median_ms": statistics.median(s) * 1e3,
            "q1_ms": q[0] * 1e3, "q3_ms": q[2] * 1e3, "max_ms": s[-1] * 1e3}


def guard_info() -> tuple[GuardInfo, bool]:
    try:
        import torch
    except ImportError:
        return GuardInfo(package="benchpkg", version="1.0+cu130torch2.14", cuda="13.0",
                         torch="2.14", targets=("9.0a", "12.0a")), False
    minor = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    cuda = torch.version.cuda or "13.0"
    return GuardInfo(package="benchpkg", version=f"1.0+cu{cuda.replace('.', '')}torch{minor}",
                     cuda=cuda, torch=minor,
                     targets=("8.0", "8.9", "9.0a", "10.0a", "12.0a")), True


def make_packages(tmp: Path, info: GuardInfo, real_torch: bool) -> dict[str, Path]:
    roots = {}
    for variant in ("plain", "guarded"):
        root = tmp / variant
        pkg = root / "benchpkg"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text('"""Bench package."""\nimport torch\n', encoding="utf-8")
        if not real_torch:
            (root / "torch.py").write_text(FAKE_TORCH, encoding="utf-8")
        if variant == "guarded":
            add_guard(root, info)
        # pip byte-compiles a wheel at install: measure with .pyc files, as users get them.
        compileall.compile_dir(str(root), quiet=1)
        roots[variant] = root
    return roots


def cold_imports(roots: dict[str, Path], reps: int) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {"plain": [], "guarded": [], "guarded_skip": []}
    code = "import time; t=time.perf_counter(); import benchpkg; print(time.perf_counter()-t)"
    for _ in range(reps):  # alternate, so drift (caches, other load) hits all alike
        for name, root, skip in (("plain", roots["plain"], None),
                                 ("guarded", roots["guarded"], None),
                                 ("guarded_skip", roots["guarded"], "1")):
            env = dict(os.environ, PYTHONPATH=str(root))
            env.pop("WHEELFACTORY_SKIP_GUARD", None)
            if skip:
                env["WHEELFACTORY_SKIP_GUARD"] = skip
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, check=True)
            times[name].append(float(out.stdout.strip()))
    result = {k: stats(v) for k, v in times.items()}
    result["guard_minus_plain_median_ms"] = (result["guarded"]["median_ms"]
                                             - result["plain"]["median_ms"])
    return result


def in_process(info: GuardInfo, reps: int, real_torch: bool, tmp: Path) -> dict[str, object]:
    if not real_torch:
        sys.path.insert(0, str(tmp / "plain"))
    import torch  # noqa: F401 - as the package's own import would

    ns: dict[str, object] = {}
    src = render_guard(info).replace("\ncheck()\n", "\n")
    exec(compile(src, "_wheelfactory_guard", "exec"), ns)
    check, nvml = ns["check"], ns["_nvml_capabilities"]
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        check()
        samples.append(time.perf_counter() - t)
    t = time.perf_counter()
    caps = nvml()
    nvml_s = time.perf_counter() - t
    nvml_samples = []
    for _ in range(min(reps, 200)):
        t = time.perf_counter()
        nvml()
        nvml_samples.append(time.perf_counter() - t)
    return {"check": stats(samples), "nvml_first_ms": nvml_s * 1e3, "nvml": stats(nvml_samples),
            "nvml_capabilities": caps}


def torch_probes(reps: int) -> dict[str, object]:
    out: dict[str, object] = {}
    for what in ("none", "is_available", "capability"):
        runs = []
        for _ in range(reps):
            p = subprocess.run([sys.executable, "-c", PROBE, what], capture_output=True,
                               text=True, check=True)
            runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
        out[what] = {"call": stats([r["call_s"] for r in runs]),
                     "import_torch": stats([r["import_torch_s"] for r in runs]),
                     "result": runs[-1]["result"],
                     "cuda_initialized_after": runs[-1]["cuda_initialized"]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30, help="cold imports per variant")
    parser.add_argument("--inproc", type=int, default=2000, help="in-process check() calls")
    parser.add_argument("--probe-reps", type=int, default=5, help="fresh processes per probe")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    info, real_torch = guard_info()
    report: dict[str, object] = {"python": sys.version.split()[0], "real_torch": real_torch}
    if real_torch:
        import torch

        report["torch"] = torch.__version__
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        roots = make_packages(tmp, info, real_torch)
        report["cold_import"] = cold_imports(roots, args.reps)
        report["in_process"] = in_process(info, args.inproc, real_torch, tmp)
    print(json.dumps(report, indent=2, default=str), flush=True)  # in case the probes fail
    if real_torch:
        report["torch_probes"] = torch_probes(args.probe_reps)
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
