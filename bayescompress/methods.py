"""What rate control and sweeps need to know about each pack method: quantizer, coder and rate knob.

A method is a quantizer plus a coder ("uniform+lzma"); ``gzip``, ``bzip2`` and ``lzma`` alone
name the paper's baselines (the uniform grid through that compressor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .coders import BASELINE_CODERS, CODER_NAMES
from .errors import BayesCompressError
from .posterior import Posterior
from .quantizers import Knob, Scales, quantizer_class, quantizer_classes

__all__ = ["Knob", "Method", "default_methods", "knob_for", "parse_method", "posterior_scales"]


@dataclass(frozen=True)
class Method:
    """A named pack method: which quantizer, which coder, and the fixed options of the quantizer."""

    label: str
    quantizer: str
    coder: str
    options: tuple = ()

    def knob(self, posterior: Posterior) -> Knob:
        return knob_for(self.quantizer, posterior, dict(self.options))


def default_methods() -> tuple[str, ...]:
    """What ``sweep`` runs by default: every quantizer marked ``in_sweep``, then the byte-coder baselines."""
    quantizers = tuple(name for name, cls in quantizer_classes().items() if cls.in_sweep)
    return quantizers + BASELINE_CODERS


def parse_method(text: str) -> Method:
    """``vbq``, ``uniform``, ``gzip`` (= uniform+gzip), or ``QUANTIZER+CODER``.

    >>> parse_method("lzma")
    Method(label='lzma', quantizer='uniform', coder='lzma', options=())
    >>> parse_method("kmeans+bzip2").coder
    'bzip2'
    """
    text = text.strip()
    if text in BASELINE_CODERS:
        return Method(text, "uniform", text)
    quantizer, _, coder = text.partition("+")
    coder = coder or "range"
    known = quantizer_classes()
    if quantizer not in known:
        raise BayesCompressError(f"unknown method {quantizer!r} (methods: "
                                 f"{', '.join(sorted(known) + list(BASELINE_CODERS))})")
    if coder not in CODER_NAMES:
        raise BayesCompressError(f"unknown coder {coder!r} in method {text!r} "
                                 f"(coders: {', '.join(CODER_NAMES)})")
    return Method(text, quantizer, coder)


def posterior_scales(posterior: Posterior) -> Scales:
    """RMS of all means and RMS of all stds (each at least a tiny positive number)."""
    total = posterior.n_latents
    mean_sq = sum(float(np.sum(np.square(t.mean, dtype=np.float64))) for t in posterior.tensors.values())
    std_sq = sum(float(np.sum(np.square(t.std, dtype=np.float64))) for t in posterior.tensors.values())
    return Scales(max(math.sqrt(mean_sq / total), 1e-300), max(math.sqrt(std_sq / total), 1e-300))


def knob_for(quantizer: str, posterior: Posterior, options: dict | None = None) -> Knob:
    """The rate knob of ``quantizer`` with a guess and limits scaled to this posterior."""
    return quantizer_class(quantizer).rate_knob(posterior_scales(posterior), options or {})
