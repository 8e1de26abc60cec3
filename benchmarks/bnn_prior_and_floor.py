"""Two small network studies: VBQ with the Gaussian (rms) prior against prior=auto (t2 where it is
cheaper) on a fitted digits posterior, and the fixed cost of an archive (header, tables) at 1e3,
1e4 and 1e5 weights, measured with every weight at the prior median (an empty stream).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bnn_prior_and_floor.py --posterior out/std-factors/fit-1.h5

docs/results/bnn/clipping-digits-128.csv and small-model-floor.csv hold a run.
"""

from __future__ import annotations

import argparse

import numpy as np

from bayescompress.networks.metrics import network_metrics
from bayescompress.networks.mlp import network_from_arrays
from bayescompress.networks.model_spec import mlp_spec
from bayescompress.networks.tabular import load_table, split_rows
from bayescompress.packing import pack
from bayescompress.posterior import Posterior, TensorPosterior
from bayescompress.vbq import GaussianPrior


def prior_study(path: str, archive: str) -> None:
    posterior = Posterior.load(path)
    spec, record = posterior.model_spec, posterior.model_spec["data"]
    table = load_table(record["path"])
    rows = split_rows(table.n_rows, record["test_fraction"], record["seed"]).test
    means = {n: t.mean for n, t in posterior.tensors.items()}
    reference = network_metrics(network_from_arrays(spec, means), table, rows, spec)
    print(f"# {posterior.n_latents} weights; float means: {reference}")
    for name, tensor in posterior.tensors.items():
        rms = GaussianPrior.empirical(tensor.mean).scale
        print(f"# {name}: max |mean| = {np.abs(tensor.mean).max() / rms:.1f} x RMS, "
              f"{int(np.sum(np.abs(tensor.mean) > 8.2 * rms))} beyond the Gaussian's last code point")
    print("prior,lambda,bits_per_weight_without_side,accuracy,nll")
    for prior in ("rms", "auto"):
        for lam in (0.0, 0.01, 0.1, 0.4, 1.0):
            result = pack(posterior, archive, lam=lam, prior=prior, overwrite=True, show_progress=False)
            metrics = network_metrics(network_from_arrays(spec, result.values), table, rows, spec)
            print(f"{prior},{lam},{result.bits_per_dim_without_side:.4f},{metrics['accuracy']:.4f},"
                  f"{metrics['nll']:.4f}")


def floor_study(archive: str) -> None:
    rng = np.random.default_rng(0)
    print("weights,total_bytes,header_bytes_incl_tables,table_bytes,side_bytes,stream_bytes,"
          "floor_bits_per_weight_without_side")
    for sizes in ([16, 50, 10], [64, 150, 10], [784, 128, 10]):
        spec = mlp_spec(sizes, task="classification", classes=list(range(sizes[-1])),
                        input_mean=[0.0] * sizes[0], input_std=[1.0] * sizes[0])
        tensors = {}
        for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            for part, shape in (("weight", (fan_out, fan_in)), ("bias", (fan_out,))):
                tensors[f"layers.{index}.{part}"] = TensorPosterior(
                    rng.normal(size=shape).astype(np.float32), np.ones(shape, np.float32))
        posterior = Posterior(tensors, kind="network", model_spec=spec)
        result = pack(posterior, archive, lam=1e9, overwrite=True, show_progress=False)
        print(f"{posterior.n_latents},{result.total_bytes},{result.header_bytes},{result.table_bytes},"
              f"{result.side_bytes},{result.stream_bytes},{result.bits_per_dim_without_side:.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posterior", help="a fitted digits posterior (bnn_std_factors.py writes fit-1.h5)")
    parser.add_argument("--archive", default="out/study.bcz")
    args = parser.parse_args()
    if args.posterior:
        prior_study(args.posterior, args.archive)
    floor_study(args.archive)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
