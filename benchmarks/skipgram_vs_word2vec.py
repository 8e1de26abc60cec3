"""Quality benchmark: our Bayesian skip-gram (posterior means) against gensim Word2Vec on one corpus.

Both models get the same tokens, vocabulary, dimension and window; both are timed in this run.
Analogies (gensim's questions-words.txt) are scored by ``bayescompress evaluate analogy``'s code:
the paper's Hits@10 (query words not excluded, ties against), top-1, MRR, and gensim's protocol
(query words excluded); word similarity by gensim's wordsim353 (Spearman). Every model run is one
JSON line in ``--json`` as soon as it ends, so a long run that is stopped keeps what finished.
Peak RSS is the process's high-water mark when the run ended (ru_maxrss). Not run by CI.

    python benchmarks/skipgram_vs_word2vec.py [CORPUS] [--steps-list 2000,4000 --batch B --lr LR ...]
        [--save-posterior FIT.h5]   # keep our (last) fit for the rate-distortion study (docs/results.md)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import time

import numpy as np
import torch
from gensim.models import KeyedVectors, Word2Vec
from gensim.test.utils import datapath
from machine import describe_machine  # benchmarks/machine.py, beside this script

from bayescompress.evaluate.analogy import evaluate_analogies
from bayescompress.evaluate.stds import std_report
from bayescompress.fit.corpus import CorpusOptions, count_corpus, iter_documents
from bayescompress.fit.defaults import CORPUS_DEFAULTS, WINDOW_WEIGHTS
from bayescompress.fit.skipgram import SkipGramSettings, fit_skipgram, setting_type

DEMO_CORPUS = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
GENSIM_MAX_SENTENCE = 10000  # gensim silently truncates longer sentences


def scores(words: list[str], vectors: np.ndarray) -> dict:
    """The project's analogy figures (bayescompress evaluate analogy) and wordsim353 of one set of vectors."""
    result = evaluate_analogies(vectors, words)
    figures = {key: getattr(result, key) for key in
               ("hits_at_10", "hits_at_10_ties_favourable", "top1", "mrr", "gensim_top1", "gensim_hits_at_10",
                "coverage", "n_used")}
    keyed = KeyedVectors(vectors.shape[1])
    keyed.add_vectors(words, vectors.astype(np.float32))
    _, spearman, oov_percent = keyed.evaluate_word_pairs(datapath("wordsim353.tsv"))
    figures["wordsim353_spearman"] = float(spearman.statistic)
    figures["wordsim353_oov_percent"] = float(oov_percent)
    return figures


def peak_rss_mib() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def record(path: str | None, entry: dict) -> None:
    print(json.dumps(entry), flush=True)
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")


def word2vec_sentences(corpus: str, options: CorpusOptions) -> list[list[str]]:
    sentences, current = [], []
    for tokens, ends in iter_documents(corpus, options):
        current.extend(tokens)
        if ends:
            sentences.extend(current[i:i + GENSIM_MAX_SENTENCE] for i in range(0, len(current),
                                                                                 GENSIM_MAX_SENTENCE))
            current = []
    return sentences


