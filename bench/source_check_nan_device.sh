#!/bin/bash
# Device run for issue 24: build thu-ml/SageAttention d1a57a5 unpatched and with
# recipes/patches/sageattention/0001 for the given PTX targets, and run the source check
# (wheelfactory gpu-check --source-variant) of recipes/sageattention-main.toml on both.
# usage: bash BUNDLE/run.sh "8.0+PTX" TAG     (OUT: where results go)
# BUNDLE (a git-ignored folder of the checkout the device tool sends, named in `carry`)
# holds run.sh (this file), wf/ (tools/ and recipes/ of this repository), sa-main/ (the
# upstream tree at d1a57a5, without assets/ and sageattention3_blackwell/) and wheels/
# (packaging and filelock: the device has no network). Run as it was on 2026-12-03,
# before the recipes carried [[patch]]: today the recipe's patch is applied by the source
# check itself, so drop the hand-applied patch and pass --without-patches for "unpatched".
set -u
ARCHS=$1; TAG=$2; OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
B=$(cd "$(dirname "$0")" && pwd); REPO=$B/wf; cd "$REPO"; T0=$(date +%s)
PY=${PY:-python3}
# pure-Python wheels import straight from the zip: nothing is installed into the machine's Python
export PYTHONPATH=$REPO/tools$(for w in "$B"/wheels/*.whl; do printf ':%s' "$w"; done)
{ nvidia-smi -L; nvcc --version | tail -2; nproc; free -g | head -2
  $PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"; } 2>&1 | tee "$OUT/machine-$TAG.txt"
rm -rf /tmp/sa-unpatched /tmp/sa-patched
SRC=${SRC:-$B/sa-main}
cp -r "$SRC" /tmp/sa-unpatched && cp -r "$SRC" /tmp/sa-patched
P="$REPO/recipes/patches/sageattention/0001-zero-fill-out-of-range-smem.patch"
(cd /tmp/sa-patched && { git apply -p1 "$P" || patch -p1 < "$P"; }) || exit 3
grep -c "kFillZero" /tmp/sa-unpatched/csrc/qattn/attn_utils.cuh /tmp/sa-patched/csrc/qattn/attn_utils.cuh
export NVCC_APPEND_FLAGS="--threads 2"   # after wheelfactory's --threads 1: sm_XX and compute_XX in parallel
for v in unpatched patched; do
  ( $PY -m wheelfactory gpu-check --source-variant /tmp/sa-$v --recipe recipes/sageattention-main.toml \
      --source-arch "$ARCHS" ${EXTRA:-} --results "$OUT/gpu-check-h200-nan-$v-$TAG.json" > "$OUT/$v-$TAG.log" 2>&1
    echo "exit status $?" >> "$OUT/$v-$TAG.log" ) &
done
wait
echo "wall $(( $(date +%s) - T0 )) s"
for v in unpatched patched; do
  echo "== $v"; grep -E "^(ERROR|TIP)|source check|exit status|compiling|error:" "$OUT/$v-$TAG.log" | tail -8
done
$PY - "$OUT" "$TAG" <<'PY'
import json, sys, collections
out, tag = sys.argv[1], sys.argv[2]
for v in ("unpatched", "patched"):
    try:
        d = json.load(open(f"{out}/gpu-check-h200-nan-{v}-{tag}.json"))
    except OSError as e:
        print(v, "no results:", e); continue
    print(v, d["check"], d["verdict"], d["detail"][:300])
    bad = collections.Counter()
    for c in d["cases"]:
        if c.get("nonfinite"):
            call, _, shape = c["shape"].rpartition(":")
            bad[(call, shape.split("-")[2], shape.split("-")[3])] += 1
    print("  shapes with NaN/Inf:", sum(bad.values()), "of", len(d["cases"]))
    for k, n in sorted(bad.items())[:40]:
        print("   ", *k, n)
PY
