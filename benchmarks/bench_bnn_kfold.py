"""Networks judged on steady criteria: k-fold (every row a test row once), settings chosen on a
validation split, VBQ per prior and posterior source against uniform grids with the same range coder.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_bnn_kfold.py --data digits --out out/kfold-digits

Per fold: an ordinary MLP is trained (Adam) and imported as a diagonal Laplace posterior, and the
same MLP is trained with IVON and its posterior imported; the float network is the posterior's means.
Each method is swept over its rate knob; every archive's network is scored on the validation and
the test rows.  For three criteria (validation accuracy within one standard error of the float
network's, 99% agreement with the float network's predictions, validation NLL at most the float
network's), the cheapest archive that meets the criterion on validation is picked, and its bits
per weight (8 x (file bytes - model spec bytes) / weights) and test figures are reported as mean
and standard error over folds.  Writes every archive's row to sweep.csv and the picks to picks.csv.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from machine import describe_machine  # benchmarks/machine.py, beside this script
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bnn import UniformGridQuantizer  # noqa: E402

from bayescompress.networks.importers import ivon_posterior  # noqa: E402
from bayescompress.networks.laplace import laplace_posterior  # noqa: E402
from bayescompress.networks.mlp import network_from_arrays  # noqa: E402
from bayescompress.networks.tabular import kfold_splits, load_table  # noqa: E402
from bayescompress.packing import pack  # noqa: E402
from bayescompress.vbq import VBQQuantizer  # noqa: E402

LAMBDAS = tuple(float(f"{x:.3g}") for x in np.geomspace(1e-5, 100.0, 22))
GRID_STEPS = tuple(float(f"{x:.3g}") for x in np.geomspace(0.03, 16.0, 18))
CRITERIA = ("accuracy", "agreement", "nll")
BASELINES = ("uniform-per-tensor",)


def methods():
    for lam in LAMBDAS:
        yield "vbq-auto", f"lambda={lam:g}", VBQQuantizer(lam, prior="auto")
        yield "vbq-gaussian", f"lambda={lam:g}", VBQQuantizer(lam, prior="rms")
    for step in GRID_STEPS:
        for offset in (0.0, 0.5):
            quantizer = UniformGridQuantizer(step, offset)
            yield "uniform-per-tensor", f"step={step:g}xRMS offset={offset:g}", quantizer


def train_mlp(features, labels, hidden, steps, seed, optimizer_name):
    torch.manual_seed(seed)
    sizes = [features.shape[1], *hidden, int(labels.max()) + 1]
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(nn.ReLU())
    network = nn.Sequential(*layers)
    if optimizer_name == "ivon":
        import ivon

        optimizer = ivon.IVON(network.parameters(), lr=0.1, ess=len(labels), weight_decay=1e-4)
    else:
        optimizer = torch.optim.Adam(network.parameters(), lr=3e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = torch.randint(len(labels), (128,), generator=generator)
        if optimizer_name == "ivon":
            with optimizer.sampled_params(train=True):
                optimizer.zero_grad()
                nn.functional.cross_entropy(network(features[rows]), labels[rows]).backward()
        else:
            optimizer.zero_grad()
            nn.functional.cross_entropy(network(features[rows]), labels[rows]).backward()
        optimizer.step()
    return network, optimizer


def scores(logits: torch.Tensor, labels: torch.Tensor, reference: torch.Tensor) -> dict:
    logits = logits.double()
    predictions = logits.argmax(1)
    return {"accuracy": float((predictions == labels).double().mean()),
            "agreement": float((predictions == reference).double().mean()),
            "nll": float(nn.functional.cross_entropy(logits, labels))}


def temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature minimizing NLL on these rows (golden-section search on log T)."""
    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2

    def nll(log_t):
        return float(nn.functional.cross_entropy(logits.double() / math.exp(log_t), labels))

    for _ in range(60):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(a) < nll(b):
            high = b
        else:
            low = a
    return math.exp((low + high) / 2)


