"""Quality benchmark: our Bayesian skip-gram (posterior means) against gensim Word2Vec on one corpus.

Both models get the same tokens, vocabulary, dimension and window; both are timed in this run.
Analogies (gensim's questions-words.txt) are scored two ways: gensim's protocol (top-1, query
words excluded) and the paper's Hits@10 (cosine against the whole vocabulary, query words not
excluded), with ties counted against the answer and in its favour. Not run by CI.

    python benchmarks/skipgram_vs_word2vec.py [CORPUS] [--steps N --batch B --lr LR ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time

import numpy as np
import torch
from gensim.models import KeyedVectors, Word2Vec
from gensim.test.utils import datapath

from bayescompress.fit.corpus import CorpusOptions, count_corpus, iter_documents
from bayescompress.fit.skipgram import SkipGramSettings, fit_skipgram

DEMO_CORPUS = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
GENSIM_MAX_SENTENCE = 10000  # gensim silently truncates longer sentences


def read_questions(path: str, vocab: dict[str, int]) -> tuple[np.ndarray, int]:
    """Question rows (a, b, c, d) as vocabulary ids, only those with all four words known."""
    rows, total = [], 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(":") or not line.strip():
                continue
            total += 1
            words = line.lower().split()
            if len(words) == 4 and all(w in vocab for w in words):
                rows.append([vocab[w] for w in words])
    return np.asarray(rows, dtype=np.int64).reshape(-1, 4), total


def hits_at_10(vectors: np.ndarray, questions: np.ndarray, batch: int = 512) -> dict:
    """Paper protocol: normalized vectors, b - a + c against every word, answer in the top 10."""
    normed = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    against = favour = 0
    for start in range(0, len(questions), batch):
        a, b, c, d = questions[start:start + batch].T
        scores = (normed[b] - normed[a] + normed[c]) @ normed.T
        answer = scores[np.arange(len(d)), d][:, None]
        favour += int(np.count_nonzero((scores > answer).sum(axis=1) < 10))
        against += int(np.count_nonzero((scores >= answer).sum(axis=1) - 1 < 10))
    n = max(len(questions), 1)
    return {"hits10_ties_against": against / n, "hits10_ties_in_favour": favour / n}


def gensim_top1(words: list[str], vectors: np.ndarray) -> float:
    keyed = KeyedVectors(vectors.shape[1])
    keyed.add_vectors(words, vectors.astype(np.float32))
    score, _ = keyed.evaluate_word_analogies(datapath("questions-words.txt"))
    return float(score)


def scores(words, vectors, questions) -> dict:
    return {"gensim_top1": gensim_top1(words, vectors), **hits_at_10(vectors, questions)}


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
    parser.add_argument("--vocab-size", type=int, default=10000)
    parser.add_argument("--min-count", type=int, default=4)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--w2v-epochs", default="5,20",
                        help="comma-separated epochs to try; the best Hits@10 is the baseline")
    parser.add_argument("--w2v-sample", type=float, default=1e-3)
    parser.add_argument("--skip-w2v", action="store_true")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--json", help="append the results as one JSON line to this file")
    for field in dataclasses.fields(SkipGramSettings):
        if field.name in ("checkpoint", "resume", "device", "checkpoint_every"):
            continue
        flag = f"--{field.name.replace('_', '-')}"
        parser.add_argument(flag, type=type(field.default), default=field.default)
    args = parser.parse_args()
    options = CorpusOptions(vocab_size=args.vocab_size, min_count=args.min_count, window=args.window)
    counts = count_corpus(args.corpus, options, progress=True)
    vocab = {w: i for i, w in enumerate(counts.words)}
    questions, total_questions = read_questions(datapath("questions-words.txt"), vocab)
    settings = SkipGramSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SkipGramSettings)
                                   if hasattr(args, f.name)})
    result = {"machine": f"{platform.machine()} {torch.get_num_threads()} torch threads",
              "corpus": counts.source.get("name"), "tokens": counts.n_tokens, "vocab": counts.vocab_size,
              "questions_covered": len(questions), "questions_total": total_questions,
              "settings": dataclasses.asdict(settings)}

    if not args.skip_ours:
        began, cpu = time.perf_counter(), time.process_time()
        fit = fit_skipgram(counts, settings, progress=True)
        result["ours_seconds"] = time.perf_counter() - began
        result["ours_cpu_seconds"] = time.process_time() - cpu
        means_u = fit.posterior.tensors["U"].mean
        means_v = fit.posterior.tensors["V"].mean
        result["ours_U"] = scores(counts.words, means_u, questions)
        result["ours_U+V"] = scores(counts.words, means_u + means_v, questions)
        result["ours_final_elbo_per_pair"] = fit.posterior.metadata["final_elbo_per_pair"]

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
                                                 **scores(counts.words, w2v, questions)}
        best = max(result["w2v"].values(), key=lambda entry: entry["hits10_ties_against"])
        result["w2v_best_hits10"] = best["hits10_ties_against"]
        if "ours_U" in result:
            result["ratio_hits10_U_to_best_w2v"] = result["ours_U"]["hits10_ties_against"] / max(
                best["hits10_ties_against"], 1e-12)
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
