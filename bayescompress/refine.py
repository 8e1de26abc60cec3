"""VBQ refined with real code lengths: eq. 9 with the previous pass's -log2 p(s) in place of the bit length r.

The paper ranks code points by their bit length r as a proxy for what they will cost once entropy
coded (supplement S1.3); this re-runs the choice with the costs the range coder actually charged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .coding import symbol_counts
from .errors import BayesCompressError
from .quantizers import Option, QuantizedTensor, whole_number
from .vbq import (
    MAX_RATE,
    Prior,
    VBQQuantizer,
    choose_code_points,
    code_point_values,
    prior_and_symbols,
    prior_params,
    symbol_rates,
)

_CHUNK = 1 << 18


@dataclass(frozen=True)
class CodeLengths:
    """What each VBQ symbol costs in bits under one pass's symbol frequencies.

    A symbol of the pass costs min(-log2 p(s), escape_bits + r(s)); any other symbol costs
    escape_bits + r(s): the escape, then about r bits for its length code and raw payload (the
    coder's route for symbols outside its table).  ``escape_bits`` = log2(N + 1) for N coded
    symbols: an escape never seen.  (The coder's table keeps only the symbols that pay for their
    entry, and codes the others about as well as their frequencies say: escapes whose raw codes
    are uneven have their leading bits modeled, so the frequencies are the better guide.)

    >>> lengths = CodeLengths.from_symbols(np.repeat([1, 2, 3], [600, 300, 100]))
    >>> lengths.of(np.array([1, 2, 3, 4])).round(3).tolist()
    [0.737, 1.737, 3.322, 12.967]
    """

    symbols: np.ndarray
    bits: np.ndarray
    escape_bits: float

    @classmethod
    def from_symbols(cls, symbols: np.ndarray) -> CodeLengths:
        unique, counts = symbol_counts(np.asarray(symbols, dtype=np.int64))
        total = int(counts.sum())
        bits = np.log2(total / counts.astype(np.float64))
        return cls(unique, bits, math.log2(total + 1))

    def of(self, symbols: np.ndarray) -> np.ndarray:
        """Code length in bits of each symbol, by the rule above."""
        symbols = np.asarray(symbols, dtype=np.int64)
        lengths = self.escape_bits + symbol_rates(symbols).astype(np.float64)
        where = np.searchsorted(self.symbols, symbols)
        found = where < self.symbols.size
        found[found] = self.symbols[where[found]] == symbols[found]
        lengths[found] = np.minimum(lengths[found], self.bits[where[found]])
        return lengths


def refined_loss(symbols, means, stds, lam: float, prior: Prior, lengths: CodeLengths) -> np.ndarray:
    """(F^-1(xi) - mu)^2 + 2 lambda sigma^2 L(s): eq. 9 with code lengths L in place of r."""
    values = code_point_values(symbols, prior)
    return np.square(values - means) + (2.0 * lam * np.square(stds)) * lengths.of(symbols)


def choose_with_code_lengths(
    means: np.ndarray,
    stds: np.ndarray,
    lam: float,
    prior: Prior,
    lengths: CodeLengths,
    max_rate: int = MAX_RATE,
    fallback: np.ndarray | None = None,
    progress=None,
) -> np.ndarray:
    """Every latent's symbol minimizing ``refined_loss``, exactly, over all code points up to max_rate.

    The minimum over symbols costed escape_bits + r(s) (every symbol has that route) is
    Algorithm 1's choice, since a constant added to r moves no argmin; ``fallback`` passes it in
    when already known.  The minimum over the table's symbols is a search outward from mu in
    value order on both sides, which stops on a side once distance^2 + penalty x (cheapest
    code length further out) cannot beat the best so far; the bound is exact in floating point,
    so nothing that could win is skipped.  Ties go to the table symbol.

    Here Algorithm 1 would pick symbols [6, 3]; symbol 6 is not in the table and costs 13 bits:

    >>> from bayescompress.vbq import GaussianPrior
    >>> prior = GaussianPrior(0.0, 1.0)
    >>> lengths = CodeLengths.from_symbols(np.repeat([1, 2, 3], [600, 300, 100]))
    >>> choose_with_code_lengths(np.array([0.3, 0.6]), np.ones(2), 0.01, prior, lengths).tolist()
    [1, 3]
    """
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
        raise BayesCompressError(f"lambda must be a finite number >= 0, got {lam!r}")
    means = np.asarray(means, dtype=np.float64).ravel()
    stds = np.asarray(stds, dtype=np.float64).ravel()
    if fallback is None:
        fallback = choose_code_points(means, stds, lam, prior, max_rate)
    usable = symbol_rates(lengths.symbols) <= max_rate
    table, bits = lengths.symbols[usable], lengths.bits[usable]
    values = code_point_values(table, prior)
    order = np.argsort(values, kind="stable")
    sorted_table = _SortedTable(table[order], values[order], bits[order])
    chosen = np.empty(means.size, dtype=np.int64)
    for start in range(0, means.size, _CHUNK):
        stop = min(start + _CHUNK, means.size)
        block = slice(start, stop)
        penalty = 2.0 * lam * np.square(stds[block])
        escape_cost = np.square(code_point_values(fallback[block], prior) - means[block]) + penalty * (
            lengths.escape_bits + symbol_rates(fallback[block]).astype(np.float64))
        table_cost, table_symbol = sorted_table.best(means[block], penalty)
        chosen[block] = np.where(table_cost <= escape_cost, table_symbol, fallback[block])
        if progress is not None:
            progress.update(stop - start)
    return chosen


class _SortedTable:
    """Table symbols sorted by value, with the cheapest code length at or beyond each rank."""

    def __init__(self, symbols: np.ndarray, values: np.ndarray, bits: np.ndarray):
        self.symbols, self.values, self.bits = symbols, values, bits
        self.cheapest_left = np.minimum.accumulate(bits) if bits.size else bits
        self.cheapest_right = np.minimum.accumulate(bits[::-1])[::-1] if bits.size else bits

    def best(self, means: np.ndarray, penalty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lowest (value - mu)^2 + penalty x bits over the table, and its symbol, per latent."""
        n, size = means.size, self.values.size
        best = np.full(n, np.inf)
        best_rank = np.zeros(n, dtype=np.int64)
        if size == 0:
            return best, np.ones(n, dtype=np.int64)
        split = np.searchsorted(self.values, means, side="left")  # values[split-1] < mu <= values[split]
        left, right = np.arange(n), np.arange(n)
        step = 0
        while left.size or right.size:
            left = self._visit(left, split[left] - 1 - step, self.cheapest_left, means, penalty,
                               best, best_rank)
            right = self._visit(right, split[right] + step, self.cheapest_right, means, penalty,
                                best, best_rank)
            step += 1
        return best, self.symbols[best_rank]

    def _visit(self, active, ranks, cheapest, means, penalty, best, best_rank):
        inside = (ranks >= 0) & (ranks < self.values.size)
        active, ranks = active[inside], ranks[inside]
        distance = np.square(self.values[ranks] - means[active])
        hopeful = distance + penalty[active] * cheapest[ranks] < best[active]
        active, ranks, distance = active[hopeful], ranks[hopeful], distance[hopeful]
        cost = distance + penalty[active] * self.bits[ranks]
        better = cost < best[active]
        best[active[better]] = cost[better]
        best_rank[active[better]] = ranks[better]
        return active


class RefinedVBQQuantizer(VBQQuantizer):
    """VBQ, then ``passes`` re-runs of the choice with the code lengths of the pass before.

    Pass 0 is Algorithm 1 (the paper); pass p minimizes eq. 9 with the code lengths L(s) of
    pass p-1's frequency table (``CodeLengths``) in place of r.  Symbols and decoding are VBQ's.

    >>> rng = np.random.default_rng(0)
    >>> means, stds = rng.normal(size=1000), np.full(1000, 0.1)
    >>> plain = VBQQuantizer(lam=1.0).quantize(means, stds).symbols
    >>> refined = RefinedVBQQuantizer(lam=1.0, passes=2).quantize(means, stds).symbols
    >>> bool(np.array_equal(RefinedVBQQuantizer(lam=1.0, passes=0).quantize(means, stds).symbols, plain))
    True
    >>> len(np.unique(plain)), len(np.unique(refined))
    (26, 19)
    """

    name = "vbq-refined"
    blockwise = False  # the code lengths come from the whole tensor's symbols
    about = "VBQ re-run with the real code lengths of the pass before"
    options = (Option("passes", 2, "refinement passes (0..20)", whole_number),) + VBQQuantizer.options
    in_sweep = False

    def __init__(self, lam: float, passes: int = 2, max_rate: int = MAX_RATE, prior: str = "tails"):
        super().__init__(lam=lam, max_rate=max_rate, prior=prior)
        if isinstance(passes, bool) or not isinstance(passes, (int, np.integer)) or not 0 <= passes <= 20:
            raise BayesCompressError(f"refinement passes must be an integer in 0..20, got {passes!r}")
        self.passes = int(passes)

    def config(self) -> dict:
        return super().config() | {"passes": self.passes}

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        prior, first = prior_and_symbols(means, stds, self.lam, self.prior, self.max_rate)
        symbols = first
        for _ in range(self.passes):
            lengths = CodeLengths.from_symbols(symbols)
            symbols = choose_with_code_lengths(means, stds, self.lam, prior, lengths, self.max_rate, first)
        if progress is not None:
            progress.update(symbols.size)
        return QuantizedTensor(symbols, prior_params(prior))
