"""Baseline coders of the paper's Figure 3: fixed-width integer symbols through gzip, bzip2 or lzma.

Unlike the range coder these need no frequency table, and they can exploit correlations between
neighbouring symbols; each runs at its strongest setting.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib

import numpy as np

from .errors import BayesCompressError
from .limits import LZMA_MEMORY_LIMIT

WIDTHS = (8, 16, 32, 64)


def _compress(name: str, data: bytes) -> bytes:
    if name == "gzip":
        return gzip.compress(data, compresslevel=9, mtime=0)
    if name == "bzip2":
        return bz2.compress(data, compresslevel=9)
    return lzma.compress(data, format=lzma.FORMAT_ALONE, preset=9 | lzma.PRESET_EXTREME)


def _decompress(name: str, data: bytes, size: int) -> bytes:
    """Decompress at most ``size`` bytes, so a damaged stream cannot balloon in memory."""
    try:
        if name == "gzip":
            out = zlib.decompressobj(wbits=31).decompress(data, size + 1)
        elif name == "bzip2":
            out = bz2.BZ2Decompressor().decompress(data, size + 1)
        else:
            # the .lzma header declares the dictionary size: a damaged one must not allocate gigabytes
            decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE, memlimit=LZMA_MEMORY_LIMIT)
            out = decompressor.decompress(data, size + 1)
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError) as exc:
        raise BayesCompressError(f"{name} stream does not decompress") from exc
    if len(out) != size:
        raise BayesCompressError(f"{name} stream decompresses to the wrong length")
    return out


class ByteCompressorCoder:
    """Symbols as little-endian signed integers of the narrowest sufficient width, compressed.

    >>> coder = ByteCompressorCoder("lzma")
    >>> tables, stream, spec = coder.encode([np.array([0, -3, 5, 5, 5])])
    >>> spec
    {'name': 'lzma', 'width_bits': 8}
    >>> coder.decode(spec, tables, stream, [5])[0].tolist()
    [0, -3, 5, 5, 5]
    """

    NAMES = ("gzip", "bzip2", "lzma")

    def __init__(self, name: str):
        if name not in self.NAMES:
            raise BayesCompressError(f"unknown coder {name!r} (coders: range, {', '.join(self.NAMES)})")
        self.name = name

    def reads(self, spec: dict) -> bool:
        return spec.get("name") == self.name and spec.get("width_bits") in WIDTHS

    def encode(self, symbol_arrays: list[np.ndarray]) -> tuple[bytes, bytes, dict]:
        """No tables; the stream; the spec naming the compressor and the symbol width."""
        symbols = np.concatenate([np.asarray(s, dtype=np.int64).ravel() for s in symbol_arrays])
        low, high = (int(symbols.min()), int(symbols.max())) if symbols.size else (0, 0)
        width = next(w for w in WIDTHS if -(1 << (w - 1)) <= low and high < 1 << (w - 1))
        raw = symbols.astype(f"<i{width // 8}").tobytes()
        return b"", _compress(self.name, raw), {"name": self.name, "width_bits": width}

    @staticmethod
    def decode(spec: dict, tables: bytes, stream: bytes, counts: list[int]) -> list[np.ndarray]:
        width = spec["width_bits"] // 8
        raw = _decompress(spec["name"], stream, sum(counts) * width)
        symbols = np.frombuffer(raw, dtype=f"<i{width}").astype(np.int64)
        return np.split(symbols, np.cumsum(counts)[:-1])

    @staticmethod
    def estimated_bits(tables: bytes, counts: list[int]) -> list[float]:
        return [float("nan")] * len(counts)
