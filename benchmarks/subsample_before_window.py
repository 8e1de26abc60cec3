"""Experiment: n+ as word2vec's expected training pairs when frequent tokens are dropped BEFORE the window.

word2vec drops frequent tokens first and then applies its dynamic window to what is left, so two
words separated by dropped tokens become neighbours ("dirty" subsampling); our ``--subsample``
scales each pair's count by both words' keep probabilities instead ("clean"). For a pair at raw
offset o, with C the number of the o - 1 tokens between them that survive (a Poisson-binomial),
word2vec's expected weight is keep(a) keep(b) E[(W - C) / W ; C < W] (linear dynamic window,
effective distance C + 1). This script counts that exactly (offsets up to 4W, where P(C < W)
falls below 0.4%), fits the sampled-pair model to it with ``subsample=0`` and prints one JSON line.
With threshold 0 the counts equal ``--window-weights linear``'s. Not run by CI.

    python benchmarks/subsample_before_window.py CORPUS --vocab-size 30000 --window 5 \\
        --threshold 1e-4 --settings \\
        '{"estimator": "pairs", "steps": 48000, "batch": 2048, "init_scale": 0.1, "lr_decay": 0.02}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from tune_skipgram import timed_fit  # benchmarks/tune_skipgram.py, beside this script

from bayescompress.fit.corpus import CoOccurrences, CorpusOptions, count_corpus
from bayescompress.fit.skipgram import SkipGramSettings


def dirty_counts(corpus: str, vocab_size: int, window: int, threshold: float) -> CoOccurrences:
    """word2vec's expected pairs, counted by ``--subsample-tokens`` (the product's counter since the
    seventh pass). This experiment took each word's share of *all* tokens for its keep probability,
    gensim (and ``--subsample-tokens``) its share of the in-vocabulary tokens; the keep probability
    depends on share / threshold only, so the threshold is scaled by the ratio of the two totals."""
    plain = CorpusOptions(vocab_size=vocab_size, min_count=2, window=window, window_weights="linear")
    counted = count_corpus(corpus, plain)
    scale = counted.n_tokens / float(counted.word_counts.sum())
    return count_corpus(corpus, dataclasses.replace(plain, subsample_tokens=threshold * scale))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--vocab-size", type=int, default=30000)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=1e-4)
    parser.add_argument("--settings", default="{}", help="SkipGramSettings fields as JSON (subsample is 0)")
    args = parser.parse_args()
    began = time.perf_counter()
    counts = dirty_counts(args.corpus, args.vocab_size, args.window, args.threshold)
    count_seconds = time.perf_counter() - began
    values = json.loads(args.settings) | {"subsample": 0.0}
    settings = SkipGramSettings(**values).resolved(counts.vocab_size)
    _, seconds, cpu_seconds, result, stds = timed_fit(counts, settings)
    print(json.dumps({"corpus": Path(args.corpus).name, "vocab": counts.vocab_size, "window": args.window,
                      "threshold": args.threshold, "count_seconds": round(count_seconds, 1),
                      "positive_entries": int(counts.positive.nnz), **values, "wall_s": round(seconds, 1),
                      "cpu_s": round(cpu_seconds, 1), "hits_at_10": round(result.hits_at_10, 4),
                      "gensim_top1": round(result.gensim_top1, 4), "questions": result.n_used,
                      "spearman": round(stds.spearman_log_count_log_std, 3)}), flush=True)


if __name__ == "__main__":
    main()
