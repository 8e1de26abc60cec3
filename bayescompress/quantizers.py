"""The quantizer interface and the registry of methods that ``pack`` and ``sweep`` look up by name.

A quantizer turns a tensor's posterior (means, stds) into integer symbols plus the parameters
needed to turn symbols back into values; it never sees the coder or the archive.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import BayesCompressError

# the modules that define quantizers: each class there that subclasses Quantizer and sets a
# ``name`` registers itself; they are imported on the first lookup, so that `import` stays cheap
QUANTIZER_MODULES = ("bayescompress.vbq", "bayescompress.refine", "bayescompress.baselines")
_CLASSES: dict[str, type[Quantizer]] = {}


@dataclass
class QuantizedTensor:
    """Symbols chosen for one tensor (flattened, int64) and what decoding them needs."""

    symbols: np.ndarray
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Option:
    """A quantizer option: its keyword, default, help, and how command-line text becomes a value.

    ``parse`` raises ValueError (or BayesCompressError) on bad text; ``flag`` is the command-line
    spelling (default ``--`` + the keyword with dashes).
    """

    name: str
    default: object
    help: str
    parse: Callable[[str], object] = float
    flag: str | None = None
    choices: tuple = ()

    @property
    def command_line_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Knob:
    """The quantizer option that sets the rate, with a search range scaled to one posterior.

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
class Scales:
    """RMS of a posterior's means and of its stds: what rate knobs scale their search range by."""

    mean_rms: float
    std_rms: float


class Quantizer:
    """Base of every quantizer: a subclass that sets ``name`` is a method ``pack --method`` knows.

    A subclass declares ``knob`` (the Option that sets the rate), ``shrinks`` (raising the knob
    makes files smaller), ``options`` (the other keywords of ``__init__``), ``in_sweep`` (part of
    the default sweep) and ``about``; it implements ``config``, ``quantize`` and ``dequantize``,
    and ``knob_range`` when the default range (a lambda near 1) does not fit.
    """

    name: str
    about: str = ""
    knob: Option
    shrinks: bool = True
    integer_knob: bool = False
    options: tuple[Option, ...] = ()
    in_sweep: bool = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is None:
            return
        if name in _CLASSES and _CLASSES[name].__qualname__ != cls.__qualname__:
            raise TypeError(f"two quantizers are named {name!r}")
        _CLASSES[name] = cls

    @classmethod
    def knob_range(cls, scales: Scales, options: dict) -> tuple[float, float, float]:
        """Guess, lowest and highest knob value for a posterior of these scales."""
        return 1.0, 1e-12, 1e12

    @classmethod
    def rate_knob(cls, scales: Scales, options: dict | None = None) -> Knob:
        guess, lowest, highest = cls.knob_range(scales, options or {})
        return Knob(cls.knob.name, cls.shrinks, guess, lowest, highest, integer=cls.integer_knob)

    @classmethod
    def option_names(cls) -> list[str]:
        return [cls.knob.name] + [option.name for option in cls.options]

    def config(self) -> dict:
        """Archive-wide settings, JSON-ready with exact floats (see ``exact_float``)."""
        raise NotImplementedError

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        """Choose a symbol per latent."""
        raise NotImplementedError

    @staticmethod
    def dequantize(symbols: np.ndarray, params: dict, config: dict) -> np.ndarray:
        """Values (float64) for symbols, from the stored parameters alone."""
        raise NotImplementedError


def quantizer_classes() -> dict[str, type[Quantizer]]:
    """Every registered method, name -> class, in the order their modules define them."""
    for module_name in QUANTIZER_MODULES:
        importlib.import_module(module_name)
    return dict(_CLASSES)


def quantizer_class(name: str) -> type[Quantizer]:
    """The quantizer class registered under ``name``."""
    classes = quantizer_classes()
    if name not in classes:
        raise BayesCompressError(f"unknown method {name!r} (methods: {', '.join(sorted(classes))})")
    return classes[name]


def make_quantizer(name: str, **options) -> Quantizer:
    """An instance of method ``name``; options it does not take are a user error, not a TypeError."""
    cls = quantizer_class(name)
    taken = cls.option_names()
    if not set(options) <= set(taken) or cls.knob.name not in options:
        given = ", ".join(sorted(options)) or "none"
        raise BayesCompressError(f"method {name!r} takes options {', '.join(taken)}; got {given}")
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


# ------------------------------------------------- how option values are read from text


def finite_number_at_least_zero(text: str) -> float:
    """A lambda from the command line.

    >>> finite_number_at_least_zero("0.5")
    0.5
    """
    value = _number(text)
    if not value >= 0 or value == math.inf:
        raise ValueError(f"must be a finite number >= 0, got {text}")
    return value


def positive_number(text: str) -> float:
    value = _number(text)
    if not 0 < value < math.inf:
        raise ValueError(f"must be a finite number > 0, got {text}")
    return value


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None


def number_or_name(text: str) -> float | str:
    """A number when the text is one, else the text (``--offset half``)."""
    try:
        return float(text)
    except ValueError:
        return text


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
