"""Build a SageAttention tree into a wheel the way `wheelfactory build` compiles and labels
it, with the reproducible-build settings, on a machine without network (bench/repro_device.sh).

  python repro_device.py build WORK JOBS     WORK/src -> WORK/wheel/*.whl
  python repro_device.py compare WORK_A WORK_B

What it runs is wheelfactory's own code: buildvars.build_changes for the recipe (the nvcc
wrapper seeding every .cu file), build.reproducible_changes for the tree, the libcuda stub
(cudastub), then `pip wheel` of the tree with the machine's torch, and label.relabel with
strip_debug (the finish stage's repack: fixed member order and timestamps). Left out: the
import guard, auditwheel (not installed there) and the build record; the local fixture
test covers them (tests/integration/test_rebuild_real.py).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from wheelfactory import arch, build, buildvars, cudastub, label, platforms, rebuild
from wheelfactory.recipe import load_recipe


def build_one(work: Path, jobs: int) -> None:
    import torch

    recipe = load_recipe(os.environ.get("REPRO_RECIPE", "recipes/sageattention-main.toml"))
    targets = arch.parse_targets(os.environ.get("REPRO_ARCH", "9.0a"))
    toolchain = build.find_toolchain()
    cuda_home, nvcc = toolchain.cuda_home, str(toolchain.nvcc)
    stub = cudastub.make_stub(cuda_home, work / "stubs")
    wrapper = build.write_nvcc_filter(work, sys.executable)
    host = buildvars.BuildHost(
        platform=platforms.host(), cuda_home=str(cuda_home), driver_stubs=str(stub),
        gpu_shim_dir=None, nvcc_filter=str(wrapper), real_nvcc=nvcc, reproducible=True,
    )  # fmt: skip
    torch_version = torch.__version__.split("+")[0]
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    changes = buildvars.build_changes(
        recipe, torch=torch_version, cuda=torch.version.cuda, python=python, targets=targets,
        jobs=jobs, host=host,
    )  # fmt: skip
    tree = work / "src"
    env, _ = buildvars.apply(
        os.environ, [*build.reproducible_changes(tree), *changes], pathsep=os.pathsep
    )
    start = time.monotonic()
    argv = [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w",
            str(work / "dist"), str(tree)]  # fmt: skip
    if subprocess.run(argv, cwd=tree, env=env, check=False).returncode != 0:
        # no pip on the machine's Python, or it refused: setuptools' own bdist_wheel
        argv = [sys.executable, "setup.py", "bdist_wheel", "-d", str(work / "dist")]
        subprocess.run(argv, cwd=tree, env=env, check=True)
    print(f"compiled in {time.monotonic() - start:.0f} s")
    (raw,) = (work / "dist").glob("*.whl")
    labelled = label.relabel(raw, [label.strip_debug()], work / "wheel", work=work / "label")
    print(labelled, hashlib.sha256(labelled.read_bytes()).hexdigest())


def compare_objects(a: Path, b: Path) -> None:
    """Each object both builds compiled, byte for byte (also when a build was cut off)."""
    for obj in sorted((a / "src" / "build").rglob("*.o")):
        other = b / obj.relative_to(a)
        if other.exists():
            same = obj.read_bytes() == other.read_bytes()
            print(f"{'same  ' if same else 'DIFFER'} {obj.relative_to(a / 'src')} {obj.stat().st_size}")


def compare(a: Path, b: Path) -> None:
    compare_objects(a, b)
    (wa,), (wb,) = (list((w / "wheel").glob("*.whl")) for w in (a, b))
    for w in (wa, wb):
        print(w, w.stat().st_size, hashlib.sha256(w.read_bytes()).hexdigest())
    diff = rebuild.first_difference(wa, wb)
    print("byte-identical" if diff is None else f"first difference: {diff}")
    (ra,), (rb,) = (list((w / "dist").glob("*.whl")) for w in (a, b))
    raw = rebuild.first_difference(ra, rb)
    print("raw pip wheels:", "byte-identical" if raw is None else f"first difference: {raw}")


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build_one(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        compare(Path(sys.argv[2]), Path(sys.argv[3]))
