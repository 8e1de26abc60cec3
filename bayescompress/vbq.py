"""Variational Bayesian Quantization (Yang, Bamler & Mandt 2020): empirical prior and Algorithm 1.

Each latent with posterior N(mu, sigma^2) gets the code point xi = (2k+1)/2^r of the prior's
quantile space that minimizes (F^-1(xi) - mu)^2 + 2 lambda sigma^2 r  (eq. 9).

Symbols are heap indices: the code point (2k+1)/2^r is symbol 2^(r-1) + k, so symbol 1 is the
prior median (r = 1), symbols 2-3 are 1/4 and 3/4, 4-7 are 1/8 ... 7/8, and the rate of a symbol
is its bit length.  Rates stop at MAX_RATE = 53: up to there every code point and its mirror
1 - xi are exact float64 numbers (53-bit significand), and symbols fit in int64.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from . import quantile as basic_quantile
from .errors import BayesCompressError
from .priors import _FIT_SAMPLE as T2_FIT_SAMPLE
from .priors import T2_QUANTILE, StudentT2Prior, lower_t2_quantile
from .quantizers import (
    Option,
    QuantizedTensor,
    Quantizer,
    exact_float,
    finite_number_at_least_zero,
    parse_exact_float,
    whole_number,
)

MAX_RATE = 53
_TABLE_RATE = 20  # code points up to this rate are looked up, not recomputed
_CHUNK = 1 << 18  # latents per vectorized block: bounds memory, keeps arrays in cache
PRIOR_BLOCK = 1 << 16  # latents per partial sum of the empirical prior (see from_blocks)
_UNIT_SCALES = (1e-100, 1e100)  # prior scales outside: the search runs in the prior's units
_CHOICE_SAMPLE = 1 << 16  # latents on which prior=auto compares its two priors
QUANTILE = basic_quantile.NAME  # the code points' quantile function of every archive written now
LEGACY_QUANTILE = "scipy-ndtri"  # version-1 archives (no "quantile" in their config) were written with it
QUANTILES = (QUANTILE, LEGACY_QUANTILE)
PRIORS = ("tails", "auto", "t2", "rms", "fit")  # tails: rms unless it would clip a mean, then t2


@dataclass(frozen=True)
class GaussianPrior:
    """The empirical Gaussian prior N(loc, scale^2) whose quantiles are the code points."""

    loc: float
    scale: float
    quantile = QUANTILE
    family = "normal"

    @classmethod
    def empirical(cls, means: np.ndarray, fit_loc: bool = False) -> GaussianPrior:
        """The paper's embedding prior: loc 0 and scale the RMS of the means.

        With ``fit_loc`` the loc is the mean of the means and the scale their std. A degenerate
        tensor (all means equal) gets scale 1, which puts every latent on the median exactly.

        >>> GaussianPrior.empirical(np.array([3.0, -4.0]))
        GaussianPrior(loc=0.0, scale=3.5355339059327378)
        """
        return cls.from_blocks(lambda: iter((means,)), fit_loc)

    @classmethod
    def from_blocks(cls, blocks, fit_loc: bool = False) -> GaussianPrior:
        """``empirical`` of a tensor read piece by piece: ``blocks()`` yields its means in order.

        Sums are taken per PRIOR_BLOCK latents and added exactly (math.fsum), so the prior is the
        same however the tensor is cut, as long as every piece but the last is a whole number of
        PRIOR_BLOCKs.  ``blocks`` is called once more per pass (two when fitting the loc).
        """
        return cls.from_blocks_and_peak(blocks, fit_loc)[0]

    @classmethod
    def from_blocks_and_peak(cls, blocks, fit_loc: bool = False) -> tuple[GaussianPrior, float]:
        """``from_blocks``, and the largest distance of a mean from the prior's loc, measured in
        the same pass (whether the Gaussian would clip a mean, without reading the means again)."""
        loc = _mean_of_blocks(blocks) if fit_loc else 0.0
        squares, peak, n = [], 0.0, 0
        for part in _prior_blocks(blocks):
            centred = part - loc if fit_loc else part
            peak = max(peak, float(np.max(np.abs(centred))))
            squares.append(float(np.einsum("i,i->", centred, centred)))  # not BLAS: no thread pool
            n += part.size
        if peak == 0.0 or not math.isfinite(peak) or not math.isfinite(loc):
            return cls(loc + 0.0 if math.isfinite(loc) else 0.0, 1.0), peak
        if 1e-150 < peak < 1e150 and n * peak * peak < 1e300:  # no sum of squares can overflow or underflow
            return cls(loc + 0.0, math.sqrt(math.fsum(squares) / n)), peak
        rescaled = []
        for part in _prior_blocks(blocks):
            centred = ((part - loc) if fit_loc else part) / peak
            rescaled.append(float(np.einsum("i,i->", centred, centred)))
        return cls(loc + 0.0, peak * math.sqrt(math.fsum(rescaled) / n)), peak

    def cdf(self, values: np.ndarray) -> np.ndarray:
        from scipy.special import ndtr

        return ndtr((np.asarray(values, dtype=np.float64) - self.loc) / self.scale)

    def near_mass(self, distance: np.ndarray) -> np.ndarray:
        """Prior mass beyond ``distance`` standardized units on one side, exact in the tails."""
        from scipy.special import ndtr  # here, not at the top: unpack never needs scipy (0.2 s to import)

        return ndtr(-distance)


Prior = GaussianPrior | StudentT2Prior


def _prior_blocks(blocks):
    """The pieces ``blocks()`` yields, as float64, cut into PRIOR_BLOCK-latent parts."""
    for block in blocks():
        block = np.asarray(block, dtype=np.float64).ravel()
        for start in range(0, block.size, PRIOR_BLOCK):
            yield block[start:start + PRIOR_BLOCK]


def _mean_of_blocks(blocks) -> float:
    """The mean, as exact partial sums; values near the float64 limit are scaled down first so
    that no sum overflows."""
    sums, peak, n = [], 0.0, 0
    for part in _prior_blocks(blocks):
        with np.errstate(over="ignore"):  # an overflowing sum is redone below, scaled by the peak
            sums.append(float(np.sum(part)))
        peak = max(peak, float(np.max(np.abs(part))))
        n += part.size
    if n == 0:
        return 0.0
    if peak < 1e300:
        return math.fsum(sums) / n
    return peak * math.fsum(float(np.sum(part / peak)) for part in _prior_blocks(blocks)) / n


def symbol_rates(symbols: np.ndarray) -> np.ndarray:
    """Rate r (bit length of the binary code point) of each heap-index symbol.

    >>> symbol_rates(np.array([1, 2, 3, 4, 7, 8]))
    array([1, 2, 2, 3, 3, 4])
    """
    return np.frexp(np.asarray(symbols, dtype=np.int64).astype(np.float64))[1].astype(np.int64)


def code_points(symbols: np.ndarray) -> np.ndarray:
    """Quantile xi = (2k+1)/2^r of each symbol 2^(r-1) + k, exact in float64.

    >>> code_points(np.array([1, 2, 3, 4, 7]))
    array([0.5  , 0.25 , 0.75 , 0.125, 0.875])
    """
    symbols = np.asarray(symbols, dtype=np.int64)
    rates = symbol_rates(symbols)
    numerators = 2 * (symbols - (np.int64(1) << (rates - 1))) + 1
    return np.ldexp(numerators.astype(np.float64), -rates)


def _lower_quantiles(p: np.ndarray, quantile: str) -> np.ndarray:
    """Standard quantile of probabilities in (0, 1/2] by the named function."""
    if quantile == T2_QUANTILE:
        return lower_t2_quantile(p)
    if quantile == LEGACY_QUANTILE:
        from scipy.special import ndtri

        return ndtri(p)
    return basic_quantile.lower_normal_quantile(p)


@functools.lru_cache(maxsize=3)
def _near_side_quantile_table(quantile: str = QUANTILE) -> np.ndarray:
    """Quantile of i / 2^_TABLE_RATE for i in 0 .. 2^(_TABLE_RATE-1): lower half of code points."""
    steps = np.arange((1 << (_TABLE_RATE - 1)) + 1, dtype=np.float64)
    table = np.empty(steps.size)
    table[0] = -np.inf  # 0 is no code point
    table[1:] = _lower_quantiles(np.ldexp(steps[1:], -_TABLE_RATE), quantile)
    table.setflags(write=False)
    return table


def _near_side_quantiles(numerators: np.ndarray, rates: np.ndarray | int, quantile: str) -> np.ndarray:
    """Quantile of m / 2^r for odd m <= 2^(r-1): the standard-normal quantile on the near side."""
    rates = np.broadcast_to(np.asarray(rates, dtype=np.int64), numerators.shape)
    values = np.empty(numerators.shape, dtype=np.float64)
    small = rates <= _TABLE_RATE
    if np.any(small):
        table = _near_side_quantile_table(quantile)
        values[small] = table[numerators[small] << (_TABLE_RATE - rates[small])]
    if not np.all(small):
        big = ~small
        values[big] = _lower_quantiles(np.ldexp(numerators[big].astype(np.float64), -rates[big]), quantile)
    return values


def _exact_standard_quantiles(symbols: np.ndarray, quantile: str) -> np.ndarray:
    rates = symbol_rates(symbols)
    half = np.int64(1) << (rates - 1)
    numerators = 2 * (symbols - half) + 1
    upper = numerators > half
    near = np.where(upper, (np.int64(1) << rates) - numerators, numerators)
    signed = _near_side_quantiles(near, rates, quantile)
    np.negative(signed, out=signed, where=upper)
    return signed


@functools.lru_cache(maxsize=3)
def _short_symbol_quantiles(quantile: str = QUANTILE) -> np.ndarray:
    """Quantiles of every symbol below 2^16 (rates up to 16), so decoding is one gather."""
    short = _exact_standard_quantiles(np.arange(1, 1 << 16, dtype=np.int64), quantile)
    table = np.concatenate(([np.nan], short))
    table.setflags(write=False)
    return table


def standard_quantiles(symbols: np.ndarray, quantile: str = QUANTILE) -> np.ndarray:
    """Standard quantile of each symbol's code point, symmetric by construction.

    Computing the upper half as the negated lower half keeps the tails exact: 1 - xi would
    lose the low bits that xi holds near 1.  ``quantile`` names the function (QUANTILES).
    """
    symbols = np.asarray(symbols, dtype=np.int64)
    table = _short_symbol_quantiles(quantile)
    short = symbols < table.size
    if short.all():
        return table[symbols]
    values = np.empty(symbols.shape, dtype=np.float64)
    values[short] = table[symbols[short]]
    values[~short] = _exact_standard_quantiles(symbols[~short], quantile)
    return values


def code_point_values(symbols: np.ndarray, prior: Prior, quantile: str | None = None) -> np.ndarray:
    """Reconstructed latent F^-1(xi) for each symbol: the value that pack chose and unpack returns.

    ``quantile`` overrides the prior's own quantile function (version-1 archives name ndtri).
    """
    quantiles = standard_quantiles(symbols, quantile or prior.quantile)
    with np.errstate(over="ignore"):  # a prior near the float64 limit: inf, never a stderr line
        return prior.loc + prior.scale * quantiles


def checked_max_rate(value, what: str = "max rate") -> int:
    """``value`` as an int in 1..MAX_RATE, or one BayesCompressError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_RATE:
        raise BayesCompressError(f"{what} must be an integer between 1 and {MAX_RATE}, got {value!r}")
    return int(value)


