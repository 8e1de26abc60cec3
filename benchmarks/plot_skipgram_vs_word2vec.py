"""Table and plot of skipgram_vs_word2vec.py's JSON lines: Hits@10 against wall and CPU time.

    python benchmarks/plot_skipgram_vs_word2vec.py RESULTS.jsonl --csv OUT.csv --png OUT.png
"""

from __future__ import annotations

import argparse
import csv
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLUMNS = ("source", "vocab", "model", "budget",
           "seconds", "cpu_seconds", "peak_rss_mib", "hits_at_10", "hits_at_10_u_plus_v", "gensim_top1",
           "wordsim353_spearman", "questions", "spearman_log_count_log_std", "share_at_initial_std",
           "estimator", "batch", "noise_contexts", "lr", "window_weights", "subsample", "subsample_tokens",
           "compiled_step", "torch_threads", "machine")

# (model, column, marker, colour, legend): each model's own word vectors, and input + output vectors summed
SERIES = (("ours (U means)", "hits_at_10", "o-", "C0", "ours (U means)"),
          ("ours (U means)", "hits_at_10_u_plus_v", "o:", "C0", "ours (U + V means)"),
          ("word2vec sg", "hits_at_10", "s--", "C1", "word2vec sg (input vectors)"),
          ("word2vec sg", "hits_at_10_u_plus_v", "s:", "C1", "word2vec sg (input + output vectors)"))


def rows_of(entries: list[dict]) -> list[dict]:
    """One flat row per run, ours by steps (and negatives M) and word2vec by epochs."""
    rows = []
    for entry in entries:
        source = entry.get("source", "")
        ours = entry["model"] == "ours"
        figures = entry["U"]
        settings = entry.get("settings", {})
        stds = entry.get("stds_U", {})
        if not ours:
            budget = f"{entry['epochs']} epochs"
        else:
            budget = f"{settings['steps']} steps"
            if settings.get("estimator") == "pairs":
                budget += f", M {settings.get('noise_contexts')}"
            budget += f", init std {settings.get('init_scale')}"
            if entry.get("subsample_tokens"):
                budget += f", drop {entry['subsample_tokens']:g}"
        rows.append({
            "source": source, "vocab": entry["vocab"], "model": "ours (U means)" if ours else "word2vec sg",
            "budget": budget,
            "seconds": round(entry["seconds"], 1), "cpu_seconds": round(entry["cpu_seconds"], 1),
            "peak_rss_mib": round(entry["peak_rss_mib"]), "hits_at_10": round(figures["hits_at_10"], 4),
            # input + output vectors' means (ours U + V, word2vec's vectors + syn1neg), where measured
            "hits_at_10_u_plus_v": round(entry["U+V"]["hits_at_10"], 4) if "U+V" in entry else "",
            "gensim_top1": round(figures["gensim_top1"], 4),
            "wordsim353_spearman": round(figures["wordsim353_spearman"], 4), "questions": figures["n_used"],
            "spearman_log_count_log_std": stds.get("spearman_log_count_log_std", ""),
            "share_at_initial_std": stds.get("share_at_initial_std", ""),
            "estimator": settings.get("estimator", ""), "batch": settings.get("batch", ""),
            "noise_contexts": settings.get("noise_contexts", "") if ours else "",
            "lr": settings.get("lr", ""),
            "window_weights": entry.get("window_weights", "flat") if ours else "dynamic window",
            "subsample": settings.get("subsample", 0.0) if ours else entry.get("sample", ""),
            # ours: tokens dropped before windows (word2vec's own subsampling, as expected counts)
            "subsample_tokens": entry.get("subsample_tokens", 0.0) if ours else "",
            "compiled_step": entry.get("compiled_step", ""),
            "torch_threads": entry.get("torch_threads", entry.get("workers", "")),
            "machine": entry["machine"],
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+",
                        help="JSON-lines files written by skipgram_vs_word2vec.py --json")
    parser.add_argument("--csv", required=True)
    parser.add_argument("--png", required=True)
    parser.add_argument("--plot-only", nargs="*", default=None,
                        help="plot only the rows of these results files (the CSV has every file's rows)")
    args = parser.parse_args()
    entries = []
    for path in args.results:
        with open(path) as handle:
            entries += [{**json.loads(line), "source": os.path.basename(path)}
                        for line in handle if line.strip()]
    rows = rows_of(entries)
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    if args.plot_only is not None:
        plotted = {os.path.basename(path) for path in args.plot_only}
        rows = [row for row in rows if row["source"] in plotted]
    vocabularies = sorted({row["vocab"] for row in rows})
    figure, axes = plt.subplots(2, len(vocabularies), figsize=(5.5 * len(vocabularies), 7.5), squeeze=False)
    for column, vocab in enumerate(vocabularies):
        for axis, time_key, label in ((axes[0][column], "seconds", "wall time of the fit (s)"),
                                      (axes[1][column], "cpu_seconds", "CPU time of the fit (s)")):
            for model, key, marker, colour, legend in SERIES:
                points = sorted((row[time_key], row[key], row["budget"]) for row in rows
                                if row["vocab"] == vocab and row["model"] == model and row[key] != "")
                if points:
                    axis.plot([p[0] for p in points], [p[1] for p in points], marker, color=colour,
                              label=legend, alpha=1.0 if key == "hits_at_10" else 0.5)
                    for seconds, hits, budget in points if key == "hits_at_10" else ():
                        # steps or epochs only: the full settings are in the CSV, long labels overlap
                        axis.annotate(budget.split(",")[0], (seconds, hits), fontsize=7, xytext=(3, 3),
                                      textcoords="offset points")
            sources = ", ".join(sorted({row["source"] for row in rows if row["vocab"] == vocab}))
            axis.set_title(f"V = {vocab:,} ({sources})", fontsize=9)
            axis.set(xlabel=label, ylabel="Hits@10 (ties against)")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(args.png, dpi=110)


if __name__ == "__main__":
    main()
