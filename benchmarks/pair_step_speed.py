"""Speed of one sampled-pair step: a baseline revision's pairs.py (and fused.py) against today's.

The variants take turns step by step in one process (same draws, each on its own copy of the
guide and optimizer), so a busy machine slows them alike and the ratios stay fair. The baseline
runs as that revision's fit ran it (compiled where it had compiled kernels). Not run by CI.

    python benchmarks/pair_step_speed.py data/corpora/english.txt --vocab-size 30000 --min-count 2 \\
        --window 5 --window-weights linear --subsample-tokens 1e-3 --baseline-rev f4a66d8 --steps 300 \\
        --batch 2048 --noise-contexts 256 --threads 2 --csv benchmarks/results/pair-step-speed-threads.csv

(benchmarks/results/pair-step-speed.csv holds the second pass's rows, written before the threads
and per-variant compiled columns existed.)
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyro
import torch
from csv_rows import append_row  # benchmarks/csv_rows.py, beside this script
from machine import describe_machine  # benchmarks/machine.py, beside this script

from bayescompress.fit import pairs
from bayescompress.fit.corpus import CorpusOptions, count_corpus
from bayescompress.fit.fused import StepKernels
from bayescompress.fit.skipgram import SkipGram, SkipGramSettings, _step_seeds

ROOT = Path(__file__).resolve().parent.parent


def baseline_module(revision: str, stem: str, replace: dict[str, str] | None = None):
    """bayescompress/fit/STEM.py as it was at ``revision`` (None if absent), imported beside today's."""
    shown = subprocess.run(["git", "show", f"{revision}:bayescompress/fit/{stem}.py"], cwd=ROOT,
                           capture_output=True, text=True)
    if shown.returncode:
        return None
    source = shown.stdout
    for old, new in (replace or {}).items():
        source = source.replace(old, new)
    path = Path(tempfile.mkdtemp()) / f"baseline_{stem}.py"
    path.write_text(source)
    name = f"bayescompress.fit._baseline_{stem}"  # inside the package, so its relative imports work
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def takes_kernels(function) -> bool:
    """Whether a revision's pair_gradients / lazy_adam_step accepts a StepKernels argument."""
    return "kernels" in inspect.signature(function).parameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--vocab-size", type=int, default=30000)
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--baseline-rev", required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--noise-contexts", type=int, default=64)
    parser.add_argument("--window-weights", default="flat")
    parser.add_argument("--subsample-tokens", type=float, default=0.0)
    parser.add_argument("--cache-dir", help="count cache folder (as the fit's --cache-dir)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--csv")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = CorpusOptions(vocab_size=args.vocab_size, min_count=args.min_count, window=args.window,
                            window_weights=args.window_weights, subsample_tokens=args.subsample_tokens)
    counts = count_corpus(args.corpus, options, cache_dir=args.cache_dir, progress=False)
    settings = SkipGramSettings(estimator="pairs", batch=args.batch, noise_contexts=args.noise_contexts)
    cpu = torch.device("cpu")
    baseline_fused = baseline_module(args.baseline_rev, "fused")
    baseline = baseline_module(args.baseline_rev, "pairs",
                               {"from .fused import": "from ._baseline_fused import"})
    baseline_kernels = baseline_fused.StepKernels(compile=True) if baseline_fused else None
    variants = {"baseline": (baseline, baseline_kernels), "eager": (pairs, StepKernels(compile=False)),
                "compiled": (pairs, StepKernels(compile=True))}
    states = {}
    for name, (module, _) in variants.items():
        pyro.clear_param_store()
        guide = SkipGram(counts.vocab_size, settings.dim, settings.prior_std).initialize(settings, cpu)
        parameters = [p.detach().clone() for p in guide]
        sampler = module.PairSampler(counts, settings.negatives, settings.batch, settings.noise_contexts,
                                     settings.pair_power, cpu)
        states[name] = (parameters, torch.optim.SparseAdam(parameters, lr=settings.lr), sampler)
    # read once, not inside the timed steps: older revisions' lazy_adam_step took the kernels too
    adam_takes_kernels = {name: takes_kernels(module.lazy_adam_step)
                          for name, (module, _) in variants.items()}
    pool = pairs.normal_pool(settings.batch, settings.noise_contexts, settings.dim, 0, cpu)

    def step(name: str, index: int) -> float:
        module, kernels = variants[name]
        parameters, optimizer, sampler = states[name]
        rng, _ = _step_seeds(0, 0, index)
        batch = sampler.draw(rng)
        word_normals, context_normals = sampler.normals(pool, rng, settings.dim)
        extra = () if kernels is None else (kernels,)
        loss, gradients = module.pair_gradients(parameters, batch, word_normals, context_normals,
                                                settings.prior_std, sampler.unreached_words,
                                                sampler.unreached_contexts, *extra)
        for parameter, gradient in zip(parameters, gradients, strict=True):
            parameter.grad = gradient
        module.lazy_adam_step(optimizer, *(extra if adam_takes_kernels[name] else ()))
        return loss

    began = time.perf_counter()
    for name in variants:  # warm-up, and the compile
        step(name, 0)
    warmup = time.perf_counter() - began
    seconds = dict.fromkeys(variants, 0.0)
    cpu_seconds = dict.fromkeys(variants, 0.0)
    for index in range(1, args.steps + 1):
        for name in variants:
            began, cpu_began = time.perf_counter(), time.process_time()
            step(name, index)
            seconds[name] += time.perf_counter() - began
            cpu_seconds[name] += time.process_time() - cpu_began
    machine = describe_machine(f"torch {torch.__version__}")
    for name in variants:
        row = {"variant": name, "baseline_rev": args.baseline_rev, "vocab": counts.vocab_size,
               "batch": settings.batch, "noise_contexts": settings.noise_contexts, "dim": settings.dim,
               "steps": args.steps, "threads": args.threads,
               "compiled": bool(variants[name][1] and variants[name][1].compiled),
               "ms_per_step": round(1000 * seconds[name] / args.steps, 2),
               "cpu_ms_per_step": round(1000 * cpu_seconds[name] / args.steps, 2),
               "pairs_per_s": round(args.steps * settings.batch / seconds[name]),
               "speedup_vs_baseline": round(seconds["baseline"] / seconds[name], 3),
               "cpu_speedup_vs_baseline": round(cpu_seconds["baseline"] / cpu_seconds[name], 3),
               "warmup_and_compile_s": round(warmup, 1), "load_average_1min": round(os.getloadavg()[0], 2),
               "machine": machine}
        print(row, flush=True)
        if args.csv:
            append_row(args.csv, row)


if __name__ == "__main__":
    main()
