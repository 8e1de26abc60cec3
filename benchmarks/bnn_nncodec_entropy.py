"""Where nncodec's bits go, against VBQ's: for the accuracy and agreement picks of a bench_bnn.py
run, each codec's file against the memoryless (per-tensor empirical) entropy of what it codes and
against what an ideal adaptive context coder would need for the same symbols.

    .venv/bin/python benchmarks/bnn_nncodec_entropy.py out/bnn-mnist5k --fold 0 > coding-gains.csv

Rows: nncodec at the picked QP with its dependent (trellis) quantization and with scalar
quantization (`--no-dq`; the pick's setting says which of the two it was), and the VBQ picks
(our range coder, one static table per tensor).
Columns, in bits per weight: the file; `memoryless` (no coder with one static table per tensor
gets below it); `adaptive` (an adaptive Krichevsky-Trofimov code per tensor, no context: a
learned table for free); `adaptive_left` and `adaptive_left_up` (the same code conditioned on the
symbol left of it in the row, and also on the one above it in the column: the kind of context
DeepCABAC uses).  A gap between `memoryless` and `adaptive_left*` is what context modelling can
buy for those symbols; `mse_over_rms2` is the distortion of the decoded weights (mean squared
error over the tensors' mean square).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_bnn import run_nncodec_at  # benchmarks/, beside this script
from scipy.special import gammaln

from bayescompress.coding import empirical_entropy_bits
from bayescompress.posterior import Posterior
from bayescompress.vbq import VBQQuantizer

LN2 = np.log(2.0)


def symbol_indices(array: np.ndarray) -> np.ndarray:
    """Each value's index among the tensor's distinct values, in the tensor's shape."""
    _, inverse = np.unique(np.asarray(array).ravel(), return_inverse=True)
    return inverse.reshape(np.shape(array))


def adaptive_bits(indices: np.ndarray, contexts: np.ndarray | None = None) -> float:
    """Code length (bits) of the symbols under a Krichevsky-Trofimov adaptive code per context.

    The KT code's length depends only on each context's final counts:
    log2 Gamma(n + K/2) / Gamma(K/2) - sum_s log2 Gamma(c_s + 1/2) / Gamma(1/2)."""
    symbols = indices.ravel().astype(np.int64)
    alphabet = int(symbols.max()) + 1
    contexts = np.zeros_like(symbols) if contexts is None else contexts.ravel().astype(np.int64)
    _, context_index = np.unique(contexts, return_inverse=True)
    pair_counts = np.bincount(context_index * alphabet + symbols)
    pair_counts = pair_counts[pair_counts > 0]
    context_counts = np.bincount(context_index)
    nats = (gammaln(context_counts + alphabet / 2).sum() - context_counts.size * gammaln(alphabet / 2)
            - (gammaln(pair_counts + 0.5) - gammaln(0.5)).sum())
    return float(nats / LN2)


def neighbour_contexts(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contexts of each symbol: the symbol left of it in its row, and (left, above) together;
    -1 marks "none" (first column, first row, or a 1-D tensor's first entry)."""
    grid = indices.reshape(indices.shape[0], -1) if indices.ndim > 1 else indices.reshape(1, -1)
    left = np.full_like(grid, -1)
    left[:, 1:] = grid[:, :-1]
    up = np.full_like(grid, -1)
    up[1:, :] = grid[:-1, :]
    width = int(grid.max()) + 2
    return left + 1, (left + 1) * width + (up + 1)


def gains(values: dict, means: dict) -> dict:
    """Every column but the file's size, summed over tensors, in bits (mse as a ratio)."""
    totals = {"memoryless": 0.0, "adaptive": 0.0, "adaptive_left": 0.0, "adaptive_left_up": 0.0}
    squared, power = 0.0, 0.0
    for name, array in values.items():
        indices = symbol_indices(array)
        left, left_up = neighbour_contexts(indices)
        totals["memoryless"] += empirical_entropy_bits(indices.ravel())
        totals["adaptive"] += adaptive_bits(indices)
        totals["adaptive_left"] += adaptive_bits(indices, left)
        totals["adaptive_left_up"] += adaptive_bits(indices, left_up)
        squared += float(((np.asarray(array, np.float64) - means[name]) ** 2).sum())
        power += float((np.asarray(means[name], np.float64) ** 2).sum())
    return totals | {"mse_over_rms2": squared / power}


def nncodec(means: dict, qp: int, bias_qp: int, use_dq: bool) -> tuple[int, dict]:
    """One NNC bitstream of the means: its size in bytes and the values it decodes to."""
    with tempfile.TemporaryDirectory() as work:
        return run_nncodec_at(means, Path(work), qp, bias_qp, use_dq)


def vbq_symbols(posterior: Posterior, setting: str, prior: str) -> dict:
    """The VBQ symbols of each tensor at the pick's lambda, in the tensor's shape."""
    quantizer = VBQQuantizer(float(setting.split("=")[1]), prior=prior)
    return {name: quantizer.quantize(t.mean.ravel().astype(np.float64), t.std.ravel().astype(np.float64)
                                     ).symbols.reshape(t.mean.shape)
            for name, t in posterior.tensors.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a bench_bnn.py --out folder (posteriors/ and picks.csv)")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--vbq", default="vbq-rms", help="the VBQ method whose picks are analysed")
    args = parser.parse_args()
    with open(args.run / "picks.csv", newline="") as handle:
        picks = [p for p in csv.DictReader(handle) if p["reached"] == "True" and int(p["fold"]) == args.fold
                 and p["criterion"] in ("accuracy", "agreement") and p["method"] in ("nncodec", args.vbq)]
    columns = ["memoryless", "adaptive", "adaptive_left", "adaptive_left_up"]
    writer = csv.writer(sys.stdout)
    writer.writerow(["data", "fold", "source", "criterion", "codec", "setting", "weights",
                     "file_bits_per_weight", *(f"{c}_bits_per_weight" for c in columns), "mse_over_rms2"])
    for pick in picks:
        posterior = Posterior.load(args.run / "posteriors" / f"{pick['source']}-fold{args.fold}.h5")
        means = {name: tensor.mean for name, tensor in posterior.tensors.items()}
        n = posterior.n_latents
        if pick["method"] == "nncodec":
            qp, bias_qp = (int(part.split("=")[1]) for part in pick["setting"].split()[:2])
            rows = [(codec, *nncodec(means, qp, bias_qp, use_dq)) for codec, use_dq in
                    (("nncodec", True), ("nncodec-no-dq", False))]
            rows = [(codec, 8.0 * size / n, gains(values, means)) for codec, size, values in rows]
        else:
            symbols = vbq_symbols(posterior, pick["setting"], args.vbq.removeprefix("vbq-"))
            measured = gains(symbols, means)
            measured["mse_over_rms2"] = float("nan")  # symbols, not values: see the sweep's scores
            rows = [(args.vbq, float(pick["bits_per_weight"]), measured)]
        for codec, file_bits, measured in rows:
            writer.writerow([pick["data"], args.fold, pick["source"], pick["criterion"], codec,
                             pick["setting"], n, f"{file_bits:.4f}",
                             *(f"{measured[c] / n:.4f}" for c in columns),
                             f"{measured['mse_over_rms2']:.5g}"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
