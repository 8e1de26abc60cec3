#!/usr/bin/env bash
# The paper's Figure 3 on the largest corpus built here: fit a Bayesian skip-gram, sweep VBQ and the
# uniform-grid baselines over real archives, print the ratio tables (docs/results.md).
#
#   recipes/figure3.sh                       # V = 100k, 20000 steps (about 15 min fit + 25 min sweep, 2 cores)
#   V=30000 STEPS=6000 OUT=out/figure3-30k recipes/figure3.sh
#   DEVICE=cuda BATCH=5000 STEPS=6000 recipes/figure3.sh   # on a GPU (docs/results.md)
#
# The model's likelihood covers all V x V (word, context) pairs, so the work to train every pair
# as often as the V = 10k default does grows as V^2: at V = 100k that is about 100x the V = 10k
# fit (hours on 2 CPU cores; a few minutes on one H100 with 5000 x 5000 blocks).
#
# Writes OUT/posterior.h5 (the fit), OUT/sweep/{sweep.csv,ratios.csv,sweep.png,archives/} and
# OUT/ratios-{file,side,entropy}.csv; nothing under docs/ (copy the plot and the CSVs by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BC=${BC:-.venv/bin/bayescompress}
CORPUS=${CORPUS:-data/corpora/english.txt}
V=${V:-100000}
STEPS=${STEPS:-20000}          # 2000 steps per 10k words: every row visited as often as at V = 10k
BATCH=${BATCH:-1000}           # words (and contexts) per block
DEVICE=${DEVICE:-cpu}
WINDOW=${WINDOW:-5}            # better than 10 on this corpus for our model (docs/skipgram.md)
OUT=${OUT:-out/figure3}
METHODS=${METHODS:-vbq,uniform,gzip,bzip2,lzma,lloyd,vbq-refined}
POINTS=${POINTS:-8}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

[ -f "$CORPUS" ] || "$PY" recipes/build_corpus.py
mkdir -p "$OUT"
if [ ! -f "$OUT/posterior.h5" ]; then
    "$BC" fit skipgram "$CORPUS" -o "$OUT/posterior.h5" --vocab-size "$V" --min-count 2 \
        --window "$WINDOW" --steps "$STEPS" --batch "$BATCH" --device "$DEVICE"
fi
"$BC" evaluate analogy "$OUT/posterior.h5"
"$BC" sweep "$OUT/posterior.h5" -o "$OUT/sweep" --methods "$METHODS" --points "$POINTS" \
    --min-bits 0.15 --max-bits 5 --force
for rate in file side entropy; do
    rm -f "$OUT/ratios-$rate.csv"
    "$PY" recipes/rd_analysis.py ratios "$OUT/sweep" --rate "$rate" --csv "$OUT/ratios-$rate.csv"
done
"$PY" recipes/rd_analysis.py paper
