#!/bin/bash
# Device run for issue 26 item 1: build thu-ml/SageAttention d1a57a5 + patch 0001 as the
# factory ships it today (per-Python, pybind11) and + 0001 + 0002 (limited API, cp39-abi3),
# both for 9.0a only, side by side, then compare sageattn() of the two on the same seeded
# inputs with bench/sageattn_vs_upstream.py (bitwise hash and max |difference| per shape,
# speed ratio). usage: bash BUNDLE/run.sh   (OUT: where results go)
# BUNDLE (a git-ignored folder in the checkout the device tool sends, named in `carry`)
# holds run.sh (this file), sa-main/ (the upstream tree at d1a57a5, without assets/,
# example/ and sageattention3_blackwell/), patches/ (recipes/patches/sageattention/0001
# and 0002), sageattn_vs_upstream.py (bench/) and wheels/ (packaging, wheel<0.46: the
# device has no network). Run 2026-12-03 on the H200 machine: 424 s (builds 335 s and
# 322 s side by side); the bench was re-run alone (130 s) after a fix to --outputs.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
B=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$B/.." && pwd); T0=$(date +%s)
PY=${PY:-python3}
export PYTHONPATH=$(for w in "$B"/wheels/*.whl; do printf '%s:' "$w"; done)
{ nvidia-smi -L; nvcc --version | tail -2; nproc; free -g | head -2
  $PY -c "import torch, setuptools, sys; print('torch', torch.__version__, 'setuptools', setuptools.__version__, sys.version.split()[0], torch.cuda.get_device_name())"; } 2>&1 | tee "$OUT/machine.txt"
P=$B/patches
for v in perpy abi3; do
  rm -rf /tmp/sa-$v /tmp/whl-$v /tmp/site-$v; cp -r "$B/sa-main" /tmp/sa-$v
  (cd /tmp/sa-$v && git apply -p1 "$P/0001-zero-fill-out-of-range-smem.patch") || exit 3
done
(cd /tmp/sa-abi3 && git apply -p1 "$P/0002-limited-api-module-init.patch") || exit 4
export TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=8 NVCC_APPEND_FLAGS="--threads 2"
for v in perpy abi3; do
  ( cd /tmp/sa-$v && S=$(date +%s) && timeout 450 $PY setup.py bdist_wheel -d /tmp/whl-$v > "$OUT/build-$v.log" 2>&1
    echo "exit status $? after $(( $(date +%s) - S )) s" >> "$OUT/build-$v.log" ) &
done
wait
for v in perpy abi3; do
  echo "== $v: $(tail -1 "$OUT/build-$v.log")"; ls /tmp/whl-$v
  grep -E "error|Error" "$OUT/build-$v.log" | head -8
  $PY -c "import zipfile,sys,glob; zipfile.ZipFile(glob.glob('/tmp/whl-$v/*.whl')[0]).extractall('/tmp/site-$v')" || exit 5
  ls /tmp/site-$v/sageattention/*.so
  for so in /tmp/site-$v/sageattention/*.so; do
    echo "$(basename $so): Python symbols: $(nm -D --undefined-only "$so" | awk '{print $2}' | grep -E '^_?Py' | tr '\n' ' ')"
  done
done 2>&1 | tee "$OUT/wheels.txt"
echo "built at $(( $(date +%s) - T0 )) s"
cd "$B"
$PY "$B/sageattn_vs_upstream.py" --build perpy=/tmp/site-perpy --build abi3=/tmp/site-abi3 --baseline perpy \
  --seqs 1 7 33 63 65 127 129 1025 4096 16384 --dims 64 128 --rounds 2 --outputs /tmp/outs \
  --json "$OUT/sageattn-h200-torch2.11-9.0a-abi3-vs-perpython.json" --markdown "$OUT/table.md" 2>&1 | tail -60
echo "bench done at $(( $(date +%s) - T0 )) s"
echo "wall $(( $(date +%s) - T0 )) s"
