#!/usr/bin/env bash
# GPU fits against CPU fits on one machine (docs/skipgram.md, docs/bnn.md): the skip-gram model
# on the demo corpus and the digits BNN, each fitted with --device cpu and --device cuda in the
# same run, then evaluated, packed and unpacked.  Needs a CUDA GPU; not run by CI.
#
#   benchmarks/gpu_fit.sh [OUT_DIR]        # BC / PY name the commands (default: python3)
set -uo pipefail  # go on past a failing step: each prints its own error
cd "$(dirname "$0")/.."
OUT=${1:-out/gpu-fit}
PY=${PY:-python3}
BC=${BC:-"$PY -m bayescompress"}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c 'import os, torch; print("torch", torch.__version__, "cpu cores", os.cpu_count(), "cuda", torch.cuda.is_available())'
CORPUS=$($PY -c 'from gensim.test.utils import datapath; print(datapath("enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"))')
seconds() { local start=$SECONDS; "$@"; echo "  -> $((SECONDS - start)) s wall"; }
for device in cpu cuda; do
    echo "== skip-gram, demo corpus, --device $device"
    seconds $BC fit skipgram "$CORPUS" -o "$OUT/skipgram-$device.h5" --device "$device" --steps 2000 --seed 0
    $BC evaluate analogy "$OUT/skipgram-$device.h5" --json > "$OUT/analogy-$device.json"
    $PY -c "import json; d = json.load(open('$OUT/analogy-$device.json')); print('  Hits@10', round(d['hits_at_10'], 4))"
    echo "== BNN, digits, --device $device"
    seconds $BC fit bnn digits -o "$OUT/bnn-$device.h5" --device "$device" --steps 2000 --seed 0
    $BC evaluate bnn "$OUT/bnn-$device.h5"
done
echo "== the GPU-fitted posteriors through pack / unpack"
$BC pack "$OUT/skipgram-cuda.h5" --lambda 3 -o "$OUT/skipgram-cuda.bcz"
$BC evaluate analogy "$OUT/skipgram-cuda.bcz"
$BC pack "$OUT/bnn-cuda.h5" --lambda 1 -o "$OUT/bnn-cuda.bcz"
$BC unpack "$OUT/bnn-cuda.bcz" --format torch -o "$OUT/bnn-cuda.pt"
$BC evaluate bnn "$OUT/bnn-cuda.pt"