def train_word2vec(sentences: list[list[str]], frequencies: dict[str, int], *, dim: int, window: int,
                   negatives: int, sample: float, workers: int, seed: int, epochs: int) -> Word2Vec:
    """gensim's skip-gram (sg=1) on our vocabulary (its counts, so both models share the words)."""
    model = Word2Vec(vector_size=dim, window=window, sg=1, negative=negatives, min_count=1, sample=sample,
                     workers=workers, seed=seed, epochs=epochs)
    model.build_vocab_from_freq(frequencies)
    model.train(sentences, total_examples=len(sentences), epochs=epochs)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=datapath(DEMO_CORPUS))
    parser.add_argument("--vocab-size", type=int, default=CORPUS_DEFAULTS["vocab_size"])
    parser.add_argument("--min-count", type=int, default=CORPUS_DEFAULTS["min_count"])
    parser.add_argument("--window", type=int, default=CORPUS_DEFAULTS["window"])
    parser.add_argument("--window-weights", choices=WINDOW_WEIGHTS,
                        default=CORPUS_DEFAULTS["window_weights"],
                        help="our counts' weighting in the window (word2vec always uses its dynamic window)")
    parser.add_argument("--subsample-tokens", type=float, default=CORPUS_DEFAULTS["subsample_tokens"],
                        help="our counts: frequent tokens dropped before windows, as word2vec does")
    parser.add_argument("--w2v-epochs", default="5,10,20,40",
                        help="comma-separated epochs, one word2vec run each")
    parser.add_argument("--w2v-sample", type=float, default=1e-3)
    parser.add_argument("--w2v-workers", type=int, default=2)
    parser.add_argument("--steps-list", help="comma-separated step budgets, one fit of ours each "
                                             "(default: --steps)")
    parser.add_argument("--skip-w2v", action="store_true")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--json", help="append each run's results as one JSON line to this file")
    parser.add_argument("--save-posterior", help="also write our last fitted posterior to this .h5 file")
    parser.add_argument("--cache-dir", help="count cache (default: the user's); a new folder times the count")
    for field in dataclasses.fields(SkipGramSettings):
        if field.name in ("checkpoint", "resume", "device", "checkpoint_every"):
            continue
        flag = f"--{field.name.replace('_', '-')}"
        kind = setting_type(field.name)
        if kind is bool:
            kind = lambda text: text in ("1", "true", "True")  # noqa: E731
        parser.add_argument(flag, type=kind, default=field.default)
    args = parser.parse_args()
    options = CorpusOptions(vocab_size=args.vocab_size, min_count=args.min_count, window=args.window,
                            window_weights=args.window_weights, subsample_tokens=args.subsample_tokens)
    began = time.perf_counter()
    counts = count_corpus(args.corpus, options, cache_dir=args.cache_dir, progress=True)
    common = {"machine": describe_machine(f"torch {torch.__version__}"), "corpus": counts.source.get("name"),
              "tokens": counts.n_tokens, "vocab": counts.vocab_size, "window": args.window,
              "window_weights": args.window_weights, "subsample_tokens": args.subsample_tokens,
              "count_seconds": time.perf_counter() - began,
              "counts_from_cache": counts.from_cache,
              "positive_entries": int(counts.positive.nnz), "positive_pairs": int(counts.positive.sum())}

    if not args.skip_ours:
        budgets = [int(s) for s in args.steps_list.split(",")] if args.steps_list else [args.steps]
        for steps in budgets:
            chosen = {f.name: getattr(args, f.name) for f in dataclasses.fields(SkipGramSettings)
                      if hasattr(args, f.name)}
            settings = SkipGramSettings(**{**chosen, "steps": steps})
            began, cpu = time.perf_counter(), time.process_time()
            fit = fit_skipgram(counts, settings, progress=True)
            seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
            means_u = fit.posterior.tensors["U"].mean
            means_v = fit.posterior.tensors["V"].mean
            record(args.json, {**common, "model": "ours", "settings": dataclasses.asdict(settings.resolved(
                               counts.vocab_size)),
                               "torch_threads": fit.posterior.metadata["torch_threads"],
                               "compiled_step": fit.posterior.metadata.get("compiled_step"),
                               "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mib": peak_rss_mib(),
                               "final_elbo_per_pair": fit.posterior.metadata["final_elbo_per_pair"],
                               "U": scores(counts.words, means_u),
                               "U+V": scores(counts.words, means_u + means_v),
                               "stds_U": std_report(fit.posterior, "U").to_dict()})
            if args.save_posterior:
                fit.posterior.save(args.save_posterior)

    if not args.skip_w2v:
        sentences = word2vec_sentences(args.corpus, options)
        frequencies = dict(zip(counts.words, counts.word_counts.tolist(), strict=True))
        for epochs in map(int, args.w2v_epochs.split(",")):
            began, cpu = time.perf_counter(), time.process_time()
            model = train_word2vec(sentences, frequencies, dim=args.dim, window=args.window,
                                   negatives=args.negatives, sample=args.w2v_sample,
                                   workers=args.w2v_workers, seed=args.seed, epochs=epochs)
            seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
            rows = [model.wv.key_to_index[w] for w in counts.words]
            w2v, w2v_context = model.wv.vectors[rows], model.syn1neg[rows]
            # "U+V" as for ours: input plus output vectors (Levy et al. 2015's w + c), its best either way
            record(args.json, {**common, "model": "word2vec", "epochs": epochs, "sample": args.w2v_sample,
                               "workers": args.w2v_workers, "seconds": seconds, "cpu_seconds": cpu_seconds,
                               "peak_rss_mib": peak_rss_mib(), "U": scores(counts.words, w2v),
                               "U+V": scores(counts.words, w2v + w2v_context)})


if __name__ == "__main__":
    main()
