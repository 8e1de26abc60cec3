"""What keeps `fit bnn`'s stds at the prior: one factor at a time on digits (64-128-10 unless varied).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bnn_std_factors.py --out out/std-factors

Prints one JSON line per fit: median std, its ratio to the prior std, the share of weights with
|mean|/std < 1, and the test accuracy of the means.  docs/results/bnn/fit-bnn-stds.csv holds a run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import bayescompress.fit.bnn as fit_module
from bayescompress.fit.bnn import fit_bnn

BASE = {"hidden": (128,), "steps": 2000, "prior_std": 0.3, "init": 1e-3}
VARIANTS = ({}, {"steps": 6000}, {"init": 0.05}, {"prior_std": 1.0}, {"prior_std": 0.1}, {"hidden": (32,)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/std-factors")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    for index, variant in enumerate(VARIANTS):
        settings = BASE | variant
        fit_module.INIT_SCALE = settings["init"]  # the guide's initial scale, a module constant
        started = time.time()
        result = fit_bnn("digits", out / f"fit-{index}.h5", hidden=settings["hidden"],
                         steps=settings["steps"], prior_std=settings["prior_std"], overwrite=True,
                         show_progress=False)
        means = np.concatenate([t.mean.ravel() for t in result.posterior.tensors.values()])
        stds = np.concatenate([t.std.ravel() for t in result.posterior.tensors.values()])
        print(json.dumps({key: str(value) for key, value in settings.items()} | {
            "median_std": float(np.median(stds)),
            "frac_snr_below_1": float(np.mean(np.abs(means) / stds < 1)),
            "std_over_prior": float(np.median(stds) / settings["prior_std"]),
            "test_acc": result.test_metrics.get("accuracy"), "seconds": time.time() - started}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
