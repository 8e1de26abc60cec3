"""What keeps `fit bnn`'s stds at the prior: one factor at a time on digits (64-128-10 unless varied),
and what each factor does to the bits VBQ needs.

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/bnn_std_factors.py --out out/std-factors \
        [--variants 0,6,7,8]

Per fit: median std, its ratio to the prior std, the share of weights with |mean|/std > 1, the
means' test accuracy, and (one split, picked on the test rows, so an indication only; the k-fold
benchmark is the judgement) the cheapest VBQ (prior tails) and uniform grid archives whose
test accuracy is within one binomial standard error of the means' (the grid's step a multiple of each
tensor's RMS or of the whole model's, whichever is cheaper).  Writes one CSV row per fit to
OUT/std-factors.csv.  docs/results/bnn/fit-bnn-stds.csv holds variants 0-5 as run by this script's
first version (no bits columns; |mean|/std < 1 instead of > 1); docs/results/bnn/fit-bnn-kl-weight.csv
holds variants 0,6,7,8 (the KL weight) of this version, the first row reproducing the earlier base.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np
import torch
from uniform_grid import UniformGridQuantizer  # benchmarks/, beside this script

import bayescompress.fit.bnn as fit_module
from bayescompress.fit.bnn import fit_bnn
from bayescompress.networks.metrics import network_metrics
from bayescompress.networks.mlp import network_from_arrays
from bayescompress.networks.tabular import load_table, split_rows
from bayescompress.packing import pack
from bayescompress.vbq import VBQQuantizer

BASE = {"hidden": (128,), "steps": 2000, "prior_std": 0.3, "init": 1e-3, "kl_weight": 1.0}
VARIANTS = ({}, {"steps": 6000}, {"init": 0.05}, {"prior_std": 1.0}, {"prior_std": 0.1}, {"hidden": (32,)},
            {"kl_weight": 0.1}, {"kl_weight": 0.01}, {"kl_weight": 0.001})
LAMBDAS = tuple(float(f"{x:.3g}") for x in np.geomspace(1e-4, 30.0, 20))
GRID_STEPS = tuple(float(f"{x:.3g}") for x in np.geomspace(0.05, 10.0, 20))


def cheapest_within_one_se(posterior, table, rows, quantizers, archive: Path, float_accuracy: float):
    """Bits/weight (without side data) and accuracy of the cheapest archive within one SE of float."""
    floor = float_accuracy - math.sqrt(float_accuracy * (1 - float_accuracy) / len(rows))
    best = None
    for quantizer in quantizers:
        result = pack(posterior, archive, method=quantizer, overwrite=True, show_progress=False)
        network = network_from_arrays(posterior.model_spec, result.values)
        accuracy = network_metrics(network, table, rows, posterior.model_spec)["accuracy"]
        if accuracy >= floor and (best is None or result.bits_per_dim_without_side < best[0]):
            best = (result.bits_per_dim_without_side, accuracy)
    return best or (float("nan"), float("nan"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/std-factors")
    parser.add_argument("--variants", default=",".join(map(str, range(len(VARIANTS)))),
                        help="indices into VARIANTS, comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = load_table("digits")
    rows = split_rows(table.n_rows, 0.2, 0).test
    records = []
    for index in (int(i) for i in args.variants.split(",")):
        settings = BASE | VARIANTS[index]
        fit_module.INIT_SCALE = settings["init"]  # the guide's initial scale, a module constant
        started = time.time()
        result = fit_bnn("digits", out / f"fit-{index}.h5", hidden=settings["hidden"],
                         steps=settings["steps"], prior_std=settings["prior_std"],
                         kl_weight=settings["kl_weight"], overwrite=True, show_progress=False)
        seconds = time.time() - started
        posterior = result.posterior
        means = np.concatenate([t.mean.ravel() for t in posterior.tensors.values()])
        stds = np.concatenate([t.std.ravel() for t in posterior.tensors.values()])
        accuracy = result.test_metrics["accuracy"]
        vbq = cheapest_within_one_se(posterior, table, rows, [VBQQuantizer(lam) for lam in LAMBDAS],
                                     out / "archive.bcz", accuracy)
        model_rms = float(np.sqrt(np.mean(np.square(means.astype(np.float64)))))
        grid = cheapest_within_one_se(posterior, table, rows,
                                      [UniformGridQuantizer(step, offset, reference) for step in GRID_STEPS
                                       for offset in (0.0, 0.5) for reference in (None, model_rms)],
                                      out / "archive.bcz", accuracy)
        record = {"hidden": str(settings["hidden"]), "steps": settings["steps"],
                  "prior_std": settings["prior_std"], "init": settings["init"],
                  "kl_weight": settings["kl_weight"], "weights": posterior.n_latents,
                  "median_std": float(np.median(stds)),
                  "std_over_prior": float(np.median(stds) / settings["prior_std"]),
                  "frac_snr_above_1": float(np.mean(np.abs(means) / stds > 1)),
                  "test_acc": accuracy, "test_nll": result.test_metrics["nll"],
                  "vbq_bits_at_acc": vbq[0], "vbq_acc": vbq[1], "grid_bits_at_acc": grid[0],
                  "grid_acc": grid[1], "vbq_over_grid": vbq[0] / grid[0], "fit_seconds": seconds}
        print(record, flush=True)
        records.append(record)
        with open(out / "std-factors.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
