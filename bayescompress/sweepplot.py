"""The sweep's plot: quality against bits per latent dimension, one curve per method (PNG, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure  # the 'plots' extra; sweep imports this module before any work

from .files import atomic_output
from .rdcurves import pareto_front


def plot_sweep(rows: list[dict], path: Path, rate_key: str, quality_name: str,
               reference_quality: float) -> Path:
    """Every point as a dot, each method's Pareto front as a line, the uncompressed model as a
    dotted line, and the Gaussian R(D) at VBQ's distortion as a dashed black line."""
    matplotlib.use("Agg")
    figure = Figure(figsize=(7.5, 4.5))
    axes = figure.add_subplot()
    methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] != "uncompressed"))
    colours = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    saturation = []  # per method: the rate from which more bits buy nothing visible
    for method in methods:
        points = [r for r in rows if r["method"] == method]
        bits = np.array([r[rate_key] for r in points])
        quality = np.array([r["quality"] for r in points])
        axes.plot(bits, quality, ".", color=colours[method], alpha=0.35, markersize=4)
        front_bits, front_quality = pareto_front(bits, quality)
        style = "-" if method.startswith("vbq") else "--" if method in ("gzip", "bzip2", "lzma") else "-."
        axes.plot(front_bits, front_quality, style, color=colours[method], label=method, linewidth=1.5)
        if front_bits.size:
            saturation.append(front_bits[np.argmax(front_quality >= 0.995 * front_quality[-1])])
    vbq = [r for r in rows
           if r["method"] == "vbq" and np.isfinite(r.get("gaussian_rd_bits_per_dim", np.nan))]
    if vbq:
        order = np.argsort([r["gaussian_rd_bits_per_dim"] for r in vbq])
        axes.plot([vbq[i]["gaussian_rd_bits_per_dim"] for i in order], [vbq[i]["quality"] for i in order],
                  ":", color="black", linewidth=1.5, label="Gaussian R(D) at VBQ's distortion")
    axes.axhline(reference_quality, linestyle=(0, (1, 3)), color="#666666", label="uncompressed")
    finite = [r[rate_key] for r in rows if r["method"] != "uncompressed"]
    right = min(1.2 * max(saturation), 1.05 * max(finite)) if saturation else 1.0
    axes.set_xlim(0, right)
    side = " (incl. side data)" if rate_key == "bits_per_dim" else " (file bytes without side data)"
    axes.set_xlabel("bits per latent dimension" + side)
    axes.set_ylabel(f"{quality_name} (higher is better)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png", dpi=130)
    return Path(path)
