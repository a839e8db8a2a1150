"""The nvcc filter with the real nvcc: a Hopper-only (wgmma) file compiled for 9.0a and 12.0a
fails as SageAttention's setup.py makes it fail, and compiles once the recipe's
source-targets limit it to 9.0a."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from wheelfactory import arch, build, buildvars

FIXTURE = Path(__file__).parents[1] / "fixtures" / "nvcc_filter" / "hopper_only.cu"
NVCC = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / "nvcc"
GENCODE = ["-gencode", "arch=compute_90a,code=sm_90a", "-gencode", "arch=compute_120a,code=sm_120a"]


def compile_with(nvcc: Path | str, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    cmd = [str(nvcc), "-c", str(FIXTURE), "-o", str(out), *GENCODE]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def test_filter_lets_a_hopper_only_file_build_beside_blackwell_targets(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NVCC_APPEND_FLAGS"}
    plain = compile_with(NVCC, tmp_path / "plain.o", env)
    assert plain.returncode != 0 and "wgmma" in plain.stderr and "sm_120a" in plain.stderr

    wrapper = build.write_nvcc_filter(tmp_path, sys.executable)
    rules = {"nvcc_filter/*.cu": arch.parse_targets(["9.0a"])}
    env.update({c.name: c.value for c in buildvars.nvcc_filter_settings(str(wrapper), str(NVCC), rules)})
    filtered = compile_with(wrapper, tmp_path / "filtered.o", env)
    assert filtered.returncode == 0, filtered.stderr
    assert "limited by [build] source-targets" in filtered.stderr
    # The object holds sm_90a code and nothing for sm_120a (nvcc's fatbin lists its ELF targets).
    data = (tmp_path / "filtered.o").read_bytes()
    assert b"sm_90a" in data and b"sm_120a" not in data
