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
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from tune_skipgram import timed_fit  # benchmarks/tune_skipgram.py, beside this script

from bayescompress.fit.corpus import (
    DOC_BREAK,
    DROPPED,
    CoOccurrences,
    CorpusOptions,
    choose_vocabulary,
    iter_documents,
    keep_probabilities,
    scan_corpus,
)
from bayescompress.fit.skipgram import SkipGramSettings


def dirty_counts(corpus: str, vocab_size: int, window: int, threshold: float,
                 max_offset: int, vocabulary_share: bool = False) -> CoOccurrences:
    """word2vec's expected training pairs; ``vocabulary_share``: keep probabilities from each word's
    share of the in-vocabulary tokens, as gensim computes them (else of all tokens, as the fourth
    pass did: a threshold about 4% smaller at V = 30k on english.txt)."""
    options = CorpusOptions(vocab_size=vocab_size, min_count=2, window=window, window_weights="linear")
    with tempfile.TemporaryFile() as spool:
        scanned = scan_corpus(iter_documents(Path(corpus), options), spool)
        chosen = choose_vocabulary(scanned.counts, vocab_size, 2, corpus)
        vocab_id = np.full(len(scanned.words) + 1, DROPPED, dtype=np.int64)
        vocab_id[chosen] = np.arange(len(chosen))
        vocab_id[DOC_BREAK] = DOC_BREAK
        spool.seek(0)
        ids = vocab_id[np.fromfile(spool, dtype=np.int32)]
    ids = ids[ids != DROPPED]  # word2vec drops out-of-vocabulary tokens before anything else
    breaks = ids == DOC_BREAK
    docs, ids = np.cumsum(breaks)[~breaks], ids[~breaks]
    word_counts = scanned.counts[chosen].astype(np.int64)
    total = int(word_counts.sum()) if vocabulary_share else scanned.n_tokens
    keep = keep_probabilities(word_counts, total, threshold)[ids]
    n = len(ids)
    between = np.zeros((n, window))  # P(C = c) for c < W, per left token, at the current offset
    between[:, 0] = 1.0
    distance_weights = (window - np.arange(window)) / window
    total = sp.csr_matrix((vocab_size, vocab_size))
    for offset in range(1, max_offset + 1):
        m = n - offset
        if m <= 0:
            break
        current = between[:m]
        weights = keep[:m] * keep[offset:] * (current @ distance_weights)
        same = (docs[:m] == docs[offset:]) & (weights > 0)
        total = total + sp.coo_matrix((weights[same], (ids[:m][same], ids[offset:][same])),
                                      shape=(vocab_size, vocab_size)).tocsr()
        survives = keep[offset:offset + m][:, None]  # the token at p + offset joins those in between
        shifted = np.zeros_like(current)
        shifted[:, 1:] = current[:, :-1]
        between = current * (1 - survives) + shifted * survives
    both = (total + total.T).tocsr()
    both.sum_duplicates()
    both.sort_indices()
    return CoOccurrences(words=[scanned.words[i] for i in chosen], word_counts=word_counts, positive=both,
                         n_tokens=scanned.n_tokens, n_documents=scanned.n_documents, options=options,
                         source={"name": Path(corpus).name, "path": corpus})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--vocab-size", type=int, default=30000)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=1e-4)
    parser.add_argument("--settings", default="{}", help="SkipGramSettings fields as JSON (subsample is 0)")
    args = parser.parse_args()
    began = time.perf_counter()
    counts = dirty_counts(args.corpus, args.vocab_size, args.window, args.threshold, 4 * args.window)
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
