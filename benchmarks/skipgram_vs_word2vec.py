"""Quality benchmark: our Bayesian skip-gram (posterior means) against gensim Word2Vec on one corpus.

Both models get the same tokens, vocabulary, dimension and window; both are timed in this run.
Analogies (gensim's questions-words.txt) are scored by ``bayescompress evaluate analogy``'s code:
the paper's Hits@10 (query words not excluded, ties against), top-1, MRR, and gensim's protocol
(query words excluded). Not run by CI.

    python benchmarks/skipgram_vs_word2vec.py [CORPUS] [--steps N --batch B --lr LR ...]
        [--save-posterior FIT.h5]   # keep our fit for the rate-distortion study (docs/results.md)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch
from gensim.models import Word2Vec
from gensim.test.utils import datapath
from machine import describe_machine  # benchmarks/machine.py, beside this script

from bayescompress.evaluate.analogy import evaluate_analogies
from bayescompress.fit.corpus import CorpusOptions, count_corpus, iter_documents
from bayescompress.fit.defaults import CORPUS_DEFAULTS
from bayescompress.fit.skipgram import SkipGramSettings, fit_skipgram

DEMO_CORPUS = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
GENSIM_MAX_SENTENCE = 10000  # gensim silently truncates longer sentences


def scores(words: list[str], vectors: np.ndarray) -> dict:
    """The project's analogy figures (bayescompress evaluate analogy) of one set of vectors."""
    result = evaluate_analogies(vectors, words)
    return {key: getattr(result, key) for key in
            ("hits_at_10", "hits_at_10_ties_favourable", "top1", "mrr", "gensim_top1", "gensim_hits_at_10",
             "coverage", "n_used")}


def word2vec_sentences(corpus: str, options: CorpusOptions) -> list[list[str]]:
    sentences, current = [], []
    for tokens, ends in iter_documents(corpus, options):
        current.extend(tokens)
        if ends:
            sentences.extend(current[i:i + GENSIM_MAX_SENTENCE] for i in range(0, len(current),
                                                                                 GENSIM_MAX_SENTENCE))
            current = []
    return sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=datapath(DEMO_CORPUS))
    parser.add_argument("--vocab-size", type=int, default=CORPUS_DEFAULTS["vocab_size"])
    parser.add_argument("--min-count", type=int, default=CORPUS_DEFAULTS["min_count"])
    parser.add_argument("--window", type=int, default=CORPUS_DEFAULTS["window"])
    parser.add_argument("--w2v-epochs", default="5,20",
                        help="comma-separated epochs to try; the best Hits@10 is the baseline")
    parser.add_argument("--w2v-sample", type=float, default=1e-3)
    parser.add_argument("--skip-w2v", action="store_true")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--json", help="append the results as one JSON line to this file")
    parser.add_argument("--save-posterior", help="also write our fitted posterior to this .h5 file")
    parser.add_argument("--cache-dir", help="count cache (default: the user's); a new folder times the count")
    for field in dataclasses.fields(SkipGramSettings):
        if field.name in ("checkpoint", "resume", "device", "checkpoint_every"):
            continue
        flag = f"--{field.name.replace('_', '-')}"
        parser.add_argument(flag, type=type(field.default), default=field.default)
    args = parser.parse_args()
    options = CorpusOptions(vocab_size=args.vocab_size, min_count=args.min_count, window=args.window)
    began = time.perf_counter()
    counts = count_corpus(args.corpus, options, cache_dir=args.cache_dir, progress=True)
    count_seconds = time.perf_counter() - began
    settings = SkipGramSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SkipGramSettings)
                                   if hasattr(args, f.name)})
    result = {"machine": describe_machine(f"{torch.get_num_threads()} torch threads"),
              "corpus": counts.source.get("name"), "tokens": counts.n_tokens, "vocab": counts.vocab_size,
              "settings": dataclasses.asdict(settings), "count_seconds": count_seconds,
              "counts_from_cache": counts.from_cache}

    if not args.skip_ours:
        began, cpu = time.perf_counter(), time.process_time()
        fit = fit_skipgram(counts, settings, progress=True)
        result["ours_seconds"] = time.perf_counter() - began
        result["ours_cpu_seconds"] = time.process_time() - cpu
        means_u = fit.posterior.tensors["U"].mean
        means_v = fit.posterior.tensors["V"].mean
        result["ours_U"] = scores(counts.words, means_u)
        result["ours_U+V"] = scores(counts.words, means_u + means_v)
        result["ours_final_elbo_per_pair"] = fit.posterior.metadata["final_elbo_per_pair"]
        if args.save_posterior:
            fit.posterior.save(args.save_posterior)

    if not args.skip_w2v:
        sentences = word2vec_sentences(args.corpus, options)
        frequencies = dict(zip(counts.words, counts.word_counts.tolist(), strict=True))
        result["w2v"] = {}
        for epochs in map(int, args.w2v_epochs.split(",")):
            began, cpu = time.perf_counter(), time.process_time()
            model = Word2Vec(vector_size=settings.dim, window=args.window, sg=1, negative=settings.negatives,
                             min_count=1, sample=args.w2v_sample, workers=2, seed=settings.seed,
                             epochs=epochs)
            model.build_vocab_from_freq(frequencies)
            model.train(sentences, total_examples=len(sentences), epochs=epochs)
            seconds = time.perf_counter() - began
            w2v = np.stack([model.wv[w] for w in counts.words])
            result["w2v"][f"epochs={epochs}"] = {"seconds": seconds, "cpu_seconds": time.process_time() - cpu,
                                                 **scores(counts.words, w2v)}
        best = max(result["w2v"].values(), key=lambda entry: entry["hits_at_10"])
        result["w2v_best_hits_at_10"] = best["hits_at_10"]
        if "ours_U" in result:
            ours = result["ours_U"]["hits_at_10"]
            result["ratio_hits_at_10_U_to_best_w2v"] = ours / max(best["hits_at_10"], 1e-12)
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