def fold_rows(args, table, fold_index, fold, out: Path):
    started = time.perf_counter()
    mean = table.features[fold.train].mean(0)
    std = table.features[fold.train].std(0)
    std[std == 0] = 1.0
    features = torch.tensor((table.features - mean) / std, dtype=torch.float32)
    raw = torch.tensor(table.features, dtype=torch.float32)
    labels = torch.tensor(table.targets.astype(np.int64))
    train = torch.as_tensor(fold.train)
    spec_options = {"input_mean": mean.tolist(), "input_std": std.tolist(),
                    "data": {"path": args.data, "fold": fold_index, "folds": args.folds, "seed": args.seed}}
    rows = []
    for source in args.sources:
        optimizer_name = "ivon" if source == "ivon" else "adam"
        network, optimizer = train_mlp(features[train], labels[train], args.hidden, args.steps,
                                       args.seed + fold_index, optimizer_name)
        if source == "ivon":
            posterior = ivon_posterior(network, optimizer, **spec_options)
        else:
            posterior = laplace_posterior(network, features[train].numpy(), **spec_options)
        means = {name: tensor.mean for name, tensor in posterior.tensors.items()}
        float_network = network_from_arrays(posterior.model_spec, means)
        with torch.no_grad():
            float_logits = float_network(raw)
        reference = float_logits.argmax(1)
        split = {"validation": torch.as_tensor(fold.validation), "test": torch.as_tensor(fold.test)}
        t = temperature(float_logits[split["validation"]], labels[split["validation"]])
        stds = np.concatenate([tensor.std.ravel() for tensor in posterior.tensors.values()])
        all_means = np.concatenate([m.ravel() for m in means.values()])
        base = {"data": args.data, "fold": fold_index, "source": source, "n_weights": posterior.n_latents,
                "median_std": float(np.median(stds)),
                "snr_below_1": float(np.mean(np.abs(all_means) / stds < 1))}
        record = dict(base, method="float32", setting="means", bits_per_weight=32.0, side_bytes=0)
        for part, index in split.items():
            for key, value in scores(float_logits[index], labels[index], reference[index]).items():
                record[f"{part}_{key}"] = value
            record[f"{part}_nll_temperature_scaled"] = float(
                nn.functional.cross_entropy(float_logits[index].double() / t, labels[index]))
        rows.append(record)
        for method, setting, quantizer in methods():
            archive = out / "archive.bcz"
            result = pack(posterior, archive, method=quantizer, overwrite=True, show_progress=False)
            coded = network_from_arrays(posterior.model_spec, result.values)
            with torch.no_grad():
                logits = coded(raw)
            record = dict(base, method=method, setting=setting,
                          bits_per_weight=result.bits_per_dim_without_side, side_bytes=result.side_bytes)
            for part, index in split.items():
                for key, value in scores(logits[index], labels[index], reference[index]).items():
                    record[f"{part}_{key}"] = value
            rows.append(record)
    print(f"fold {fold_index}: {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def meets(row: dict, reference: dict, criterion: str, n_validation: int) -> bool:
    if criterion == "accuracy":
        accuracy = reference["validation_accuracy"]
        return row["validation_accuracy"] >= accuracy - math.sqrt(accuracy * (1 - accuracy) / n_validation)
    if criterion == "agreement":
        return row["validation_agreement"] >= 0.99
    return row["validation_nll"] <= reference["validation_nll"]


def picks(rows: list[dict], n_validation: dict) -> list[dict]:
    chosen = []
    keys = sorted({(r["fold"], r["source"]) for r in rows})
    for fold, source in keys:
        group = [r for r in rows if r["fold"] == fold and r["source"] == source]
        reference = next(r for r in group if r["method"] == "float32")
        for method in sorted({r["method"] for r in group} - {"float32"}):
            candidates = [r for r in group if r["method"] == method]
            for criterion in CRITERIA:
                eligible = [r for r in candidates if meets(r, reference, criterion, n_validation[fold])]
                best = min(eligible, key=lambda r: r["bits_per_weight"]) if eligible else None
                chosen.append({"fold": fold, "source": source, "method": method, "criterion": criterion,
                               "reached": best is not None,
                               **({k: best[k] for k in ("setting", "bits_per_weight", "test_accuracy",
                                                        "test_agreement", "test_nll")} if best else {}),
                               "float_test_accuracy": reference["test_accuracy"],
                               "float_test_nll": reference["test_nll"],
                               "float_test_nll_temperature_scaled": reference["test_nll_temperature_scaled"]})
    return chosen


def mean_and_se(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    se = values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else 0.0
    return f"{values.mean():.4f} ± {se:.4f}"


def summarize(chosen: list[dict], rows: list[dict]) -> str:
    lines = ["| source | criterion | method | folds reached | bits/weight | test accuracy | test agreement "
             "| test NLL | ratio to best baseline |", "|---|---|---|---|---|---|---|---|---|"]
    for source in sorted({c["source"] for c in chosen}):
        floats = [r for r in rows if r["source"] == source and r["method"] == "float32"]
        accuracy = mean_and_se([r["test_accuracy"] for r in floats])
        lines.insert(0, f"{source}: float network test accuracy {accuracy}, "
                        f"NLL {mean_and_se([r['test_nll'] for r in floats])}, temperature-scaled NLL "
                        f"{mean_and_se([r['test_nll_temperature_scaled'] for r in floats])}, median std "
                        f"{np.median([r['median_std'] for r in floats]):.4g}, |mean|/std < 1 for "
                        f"{np.mean([r['snr_below_1'] for r in floats]):.1%} of weights")
        for criterion in CRITERIA:
            group = [c for c in chosen if c["source"] == source and c["criterion"] == criterion]
            folds = sorted({c["fold"] for c in group})
            mean_bits = {}
            for method in sorted({c["method"] for c in group}):
                picked = [c for c in group if c["method"] == method and c["reached"]]
                if len(picked) == len(folds):
                    mean_bits[method] = np.mean([c["bits_per_weight"] for c in picked])
            best_baseline = min((mean_bits[m] for m in BASELINES if m in mean_bits), default=None)
            for method in sorted({c["method"] for c in group}):
                picked = [c for c in group if c["method"] == method and c["reached"]]
                if not picked:
                    lines.append(f"| {source} | {criterion} | {method} | 0/{len(folds)} | | | | | |")
                    continue
                ratio = (f"{mean_bits[method] / best_baseline:.2f}x"
                         if best_baseline and method in mean_bits else "")
                lines.append(
                    f"| {source} | {criterion} | {method} | {len(picked)}/{len(folds)} "
                    f"| {mean_and_se([c['bits_per_weight'] for c in picked])} "
                    f"| {mean_and_se([c['test_accuracy'] for c in picked])} "
                    f"| {mean_and_se([c['test_agreement'] for c in picked])} "
                    f"| {mean_and_se([c['test_nll'] for c in picked])} | {ratio} |")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--out", default="out/bench-bnn-kfold")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--hidden", type=lambda text: tuple(int(w) for w in text.split(",")), default=(64,))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--sources", type=lambda text: text.split(","), default=["laplace", "ivon"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {describe_machine(f'torch {torch.__version__}', f'numpy {np.__version__}')}")
    table = load_table(args.data)
    folds = kfold_splits(table.n_rows, args.folds, args.seed, validation_fraction=0.2)
    rows = []
    for index, fold in enumerate(folds):
        rows += fold_rows(args, table, index, fold, out)
        write_csv(out / "sweep.csv", rows)
    chosen = picks(rows, {index: fold.validation.size for index, fold in enumerate(folds)})
    write_csv(out / "picks.csv", chosen)
    print(summarize(chosen, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
