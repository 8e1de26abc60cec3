"""Where our skip-gram trails word2vec: one fit (ours or word2vec) per call, scored several ways.

Every call writes one CSV row per set of vectors it scores: Hits@10 (the paper's protocol) of the
word vectors, of the mean-centred word vectors, of input + output vectors (ours U + V, word2vec's
vectors + syn1neg) plain and centred, and Hits@10 on the semantic and syntactic sections apart.
Diagnostics of ours, each one fit:

* ``--noise-scale 0``: the reparameterized noise switched off, so the means follow the gradient of
  the log-likelihood at the means plus the prior's (a MAP fit of the same model and estimator);
  1 is the real ELBO. Only this benchmark can do it (it scales the sampler's standard normals).
* ``--tail-averages``: also score the means averaged over the last 50 / 25 / 10% of the steps
  (one snapshot every 50 steps): is the end of the fit limited by the optimizer's noise?
* ``--sgd-alpha A``: move the means by plain SGD instead of Adam, on word2vec's schedule (A decaying
  linearly to 1e-4 / 0.025 of itself, per positive pair: the step's full-data gradient times
  A * batch / positive pairs), the stds by Adam as before: is word2vec's edge its optimizer's path?

And of word2vec: ``--document-order shuffled`` (documents shuffled by ``--seed``) or ``reversed``
instead of the corpus's own order: SGD over an unshuffled corpus weighs the text it saw last
most, which a count-based fit cannot. ``--save-vectors PREFIX`` writes PREFIX-U.npy and
PREFIX-V.npy (word and context vectors, rows in our vocabulary's order) for
``skipgram_objective.py``. ``--subsample-tokens T`` fits ours to word2vec's expected training pairs
(frequent tokens dropped before the window, ``bayescompress fit skipgram --subsample-tokens``)
instead of the linear-window counts, with ``subsample`` 0.

Not run by CI.

    python benchmarks/skipgram_gap.py ours NAME CORPUS --vocab-size 30000 --steps 48000 \\
        [--noise-scale 0] [--tail-averages] [--set prior_std=0.3 ...] --csv OUT.csv
    python benchmarks/skipgram_gap.py word2vec NAME CORPUS --vocab-size 30000 --epochs 10 \\
        [--document-order shuffled] --csv OUT.csv
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np
import torch
from csv_rows import append_row  # benchmarks/csv_rows.py, beside this script
from machine import describe_machine  # benchmarks/machine.py, beside this script
from skipgram_vs_word2vec import train_word2vec, word2vec_sentences
from tune_skipgram import parse_setting

import bayescompress.fit.pairs as pairs
import bayescompress.fit.skipgram as skipgram
from bayescompress.evaluate.analogy import evaluate_analogies
from bayescompress.fit.corpus import CorpusOptions, count_corpus

TAIL_FRACTIONS = (0.5, 0.25, 0.1)
SNAPSHOT_EVERY = 50


def scored(words: list[str], word_vectors: np.ndarray, context_vectors: np.ndarray) -> dict:
    """Hits@10 of the word vectors plain and centred, of input + output, and by section group."""
    def hits(vectors: np.ndarray) -> float:
        return round(evaluate_analogies(vectors, words).hits_at_10, 4)

    both = word_vectors + context_vectors
    plain = evaluate_analogies(word_vectors, words)
    return {"hits_at_10": round(plain.hits_at_10, 4),
            "hits_at_10_centred": hits(word_vectors - word_vectors.mean(0)),
            "hits_at_10_u_plus_v": hits(both), "hits_at_10_u_plus_v_centred": hits(both - both.mean(0)),
            "semantic_hits_at_10": round(plain.semantic.hits_at_10, 4),
            "syntactic_hits_at_10": round(plain.syntactic.hits_at_10, 4),
            "gensim_top1": round(plain.gensim_top1, 4), "questions": plain.n_used}


def scale_sampler_noise(scale: float) -> None:
    """Multiply every standard normal the sampled-pair fit draws by ``scale`` (0: no noise)."""
    draw = pairs.PairSampler.normals

    def scaled(self, pool, rng, dim):
        words, contexts = draw(self, pool, rng, dim)
        return words * scale, contexts * scale
    pairs.PairSampler.normals = scaled


def snapshot_tails(sums: dict, counts: dict) -> None:
    """Add the guide's means to running sums over the last TAIL_FRACTIONS of the steps."""
    rate = skipgram.learning_rate  # called once at the start of every step, with the step's number

    def recording(settings, step):
        if step % SNAPSHOT_EVERY == 0:
            for fraction in TAIL_FRACTIONS:
                if step >= settings.steps * (1 - fraction):
                    means = torch.cat([skipgram.pyro.param(f"locs.{t}").detach() for t in ("U", "V")], 1)
                    sums[fraction] = means.clone() if fraction not in sums else sums[fraction] + means
                    counts[fraction] = counts.get(fraction, 0) + 1
        return rate(settings, step)
    skipgram.learning_rate = recording


def sgd_on_means(alpha: float, steps: int, batch: int, positive_pairs: float) -> None:
    """Replace Adam's update of the means (locs.U, locs.V) by plain SGD with word2vec's linear decay."""
    adam = skipgram.lazy_adam_step
    done = {"steps": 0}

    def update(optimizer):
        fraction = done["steps"] / steps
        done["steps"] += 1
        rate = max(alpha * (1 - fraction), alpha * 1e-4 / 0.025) * batch / positive_pairs
        parameters = optimizer.param_groups[0]["params"]
        with torch.no_grad():
            for index in (0, 2):  # skipgram.PARAMETERS: locs.U, scales.U, locs.V, scales.V
                gradient = parameters[index].grad.coalesce()
                parameters[index].index_add_(0, gradient.indices()[0], -rate * gradient.values())
                parameters[index].grad = None  # Adam skips it
        adam(optimizer)
    skipgram.lazy_adam_step = update


