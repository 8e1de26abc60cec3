"""The quantizer interface and the registry of methods that ``pack`` and ``sweep`` look up by name.

A quantizer turns a tensor's posterior (means, stds) into integer symbols plus the parameters
needed to turn symbols back into values; it never sees the coder or the archive.
"""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .errors import BayesCompressError

# name -> "module:class"; imported only when used so that each method's code loads lazily
REGISTRY = {
    "vbq": "bayescompress.vbq:VBQQuantizer",
    "vbq-refined": "bayescompress.refine:RefinedVBQQuantizer",
    "vbq-nostd": "bayescompress.baselines:GlobalStdVBQQuantizer",
    "uniform": "bayescompress.baselines:UniformQuantizer",
    "kmeans": "bayescompress.baselines:KMeansQuantizer",
    "lloyd": "bayescompress.baselines:LloydQuantizer",
}


@dataclass
class QuantizedTensor:
    """Symbols chosen for one tensor (flattened, int64) and what decoding them needs."""

    symbols: np.ndarray
    params: dict = field(default_factory=dict)


class Quantizer(Protocol):
    name: str

    def config(self) -> dict:
        """Archive-wide settings, JSON-ready with exact floats (see ``exact_float``)."""

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        """Choose a symbol per latent."""

    @staticmethod
    def dequantize(symbols: np.ndarray, params: dict, config: dict) -> np.ndarray:
        """Values (float64) for symbols, from the stored parameters alone."""


def quantizer_class(name: str):
    """The quantizer class registered under ``name``."""
    if name not in REGISTRY:
        raise BayesCompressError(f"unknown method {name!r} (methods: {', '.join(sorted(REGISTRY))})")
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_quantizer(name: str, **options) -> Quantizer:
    """An instance of method ``name``; options it does not take are a user error, not a TypeError."""
    cls = quantizer_class(name)
    try:
        inspect.signature(cls).bind(**options)
    except TypeError:
        taken = [p for p in inspect.signature(cls).parameters]
        given = ", ".join(sorted(options)) or "none"
        raise BayesCompressError(
            f"method {name!r} takes options {', '.join(taken)}; got {given}"
        ) from None
    return cls(**options)


def exact_float(value: float) -> str:
    """A float64 as a hex string, so JSON headers carry it bit for bit.

    >>> exact_float(0.1), parse_exact_float(exact_float(0.1)) == 0.1
    ('0x1.999999999999ap-4', True)
    """
    return float(value).hex()


def parse_exact_float(text, what: str = "value") -> float:
    try:
        value = float.fromhex(text)
    except (TypeError, ValueError, OverflowError) as exc:
        shown = repr(text) if len(repr(text)) <= 60 else repr(text)[:57] + "..."
        raise BayesCompressError(f"archive header: {what} {shown} is not a finite hex float") from exc
    if not math.isfinite(value):
        raise BayesCompressError(f"archive header: {what} is not finite")
    return value