def choose_code_points(
    means: np.ndarray,
    stds: np.ndarray,
    lam: float,
    prior: Prior,
    max_rate: int = MAX_RATE,
    progress=None,
) -> np.ndarray:
    """Algorithm 1 for every latent at once: the heap-index symbol minimizing eq. 9.

    Rates are tried in increasing order.  At rate r the grid j/2^r has exactly one point of
    rate r between the two grid points enclosing F(mu) (the odd j); the even one was already
    tried at a lower rate.  A latent stops as soon as its best loss cannot be beaten by any
    higher rate, i.e. best <= 2 lambda sigma^2 (r+1), the paper's early termination.  Ties go
    to the lower rate, then to the smaller code point.

    >>> prior = GaussianPrior(0.0, 1.0)
    >>> symbols = choose_code_points(np.array([0.0, 0.7, -1.3]), np.array([1.0, 0.001, 0.1]), 1.0, prior)
    >>> symbols, symbol_rates(symbols)
    (array([  1, 112,   4]), array([1, 7, 3]))
    """
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
        raise BayesCompressError(f"lambda must be a finite number >= 0, got {lam!r}")
    max_rate = checked_max_rate(max_rate)
    means = np.asarray(means, dtype=np.float64).ravel()
    stds = np.asarray(stds, dtype=np.float64).ravel()
    symbols = np.empty(means.size, dtype=np.int64)
    for start in range(0, means.size, _CHUNK):
        stop = min(start + _CHUNK, means.size)
        symbols[start:stop] = _choose_block(
            means[start:stop], stds[start:stop], float(lam), prior, int(max_rate)
        )
        if progress is not None:
            progress.update(stop - start)
    return symbols


