"""Criteria and picks of the network benchmark (bench_bnn.py): per fold, source, method and criterion
the cheapest archive that meets the criterion on the validation rows, then mean and standard error
over folds and the ratio to the best baseline.  Run alone, it recomputes both from a sweep.csv:

    .venv/bin/python benchmarks/bnn_picks.py out/bnn-digits/sweep.csv
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np

CRITERIA = {
    "accuracy": "validation accuracy >= the float network's minus one binomial standard error",
    "agreement": "99% of validation predictions agree with the float network's",
    "nll": "validation NLL <= the float network's",
    "nll-vs-ts-float": "validation NLL <= the temperature-scaled float network's",
    "ts-nll": "temperature-scaled validation NLL <= the temperature-scaled float network's",
}
BASELINES = ("uniform-grid", "nncodec")
REPORTED = ("bits_per_weight", "test_accuracy", "test_agreement", "test_nll", "test_nll_ts")


def meets(row: dict, reference: dict, criterion: str, n_validation: int) -> bool:
    if criterion == "accuracy":
        accuracy = reference["validation_accuracy"]
        return row["validation_accuracy"] >= accuracy - math.sqrt(accuracy * (1 - accuracy) / n_validation)
    if criterion == "agreement":
        return row["validation_agreement"] >= 0.99
    if criterion == "nll":
        return row["validation_nll"] <= reference["validation_nll"]
    if criterion == "nll-vs-ts-float":
        return row["validation_nll"] <= reference["validation_nll_ts"]
    return row["validation_nll_ts"] <= reference["validation_nll_ts"]


def pick_cheapest(rows: list[dict], n_validation: dict) -> list[dict]:
    """One row per (fold, source, method, criterion): the cheapest archive meeting it, or reached=False."""
    chosen = []
    for fold, source in sorted({(r["fold"], r["source"]) for r in rows}):
        group = [r for r in rows if r["fold"] == fold and r["source"] == source]
        reference = next(r for r in group if r["method"] == "float32")
        for method in sorted({r["method"] for r in group} - {"float32"}):
            candidates = [r for r in group if r["method"] == method]
            for criterion in CRITERIA:
                eligible = [r for r in candidates if meets(r, reference, criterion, n_validation[fold])]
                best = min(eligible, key=lambda r: r["bits_per_weight"]) if eligible else None
                picked = {"data": reference["data"], "fold": fold, "source": source, "method": method,
                          "criterion": criterion, "reached": best is not None,
                          "setting": best["setting"] if best else ""}
                picked |= {key: best[key] if best else "" for key in REPORTED}
                ours = best and best.get("header_bytes") not in (None, "")
                # header + tables: the part of our file that does not scale with the weights' entropy
                picked["fixed_share"] = (best["header_bytes"] / (best["file_bytes"] - best["side_bytes"])
                                         if ours else "")
                picked["stream_bits_per_weight"] = (8.0 * best["stream_bytes"] / best["n_weights"]
                                                    if ours else "")
                picked |= {f"float_{key}": reference[key] for key in REPORTED[1:]}
                chosen.append(picked)
    return chosen


def split_by_setting(rows: list[dict]) -> list[dict]:
    """The rows with each baseline split by the setting that widens its choice: the grid's scope
    (a step per tensor or one for the model) and nncodec with or without dependent quantization."""
    def variant(row):
        setting = str(row["setting"])
        if row["method"] == "uniform-grid":
            return f"uniform-grid[{setting.split()[-1]}]"
        if row["method"] == "nncodec":
            return "nncodec[no-dq]" if setting.endswith("no-dq") else "nncodec[dq]"
        return row["method"]

    return [dict(row, method=variant(row)) for row in rows]


def mean_se(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    se = values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else float("nan")
    return float(values.mean()), float(se)


def summarize(picks: list[dict], rows: list[dict]) -> list[dict]:
    """Per source, criterion and method: folds reached, mean and SE over folds of the picks' figures,
    and the ratio of mean bits to the best baseline's (the baseline reaching every fold with the
    fewest mean bits), with the mean and SE of the per-fold ratios beside it."""
    summary = []
    for source in sorted({p["source"] for p in picks}):
        floats = [r for r in rows if r["source"] == source and r["method"] == "float32"]
        record = {"data": floats[0]["data"], "source": source, "criterion": "", "method": "float32",
                  "folds": len(floats), "reached": len(floats),
                  "median_std": float(np.median([r["median_std"] for r in floats])),
                  "snr_above_1": float(np.mean([r["snr_above_1"] for r in floats])),
                  "n_weights": floats[0]["n_weights"]}
        for key in REPORTED:
            record[f"{key}_mean"], record[f"{key}_se"] = mean_se([r[key] for r in floats])
        summary.append(record)
        for criterion in CRITERIA:
            group = [p for p in picks if p["source"] == source and p["criterion"] == criterion]
            folds = sorted({p["fold"] for p in group})
            by_method = {m: [p for p in group if p["method"] == m]
                         for m in sorted({p["method"] for p in group})}
            complete = {m: ps for m, ps in by_method.items() if all(p["reached"] for p in ps)}
            baselines = [m for m in BASELINES if m in complete]
            best = min(baselines, key=lambda m: np.mean([p["bits_per_weight"] for p in complete[m]]),
                       default=None)
            for method, group_picks in by_method.items():
                reached = [p for p in group_picks if p["reached"]]
                record = {"data": floats[0]["data"], "source": source, "criterion": criterion,
                          "method": method, "folds": len(folds), "reached": len(reached),
                          "best_baseline": best or ""}
                for key in (*REPORTED, "fixed_share", "stream_bits_per_weight"):
                    values = [p[key] for p in reached if p[key] != ""]
                    record[f"{key}_mean"], record[f"{key}_se"] = mean_se(values) if values else ("", "")
                if best and method in complete:
                    base = {p["fold"]: p["bits_per_weight"] for p in complete[best]}
                    record["ratio_to_best_baseline"] = (np.mean([p["bits_per_weight"] for p in reached])
                                                        / np.mean(list(base.values())))
                    per_fold = [p["bits_per_weight"] / base[p["fold"]] for p in reached]
                    record["fold_ratio_mean"], record["fold_ratio_se"] = mean_se(per_fold)
                for baseline in baselines:
                    if method in complete:
                        record[f"ratio_to_{baseline}"] = (
                            np.mean([p["bits_per_weight"] for p in reached])
                            / np.mean([p["bits_per_weight"] for p in complete[baseline]]))
                summary.append(record)
    return summary


def number(value, digits: int = 2) -> str:
    if value in ("", None) or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def markdown(summary: list[dict]) -> str:
    """The summary as two tables: the float networks, and bits/weight (VBQ's ratios to the uniform
    grid / to nncodec) per source, method and criterion; 'k/5': the method met it on k folds only."""
    floats = [r for r in summary if r["method"] == "float32"]
    lines = ["| source | weights | test accuracy | test NLL | temperature-scaled NLL | median std "
             "| \\|mean\\|/std > 1 |", "|---|---|---|---|---|---|---|"]
    for r in floats:
        lines.append(f"| {r['source']} | {r['n_weights']} | {number(r['test_accuracy_mean'], 4)} ± "
                     f"{number(r['test_accuracy_se'], 4)} | {number(r['test_nll_mean'], 3)} ± "
                     f"{number(r['test_nll_se'], 3)} | {number(r['test_nll_ts_mean'], 3)} ± "
                     f"{number(r['test_nll_ts_se'], 3)} | {r['median_std']:.3g} | {r['snr_above_1']:.1%} |")
    lines += ["", "| source | method | " + " | ".join(CRITERIA) + " |", "|---|---|" + "---|" * len(CRITERIA)]
    for source in sorted({r["source"] for r in floats}):
        methods = sorted({r["method"] for r in summary if r["source"] == source} - {"float32"},
                         key=lambda m: (m in BASELINES, m))
        for method in methods:
            cells = []
            for criterion in CRITERIA:
                r = next(r for r in summary if r["source"] == source and r["method"] == method
                         and r["criterion"] == criterion)
                if r["reached"] == 0:
                    cells.append("never")
                    continue
                cell = f"{number(r['bits_per_weight_mean'])} ± {number(r['bits_per_weight_se'])}"
                if r["reached"] < r["folds"]:
                    cell += f" ({r['reached']}/{r['folds']})"
                else:
                    ratios = [r.get(f"ratio_to_{b}", "") for b in BASELINES]
                    text = " / ".join("-" if x == "" else f"**{x:.2f}x**" if round(x, 2) < 1 else f"{x:.2f}x"
                                      for x in ratios)
                    if method not in BASELINES:
                        cell += f" ({text})"
                cells.append(cell)
            lines.append(f"| {source} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def read_sweep(path: Path) -> list[dict]:
    def value(text):
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text

    with open(path, newline="") as handle:
        return [{key: value(text) for key, text in row.items()} for row in csv.DictReader(handle)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--data", help="data set name, to count each fold's validation rows")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from bayescompress.networks.tabular import kfold_splits, load_table

    rows = read_sweep(args.sweep)
    table = load_table(args.data or rows[0]["data"])
    folds = kfold_splits(table.n_rows, args.folds, args.seed, validation_fraction=0.2)
    n_validation = {index: fold.validation.size for index, fold in enumerate(folds)}
    picks = pick_cheapest(rows, n_validation)
    write_csv(args.sweep.with_name("picks.csv"), picks)
    summary = summarize(picks, rows)
    write_csv(args.sweep.with_name("summary.csv"), summary)
    split = split_by_setting(rows)
    by_setting = summarize(pick_cheapest(split, n_validation), split)
    write_csv(args.sweep.with_name("summary-by-setting.csv"), by_setting)
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

