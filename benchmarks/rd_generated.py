"""Rate-distortion evidence on generated posteriors: sweep of all methods, refinement, rate control.

Two posteriors (not run by CI):
  demo  the README demo's: means N(0, 0.3^2), stds log-uniform over [0.01, 1] x 0.3, independent
  zipf  a conjugate-Gaussian model of word vectors: word w seen n_w times (Zipf), prior N(0, 0.3^2),
        posterior std 0.3 sqrt(k / (n_w + k)) and means shrunk by n_w / (n_w + k): rare words are
        wide and near 0, as in a Bayesian skip-gram

    python benchmarks/rd_generated.py --posterior zipf --rows 20000 --dim 50 --out out/rd-zipf
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from machine import describe_machine  # benchmarks/machine.py, beside this script

from bayescompress.posterior import Posterior, TensorPosterior
from bayescompress.ratecontrol import pack_to_target
from bayescompress.sweep import run_sweep
from bayescompress.synthetic import generated_posterior


def zipf_posterior(rows: int, dim: int, seed: int = 0, prior_std: float = 0.3, k: float = 20.0) -> Posterior:
    rng = np.random.default_rng(seed)
    counts = np.maximum(1, np.round(2e5 / np.arange(1, rows + 1) ** 1.07)).astype(np.float64)[:, None]
    keep = counts / (counts + k)
    truth = prior_std * rng.standard_normal((rows, dim))
    observed = truth + prior_std * np.sqrt(k / counts) * rng.standard_normal((rows, dim))
    means = (keep * observed).astype(np.float32)  # the conjugate posterior mean
    stds = np.broadcast_to(prior_std * np.sqrt(k / (counts + k)), (rows, dim)).astype(np.float32)
    return Posterior({"W": TensorPosterior(means, stds.copy())}, kind="generic",
                     metadata={"source": "generated-zipf", "seed": seed, "k": k})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posterior", choices=("demo", "zipf"), default="demo")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--points", type=int, default=12)
    parser.add_argument("--max-bits", type=float, default=8.0)
    parser.add_argument("--methods", default="vbq,vbq-refined,uniform,kmeans,lloyd,gzip,bzip2,lzma,vbq-nostd")
    parser.add_argument("--quality", choices=("density", "within-1-std"), default="density")
    parser.add_argument("--rate-targets", default="0.5,1,2,4")
    parser.add_argument("--rate-methods", default="vbq,uniform,lloyd,kmeans")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.posterior == "demo":
        post = generated_posterior(rows=args.rows, dim=args.dim)
    else:
        post = zipf_posterior(args.rows, args.dim)
    summary = {"machine": describe_machine(), "posterior": args.posterior, "n_latents": post.n_latents}

    start = time.perf_counter()
    result = run_sweep(post, out / "sweep", methods=args.methods.split(","), points=args.points,
                       max_bits=args.max_bits, metric_options={"measure": args.quality}, overwrite=True)
    summary["sweep_seconds"] = time.perf_counter() - start
    summary["ratios"] = result.ratios
    print(result.table)
    print(f"sweep: {summary['sweep_seconds']:.0f} s, {len(result.rows) - 1} archives")

    control = []
    for method in filter(None, args.rate_methods.split(",")):
        for target in map(float, args.rate_targets.split(",")):
            start = time.perf_counter()
            got = pack_to_target(post, out / "target.bcz", method=method, bits_per_dim=target,
                                 overwrite=True)
            seconds = time.perf_counter() - start
            control.append({"method": method, "target": target, "bits_per_dim": got.pack.bits_per_dim,
                            "met": got.met, "trials": len(got.trials), "seconds": seconds, "note": got.note})
            outcome = "met" if got.met else "missed"
            print(f"rate control {method:<8} target {target:>4} bits/dim -> {got.pack.bits_per_dim:.4f} "
                  f"({outcome}) in {len(got.trials)} trials, {seconds:.1f} s {got.note}")
    summary["rate_control"] = control
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))


if __name__ == "__main__":
    main()