def _choose_block(
    means: np.ndarray, stds: np.ndarray, lam: float, prior: Prior, max_rate: int
) -> np.ndarray:
    with np.errstate(over="ignore"):  # extreme finite means or stds give infinite losses, compared as such
        if not _UNIT_SCALES[0] < prior.scale < _UNIT_SCALES[1]:
            # losses in the prior's own units: squared distances of 1e-160-sized means underflow
            # to 0 (every latent would tie with the median), those of 1e200-sized ones overflow
            unit = replace(prior, loc=prior.loc / prior.scale, scale=1.0)
            return _search_block(means / prior.scale, stds / prior.scale, lam, unit, max_rate)
        return _search_block(means, stds, lam, prior, max_rate)


def _search_block(
    means: np.ndarray, stds: np.ndarray, lam: float, prior: Prior, max_rate: int
) -> np.ndarray:
    standardized = (means - prior.loc) / prior.scale
    upper = standardized > 0
    near_mass = prior.near_mass(np.abs(standardized))  # F(mu) measured from the nearer end, exact in tails
    # eq. 9: 2 lambda sigma^2 per bit (lambda 0 means no penalty, even where sigma^2 overflows)
    penalty = 2.0 * lam * np.square(stds) if lam > 0 else np.zeros(stds.shape)

    median = prior.loc + prior.scale * 0.0  # the quantile of 1/2 in every quantile function
    best_loss = np.square(median - means) + penalty * 1
    best_symbol = np.ones(means.size, dtype=np.int64)
    active = np.flatnonzero(best_loss > penalty * 2)
    table = _near_side_quantile_table(prior.quantile)

    for rate in range(2, max_rate + 1):
        if active.size == 0:
            break
        scaled = np.ldexp(near_mass[active], rate)
        floor = np.floor(scaled)
        lower_grid = floor.astype(np.int64)
        half = np.int64(1) << (rate - 1)
        # the grid point of exactly this rate next to F(mu); a mass that rounded to 1/2 (a mean
        # within an ulp of the median but not on it) takes the one on its own side of the median
        odd = np.minimum(lower_grid | 1, half - 1)
        # F(mu) exactly on an even grid point in (0, 1/2) was met at a lower rate; 0 is no code point
        fresh = ~((scaled == floor) & ((lower_grid & 1) == 0) & (lower_grid > 0) & (lower_grid < half))
        if rate <= _TABLE_RATE:
            quantile = table[odd << (_TABLE_RATE - rate)]
        else:
            quantile = _lower_quantiles(np.ldexp(odd.astype(np.float64), -rate), prior.quantile)
        is_upper = upper[active]
        quantile = np.where(is_upper, -quantile, quantile)
        values = prior.loc + prior.scale * quantile
        loss = np.square(values - means[active]) + penalty[active] * rate
        better = fresh & (loss < best_loss[active])
        if np.any(better):
            chosen = active[better]
            grid = np.where(is_upper[better], (np.int64(1) << rate) - odd[better], odd[better])
            best_symbol[chosen] = (np.int64(1) << (rate - 1)) + (grid >> 1)
            best_loss[chosen] = loss[better]
        active = active[best_loss[active] > penalty[active] * (rate + 1)]
    return best_symbol


