"""Rate-quality curves: the best quality reached at each rate, and bits at equal quality between methods.

A sweep's points are not monotone (more bits can give slightly lower quality), so each curve is
replaced by its Pareto front: the points that beat every point with fewer bits.  Between front
points the curve is linear; bits at a quality level are read off by linear interpolation.
"""

from __future__ import annotations

import math

import numpy as np

LEVELS = (0.5, 0.7, 0.9, 0.97)


def pareto_front(bits, quality) -> tuple[np.ndarray, np.ndarray]:
    """Points (sorted by bits) whose quality exceeds that of every point with fewer or equal bits.

    >>> pareto_front([1.0, 2.0, 3.0, 4.0], [0.5, 0.4, 0.8, 0.8])
    (array([1., 3.]), array([0.5, 0.8]))
    """
    bits, quality = np.asarray(bits, dtype=np.float64), np.asarray(quality, dtype=np.float64)
    keep = np.isfinite(bits) & np.isfinite(quality)
    bits, quality = bits[keep], quality[keep]
    order = np.lexsort((-quality, bits))
    bits, quality = bits[order], quality[order]
    best_before = np.concatenate(([-np.inf], np.maximum.accumulate(quality)[:-1]))
    front = quality > best_before
    return bits[front], quality[front]


def bits_at_quality(bits, quality, target: float) -> float:
    """Bits the front needs to reach quality ``target``; NaN outside the measured range.

    NaN when no point reaches ``target``, or when even the cheapest point exceeds it (the
    crossing lies below the measured rates and would be a guess).

    >>> round(bits_at_quality([1.0, 3.0], [0.5, 0.9], 0.7), 12)
    2.0
    """
    front_bits, front_quality = pareto_front(bits, quality)
    if front_bits.size == 0 or target > front_quality[-1] or target < front_quality[0]:
        return math.nan
    above = int(np.searchsorted(front_quality, target, side="left"))
    if front_quality[above] == target or above == 0:
        return float(front_bits[above])
    b0, b1 = front_bits[above - 1], front_bits[above]
    q0, q1 = front_quality[above - 1], front_quality[above]
    return float(b0 + (target - q0) * (b1 - b0) / (q1 - q0))


def ratio_rows(curves: dict[str, tuple], reference_quality: float, reference: str = "vbq",
               levels=LEVELS) -> list[dict]:
    """For every other method and level: reference bits / method bits at quality level x uncompressed.

    >>> curves = {"vbq": ([1.0, 2.0], [0.4, 0.8]), "uniform": ([2.0, 4.0], [0.4, 0.8])}
    >>> [round(r["ratio"], 3) for r in ratio_rows(curves, 1.0, levels=(0.5, 0.7))]
    [0.5, 0.5]
    """
    if reference not in curves:
        return []
    rows = []
    ref_bits, ref_quality = curves[reference]
    for method, (bits, quality) in curves.items():
        if method == reference:
            continue
        for level in levels:
            target = level * reference_quality
            ours = bits_at_quality(ref_bits, ref_quality, target)
            theirs = bits_at_quality(bits, quality, target)
            ratio = ours / theirs if theirs and not math.isnan(theirs) and not math.isnan(ours) else math.nan
            rows.append({"method": method, "level": level, "quality": target, f"{reference}_bits": ours,
                         "method_bits": theirs, "ratio": ratio})
    return rows


def format_ratio_table(rows: list[dict], reference: str = "vbq", quality_name: str = "quality",
                       reference_quality: float | None = None) -> str:
    """The ratios as a text table: one line per method, one column per quality level."""
    if not rows:
        return f"(no {reference} curve: no ratios)"
    levels = sorted({r["level"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    where = f", uncompressed {reference_quality:.4g}" if reference_quality is not None else ""
    lines = [f"{reference} bits / method bits at equal {quality_name} (level x uncompressed{where}; "
             "< 1 means VBQ needs fewer bits; - = not reached in the sweep)",
             f"{'method':<16}" + "".join(f"{f'{100 * lv:g}%':>9}" for lv in levels)]
    first = rows[0]["method"]
    ref_bits = {r["level"]: r[f"{reference}_bits"] for r in rows if r["method"] == first}
    lines.append(f"{reference + ' bits/dim':<16}" + "".join(_cell(ref_bits[lv], 3) for lv in levels))
    for method in methods:
        ratios = {r["level"]: r["ratio"] for r in rows if r["method"] == method}
        lines.append(f"{method:<16}" + "".join(_cell(ratios[lv], 3) for lv in levels))
    return "\n".join(lines)


def _cell(value: float, digits: int) -> str:
    return f"{'-':>9}" if value is None or math.isnan(value) else f"{value:>9.{digits}f}"
