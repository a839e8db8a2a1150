#!/bin/bash
# The committed patches 0001 + 0002 (cp39-abi3) on the H200: one build for 9.0a through
# bench/repro_device.py, then sageattn() on seeded shapes (output hashes per shape).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; B=$(cd "$(dirname "$0")" && pwd); T0=$(date +%s)
export PYTHONPATH=$B/wf/tools$(for w in "$B"/wheels/*.whl; do printf ':%s' "$w"; done)
rm -rf /tmp/c && mkdir -p /tmp/c && cp -r "$B/sa-main" /tmp/c/src
(cd "$B/wf" && timeout 230 python3 "$B/repro.py" build /tmp/c 16 > "$OUT/build.log" 2>&1; echo "exit $?" >> "$OUT/build.log")
tail -3 "$OUT/build.log"; echo "built at $(( $(date +%s) - T0 )) s"
W=$(ls /tmp/c/wheel/*.whl | head -1); echo "$W"; [ -n "$W" ] || exit 7
python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); print([n for n in z.namelist() if n.endswith('.so')]); z.extractall('/tmp/site-c')" "$W"
for so in /tmp/site-c/sageattention/*.so; do echo "$(basename $so): $(nm -D --undefined-only "$so" | awk '{print $2}' | grep -E '^_?Py' | tr '\n' ' ')"; done
export PYTHONPATH=$(for w in "$B"/wheels/*.whl; do printf '%s:' "$w"; done)
timeout 60 python3 "$B/sageattn_vs_upstream.py" --build committed=/tmp/site-c --seqs 1 33 63 4096 --dims 64 128 --rounds 1 \
  --json "$OUT/sageattn-h200-committed-0002.json" 2>&1 | tail -12
echo "wall $(( $(date +%s) - T0 )) s"
