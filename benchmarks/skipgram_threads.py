"""Milliseconds per step of the sampled-pair fit with 1 and 2 torch threads, alternating, one CSV row each.

Run on the busy 2-core machine to see what a default of two threads would cost there. Not run by CI.

    python benchmarks/skipgram_threads.py --threads 1,2,1,2 --csv benchmarks/results/skipgram-threads.csv
"""

from __future__ import annotations

import argparse
import os

from csv_rows import append_row  # benchmarks/csv_rows.py, beside this script
from gensim.test.utils import datapath

from bayescompress.fit.corpus import CorpusOptions, count_corpus
from bayescompress.fit.skipgram import SkipGramSettings, fit_skipgram

DEMO_CORPUS = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2,1,2")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--cache-dir")
    parser.add_argument("--csv", required=True)
    args = parser.parse_args()
    counts = count_corpus(datapath(DEMO_CORPUS), CorpusOptions(vocab_size=18000, min_count=2, window=5),
                          cache_dir=args.cache_dir)
    for threads in map(int, args.threads.split(",")):
        fit = fit_skipgram(counts, SkipGramSettings(estimator="pairs", steps=args.steps, threads=threads))
        row = {"vocab": counts.vocab_size, "window": 5, "estimator": "pairs", "batch": 4096,
               "threads": threads, "steps": args.steps,
               "ms_per_step": round(1000 * fit.seconds / args.steps, 1),
               "load_average_1min": os.getloadavg()[0]}
        print(row, flush=True)
        append_row(args.csv, row)


if __name__ == "__main__":
    main()
