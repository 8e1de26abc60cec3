"""How well saved word and context vectors fit word2vec's own objective, per pair and per frequency band.

The objective is the skip-gram negative-sampling log-likelihood
``sum_ij n+_ij log s(u_i . v_j) + n-_ij log s(-u_i . v_j)`` on word2vec's expected training pairs
(frequent tokens dropped before its dynamic window with gensim's keep probabilities: the counts of
``bayescompress fit skipgram --subsample-tokens``, from the count cache; ``n-`` = k x row totals x
the unigram^0.75 noise), computed exactly
in row blocks and divided by the number of positive pairs. It asks whether a model that scores
higher on analogies also fits the data better. Vectors come from ``skipgram_gap.py
--save-vectors PREFIX`` (PREFIX-U.npy, PREFIX-V.npy). Not run by CI.

    python benchmarks/skipgram_objective.py CORPUS PREFIX... --csv OUT.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from csv_rows import append_row  # benchmarks/csv_rows.py, beside this script

from bayescompress.fit.corpus import CoOccurrences, CorpusOptions, count_corpus

BANDS = ((0, 100), (100, 1000), (1000, 5000), (5000, 10000), (10000, 30000), (30000, 100000))
ROWS_PER_BLOCK = 1000


def row_log_likelihoods(counts: CoOccurrences, words: np.ndarray, contexts: np.ndarray,
                        negatives: int) -> np.ndarray:
    """Each word's (row's) term of the objective: its positive pairs plus its expected negatives."""
    row_weight, noise = counts.negative_factors(negatives)
    positive = counts.positive.tocsr()
    words, contexts = torch.from_numpy(words).float(), torch.from_numpy(contexts).float()
    noise = torch.from_numpy(noise).float()
    per_row = np.zeros(counts.vocab_size)
    for start in range(0, counts.vocab_size, ROWS_PER_BLOCK):
        scores = words[start:start + ROWS_PER_BLOCK] @ contexts.T
        expected_negatives = (torch.nn.functional.logsigmoid(-scores) * noise).sum(1).double().numpy()
        block = positive[start:start + ROWS_PER_BLOCK].tocoo()
        paired = torch.nn.functional.logsigmoid(scores[block.row, block.col]).double().numpy()
        per_row[start:start + scores.shape[0]] = (
            np.bincount(block.row, weights=block.data * paired, minlength=scores.shape[0])
            + row_weight[start:start + scores.shape[0]] * expected_negatives)
    return per_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("prefixes", nargs="+", help="PREFIX of PREFIX-U.npy / PREFIX-V.npy")
    parser.add_argument("--vocab-size", type=int, default=30000)
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=10)
    parser.add_argument("--threshold", type=float, default=1e-3, help="word2vec's sample (its default)")
    parser.add_argument("--csv", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    counts = count_corpus(args.corpus, CorpusOptions(
        vocab_size=args.vocab_size, min_count=args.min_count, window=args.window, window_weights="linear",
        subsample_tokens=args.threshold), progress=True)
    positive_rows = np.asarray(counts.positive.sum(axis=1)).ravel()
    for prefix in args.prefixes:
        words, contexts = np.load(f"{prefix}-U.npy"), np.load(f"{prefix}-V.npy")
        per_row = row_log_likelihoods(counts, words, contexts, args.negatives)
        row = {"vectors": Path(prefix).name, "threshold": args.threshold,
               "positive_entries": counts.positive.nnz,
               "positive_pairs": round(float(positive_rows.sum()), 1),
               "loglik_per_pair": round(float(per_row.sum() / positive_rows.sum()), 4)}
        for low, high in BANDS:
            if low < counts.vocab_size:
                band = slice(low, min(high, counts.vocab_size))
                row[f"ranks_{low + 1}_{min(high, counts.vocab_size)}"] = round(float(
                    per_row[band].sum() / positive_rows[band].sum()), 4)
        print(row, flush=True)
        append_row(args.csv, row)


if __name__ == "__main__":
    main()