def save_vectors(prefix: str | None, words: np.ndarray, contexts: np.ndarray) -> None:
    """PREFIX-U.npy and PREFIX-V.npy, when a prefix is given."""
    if prefix:
        np.save(f"{prefix}-U.npy", np.asarray(words, dtype=np.float32))
        np.save(f"{prefix}-V.npy", np.asarray(contexts, dtype=np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=("ours", "word2vec"))
    parser.add_argument("name")
    parser.add_argument("corpus")
    parser.add_argument("--csv", required=True)
    parser.add_argument("--vocab-size", type=int, default=30000)
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--steps", type=int, default=48000)
    parser.add_argument("--noise-scale", type=float, default=1.0)
    parser.add_argument("--tail-averages", action="store_true")
    parser.add_argument("--sgd-alpha", type=float, help="plain SGD on the means from this rate (word2vec's)")
    parser.add_argument("--set", action="append", default=[], help="a SkipGramSettings field, key=value")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--sample", type=float, default=1e-3, help="word2vec's frequent-word threshold")
    parser.add_argument("--document-order", choices=("corpus", "shuffled", "reversed"), default="corpus",
                        help="word2vec: the order its SGD visits the documents in")
    parser.add_argument("--save-vectors", help="write PREFIX-U.npy and PREFIX-V.npy")
    parser.add_argument("--subsample-tokens", type=float, default=0.0,
                        help="ours: counts with frequent tokens dropped before windows, as word2vec does")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    options = CorpusOptions(vocab_size=args.vocab_size, min_count=args.min_count, window=args.window,
                            window_weights="linear", subsample_tokens=args.subsample_tokens)
    counts = count_corpus(args.corpus, options)
    common = {"name": args.name, "model": args.model, "vocab": counts.vocab_size,
              "machine": describe_machine(f"torch {torch.__version__}")}
    rows = []
    if args.model == "ours":
        chosen = {"estimator": "pairs", "steps": args.steps, "batch": 2048, "noise_contexts": 256,
                  "subsample": 1e-4, "init_scale": 0.1, "lr_decay": 0.02, "threads": 1, "seed": args.seed,
                  **parse_setting("x:" + ",".join(args.set))[1]}
        if args.subsample_tokens > 0:  # the counts are subsampled already
            chosen["subsample"], chosen["subsample_tokens"] = 0.0, args.subsample_tokens
        settings = skipgram.SkipGramSettings(**{k: v for k, v in chosen.items() if k != "subsample_tokens"})
        if args.noise_scale != 1.0:
            scale_sampler_noise(args.noise_scale)
        if args.sgd_alpha:
            positive_pairs = float(counts.subsampled(settings.subsample).positive.sum()
                                   if settings.subsample > 0 else counts.positive.sum())
            sgd_on_means(args.sgd_alpha, settings.steps, settings.batch, positive_pairs)
            chosen["means_optimizer"] = f"sgd, alpha {args.sgd_alpha} decaying linearly"
        sums, snapshots = {}, {}
        if args.tail_averages:
            snapshot_tails(sums, snapshots)
        began = time.perf_counter()
        fit = skipgram.fit_skipgram(counts, settings)
        seconds = time.perf_counter() - began
        means = {t: fit.posterior.tensors[t].mean for t in ("U", "V")}
        save_vectors(args.save_vectors, means["U"], means["V"])
        budget = {"budget": f"{args.steps} steps", "noise_scale": args.noise_scale,
                  "seconds": round(seconds, 1), "settings": json.dumps(chosen, sort_keys=True)}
        rows.append({**budget, "means": "final", **scored(counts.words, means["U"], means["V"])})
        dim = settings.dim
        for fraction in sorted(sums, reverse=True):
            averaged = (sums[fraction] / snapshots[fraction]).cpu().numpy()
            rows.append({**budget, "means": f"averaged over the last {fraction:.0%}",
                         **scored(counts.words, averaged[:, :dim], averaged[:, dim:])})
    else:
        sentences = word2vec_sentences(args.corpus, options)
        if args.document_order == "shuffled":
            random.Random(args.seed).shuffle(sentences)
        elif args.document_order == "reversed":
            sentences.reverse()
        frequencies = dict(zip(counts.words, counts.word_counts.tolist(), strict=True))
        began = time.perf_counter()
        model = train_word2vec(sentences, frequencies, dim=100, window=args.window, negatives=10,
                               sample=args.sample, workers=args.workers, seed=args.seed, epochs=args.epochs)
        seconds = time.perf_counter() - began
        order = [model.wv.key_to_index[w] for w in counts.words]
        save_vectors(args.save_vectors, model.wv.vectors[order], model.syn1neg[order])
        settings = {"sample": args.sample, "seed": args.seed}
        if args.document_order != "corpus":  # rows before the option existed ran in the corpus's order
            settings["document_order"] = args.document_order
        rows.append({"budget": f"{args.epochs} epochs, {args.workers} workers", "noise_scale": "",
                     "seconds": round(seconds, 1), "means": "", "settings": json.dumps(settings),
                     **scored(counts.words, model.wv.vectors[order], model.syn1neg[order])})
    for row in rows:
        row = {**common, **row}
        print(json.dumps(row), flush=True)
        append_row(args.csv, row)


if __name__ == "__main__":
    main()