def rate_distortion_loss(
    symbols: np.ndarray, means: np.ndarray, stds: np.ndarray, lam: float, prior: Prior
) -> np.ndarray:
    """Eq. 9 evaluated at given symbols, with the same float operations Algorithm 1 uses."""
    values = code_point_values(symbols, prior)
    return np.square(values - means) + (2.0 * lam * np.square(stds)) * symbol_rates(symbols)


def empirical_prior(means: np.ndarray, kind: str) -> Prior:
    """The tensor's prior of family ``kind``: t2 (Student-t fit), rms or fit (Gaussians)."""
    if kind == "t2":
        return StudentT2Prior.empirical(means)
    return GaussianPrior.empirical(means, fit_loc=kind == "fit")


def prior_and_symbols(
    means: np.ndarray, stds: np.ndarray, lam: float, kind: str, max_rate: int = MAX_RATE
) -> tuple[Prior, np.ndarray]:
    """The prior of family ``kind`` (``choose_prior``) and Algorithm 1's symbols under it."""
    means = np.asarray(means, dtype=np.float64).ravel()
    stds = np.asarray(stds, dtype=np.float64).ravel()
    prior = choose_prior(kind, lambda: iter((means,)), lambda step: (means[::step], stds[::step]),
                         means.size, lam, max_rate)
    return prior, choose_code_points(means, stds, lam, prior, max_rate)


