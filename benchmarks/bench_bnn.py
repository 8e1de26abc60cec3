"""Test accuracy against bits per weight on the digits Bayesian MLP: VBQ (and vbq-refined), uniform
grids with the same range coder (bayescompress's ``uniform``, one spacing for all tensors, and a
benchmark-local grid scaled per tensor), and the peer codec nncodec (MPEG NNC) on the posterior
means, all in one run.

    .venv/bin/python benchmarks/bench_bnn.py --out out/bench-bnn [--posterior digits.h5]

Bits per weight = 8 x real file bytes / number of weights (85,002 for 64-256-256-10).  Our archives
carry the model spec as side data, which an NNC bitstream does not; both figures are reported and
the comparison uses bytes without side data.  nncodec runs in its own venv (benchmarks/
setup_nncodec.sh); when that is missing the run says so and compares VBQ with the grid only.
Not a test: it fits a network for minutes.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from machine import describe_machine  # benchmarks/machine.py, beside this script

from bayescompress.evaluate.bnn import evaluate_bnn
from bayescompress.fit.bnn import fit_bnn
from bayescompress.networks.metrics import network_metrics
from bayescompress.networks.mlp import network_from_arrays
from bayescompress.networks.tabular import load_table, split_rows
from bayescompress.packing import pack, unpack
from bayescompress.posterior import Posterior
from bayescompress.quantizers import QuantizedTensor, exact_float, make_quantizer, parse_exact_float
from bayescompress.vbq import GaussianPrior, VBQQuantizer

HERE = Path(__file__).resolve().parent
NNCODEC_PYTHON = HERE / ".venv-nncodec" / "bin" / "python"
LAMBDAS = tuple(float(f"{x:.3g}") for x in np.geomspace(0.001, 100.0, 26))
# grid spacing in units of each tensor's RMS, on a geometric grid; steps of several RMS prune
# almost every weight to 0, which this network tolerates, so the grid goes that far
GRID_STEPS = tuple(float(x) for x in np.geomspace(0.03, 16.0, 22))
GRID_OFFSETS = (0.0, 0.5)  # mid-tread (0 is a grid point) and mid-rise, in units of the step
# bayescompress's own uniform method: one absolute spacing for every tensor
SPACINGS = tuple(float(f"{x:.3g}") for x in np.geomspace(0.005, 4.0, 22))
NNC_QPS = tuple(range(-40, 1, 2))
ACCURACY_DROPS = (0.0, 0.005, 0.01, 0.02, 0.05)
RATE_BUDGETS = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass
class Point:
    method: str
    setting: str
    file_bytes: int
    side_bytes: int
    n_weights: int
    accuracy: float
    nll: float
    stream_bytes: int = 0  # our archives: the range-coded symbols alone, without header and tables

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * self.file_bytes / self.n_weights

    @property
    def bits_per_weight_without_side(self) -> float:
        return 8.0 * (self.file_bytes - self.side_bytes) / self.n_weights


class UniformGridQuantizer:
    """Benchmark-local baseline: round each mean to a uniform grid, step = ``relative_step`` x the
    tensor's RMS, grid shifted by ``offset`` steps; the stds are ignored.  Symbols are signed grid
    indices, coded by the same frequency tables and range coder as VBQ."""

    name = "uniform-grid-benchmark"

    def __init__(self, relative_step: float, offset: float):
        self.relative_step, self.offset = relative_step, offset

    def config(self) -> dict:
        return {"relative_step": exact_float(self.relative_step), "offset": exact_float(self.offset)}

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        values = np.asarray(means, dtype=np.float64).ravel()
        step = self.relative_step * GaussianPrior.empirical(values).scale
        shift = self.offset * step
        symbols = np.round((values - shift) / step).astype(np.int64)
        if progress is not None:
            progress.update(values.size)
        return QuantizedTensor(symbols, {"step": exact_float(step), "shift": exact_float(shift)})

    @staticmethod
    def dequantize(symbols: np.ndarray, params: dict, config: dict) -> np.ndarray:
        step, shift = parse_exact_float(params["step"]), parse_exact_float(params["shift"])
        return shift + step * np.asarray(symbols, dtype=np.float64)


def measure(posterior: Posterior, quantizer, archive: Path, method: str, setting: str, table, rows) -> Point:
    result = pack(posterior, archive, method=quantizer, overwrite=True, show_progress=False)
    assert result.total_bytes == archive.stat().st_size
    network = network_from_arrays(posterior.model_spec, result.values, str(archive))
    metrics = network_metrics(network, table, rows, posterior.model_spec)
    return Point(method, setting, result.total_bytes, result.side_bytes, posterior.n_latents,
                 metrics["accuracy"], metrics["nll"], result.stream_bytes)


def run_nncodec(means: dict, out: Path, table, rows, spec, n_weights: int) -> list[Point] | None:
    if not NNCODEC_PYTHON.exists():
        print(f"nncodec: ABSENT ({NNCODEC_PYTHON} not found; run benchmarks/setup_nncodec.sh). "
              "The comparison below has no NNC points.")
        return None
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "means.npz", **{name: values.astype(np.float32) for name, values in means.items()})
    check = subprocess.run([str(NNCODEC_PYTHON), str(HERE / "nncodec_peer.py"), "--check"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        print(f"nncodec: BROKEN ({check.stderr.strip().splitlines()[-1] if check.stderr else 'no output'})")
        return None
    print(f"nncodec: {check.stdout.strip()}")
    points = []
    for nonweight in ("default", "same"):
        command = [str(NNCODEC_PYTHON), str(HERE / "nncodec_peer.py"), str(out / "means.npz"), str(out),
                   "--nonweight-qp", nonweight, "--qp", *map(str, NNC_QPS)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        if result.returncode != 0:
            print(f"nncodec failed: {result.stderr.strip()[-500:]}")
            return None
        for line in result.stdout.splitlines():
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            with np.load(record["decoded"], allow_pickle=False) as decoded:
                values = {name: decoded[name] for name in means}
            network = network_from_arrays(spec, values, record["bitstream"])
            metrics = network_metrics(network, table, rows, spec)
            points.append(Point("nncodec", f"qp={record['qp']} nonweight_qp={record['nonweight_qp']}",
                                record["bytes"], 0, n_weights, metrics["accuracy"], metrics["nll"]))
    return points


def pareto(points: list[Point]) -> list[Point]:
    """Points not beaten by another of the same method at fewer bits (without side data)."""
    front, best = [], -1.0
    for point in sorted(points, key=lambda p: (p.bits_per_weight_without_side, -p.accuracy)):
        if point.accuracy > best:
            front.append(point)
            best = point.accuracy
    return front


def cheapest_at(points: list[Point], accuracy: float) -> Point | None:
    eligible = [p for p in points if p.accuracy >= accuracy - 1e-12]
    return min(eligible, key=lambda p: p.bits_per_weight_without_side) if eligible else None


def summary(points: list[Point], float_point: Point, methods: list[str]) -> str:
    """Cheapest rate per accuracy level, and best accuracy and best NLL per rate budget."""
    by_method = {m: [p for p in points if p.method == m] for m in methods}
    lines = [f"| accuracy >= | {' | '.join(f'{m} bits/weight' for m in methods)} |",
             f"|---|{'---|' * len(methods)}"]
    for drop in ACCURACY_DROPS:
        level = float_point.accuracy - drop
        cells = []
        for method in methods:
            point = cheapest_at(by_method[method], level)
            cells.append(f"{point.bits_per_weight_without_side:.3f} ({point.setting})"
                         if point else "not reached")
        lines.append(f"| {level:.4f} (float - {100 * drop:.1f} pt) | {' | '.join(cells)} |")
    lines += ["", f"| bits/weight <= | {' | '.join(f'{m} best accuracy' for m in methods)} | "
              f"{' | '.join(f'{m} best NLL' for m in methods)} |",
              f"|---|{'---|' * (2 * len(methods))}"]
    for bits in RATE_BUDGETS:
        accuracy_cells, nll_cells = [], []
        for method in methods:
            eligible = [p for p in by_method[method] if p.bits_per_weight_without_side <= bits]
            accuracy_cells.append(f"{max(p.accuracy for p in eligible):.4f}" if eligible else "none")
            nll_cells.append(f"{min(p.nll for p in eligible):.4f}" if eligible else "none")
        lines.append(f"| {bits:g} | {' | '.join(accuracy_cells)} | {' | '.join(nll_cells)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/bench-bnn", help="folder for the posterior, archives, results")
    parser.add_argument("--posterior", help="reuse this digits posterior instead of fitting one")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--hidden", default="256,256")
    parser.add_argument("--prior-std", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-nncodec", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    (out / "archives").mkdir(parents=True, exist_ok=True)
    versions = (f"torch {torch.__version__}", f"numpy {np.__version__}")
    print(f"machine: {describe_machine(*versions)}")

    if args.posterior:
        posterior_path = Path(args.posterior)
    else:
        posterior_path = out / "digits.h5"
        started = time.perf_counter()
        hidden = tuple(int(w) for w in args.hidden.split(","))
        fit = fit_bnn("digits", posterior_path, hidden=hidden, steps=args.steps, prior_std=args.prior_std,
                      seed=args.seed, overwrite=True)
        print(f"fit: {posterior_path}, {fit.posterior.n_latents} weights, {args.steps} steps in "
              f"{time.perf_counter() - started:.0f} s; ELBO {fit.final_elbo_per_row:.4f}/row")
    posterior = Posterior.load(posterior_path)
    spec = posterior.model_spec
    record = spec["data"]
    table = load_table(record["path"])
    rows = split_rows(table.n_rows, record["test_fraction"], record["seed"]).test
    n_weights = posterior.n_latents
    means = {name: tensor.mean for name, tensor in posterior.tensors.items()}
    float_metrics = network_metrics(network_from_arrays(spec, means), table, rows, spec)
    float_point = Point("float32", "posterior means", 4 * n_weights, 0, n_weights,
                        float_metrics["accuracy"], float_metrics["nll"])
    predictive = evaluate_bnn(posterior_path, samples=50)
    print(f"posterior means (float32, 32 bits/weight): accuracy {float_point.accuracy:.4f}, "
          f"NLL {float_point.nll:.4f}; posterior predictive (50 samples): accuracy "
          f"{predictive['accuracy']:.4f}, NLL {predictive['nll']:.4f}; {len(rows)} test rows")

    points = [float_point]
    started = time.perf_counter()
    for lam in LAMBDAS:
        archive = out / "archives" / f"vbq-{lam:g}.bcz"
        points.append(measure(posterior, VBQQuantizer(lam), archive, "vbq", f"lambda={lam:g}", table, rows))
    vbq_seconds = time.perf_counter() - started
    # the archive path end to end once: unpack + evaluate gives the same figures as pack's values
    check = evaluate_bnn(out / "archives" / "vbq-1.bcz")
    vbq_one = next(p for p in points if p.setting == "lambda=1")  # 1.0 is on the geometric grid
    assert check["accuracy"] == vbq_one.accuracy and math.isclose(check["nll"], vbq_one.nll, rel_tol=1e-9)
    assert unpack(out / "archives" / "vbq-1.bcz").kind == "network"

    for lam in LAMBDAS:
        archive = out / "archives" / f"vbq-refined-{lam:g}.bcz"
        points.append(measure(posterior, make_quantizer("vbq-refined", lam=lam), archive, "vbq-refined",
                              f"lambda={lam:g}", table, rows))
    for spacing in SPACINGS:
        for offset in ("zero", "half"):
            archive = out / "archives" / f"uniform-{spacing:g}-{offset}.bcz"
            quantizer = make_quantizer("uniform", spacing=spacing, offset=offset)
            setting = f"spacing={spacing:g} offset={offset}"
            points.append(measure(posterior, quantizer, archive, "uniform", setting, table, rows))

    started = time.perf_counter()
    for step in GRID_STEPS:
        for offset in GRID_OFFSETS:
            archive = out / "archives" / f"grid-{step:.4f}-{offset:g}.bcz"
            setting = f"step={step:.3f}xRMS offset={offset:g}"
            points.append(measure(posterior, UniformGridQuantizer(step, offset), archive,
                                  "uniform-per-tensor", setting, table, rows))
    grid_seconds = time.perf_counter() - started

    methods = ["vbq", "vbq-refined", "uniform", "uniform-per-tensor"]
    if not args.skip_nncodec:
        started = time.perf_counter()
        nnc_points = run_nncodec(means, out / "nncodec", table, rows, spec, n_weights)
        if nnc_points is not None:
            points += nnc_points
            methods.append("nncodec")
            print(f"nncodec: {len(nnc_points)} bitstreams in {time.perf_counter() - started:.0f} s")
    else:
        print("nncodec: skipped (--skip-nncodec)")
    print(f"times: VBQ {len(LAMBDAS)} archives in {vbq_seconds:.1f} s, per-tensor grid "
          f"{2 * len(GRID_STEPS)} archives in {grid_seconds:.1f} s")

    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "setting", "file_bytes", "side_bytes", "n_weights", "bits_per_weight",
                         "bits_per_weight_without_side", "stream_bytes", "accuracy", "nll"])
        for p in points:
            writer.writerow([p.method, p.setting, p.file_bytes, p.side_bytes, p.n_weights,
                             f"{p.bits_per_weight:.4f}", f"{p.bits_per_weight_without_side:.4f}",
                             p.stream_bytes, f"{p.accuracy:.4f}", f"{p.nll:.4f}"])
    fronts = {m: pareto([p for p in points if p.method == m]) for m in methods}
    text = ["## Pareto fronts (bits/weight without side data; with it in brackets)", ""]
    for method, front in fronts.items():
        text.append(f"### {method}")
        text += [f"- {p.bits_per_weight_without_side:.3f} ({p.bits_per_weight:.3f}) bits/weight, "
                 f"{p.file_bytes} B{f' (stream {p.stream_bytes} B)' if p.stream_bytes else ''}: "
                 f"accuracy {p.accuracy:.4f}, NLL {p.nll:.4f}  [{p.setting}]"
                 for p in front]
        text.append("")
    resolution = 1.0 / len(rows)
    error = math.sqrt(float_point.accuracy * (1 - float_point.accuracy) / len(rows))
    text += ["## Where each wins", "",
             f"{len(rows)} test rows: one row is {100 * resolution:.2f} accuracy points; the binomial "
             f"standard error at the float accuracy is {100 * error:.2f} points.", "",
             summary(points, float_point, methods)]
    report = "\n".join(text)
    (out / "summary.md").write_text(report + "\n")
    (out / "points.json").write_text(json.dumps([asdict(p) for p in points], indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
