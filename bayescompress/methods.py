"""What rate control and sweeps need to know about each pack method: quantizer, coder and rate knob.

A method is a quantizer plus a coder ("uniform+lzma"); ``gzip``, ``bzip2`` and ``lzma`` alone
name the paper's baselines (the uniform grid through that compressor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import BayesCompressError
from .posterior import Posterior
from .quantizers import REGISTRY, quantizer_class

CODERS = ("range", "gzip", "bzip2", "lzma")


@dataclass(frozen=True)
class Knob:
    """The quantizer option that sets the rate.

    ``shrinks`` is True when raising the knob makes files smaller.  The search runs in log space
    between ``lowest`` and ``highest`` (absolute values, from the posterior's scale).
    """

    option: str
    shrinks: bool
    guess: float
    lowest: float
    highest: float
    integer: bool = False

    def value(self, log_value: float) -> float | int:
        value = math.exp(log_value)
        return max(1, round(value)) if self.integer else value


@dataclass(frozen=True)
class Method:
    """A named pack method: which quantizer, which coder, and the fixed options of the quantizer."""

    label: str
    quantizer: str
    coder: str
    options: tuple = ()

    def knob(self, posterior: Posterior) -> Knob:
        return knob_for(self.quantizer, posterior, dict(self.options))


def parse_method(text: str) -> Method:
    """``vbq``, ``uniform``, ``gzip`` (= uniform+gzip), or ``QUANTIZER+CODER``.

    >>> parse_method("lzma")
    Method(label='lzma', quantizer='uniform', coder='lzma', options=())
    >>> parse_method("kmeans+bzip2").coder
    'bzip2'
    """
    text = text.strip()
    if text in CODERS[1:]:
        return Method(text, "uniform", text)
    quantizer, _, coder = text.partition("+")
    coder = coder or "range"
    if quantizer not in REGISTRY:
        raise BayesCompressError(f"unknown method {quantizer!r} (methods: "
                                 f"{', '.join(sorted(REGISTRY) + list(CODERS[1:]))})")
    if coder not in CODERS:
        raise BayesCompressError(f"unknown coder {coder!r} in method {text!r} (coders: {', '.join(CODERS)})")
    return Method(text, quantizer, coder)


def _scales(posterior: Posterior) -> tuple[float, float]:
    """RMS of all means and RMS of all stds (each at least a tiny positive number)."""
    total = posterior.n_latents
    mean_sq = sum(float(np.sum(np.square(t.mean, dtype=np.float64))) for t in posterior.tensors.values())
    std_sq = sum(float(np.sum(np.square(t.std, dtype=np.float64))) for t in posterior.tensors.values())
    return max(math.sqrt(mean_sq / total), 1e-300), max(math.sqrt(std_sq / total), 1e-300)


def knob_for(quantizer: str, posterior: Posterior, options: dict | None = None) -> Knob:
    """The rate knob of ``quantizer`` with a guess and limits scaled to this posterior."""
    options = options or {}
    quantizer_class(quantizer)  # an unknown method is named as such
    mean_rms, std_rms = _scales(posterior)
    if quantizer in ("vbq", "vbq-refined"):
        return Knob("lam", True, 1.0, 1e-12, 1e12)
    if quantizer == "vbq-nostd":  # lambda x global std^2 plays the part of lambda x sigma^2
        scale = (std_rms / options.get("std", 1.0)) ** 2
        return Knob("lam", True, scale, 1e-12 * scale, 1e12 * scale)
    if quantizer == "uniform":
        guess = mean_rms / 8
        return Knob("spacing", True, guess, 1e-9 * guess, 1e4 * guess)
    if quantizer == "lloyd":
        guess = mean_rms**2 / 100
        return Knob("lam", True, guess, 1e-14 * guess, 1e6 * guess)
    if quantizer == "kmeans":
        return Knob("k", False, 16, 1, 1 << 16, integer=True)
    raise BayesCompressError(f"method {quantizer!r} has no rate knob known to rate control")
