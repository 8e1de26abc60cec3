"""Baseline quantizers behind the common interface: uniform grid, k-means, entropy-constrained Lloyd.

Plus the ablation ``vbq-nostd`` (VBQ blind to posterior uncertainty).  None of the baselines look
at the stds: they quantize the means, as the paper's baselines do.
"""

from __future__ import annotations

import base64
import math
import numbers

import numpy as np

from .errors import BayesCompressError
from .quantizers import (
    Option,
    QuantizedTensor,
    Quantizer,
    Scales,
    exact_float,
    finite_number_at_least_zero,
    number_or_name,
    parse_exact_float,
    positive_number,
    whole_number,
)
from .vbq import MAX_RATE, VBQQuantizer

_MAX_SYMBOL = float(1 << 53)  # grid indices stay exact in float64 and fit every coder
OFFSETS = {"zero": 0.0, "half": 0.5}


def _positive_number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value <= 0:
        raise BayesCompressError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def _count(value, what: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise BayesCompressError(f"{what} must be an integer >= {low}, got {value!r}")
    return int(value)


def _done(progress, n: int) -> None:
    if progress is not None:
        progress.update(n)


# ------------------------------------------------------------------------------ uniform


class UniformQuantizer(Quantizer):
    """Round every mean to the grid (k + offset) x spacing; the symbol is the signed index k.

    ``offset`` is "zero" (0 is a grid point, as in the paper's reference code, best at low
    rates because the zero cell swallows the bulk), "half" (cells meet at 0: one bit keeps every
    sign) or a fraction in [0, 1).  ``sweep`` runs both named offsets and keeps whichever gives
    the better quality at each rate.

    >>> q = UniformQuantizer(spacing=0.5)
    >>> out = q.quantize(np.array([0.2, -0.3, 1.1]), np.ones(3))
    >>> out.symbols.tolist(), UniformQuantizer.dequantize(out.symbols, out.params, q.config()).tolist()
    ([0, -1, 2], [0.0, -0.5, 1.0])
    """

    name = "uniform"
    about = "rounds every mean to a uniform grid"
    knob = Option("spacing", None, "grid spacing", positive_number)
    options = (Option("offset", "zero", "zero (0 on the grid, default), half, or a fraction of the spacing",
                      number_or_name),)

    @classmethod
    def knob_range(cls, scales: Scales, options: dict) -> tuple[float, float, float]:
        guess = scales.mean_rms / 8
        return guess, 1e-9 * guess, 1e4 * guess

    def __init__(self, spacing: float, offset: str | float = "zero"):
        self.spacing = _positive_number(spacing, "uniform spacing")
        if isinstance(offset, str):
            if offset not in OFFSETS:
                raise BayesCompressError(f"uniform offset must be 'zero', 'half' or a number in [0, 1), "
                                         f"got {offset!r}")
            offset = OFFSETS[offset]
        if isinstance(offset, bool) or not isinstance(offset, numbers.Real) or not 0 <= offset < 1:
            raise BayesCompressError(f"uniform offset must be in [0, 1), got {offset!r}")
        self.offset = float(offset)

    def config(self) -> dict:
        return {"spacing": exact_float(self.spacing), "offset": exact_float(self.offset)}

    blockwise = True  # each mean is rounded alone: pack streams the tensor piece by piece

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        return QuantizedTensor(self.quantize_block(means, stds, {}, progress), {})

    def fit_params(self, mean_blocks, strided, size: int) -> dict:
        """Nothing to fit: the grid is the configuration."""
        return {}

    def quantize_block(self, means: np.ndarray, stds: np.ndarray, params: dict, progress=None) -> np.ndarray:
        """Grid indices of a piece of the tensor."""
        scaled = np.asarray(means, dtype=np.float64).ravel() / self.spacing - self.offset
        if scaled.size and np.max(np.abs(scaled)) >= _MAX_SYMBOL:
            raise BayesCompressError(f"uniform spacing {self.spacing:g} is too small for means up to "
                                     f"{np.max(np.abs(means)):g} (grid index beyond 2^53)")
        symbols = np.rint(scaled).astype(np.int64)
        _done(progress, symbols.size)
        return symbols

    @staticmethod
    def dequantize(symbols: np.ndarray, params: dict, config: dict) -> np.ndarray:
        spacing = parse_exact_float(config.get("spacing"), "uniform spacing")
        offset = parse_exact_float(config.get("offset"), "uniform offset")
        if not spacing > 0 or not 0 <= offset < 1:
            raise BayesCompressError("archive header: uniform spacing or offset is out of range")
        return (np.asarray(symbols, dtype=np.int64).astype(np.float64) + offset) * spacing


class PrunedUniformQuantizer(UniformQuantizer):
    """The uniform grid (0 on it) on the leading ``keep_share`` of the latents; the rest set to 0.

    Word vectors are stored most frequent word first, so this keeps the frequent words' rows and
    zeroes the rare ones: the effect VBQ gets from the posterior (rare words' vectors collapse),
    obtained from the word order alone.  An all-zero row scores 0 against every analogy query,
    which lifts Hits@10 over all words.  The zeros are ordinary symbols, so their cost is counted
    (the trailing segments, all zeros, cost a few bytes each).  Not in default sweeps: a network's
    tensors have no such order.

    >>> q = PrunedUniformQuantizer(spacing=0.5, keep_share=0.5)
    >>> q.quantize(np.array([0.2, -0.6, 1.1, 0.9]), np.ones(4)).symbols.tolist()
    [0, -1, 0, 0]
    """

    name = "uniform-pruned"
    about = "the uniform grid on the leading rows (frequent words), the rest zeroed"
    options = (Option("keep_share", 0.5, "share of the latents kept, from the first (0 < share <= 1)",
                      positive_number),)
    in_sweep = False
    blockwise = False  # where the kept part ends depends on the whole tensor's size

    def __init__(self, spacing: float, keep_share: float = 0.5):
        super().__init__(spacing, "zero")
        self.keep_share = checked_keep_share(keep_share)

    def config(self) -> dict:
        return {**super().config(), "keep_share": exact_float(self.keep_share)}

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        symbols = self.quantize_block(means, stds, {}, progress)
        symbols[kept_latents(self.keep_share, symbols.size):] = 0
        return QuantizedTensor(symbols, {})


def checked_keep_share(keep_share) -> float:
    """A kept share as a float in (0, 1]; anything else is a user error."""
    if isinstance(keep_share, bool) or not isinstance(keep_share, numbers.Real) or not 0 < keep_share <= 1:
        raise BayesCompressError(f"keep share must be in (0, 1], got {keep_share!r}")
    return float(keep_share)


def kept_latents(keep_share: float, size: int) -> int:
    """How many leading latents a keep share keeps: R rows of V x d for a share of R / V.

    >>> kept_latents(300 / 1000, 1000 * 100)
    30000
    """
    return min(size, int(round(keep_share * size)))


# ------------------------------------------------------------------------ shared 1-D tools


class _SortedValues:
    """Sorted values with prefix sums, so that any cell (a range of ranks) has O(1) count and sum."""

    def __init__(self, values: np.ndarray):
        self.values = np.sort(np.asarray(values, dtype=np.float64).ravel())
        self.shift = float(np.mean(self.values)) if self.values.size else 0.0
        self.prefix = np.concatenate(([0.0], np.cumsum(self.values - self.shift)))

    @property
    def size(self) -> int:
        return self.values.size

    def cells(self, boundaries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cut at ``boundaries`` (values < b go left): rank cuts, counts and means of the cells."""
        cuts = np.concatenate(([0], np.searchsorted(self.values, boundaries, side="left"), [self.size]))
        counts = np.diff(cuts)
        sums = self.prefix[cuts[1:]] - self.prefix[cuts[:-1]]
        with np.errstate(invalid="ignore", divide="ignore"):
            centres = self.shift + sums / counts
        return cuts, counts, centres


def _strictly_increasing(centres: np.ndarray) -> np.ndarray:
    """Drop centres that rounding made equal to (or below) their left neighbour."""
    keep = np.ones(centres.size, dtype=bool)
    keep[1:] = centres[1:] > np.maximum.accumulate(centres)[:-1]
    return centres[keep]


def parabola_envelope(centres: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower envelope of (x - c_j)^2 + b_j for strictly increasing c: which j wins, and where.

    Returns the winning indices in order and the breakpoints between them (x >= breakpoint goes
    right).  The loop runs over codebook entries, never over latents.

    >>> parabola_envelope(np.array([0.0, 1.0, 2.0]), np.array([0.0, 5.0, 0.0]))
    (array([0, 2]), array([1.]))
    """
    winners, breaks = [0], [-np.inf]
    for j in range(1, centres.size):
        while True:
            i = winners[-1]
            gap = centres[j] - centres[i]
            cross = 0.5 * (centres[i] + centres[j]) + (offsets[j] - offsets[i]) / (2.0 * gap)
            if cross <= breaks[-1]:
                winners.pop()
                breaks.pop()
                continue
            break
        winners.append(j)
        breaks.append(cross)
    return np.array(winners, dtype=np.int64), np.array(breaks[1:], dtype=np.float64)


def _encode_codebook(codebook: np.ndarray) -> str:
    return base64.b64encode(np.asarray(codebook, dtype="<f8").tobytes()).decode("ascii")


def decode_codebook(params: dict) -> np.ndarray:
    """The codebook stored in a tensor's params (base64 of little-endian float64: exact, compact)."""
    text = params.get("codebook")
    try:
        raw = base64.b64decode(text, validate=True)
    except (TypeError, ValueError) as exc:
        raise BayesCompressError("archive header: codebook is not base64") from exc
    if len(raw) == 0 or len(raw) % 8:
        raise BayesCompressError("archive header: codebook has a bad length")
    codebook = np.frombuffer(raw, dtype="<f8").astype(np.float64)
    if not np.all(np.isfinite(codebook)):
        raise BayesCompressError("archive header: codebook holds a non-finite value")
    return codebook


def _codebook_lookup(symbols: np.ndarray, codebook: np.ndarray, method: str) -> np.ndarray:
    symbols = np.asarray(symbols, dtype=np.int64)
    if symbols.size and (symbols.min() < 0 or symbols.max() >= codebook.size):
        raise BayesCompressError(f"archive holds a {method} symbol outside its codebook")
    return codebook[symbols]


def _nearest_in_codebook(values: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    boundaries = 0.5 * (codebook[:-1] + codebook[1:])
    return np.searchsorted(boundaries, values, side="right").astype(np.int64)


# ------------------------------------------------------------------------------- k-means


def kmeans_codebook(values: np.ndarray, k: int, max_iter: int = 300) -> np.ndarray:
    """1-D k-means (Lloyd's algorithm) codebook, sorted; deterministic quantile initialization.

    With k at least the number of distinct values the codebook is those values (lossless).
    Each iteration costs O(k log n): cells are rank ranges of the sorted values.

    >>> kmeans_codebook(np.array([0.0, 0.1, 0.2, 5.0, 5.2]), 2).round(9).tolist()
    [0.1, 5.1]
    """
    data = _SortedValues(values)
    distinct = np.unique(data.values)
    if distinct.size <= k:
        return distinct
    # init: the distinct values at the count-weighted quantiles (i + 1/2) / k, made distinct
    ranks = np.searchsorted(data.values, distinct, side="left")
    targets = (np.arange(k) + 0.5) / k * data.size
    picks = np.clip(np.searchsorted(ranks, targets, side="right") - 1, 0, distinct.size - 1)
    steps = np.arange(k)
    picks = np.maximum.accumulate(picks - steps) + steps
    picks = np.minimum(picks, distinct.size - k + steps)
    centres = distinct[picks]
    previous = None
    for _ in range(max_iter):
        cuts, counts, means = data.cells(0.5 * (centres[:-1] + centres[1:]))
        if previous is not None and np.array_equal(cuts, previous):
            break
        previous = cuts
        centres = _strictly_increasing(means[counts > 0])
    return centres


class KMeansQuantizer(Quantizer):
    """Nearest entry of a per-tensor k-means codebook of the means; the codebook travels in the header.

    >>> q = KMeansQuantizer(k=2)
    >>> out = q.quantize(np.array([0.0, 0.1, 0.2, 5.0, 5.2]), np.ones(5))
    >>> out.symbols.tolist()
    [0, 0, 0, 1, 1]
    >>> KMeansQuantizer.dequantize(out.symbols, out.params, q.config()).round(9).tolist()
    [0.1, 0.1, 0.1, 5.1, 5.1]
    """

    name = "kmeans"
    about = "nearest entry of a per-tensor k-means codebook of the means"
    knob = Option("k", None, "codebook size", whole_number)
    shrinks = False
    integer_knob = True
    options = (Option("max_iter", 300, "Lloyd iterations at most", whole_number),)

    @classmethod
    def knob_range(cls, scales: Scales, options: dict) -> tuple[float, float, float]:
        return 16, 1, 1 << 16

    def __init__(self, k: int, max_iter: int = 300):
        self.k = _count(k, "k-means k")
        self.max_iter = _count(max_iter, "k-means max_iter")

    def config(self) -> dict:
        return {"k": self.k, "max_iter": self.max_iter}

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        values = np.asarray(means, dtype=np.float64).ravel()
        codebook = kmeans_codebook(values, self.k, self.max_iter)
        symbols = _nearest_in_codebook(values, codebook)
        _done(progress, values.size)
        return QuantizedTensor(symbols, {"codebook": _encode_codebook(codebook)})

    @staticmethod
    def dequantize(symbols: np.ndarray, params: dict, config: dict) -> np.ndarray:
        return _codebook_lookup(symbols, decode_codebook(params), "k-means")


# ------------------------------------------------------------- entropy-constrained Lloyd


def ecsq_codebook(
    values: np.ndarray, lam: float, max_levels: int = 4096, max_iter: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Entropy-constrained scalar quantizer (Chou, Lookabaugh & Gray 1989) of ``values``.

    Minimizes  sum (z_j(i) - x_i)^2 + lam * sum -log2 p_j(i)  by alternating: assign each value
    to the level minimizing (z_j - x)^2 + lam (-log2 p_j) (a lower envelope of parabolas, so
    each cell is a range of the sorted values), move each level to its cell's mean, set p_j to
    its cell's frequency, drop empty cells; until the cells stop changing.  No step raises the
    objective, so starting from the uniform grids of the high-rate optimal spacing
    sqrt(6 lam / ln 2), zero-centred and half-offset, the result beats both grids; the better of
    the two ends wins.  Where that grid would exceed ``max_levels`` (small lam) the start is
    ``max_levels`` evenly spaced levels.  Returns the levels (sorted) and their costs lam (-log2 p).

    >>> levels, costs = ecsq_codebook(np.array([0.0, 0.1, 0.2, 5.0, 5.2]), 1e9)
    >>> levels.round(6).tolist(), costs.tolist()
    ([2.1], [0.0])
    """
    data = _SortedValues(values)
    best = None
    for start in _ecsq_starts(data, lam, max_levels):
        levels, costs = _ecsq_iterate(data, start, lam, max_iter)
        winners, breaks = parabola_envelope(levels, costs)
        cells = winners[np.searchsorted(breaks, data.values, side="right")]
        counts = np.bincount(cells, minlength=levels.size)
        counts = counts[counts > 0]
        objective = float(np.sum(np.square(levels[cells] - data.values))) + lam * float(
            np.sum(counts * np.log2(data.size / counts)))
        if best is None or objective < best[0]:
            best = (objective, levels, costs)
    return best[1], best[2]


def _ecsq_starts(data: _SortedValues, lam: float, max_levels: int):
    low, high = float(data.values[0]), float(data.values[-1])
    step = math.sqrt(6.0 * lam / math.log(2.0))
    if step > 0 and (high - low) / step < max_levels - 2:
        for offset in (0.0, 0.5):
            first, last = math.floor(low / step - offset), math.ceil(high / step - offset)
            yield (np.arange(first, last + 1) + offset) * step
    else:
        yield np.linspace(low, high, max_levels) if high > low else np.array([low])


def _ecsq_iterate(data: _SortedValues, centres: np.ndarray, lam: float, max_iter: int):
    centres = _strictly_increasing(centres)
    costs = np.zeros(centres.size)
    previous = None
    for _ in range(max_iter):
        winners, breaks = parabola_envelope(centres, costs)
        cuts, counts, means = data.cells(breaks)
        if previous is not None and np.array_equal(cuts, previous):
            break
        previous = cuts
        nonempty = counts > 0
        centres, counts = means[nonempty], counts[nonempty]
        keep = np.ones(centres.size, dtype=bool)
        keep[1:] = centres[1:] > np.maximum.accumulate(centres)[:-1]
        centres, counts = centres[keep], counts[keep]
        costs = lam * np.log2(counts.sum() / counts)
    return centres, costs


class LloydQuantizer(Quantizer):
    """Entropy-constrained Lloyd quantizer of the means; lambda trades squared error for bits.

    ``lam`` is in squared units of the means per bit and is shared by all tensors (equal slopes
    is what minimizes the total squared error at a given total rate).

    >>> q = LloydQuantizer(lam=0.0, max_levels=2)
    >>> out = q.quantize(np.array([0.0, 0.1, 0.2, 5.0, 5.2]), np.ones(5))
    >>> LloydQuantizer.dequantize(out.symbols, out.params, q.config()).round(6).tolist()
    [0.1, 0.1, 0.1, 5.1, 5.1]
    """

    name = "lloyd"
    about = "entropy-constrained Lloyd quantizer of the means"
    knob = Option("lam", None, "squared error per bit", finite_number_at_least_zero, flag="--lambda")
    options = (
        Option("max_levels", 4096, "levels it starts from at most", whole_number),
        Option("max_iter", 500, "Lloyd iterations at most", whole_number),
    )

    @classmethod
    def knob_range(cls, scales: Scales, options: dict) -> tuple[float, float, float]:
        guess = scales.mean_rms**2 / 100
        return guess, 1e-14 * guess, 1e6 * guess

    def __init__(self, lam: float, max_levels: int = 4096, max_iter: int = 500):
        if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not math.isfinite(lam) or lam < 0:
            raise BayesCompressError(f"lambda must be a finite number >= 0, got {lam!r}")
        self.lam = float(lam)
        self.max_levels = _count(max_levels, "Lloyd max_levels")
        self.max_iter = _count(max_iter, "Lloyd max_iter")

    def config(self) -> dict:
        return {"lambda": exact_float(self.lam), "max_levels": self.max_levels, "max_iter": self.max_iter}

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        values = np.asarray(means, dtype=np.float64).ravel()
        levels, costs = ecsq_codebook(values, self.lam, self.max_levels, self.max_iter)
        winners, breaks = parabola_envelope(levels, costs)
        cells = winners[np.searchsorted(breaks, values, side="right")]
        used, symbols = np.unique(cells, return_inverse=True)
        _done(progress, values.size)
        return QuantizedTensor(symbols.astype(np.int64).ravel(), {"codebook": _encode_codebook(levels[used])})

    @staticmethod
    def dequantize(symbols: np.ndarray, params: dict, config: dict) -> np.ndarray:
        return _codebook_lookup(symbols, decode_codebook(params), "Lloyd")


# ------------------------------------------------------------------------------ ablation


class GlobalStdVBQQuantizer(VBQQuantizer):
    """VBQ with every posterior std replaced by one global ``std``: the ablation of uncertainty.

    Only lambda x sigma^2 enters eq. 9, so the global value merely relabels lambda (lambda at
    std s equals lambda s^2 at std 1); the default 1 makes lambda a squared-error price per bit.

    >>> q = GlobalStdVBQQuantizer(lam=0.5, std=0.2, prior="rms")
    >>> q.quantize(np.array([0.3, 0.3]), np.array([1e-3, 1.0])).symbols.tolist()
    [3, 3]
    """

    name = "vbq-nostd"
    about = "VBQ blind to posterior uncertainty (one global std): the ablation"
    options = (Option("std", 1.0, "the one std every latent gets (only relabels lambda)", positive_number,
                      flag="--global-std"),) + VBQQuantizer.options

    @classmethod
    def knob_range(cls, scales: Scales, options: dict) -> tuple[float, float, float]:
        # lambda x global std^2 plays the part of lambda x sigma^2
        scale = (scales.std_rms / options.get("std", 1.0)) ** 2
        return scale, 1e-12 * scale, 1e12 * scale

    def __init__(self, lam: float, std: float = 1.0, max_rate: int = MAX_RATE, prior: str = "tails"):
        super().__init__(lam=lam, max_rate=max_rate, prior=prior)
        self.std = _positive_number(std, "vbq-nostd global std")

    def config(self) -> dict:
        return super().config() | {"std": exact_float(self.std)}

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        means = np.asarray(means)
        return super().quantize(means, np.full(means.shape, self.std), progress)

    def fit_params(self, mean_blocks, strided, size: int) -> dict:
        def global_strided(step):
            means, _ = strided(step)
            return means, np.full(np.shape(means), self.std)

        return super().fit_params(mean_blocks, global_strided, size)

    def quantize_block(self, means: np.ndarray, stds: np.ndarray, params: dict, progress=None) -> np.ndarray:
        means = np.asarray(means)
        return super().quantize_block(means, np.full(means.shape, self.std), params, progress)


class PrunedVBQQuantizer(VBQQuantizer):
    """VBQ on the leading ``keep_share`` of the latents; the rest sent to the prior median (symbol 1).

    The counterpart of ``uniform-pruned``: the same rows kept (the frequent words, for word vectors
    stored in frequency order), so that a sweep compares VBQ with the uniform grid on those rows.
    The prior is fitted to every mean, as ``vbq``'s; with the default centred priors the pruned
    latents decode to exactly 0.

    >>> q = PrunedVBQQuantizer(lam=0.5, prior="rms", keep_share=0.5)
    >>> q.quantize(np.array([0.7, -1.3, 0.9, 2.0]), np.full(4, 0.01)).symbols[2:].tolist()
    [1, 1]
    """

    name = "vbq-pruned"
    about = "VBQ on the leading rows (frequent words), the rest at the prior median"
    options = VBQQuantizer.options + PrunedUniformQuantizer.options
    in_sweep = False
    blockwise = False  # where the kept part ends depends on the whole tensor's size

    def __init__(self, lam: float, max_rate: int = MAX_RATE, prior: str = "tails", keep_share: float = 0.5):
        super().__init__(lam=lam, max_rate=max_rate, prior=prior)
        self.keep_share = checked_keep_share(keep_share)

    def config(self) -> dict:
        return super().config() | {"keep_share": exact_float(self.keep_share)}

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        quantized = super().quantize(means, stds, progress)
        quantized.symbols[kept_latents(self.keep_share, quantized.symbols.size):] = 1  # the prior median
        return quantized
