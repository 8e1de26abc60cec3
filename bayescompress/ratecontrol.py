"""Rate control: find the knob (lambda, grid spacing, k) that makes an archive a given size.

Users think in sizes, not in lambda.  The search brackets the target in log space of the knob,
then alternates interpolation and bisection steps; every size it judges is a real file's size.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import samplerate
from .coders import make_coder
from .errors import BayesCompressError
from .files import check_output_path
from .methods import knob_for
from .packing import PackResult, StreamOptions, pack, posterior_to_pack
from .posterior import Posterior, read_posterior_header
from .quantizers import Knob, make_quantizer
from .tensorsource import open_posterior_source

TOLERANCE = 0.01
MAX_TRIALS = 60
_FULL_PACKS = 3  # packs of the whole model at most, for a posterior searched on a sample


@dataclass
class KnobSearch:
    """Every (knob value, measured size) tried, and how the search ended.

    ``status`` is "met" (a value inside the target range), "gap" (the size jumps over the range
    between two neighbouring knob values), "above-reach" (the target exceeds the largest size
    the knob reaches) or "below-reach" (the target is under the smallest).
    """

    trials: list[tuple[float, float]] = field(default_factory=list)
    status: str = "met"

    def closest(self, target: float, ceiling: float | None = None) -> tuple[float, float]:
        """The trial nearest ``target`` (only those at most ``ceiling`` when given)."""
        pool = [t for t in self.trials if ceiling is None or t[1] <= ceiling] or self.trials
        return min(pool, key=lambda t: (abs(t[1] - target), t[1]))


def solve_knob(measure: Callable[[float], float], knob: Knob, low: float, high: float,
               max_trials: int = MAX_TRIALS) -> KnobSearch:
    """Search ``knob`` for a value whose ``measure`` (a size, monotone in the knob) is in [low, high].

    >>> knob = Knob("spacing", shrinks=True, guess=1.0, lowest=1e-6, highest=1e6)
    >>> search = solve_knob(lambda s: 1000 / s, knob, 395, 400)
    >>> search.status, round(1000 / search.trials[-1][0])
    ('met', 397)
    """
    search = KnobSearch()
    seen: dict[float, float] = {}
    target = math.sqrt(low * high) if low > 0 else high / 2

    def at(log_value: float) -> float:
        value = knob.value(log_value)
        if value not in seen:
            seen[value] = float(measure(value))
            search.trials.append((value, seen[value]))
        return seen[value]

    def inside(size: float) -> bool:
        return low <= size <= high

    bigger = -1.0 if knob.shrinks else 1.0  # direction of log-knob that makes files bigger
    limits = (math.log(knob.lowest), math.log(knob.highest))
    t = min(max(math.log(knob.guess), limits[0]), limits[1])
    size = at(t)
    if inside(size):
        return search
    direction = bigger if size < low else -bigger
    step = math.log(10.0)
    while True:  # walk out in growing steps until the target is bracketed
        t_next = min(max(t + direction * step, limits[0]), limits[1])
        if t_next == t or knob.value(t_next) == knob.value(t):
            search.status = "above-reach" if direction == bigger else "below-reach"
            return search
        size_next = at(t_next)
        if inside(size_next):
            return search
        if (size_next < low) == (size < low):
            t, size, step = t_next, size_next, step * 2
            continue
        break
    # bracket: t_big gives a size above the range, t_small one below it
    (t_big, big), (t_small, small) = sorted([(t, size), (t_next, size_next)], key=lambda p: -p[1])
    for trial in range(max_trials):
        if knob.integer and abs(knob.value(t_big) - knob.value(t_small)) <= 1 or abs(t_big - t_small) < 1e-13:
            search.status = "gap"
            return search
        fraction = 0.5
        if trial % 2 == 0 and big > 0 and small > 0 and target > 0:
            fraction = (math.log(big) - math.log(target)) / (math.log(big) - math.log(small))
            fraction = min(max(fraction, 0.05), 0.95)
        t_mid = t_big + fraction * (t_small - t_big)
        if knob.integer and knob.value(t_mid) in (knob.value(t_big), knob.value(t_small)):
            t_mid = math.log((knob.value(t_big) + knob.value(t_small)) / 2)
        size = at(t_mid)
        if inside(size):
            return search
        if size > high:
            t_big, big = t_mid, size
        else:
            t_small, small = t_mid, size
    search.status = "gap"
    return search


@dataclass
class RateControlResult:
    """The archive written, the knob value that made it, and whether the target was met."""

    pack: PackResult
    option: str
    value: float
    target_bytes: float
    met: bool
    note: str
    trials: list[tuple[float, float]]


def target_range(n_latents: int, bits_per_dim: float | None, max_bytes: int | None,
                 tolerance: float = TOLERANCE) -> tuple[float, float]:
    """Accepted file sizes in bytes: bits/dim within +-tolerance, or max bytes and up to tolerance under.

    >>> target_range(1000, 2.0, None)
    (247.5, 252.5)
    >>> target_range(1000, None, 500)
    (495.0, 500)
    """
    if (bits_per_dim is None) == (max_bytes is None):
        raise BayesCompressError("give exactly one of a bits-per-dimension target and a maximum size")
    if bits_per_dim is not None:
        if not (isinstance(bits_per_dim, (int, float)) and math.isfinite(bits_per_dim) and bits_per_dim > 0):
            raise BayesCompressError(f"bits per dimension must be a number > 0, got {bits_per_dim!r}")
        target = bits_per_dim * n_latents / 8.0
        return target * (1 - tolerance), target * (1 + tolerance)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise BayesCompressError(f"maximum size must be a whole number of bytes >= 1, got {max_bytes!r}")
    return max_bytes * (1 - tolerance), max_bytes


def pack_to_target(
    source: Posterior | str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str = "vbq",
    coder: str = "range",
    tensors: list[str] | None = None,
    bits_per_dim: float | None = None,
    max_bytes: int | None = None,
    tolerance: float = TOLERANCE,
    overwrite: bool = False,
    show_progress: bool | None = False,
    streaming: StreamOptions | None = None,
    **options,
) -> RateControlResult:
    """Pack with the knob value that brings the real file size to the target.

    ``bits_per_dim``: 8 x file bytes / latents within +-``tolerance`` (relative).  ``max_bytes``:
    the file never exceeds it and is at most ``tolerance`` under it.  Targets outside what the
    method can reach raise BayesCompressError naming the reachable size (a maximum size above
    the largest archive writes that archive and says so).  Where the size jumps over the range
    between two neighbouring knob values, the nearest archive is written (for ``max_bytes`` the
    largest one under it) and ``met`` is False.  A posterior file of more than SAMPLE_LATENTS
    latents is never loaded whole: the knob is searched on a sample (samplerate).
    """
    if not isinstance(source, Posterior) and coder == "range":
        shapes = read_posterior_header(source)["tensors"] if Path(source).is_file() else {}
        wanted = tensors if tensors is not None else list(shapes)
        if sum(math.prod(shapes.get(name, ())) for name in wanted) > samplerate.SAMPLE_LATENTS:
            return _pack_large_to_target(source, out, method=method, coder=coder, tensors=tensors,
                                        bits_per_dim=bits_per_dim, max_bytes=max_bytes, tolerance=tolerance,
                                        overwrite=overwrite, streaming=streaming, **options)
    out, posterior = posterior_to_pack(source, out, tensors, overwrite)
    knob = knob_for(method, posterior, options)
    if knob.option in options:
        raise BayesCompressError(f"a size target sets {knob.option!r} itself; do not give both")
    low, high = target_range(posterior.n_latents, bits_per_dim, max_bytes, tolerance)
    symbol_coder = make_coder(coder)
    make_quantizer(method, **{knob.option: knob.guess}, **options)  # bad options fail before any work

    with tempfile.TemporaryDirectory(prefix=".ratecontrol-", dir=out.parent) as work:
        results: dict[float, PackResult] = {}

        def measure(value):
            path = Path(work) / f"trial-{len(results)}.bcz"
            quantizer = make_quantizer(method, **{knob.option: value}, **options)
            result = pack(posterior, path, method=quantizer, coder=symbol_coder, show_progress=show_progress,
                          streaming=streaming)
            results[value] = replace(result, values={}, symbols={})
            return path.stat().st_size

        search = solve_knob(measure, knob, low, high)
        target = high if max_bytes is not None else (low + high) / 2
        sizes = sorted(size for _, size in search.trials)
        if search.status == "below-reach" or (max_bytes is not None and sizes[0] > high):
            smallest = min(results.values(), key=lambda r: r.total_bytes)
            raise BayesCompressError(
                f"{_target_text(bits_per_dim, max_bytes)} is below the smallest archive {method} writes "
                f"for this posterior: {smallest.total_bytes} bytes ({smallest.header_bytes} header incl. "
                f"{smallest.table_bytes} tables, {smallest.side_bytes} side data, "
                f"{8 * smallest.total_bytes / posterior.n_latents:.4f} bits/dim)")
        if search.status == "above-reach" and bits_per_dim is not None:
            raise BayesCompressError(
                f"{_target_text(bits_per_dim, max_bytes)} is above the largest archive {method} writes "
                f"for this posterior: {sizes[-1]:.0f} bytes "
                f"({8 * sizes[-1] / posterior.n_latents:.4f} bits/dim)")
        value, size = search.closest(target, ceiling=high if max_bytes is not None else None)
        chosen = results[value]
        os.replace(chosen.path, out)
    final = replace(chosen, path=out, total_bytes=out.stat().st_size)
    met = low <= final.total_bytes <= high
    note = _note(search.status, met, final, low, high, posterior.n_latents)
    return RateControlResult(final, knob.option, value, target, met, note, search.trials)


def _target_text(bits_per_dim, max_bytes) -> str:
    if bits_per_dim is not None:
        return f"target {bits_per_dim:g} bits/dim"
    return f"maximum size {max_bytes} bytes"


def _note(status: str, met: bool, result: PackResult, low: float, high: float, n: int) -> str:
    if met:
        return ""
    if status == "above-reach":
        return (f"the largest archive this method writes is {result.total_bytes} bytes, under the "
                "maximum; wrote that one")
    return (f"no knob value gives a size in [{low:.0f}, {high:.0f}] bytes (the size jumps over it); "
            f"wrote the nearest, {result.total_bytes} bytes ({8 * result.total_bytes / n:.4f} bits/dim)")


def _pack_large_to_target(path, out, *, method: str, coder: str, tensors, bits_per_dim, max_bytes,
                         tolerance: float, overwrite: bool, streaming: StreamOptions | None, **options):
    """``pack_to_target`` for a posterior file read piece by piece: the knob is searched on a
    sample, then the whole model is packed and its real size checked (corrected and retried a
    few times when the sample's rate is off)."""
    out = check_output_path(out, overwrite=overwrite, inputs=(path,))
    with open_posterior_source(path, tensors) as source:
        n = source.n_latents
        low, high = target_range(n, bits_per_dim, max_bytes, tolerance)
        sample = samplerate.sample_posterior(source)
    aim = (low + high) / 2 if max_bytes is None else high * (1 - tolerance / 2)
    sample_bits = 8 * aim / n
    trials: list[tuple[float, float]] = []
    results: dict[float, PackResult] = {}
    with tempfile.TemporaryDirectory(prefix=".ratecontrol-", dir=out.parent) as work:
        for attempt in range(_FULL_PACKS):
            control = pack_to_target(sample, Path(work) / "sample.bcz", method=method, coder=coder,
                                     bits_per_dim=sample_bits, tolerance=tolerance / 4, overwrite=True,
                                     **options)
            value = control.value
            if value in results:
                break
            result = pack(path, Path(work) / f"trial-{attempt}.bcz", method=method, coder=coder,
                          tensors=tensors, streaming=streaming, show_progress=False,
                          **{control.option: value}, **options)
            results[value] = result
            trials.append((value, float(result.total_bytes)))
            if low <= result.total_bytes <= high:
                break
            sample_bits *= aim / result.total_bytes  # the sample's rate was off by this factor
        pool = [t for t in trials if max_bytes is None or t[1] <= high] or trials
        value, size = min(pool, key=lambda t: (abs(t[1] - aim), t[1]))
        if max_bytes is not None and size > high:
            raise BayesCompressError(
                f"maximum size {max_bytes} bytes: the smallest archive found on the whole model is "
                f"{size:.0f} bytes")
        os.replace(results[value].path, out)
    met = low <= size <= high
    note = "" if met else (f"searched lambda on a {samplerate.SAMPLE_LATENTS}-latent sample; the whole "
                           f"model's archive is {size:.0f} bytes, outside [{low:.0f}, {high:.0f}]")
    final = results[value]
    final.path = out
    return RateControlResult(final, control.option, value, aim, met, note, trials)
