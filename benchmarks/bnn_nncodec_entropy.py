"""Why nncodec needs fewer bits than a per-tensor frequency table: its bitstream against the
memoryless (per-tensor empirical) entropy of the very values it decodes to, for the picks of a
bench_bnn.py run.

    .venv/bin/python benchmarks/bnn_nncodec_entropy.py out/bnn-mnist5k --fold 0 > nncodec-entropy.csv

A bitstream below that entropy is what context modelling (DeepCABAC) buys; no coder with one
static table per tensor, ours included, can get below it for these values.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_bnn import run_nncodec_at  # benchmarks/, beside this script

from bayescompress.posterior import Posterior


def memoryless_bits(values: dict) -> float:
    """Sum over tensors of n x the empirical entropy (bits) of the tensor's distinct values."""
    total = 0.0
    for array in values.values():
        _, counts = np.unique(np.asarray(array).ravel(), return_counts=True)
        p = counts / counts.sum()
        total += float(-(counts * np.log2(p)).sum())
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a bench_bnn.py --out folder (posteriors/ and picks.csv)")
    parser.add_argument("--fold", type=int, default=0)
    args = parser.parse_args()
    with open(args.run / "picks.csv", newline="") as handle:
        picks = [p for p in csv.DictReader(handle) if p["method"] == "nncodec" and p["reached"] == "True"
                 and int(p["fold"]) == args.fold and p["criterion"] in ("accuracy", "agreement")]
    writer = csv.writer(sys.stdout)
    writer.writerow(["data", "fold", "source", "criterion", "setting", "weights", "nncodec_bits_per_weight",
                     "memoryless_entropy_bits_per_weight"])
    for pick in picks:
        posterior = Posterior.load(args.run / "posteriors" / f"{pick['source']}-fold{args.fold}.h5")
        means = {name: tensor.mean for name, tensor in posterior.tensors.items()}
        qp, bias_qp = (int(part.split("=")[1]) for part in pick["setting"].split())
        with tempfile.TemporaryDirectory() as work:
            size, values = run_nncodec_at(means, Path(work), qp, bias_qp)
        writer.writerow([pick["data"], args.fold, pick["source"], pick["criterion"], pick["setting"],
                         posterior.n_latents, 8.0 * size / posterior.n_latents,
                         memoryless_bits(values) / posterior.n_latents])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
