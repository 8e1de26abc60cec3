#!/usr/bin/env bash
# The paper's Figure 3 at V = 100k on two CPU cores: two skip-gram fits with different seeds (the
# sampled-pair estimator), each swept over real archives by VBQ and every baseline, then ratio
# tables at the paper's quality levels and ours, for Hits@10 over all words and over the 30k most
# frequent, with and without the vocabulary counted; mean and spread over the seeds.
#
#   recipes/figure3.sh                               # V = 100k, seeds 0 and 1, side by side: 50 min
#                                                    # on 2 cores (fits 15 min, sweeps 35)
#   V=30000 SEEDS="0 1 2" OUT=out/figure3-30k recipes/figure3.sh
#
# Writes OUT/seedN/{posterior.h5,sweep/} and OUT/ratios-{paper,ours}.csv (one row per seed) and
# OUT/ratios-{paper,ours}-seeds.csv (mean, min, max over the seeds); nothing under docs/ (copy
# the CSVs by hand).  Fits and sweeps already present are reused.  It states its wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BC=${BC:-.venv/bin/bayescompress}
CORPUS=${CORPUS:-data/corpora/english.txt}
V=${V:-100000}
SEEDS=${SEEDS:-"0 1"}
STEPS=${STEPS:-60000}          # x 2048 pairs: about 1.3 passes over the (linearly weighted) counts
WINDOW=${WINDOW:-5}
OUT=${OUT:-out/figure3}
# uniform-pruned: the grid with the rare words' rows zeroed; vbq-pruned: VBQ on the same rows
METHODS=${METHODS:-vbq,uniform,uniform-pruned,vbq-pruned,kmeans,gzip,bzip2,lzma,vbq-refined}
POINTS=${POINTS:-12}
MIN_BITS=${MIN_BITS:-0.2}
MAX_BITS=${MAX_BITS:-4}
PAPER_LEVELS=0.52,0.7,0.87,0.96   # the paper's Figure 3 levels
OUR_LEVELS=0.5,0.7,0.9,0.97
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1   # one core per seed: the seeds run side by side

[ -f "$CORPUS" ] || "$PY" recipes/build_corpus.py
mkdir -p "$OUT"

one_seed() {  # seed: fit, evaluate, sweep
    local dir=$OUT/seed$1
    mkdir -p "$dir"
    if [ ! -f "$dir/posterior.h5" ]; then
        "$BC" fit skipgram "$CORPUS" -o "$dir/posterior.h5" --vocab-size "$V" --min-count 2 \
            --window "$WINDOW" --window-weights linear --estimator pairs --steps "$STEPS" \
            --subsample 1e-4 --lr-decay 0.02 --seed "$1" --threads 1
    fi
    "$BC" evaluate analogy "$dir/posterior.h5"
    if [ ! -f "$dir/sweep/sweep.csv" ]; then
        "$BC" sweep "$dir/posterior.h5" -o "$dir/sweep" --methods "$METHODS" --points "$POINTS" \
            --min-bits "$MIN_BITS" --max-bits "$MAX_BITS" --force
    fi
}

pids=()
for seed in $SEEDS; do
    one_seed "$seed" > "$OUT/seed$seed.log" 2>&1 &
    pids+=("$!")
done
for pid in "${pids[@]}"; do
    wait "$pid" || { echo "figure3: a seed failed; see $OUT/seed*.log" >&2; exit 1; }
done

sweeps=()
for seed in $SEEDS; do sweeps+=("$OUT/seed$seed/sweep"); done
qualities=quality
[ "$V" -gt 30000 ] && qualities="quality hits_at_10_top30k"  # the sweep scores the 30k most frequent above 30k
for levels in paper ours; do
    list=$PAPER_LEVELS
    [ "$levels" = ours ] && list=$OUR_LEVELS
    rm -f "$OUT/ratios-$levels.csv"
    for quality in $qualities; do
        for rate in file side; do  # side: the vocabulary counted in the file size
            "$PY" recipes/rd_analysis.py ratios "${sweeps[@]}" --rate "$rate" --quality "$quality" \
                --levels "$list" --csv "$OUT/ratios-$levels.csv" > /dev/null
        done
    done
    "$PY" recipes/rd_analysis.py seeds "$OUT/ratios-$levels.csv" --csv "$OUT/ratios-$levels-seeds.csv"
done
echo "figure3: done in $((SECONDS / 60)) min on $(getconf _NPROCESSORS_ONLN) cores ($OUT)"
