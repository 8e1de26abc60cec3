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
    """Every weight at the prior median (lambda 1e9: an empty stream), so the file is its fixed
    costs: preamble + header (+ the segment index and tables) and the side data (model spec,
    metadata).  Two specs: unit normalization, and normalization and metadata as a fit stores them."""
    from bayescompress.archive import FORMAT_VERSION

    rng = np.random.default_rng(0)
    print("format_version,weights,tensors,spec,total_bytes,header_bytes_incl_tables,table_bytes,side_bytes,"
          "stream_bytes,floor_bits_per_weight_without_side,floor_bits_per_weight_with_side")
    for sizes in ([16, 50, 10], [64, 150, 10], [784, 128, 10]):
        tensors = {}
        for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            for part, shape in (("weight", (fan_out, fan_in)), ("bias", (fan_out,))):
                tensors[f"layers.{index}.{part}"] = TensorPosterior(
                    rng.normal(size=shape).astype(np.float32), np.ones(shape, np.float32))
        fitted_mean, fitted_std = rng.uniform(0, 16, sizes[0]), rng.uniform(0.5, 6, sizes[0])
        specs = {
            "unit normalization": (dict(input_mean=[0.0] * sizes[0], input_std=[1.0] * sizes[0]), {}),
            "fitted normalization + fit metadata": (
                dict(input_mean=fitted_mean.tolist(), input_std=fitted_std.tolist(),
                     data={"path": "digits", "test_fraction": 0.2, "seed": 0}),
                {"fit": {"steps": 2000, "lr": 0.01, "seed": 0, "elbo": -1781.5213829874992},
                 "fitted_by": "bayescompress 0.1.0"}),
        }
        for label, (normalization, metadata) in specs.items():
            spec = mlp_spec(sizes, task="classification", classes=list(range(sizes[-1])), **normalization)
            posterior = Posterior(tensors, kind="network", model_spec=spec, metadata=metadata)
            result = pack(posterior, archive, lam=1e9, overwrite=True, show_progress=False)
            fixed = result.total_bytes - result.side_bytes
            print(f"{FORMAT_VERSION},{posterior.n_latents},{len(tensors)},{label},{result.total_bytes},"
                  f"{result.header_bytes},{result.table_bytes},{result.side_bytes},{result.stream_bytes},"
                  f"{8 * fixed / posterior.n_latents:.4f},{8 * result.total_bytes / posterior.n_latents:.4f}")


def header_fields(archive: str) -> None:
    """The archive header of the 1,360-weight network (unit normalization, lambda 1e9), field by
    field: bytes as JSON (how versions 1-3 store it, before their DEFLATE) and in version 4's
    binary form (before its optional DEFLATE)."""
    import json

    from bayescompress import binaryjson
    from bayescompress.archive import open_archive

    rng = np.random.default_rng(0)
    sizes = [16, 50, 10]
    tensors = {}
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        for part, shape in (("weight", (fan_out, fan_in)), ("bias", (fan_out,))):
            tensors[f"layers.{index}.{part}"] = TensorPosterior(
                rng.normal(size=shape).astype(np.float32), np.ones(shape, np.float32))
    spec = mlp_spec(sizes, task="classification", classes=list(range(10)), input_mean=[0.0] * 16,
                    input_std=[1.0] * 16)
    pack(Posterior(tensors, kind="network", model_spec=spec), archive, lam=1e9, overwrite=True,
         show_progress=False)
    opened = open_archive(archive)
    print("field,json_bytes,binary_bytes")
    for name, value in opened.header.items():
        text = json.dumps({name: value}, separators=(",", ":"), ensure_ascii=False)
        print(f"{name},{len(text) - 2},{len(binaryjson.encode({name: value})) - 2}")
    print(f"all (header as stored),,{opened.header_bytes}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posterior", help="a fitted digits posterior (bnn_std_factors.py writes fit-1.h5)")
    parser.add_argument("--archive", default="out/study.bcz")
    parser.add_argument("--fields", action="store_true",
                        help="then the last archive's header, field by field")
    args = parser.parse_args()
    if args.posterior:
        prior_study(args.posterior, args.archive)
    floor_study(args.archive)
    if args.fields:
        header_fields(args.archive)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