def choose_prior(kind: str, mean_blocks, strided, size: int, lam: float, max_rate: int = MAX_RATE) -> Prior:
    """``_fitted_prior`` at the precision the header stores (``stored_precision``)."""
    return stored_precision(_fitted_prior(kind, mean_blocks, strided, size, lam, max_rate))


_FLOAT32_NORMAL = (2.0**-126, 2.0**127)  # float32 holds these magnitudes with 24 significant bits


def stored_precision(prior: Prior) -> Prior:
    """The prior with loc and scale rounded to float32 where float32 holds them with full
    precision (the scale upwards, so the outermost code point never moves inwards).

    An empirical prior needs no 53 significant bits, and a version-4 header stores a float32 in
    4 bytes instead of 8; the decoder uses exactly the stored value, as the encoder did.

    >>> stored_precision(GaussianPrior(0.0, 0.1))
    GaussianPrior(loc=0.0, scale=0.10000000149011612)
    """
    loc, scale = prior.loc, prior.scale
    if loc == 0 or _FLOAT32_NORMAL[0] <= abs(loc) <= _FLOAT32_NORMAL[1]:
        loc = float(np.float32(loc)) + 0.0
    if _FLOAT32_NORMAL[0] <= scale <= _FLOAT32_NORMAL[1]:
        rounded = np.float32(scale)
        if float(rounded) < scale:
            rounded = np.nextafter(rounded, np.float32(np.inf))
        scale = float(rounded)
    return type(prior)(loc, scale)


