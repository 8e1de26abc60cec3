"""Tuning runs of the skip-gram fit: one fit per setting, Hits@10 and time, one CSV row each.

Each setting is ``name:key=value,key=value`` (SkipGramSettings fields); rows are appended to
``--csv`` as each fit ends, so a stopped run keeps what finished. Not run by CI.

    python benchmarks/tune_skipgram.py [--corpus CORPUS] --csv benchmarks/results/skipgram-tuning.csv \\
        "dense:estimator=dense" "pairs-4k:estimator=pairs,steps=4000" ...
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from csv_rows import append_row  # benchmarks/csv_rows.py, beside this script
from gensim.test.utils import datapath
from machine import describe_machine  # benchmarks/machine.py, beside this script

from bayescompress.evaluate.analogy import evaluate_analogies
from bayescompress.evaluate.stds import std_report
from bayescompress.fit.corpus import CorpusOptions, count_corpus
from bayescompress.fit.defaults import CORPUS_DEFAULTS, WINDOW_WEIGHTS
from bayescompress.fit.skipgram import SkipGramSettings, fit_skipgram, setting_type

DEMO_CORPUS = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def parse_setting(text: str) -> tuple[str, dict]:
    name, _, assignments = text.partition(":")
    values = {}
    for assignment in filter(None, assignments.split(",")):
        key, _, value = assignment.partition("=")
        kind = setting_type(key)
        if kind is bool:
            values[key] = value in ("1", "true", "True")
        else:
            values[key] = value if kind is str else kind(value)
    return name, values


def timed_fit(counts, settings: SkipGramSettings):
    """Fit, then score: (fit, wall seconds, CPU seconds, analogy result, std report of U)."""
    began, cpu = time.perf_counter(), time.process_time()
    fit = fit_skipgram(counts, settings)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    analogies = evaluate_analogies(fit.posterior.tensors["U"].mean, counts.words)
    return fit, seconds, cpu_seconds, analogies, std_report(fit.posterior, "U")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=datapath(DEMO_CORPUS))
    parser.add_argument("settings", nargs="+", help="name:key=value,... (SkipGramSettings fields)")
    parser.add_argument("--vocab-size", type=int, default=CORPUS_DEFAULTS["vocab_size"])
    parser.add_argument("--min-count", type=int, default=CORPUS_DEFAULTS["min_count"])
    parser.add_argument("--window", type=int, default=CORPUS_DEFAULTS["window"])
    parser.add_argument("--window-weights", choices=WINDOW_WEIGHTS,
                        default=CORPUS_DEFAULTS["window_weights"],
                        help="our counts' weighting in the window (word2vec always uses its dynamic window)")
    parser.add_argument("--subsample-tokens", type=float, default=CORPUS_DEFAULTS["subsample_tokens"],
                        help="our counts: frequent tokens dropped before windows, as word2vec does")
    parser.add_argument("--cache-dir")
    parser.add_argument("--csv", required=True)
    args = parser.parse_args()
    options = CorpusOptions(vocab_size=args.vocab_size, min_count=args.min_count, window=args.window,
                            window_weights=args.window_weights, subsample_tokens=args.subsample_tokens)
    counts = count_corpus(args.corpus, options, cache_dir=args.cache_dir, progress=True)
    machine = describe_machine(f"torch {torch.__version__}")
    for text in args.settings:
        name, values = parse_setting(text)
        settings = SkipGramSettings(**values).resolved(counts.vocab_size)
        fit, seconds, cpu_seconds, analogies, stds = timed_fit(counts, settings)
        row = {"name": name, "corpus": counts.source.get("name"), "vocab": counts.vocab_size,
               "window": args.window, "window_weights": args.window_weights, "estimator": settings.estimator,
               "steps": settings.steps,
               "batch": settings.batch, "noise_contexts": settings.noise_contexts,
               "pair_power": settings.pair_power, "subsample": settings.subsample,
               "init_scale": settings.init_scale, "prior_std": settings.prior_std, "lr": settings.lr,
               "lr_decay": settings.lr_decay, "threads": fit.posterior.metadata["torch_threads"],
               "seed": settings.seed, "wall_s": round(seconds, 1), "cpu_s": round(cpu_seconds, 1),
               "ms_per_step": round(1000 * seconds / settings.steps, 2),
               "final_elbo_per_pair": round(fit.posterior.metadata["final_elbo_per_pair"], 5),
               "hits_at_10": round(analogies.hits_at_10, 4), "gensim_top1": round(analogies.gensim_top1, 4),
               "questions": analogies.n_used,
               "spearman_log_count_log_std": round(stds.spearman_log_count_log_std, 3),
               "share_at_initial_std": stds.share_at_initial_std, "load_average_1min": os.getloadavg()[0],
               "machine": machine}
        if args.subsample_tokens > 0:  # a column only where it was used, so older CSVs still take rows
            row["subsample_tokens"] = args.subsample_tokens
        print(row, flush=True)
        append_row(args.csv, row)


if __name__ == "__main__":
    main()
