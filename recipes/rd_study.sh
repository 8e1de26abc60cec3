#!/usr/bin/env bash
# Where VBQ's gain over the uniform grid comes from (issue 4 item 7; docs/results.md): VBQ / uniform
# bits at equal Hits@10 against vocabulary size, corpus size, training length, std calibration,
# the prior's shape and the refinement.  The V = 100k row comes from recipes/figure3.sh (run on a
# GPU: DEVICE=cuda BATCH=5000 STEPS=6000), used here when its output is present.
# Fits and sweeps already present are reused.  About 45 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BC=${BC:-.venv/bin/bayescompress}
FITS=out/fits
STUDY=out/study
FIG3=${FIG3:-out/figure3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$FITS" "$STUDY"
[ -f data/corpora/english.txt ] || "$PY" recipes/build_corpus.py
# every 4th paragraph: a quarter of the corpus with the same mix of sources (a prefix would be
# mostly Wikipedia and dictionary)
[ -f data/corpora/english-quarter.txt ] || awk 'NR % 4 == 1' data/corpora/english.txt > data/corpora/english-quarter.txt
DEMO=$("$PY" -c 'from gensim.test.utils import datapath; print(datapath("enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"))')

fit() {  # name corpus vocab steps
    [ -f "$FITS/$1.h5" ] || "$BC" fit skipgram "$2" -o "$FITS/$1.h5" --vocab-size "$3" --min-count 2 \
        --window 5 --steps "$4"
}
fit en-v10k-w5 data/corpora/english.txt 10000 2000
fit en-v10k-w5-short data/corpora/english.txt 10000 667
fit quarter-v10k-w5 data/corpora/english-quarter.txt 10000 2000
fit demo-v10k-w5 "$DEMO" 10000 2000
fit en-v30k-w5 data/corpora/english.txt 30000 6000
fit en-v30k-w5-long data/corpora/english.txt 30000 18000

sweep() {  # name posterior [extra arguments]
    local name=$1 posterior=$2
    shift 2
    [ -f "$STUDY/$name/sweep.csv" ] || "$PY" recipes/rd_analysis.py sweep "$posterior" "$STUDY/$name" "$@"
}
# vocabulary size, corpus size, training length: VBQ and uniform (both offsets), 10 points each
for fit_name in en-v10k-w5 en-v30k-w5 en-v30k-w5-long en-v10k-w5-short quarter-v10k-w5 demo-v10k-w5; do
    sweep "$fit_name" "$FITS/$fit_name.h5" --points 10 --min-bits 0.1 --max-bits 5.5
done
# what else moves it, on the V = 10k fit: VBQ alone, compared with that fit's uniform curve
P=$FITS/en-v10k-w5.h5
sweep v10k-std-scale2 "$P" --methods vbq --stds scale=2 --points 10 --min-bits 0.1 --max-bits 5.5
sweep v10k-std-spread0.5 "$P" --methods vbq --stds spread=0.5 --points 10 --min-bits 0.1 --max-bits 5.5
sweep v10k-std-spread1.5 "$P" --methods vbq --stds spread=1.5 --points 10 --min-bits 0.1 --max-bits 5.5
sweep v10k-std-rowrms "$P" --methods vbq --stds row-rms --points 10 --min-bits 0.1 --max-bits 5.5
sweep v10k-nostd-prior-refined "$P" --methods vbq-nostd,vbq:prior=fit,vbq-refined --points 10 \
    --min-bits 0.1 --max-bits 5.5

rm -f "$STUDY"/ratios.csv "$STUDY"/by-frequency.csv
for fit_name in en-v10k-w5 en-v30k-w5 en-v30k-w5-long en-v10k-w5-short quarter-v10k-w5 demo-v10k-w5; do
    "$PY" recipes/rd_analysis.py ratios "$STUDY/$fit_name" --csv "$STUDY/ratios.csv"
done
[ ! -f "$FIG3/sweep/sweep.csv" ] || "$PY" recipes/rd_analysis.py ratios "$FIG3/sweep" --csv "$STUDY/ratios.csv"
"$PY" recipes/rd_analysis.py ratios "$STUDY"/v10k-* --baseline-from "$STUDY/en-v10k-w5" --csv "$STUDY/ratios.csv"
for level in 0.7 0.9; do
    "$PY" recipes/rd_analysis.py by-frequency "$FITS/en-v10k-w5.h5" "$STUDY/en-v10k-w5" --level $level \
        --csv "$STUDY/by-frequency.csv"
    "$PY" recipes/rd_analysis.py by-frequency "$FITS/en-v30k-w5.h5" "$STUDY/en-v30k-w5" --level $level \
        --csv "$STUDY/by-frequency.csv"
    [ ! -f "$FIG3/sweep/sweep.csv" ] || "$PY" recipes/rd_analysis.py by-frequency "$FIG3/posterior.h5" \
        "$FIG3/sweep" --level $level --csv "$STUDY/by-frequency.csv"
done