def _fitted_prior(kind: str, mean_blocks, strided, size: int, lam: float, max_rate: int = MAX_RATE) -> Prior:
    """The prior of family ``kind`` (``tails``: rms unless it would clip a mean, then t2; ``auto``:
    the cheaper of t2 and rms), from the tensor's
    means read in blocks (``mean_blocks()``) and evenly strided samples (``strided(step)`` ->
    means[::step], stds[::step]), so that a tensor read piece by piece gets the same prior.

    ``auto`` compares eq. 9 summed over the tensor, each latent's term divided by 2 lambda
    sigma^2, with the symbols' empirical code lengths in place of the rates: the bits the file
    will spend plus the distortion priced at lambda's exchange rate.  At lambda 0 the smaller
    distortion wins.  A tensor with a mean beyond the Gaussian's outermost code point gets t2
    (the Gaussian would clip it); above _CHOICE_SAMPLE latents the costs are compared on an
    evenly strided sample.
    """
    if kind in ("rms", "fit"):
        return GaussianPrior.from_blocks(mean_blocks, fit_loc=kind == "fit")
    def fitted_t2() -> StudentT2Prior:
        return StudentT2Prior.empirical(strided(size // T2_FIT_SAMPLE if size > T2_FIT_SAMPLE else 1)[0])

    if kind == "t2":
        return fitted_t2()
    gaussian, farthest = GaussianPrior.from_blocks_and_peak(mean_blocks)
    if _gaussian_clips(gaussian, farthest, max_rate):
        return fitted_t2()
    if kind == "tails":
        return gaussian
    t2 = fitted_t2()
    sample_means, sample_stds = strided(max(1, size // _CHOICE_SAMPLE))
    sample_means = np.asarray(sample_means, dtype=np.float64)
    sample_stds = np.asarray(sample_stds, dtype=np.float64)
    costs = []
    for prior in (t2, gaussian):
        symbols = choose_code_points(sample_means, sample_stds, lam, prior, max_rate)
        costs.append(_tensor_cost(symbols, code_point_values(symbols, prior), sample_means, sample_stds, lam))
    return t2 if costs[0] <= costs[1] else gaussian


def _gaussian_clips(gaussian: GaussianPrior, farthest: float, max_rate: int) -> bool:
    """Whether a mean ``farthest`` from the loc lies beyond the Gaussian's outermost code point."""
    reach = code_point_values(np.array([(1 << max_rate) - 1]), gaussian)[0]
    return farthest > reach - gaussian.loc


def _tensor_cost(symbols, values, means, stds, lam: float) -> tuple[float, float]:
    """(bits + distortion / (2 lambda), 0) or, at lambda 0, (distortion, bits); compared as tuples."""
    means = np.asarray(means, dtype=np.float64).ravel()
    stds = np.asarray(stds, dtype=np.float64).ravel()
    _, counts = np.unique(symbols, return_counts=True)
    bits = float(-np.sum(counts * np.log2(counts / symbols.size)))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        distortion = float(np.sum(np.square((values - means) / stds)))
    if not math.isfinite(distortion):
        distortion = math.inf
    if lam == 0:
        return distortion, bits
    return bits + distortion / (2.0 * lam), 0.0


def prior_params(prior: Prior) -> dict:
    """The tensor header's parameters of a prior: loc and scale as exact floats, and a t2's family."""
    params = {"loc": exact_float(prior.loc), "scale": exact_float(prior.scale)}
    return params | {"family": prior.family} if isinstance(prior, StudentT2Prior) else params


def prior_from_params(params: dict) -> Prior:
    """The prior a tensor header describes (no family: the Gaussian of every archive before t2)."""
    family = params.get("family", "normal")
    if family not in ("normal", "t2"):
        raise BayesCompressError(f"archive header: unknown prior family {family!r}")
    loc = parse_exact_float(params.get("loc"), "prior loc")
    scale = parse_exact_float(params.get("scale"), "prior scale")
    if not scale > 0:
        raise BayesCompressError("archive header: prior scale must be > 0")
    return StudentT2Prior(loc, scale) if family == "t2" else GaussianPrior(loc, scale)


class VBQQuantizer(Quantizer):
    """VBQ behind the common quantizer interface: one empirical prior per tensor, one lambda.

    >>> q = VBQQuantizer(lam=0.5, prior="rms")
    >>> out = q.quantize(np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.1, 0.01]))
    >>> VBQQuantizer.dequantize(out.symbols, out.params, q.config()).round(3).tolist()
    [0.0, 0.871, -1.981]
    """

    name = "vbq"
    about = "Variational Bayesian Quantization (the paper's Algorithm 1)"
    knob = Option("lam", None, "rate penalty: larger means smaller files", finite_number_at_least_zero,
                  flag="--lambda")
    options = (
        Option("max_rate", MAX_RATE, f"longest code point in bits (1..{MAX_RATE})", whole_number),
        Option("prior", "tails", "empirical prior per tensor: tails (default) = rms unless a mean lies "
               "beyond its outermost code point, then t2; t2 = Student-t(2) fitted to the means "
               "(reaches every weight); rms = N(0, RMS of means) as in the paper; fit = N(mean, std); "
               "auto = whichever of t2 and rms costs fewer bits at lambda's price of distortion",
               str, choices=PRIORS),
    )

    def __init__(self, lam: float, max_rate: int = MAX_RATE, prior: str = "tails"):
        if prior not in PRIORS:
            raise BayesCompressError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
            raise BayesCompressError(f"lambda must be a finite number >= 0, got {lam!r}")
        self.lam = float(lam)
        self.max_rate = checked_max_rate(max_rate)
        self.prior = prior

    def config(self) -> dict:
        return {"lambda": exact_float(self.lam), "max_rate": self.max_rate, "prior": self.prior,
                "quantile": QUANTILE}

    blockwise = True  # quantize_block needs only fit_params' result, not the whole tensor

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        prior, symbols = prior_and_symbols(means, stds, self.lam, self.prior, self.max_rate)
        if progress is not None:
            progress.update(symbols.size)
        return QuantizedTensor(symbols, prior_params(prior))

    def fit_params(self, mean_blocks, strided, size: int) -> dict:
        """The tensor's prior (as ``quantize`` chooses it) from its means read block by block
        (``mean_blocks()``) and evenly strided samples (``strided(step)`` -> means, stds)."""
        return prior_params(choose_prior(self.prior, mean_blocks, strided, size, self.lam, self.max_rate))

    def quantize_block(self, means: np.ndarray, stds: np.ndarray, params: dict, progress=None) -> np.ndarray:
        """Symbols for a piece of the tensor, given the whole tensor's ``fit_params``."""
        return choose_code_points(means, stds, self.lam, prior_from_params(params), self.max_rate, progress)

    @staticmethod
    def dequantize(symbols: np.ndarray, params: dict, config: dict) -> np.ndarray:
        prior = prior_from_params(params)
        symbols = np.asarray(symbols, dtype=np.int64)
        max_rate = checked_max_rate(config.get("max_rate", MAX_RATE), "archive header: VBQ max rate")
        quantile = config.get("quantile", LEGACY_QUANTILE)
        if quantile not in QUANTILES:
            raise BayesCompressError(f"archive header: unknown quantile function {quantile!r}")
        if isinstance(prior, StudentT2Prior) and quantile != QUANTILE:
            raise BayesCompressError("archive header: a t2 prior in an archive of the first version")
        if symbols.size and (symbols.min() < 1 or symbols.max() >= (1 << max_rate)):
            raise BayesCompressError("archive holds a VBQ symbol outside the code point range")
        return code_point_values(symbols, prior, quantile if isinstance(prior, GaussianPrior) else None)
