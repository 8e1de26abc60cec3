"""The symbol-coder protocol and the registry of coders that ``pack --coder`` names.

A coder turns the symbol arrays of all tensors into a tables section and a stream section; it
keeps no state, so its spec comes back with its output and the archive header stores it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .bytecoders import ByteCompressorCoder
from .coding import RangeCoder
from .errors import BayesCompressError

CODER_NAMES = (RangeCoder.name,) + ByteCompressorCoder.NAMES
BASELINE_CODERS = ByteCompressorCoder.NAMES  # alone, a name means the uniform grid through that compressor


class SymbolCoder(Protocol):
    name: str

    def encode(self, symbol_arrays: list[np.ndarray]) -> tuple[bytes, bytes, dict]:
        """Tables section, stream section and the spec that decoding them needs."""

    def reads(self, spec: dict) -> bool:
        """Whether archives whose header names ``spec`` are this coder's."""

    def decode(self, spec: dict, tables: bytes, stream: bytes, counts: list[int]) -> list[np.ndarray]:
        """The symbol arrays, ``counts[i]`` symbols for tensor i."""

    def estimated_bits(self, tables: bytes, counts: list[int]) -> list[float]:
        """Bits per tensor under the stored model (NaN where the coder has none)."""


def make_coder(coder: str | SymbolCoder) -> SymbolCoder:
    """The coder named ``coder`` (a coder object is returned as it is).

    >>> make_coder("lzma").name, make_coder("range").name
    ('lzma', 'range')
    """
    if not isinstance(coder, str):
        missing = [part for part in ("name", "encode", "reads", "decode", "estimated_bits")
                   if not hasattr(coder, part)]
        if missing:
            raise BayesCompressError(f"coder {coder!r} is neither a coder name nor a coder object "
                                     f"(it has no {', '.join(missing)})")
        return coder
    if coder == RangeCoder.name:
        return RangeCoder()
    if coder in ByteCompressorCoder.NAMES:
        return ByteCompressorCoder(coder)
    raise BayesCompressError(f"unknown coder {coder!r} (coders: {', '.join(CODER_NAMES)})")


def coder_for(spec, source: str) -> SymbolCoder:
    """The coder that reads archives written with ``spec``."""
    for name in CODER_NAMES:
        coder = make_coder(name)
        if isinstance(spec, dict) and coder.reads(spec):
            return coder
    raise BayesCompressError(
        f"{source}: archive was written with coder {spec!r}, which this version cannot decode"
    )
