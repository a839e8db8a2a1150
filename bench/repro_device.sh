#!/bin/bash
# Device run for issue 26 item 3: build thu-ml/SageAttention d1a57a5 + recipes/patches/
# sageattention/0001 for 9.0a twice, in two folders, at the same time, with wheelfactory's
# reproducible-build settings (bench/repro_device.py), and compare the wheels byte for byte.
# usage: bash BUNDLE/run.sh      (OUT: where results go)
# BUNDLE (a git-ignored folder named in `carry`) holds run.sh (this file), repro.py
# (bench/repro_device.py), wf/ (tools/ and recipes/ of this repository), sa-main/ (the
# upstream tree at d1a57a5 with patch 0001 applied, without example/ and
# sageattention3_blackwell/) and wheels/ (packaging, filelock: the device has no network).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
B=$(cd "$(dirname "$0")" && pwd); T0=$(date +%s)
PY=${PY:-python3}
export PYTHONPATH=$B/wf/tools$(for w in "$B"/wheels/*.whl; do printf ':%s' "$w"; done)
{ nvidia-smi -L; nvcc --version | tail -2; nproc; gcc --version | head -1
  $PY -c "import torch, setuptools; print('torch', torch.__version__, 'setuptools', setuptools.__version__)"; } 2>&1 | tee "$OUT/machine.txt"
for d in a b; do rm -rf "/tmp/repro-$d"; mkdir -p "/tmp/repro-$d"; cp -r "$B/sa-main" "/tmp/repro-$d/src"; done
# two folders of different depth, built at once (half the cores each)
mv /tmp/repro-b /tmp/repro-b-deeper-folder
for w in /tmp/repro-a /tmp/repro-b-deeper-folder; do
  # each build is cut off in time (BUILD_S) so that the comparison and results always come back
  ( cd "$B/wf" && timeout "${BUILD_S:-390}" $PY "$B/repro.py" build "$w" "${JOBS:-8}" > "$w.log" 2>&1
    echo "exit status $?" >> "$w.log" ) &
done
wait
echo "wall $(( $(date +%s) - T0 )) s" | tee "$OUT/wall.txt"
cp /tmp/repro-a.log /tmp/repro-b-deeper-folder.log "$OUT/" 2>/dev/null
tail -5 /tmp/repro-a.log /tmp/repro-b-deeper-folder.log
cd "$B/wf" && $PY "$B/repro.py" compare /tmp/repro-a /tmp/repro-b-deeper-folder | tee "$OUT/compare.txt"
