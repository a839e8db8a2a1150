#!/usr/bin/env bash
# The factory's main job on this machine, end to end: build examples/hello_ext for one GPU
# target (no GPU needed), publish it to a local index, serve it, and print the pip line.
#
#   bash examples/quickstart.sh                    # torch 2.14.1, sm_90a, port 8000
#   TORCH=2.13.0 ARCH=12.0a PORT=8765 bash examples/quickstart.sh
#
# The CUDA version is nvcc's. torch comes from PyTorch's index for that CUDA; where that
# host is out of reach, from pip's own configuration (WHEELFACTORY_TORCH_INDEX_URL=pip).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/out}
torch=${TORCH:-2.14.1}
arch=${ARCH:-9.0a}
port=${PORT:-8000}

nvcc=$(command -v nvcc || echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc")
cuda=$("$nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p' || true)
[ -n "$cuda" ] || { echo "ERROR: no nvcc found; install the CUDA toolkit or set CUDA_HOME" >&2; exit 3; }
cu=cu${cuda//./}
minor=${torch%.*}

if [ -z "${WHEELFACTORY_TORCH_INDEX_URL+set}" ]; then
    if ! python -c "import urllib.request as u; u.urlopen('https://download.pytorch.org/whl/$cu/torch/', timeout=5)" 2>/dev/null; then
        echo "download.pytorch.org is out of reach: taking torch from pip's configuration instead"
        export WHEELFACTORY_TORCH_INDEX_URL=pip
    fi
fi

rm -rf "$out"
wheelfactory build --source "$here/hello_ext" --name hello-ext --torch "$torch" --cuda "$cuda" \
    --arch "$arch" --out "$out/dist" --index-url "http://127.0.0.1:$port"
wheelfactory publish "$out"/dist/*.whl --index "$out/site" --index-url "http://127.0.0.1:$port"
cat <<MSG

Serving $out/site on http://127.0.0.1:$port/ (Ctrl-C stops). In a Python with torch $minor (CUDA $cuda):

    python -m pip install hello-ext --extra-index-url http://127.0.0.1:$port/$cu/torch$minor/simple/
    python -c "import torch, hello_ext; print(hello_ext.scale(torch.ones(3, device='cuda'), 2.0))"

MSG
exec wheelfactory serve "$out/site" --port "$port"
