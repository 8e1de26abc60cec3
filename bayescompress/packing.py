"""pack and unpack: posterior -> quantizer -> frequency tables + range coder -> archive, and back.

This module wires the stages together; each stage (vbq/quantizers, coding, sidedata, archive)
knows nothing of the others.  Sizes reported here are the real bytes of the archive file.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._version import __version__
from .archive import FORMAT_VERSION, read_archive, write_archive
from .coders import SymbolCoder, coder_for, make_coder
from .coding import empirical_entropy_bits
from .errors import BayesCompressError
from .files import check_output_path
from .limits import MAX_DIMS, MAX_LATENTS, MAX_TENSORS
from .posterior import FLOAT_DTYPES, KINDS, Posterior, Vocabulary, validate_tensor_name
from .quantizers import Quantizer, make_quantizer, quantizer_class
from .sidedata import decode_side_data, encode_side_data

ARCHIVE_FORMAT = "bayescompress-archive"


@dataclass
class PackResult:
    """What pack wrote: real byte counts by part, and the values it chose per tensor."""

    path: Path
    total_bytes: int
    header_bytes: int
    table_bytes: int
    side_bytes: int
    stream_bytes: int
    n_latents: int
    entropy_bits: float
    values: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    symbols: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    @property
    def bits_per_dim(self) -> float:
        """8 x file bytes / number of quantized scalars."""
        return 8.0 * self.total_bytes / self.n_latents

    @property
    def bits_per_dim_without_side(self) -> float:
        return 8.0 * (self.total_bytes - self.side_bytes) / self.n_latents


@dataclass
class Unpacked:
    """An archive's reconstructed tensors (in the posterior's dtypes) and its side data."""

    tensors: dict[str, np.ndarray]
    kind: str
    vocab: Vocabulary | None
    model_spec: dict | None
    metadata: dict
    header: dict


def _progress(total: int, desc: str, show: bool | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="latent", unit_scale=True, leave=False,
                disable=None if show is None else not show)


def pack(
    source: Posterior | str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str | Quantizer = "vbq",
    coder: str | SymbolCoder = "range",
    tensors: list[str] | None = None,
    overwrite: bool = False,
    show_progress: bool | None = None,
    **options,
) -> PackResult:
    """Quantize the posterior's tensors with ``method``, code them with ``coder``, write one archive.

    ``method`` is a quantizer's name, with ``options`` for it (for VBQ: ``lam``, ``max_rate``,
    ``prior``), or a quantizer object; ``coder`` is a coder's name or a coder object.
    """
    if isinstance(method, str):
        quantizer = make_quantizer(method, **options)
    elif options:
        raise BayesCompressError(f"options {', '.join(sorted(options))} go to the quantizer's constructor, "
                                 "not to pack, when pack is given a quantizer object")
    else:
        quantizer = method
    symbol_coder = make_coder(coder)
    out, posterior = posterior_to_pack(source, out, tensors, overwrite)
    return _pack_posterior(posterior, out, quantizer, symbol_coder, show_progress)


def posterior_to_pack(
    source: Posterior | str | os.PathLike, out: str | os.PathLike, tensors: list[str] | None, overwrite: bool
) -> tuple[Path, Posterior]:
    """Check the output path, then read, select and validate the posterior that will be packed."""
    inputs = (source,) if not isinstance(source, Posterior) else ()
    out = check_output_path(out, overwrite=overwrite, inputs=inputs)
    posterior = source if isinstance(source, Posterior) else Posterior.load(source, tensors)
    posterior = posterior.select(tensors)
    posterior.validate()
    return out, posterior


def _pack_posterior(
    posterior: Posterior, out, quantizer: Quantizer, coder: SymbolCoder, show_progress: bool | None
) -> PackResult:
    entries, values, symbols = [], {}, {}
    with _progress(posterior.n_latents, quantizer.name, show_progress) as bar:
        for name, tensor in posterior.tensors.items():
            quantized = quantizer.quantize(tensor.mean, tensor.std, progress=bar)
            chosen = quantizer.dequantize(quantized.symbols, quantized.params, quantizer.config())
            with np.errstate(over="ignore"):  # a value past float16/32's range rounds to inf, as in unpack
                chosen = chosen.astype(tensor.mean.dtype).reshape(tensor.shape)
            values[name], symbols[name] = chosen, quantized.symbols
            entries.append({
                "name": name,
                "shape": list(tensor.shape),
                "dtype": tensor.mean.dtype.name,
                "params": quantized.params,
                "values_crc32": _values_crc32(chosen, FORMAT_VERSION),
            })
    side, side_descriptor = encode_side_data(posterior.vocab, posterior.model_spec, posterior.metadata)
    tables, stream, coder_spec = coder.encode(list(symbols.values()))
    header = {
        "format": ARCHIVE_FORMAT,
        "writer": f"bayescompress {__version__}",
        "kind": posterior.kind,
        "method": quantizer.name,
        "config": quantizer.config(),
        "coder": coder_spec,
        "tensors": entries,
        "side": side_descriptor,
    }
    sections = {"tables": tables, "side": side, "stream": stream}
    total = write_archive(out, header, sections)
    return PackResult(
        path=Path(out),
        total_bytes=total,
        header_bytes=total - len(side) - len(stream),
        table_bytes=len(tables),
        side_bytes=len(side),
        stream_bytes=len(stream),
        n_latents=posterior.n_latents,
        entropy_bits=sum(empirical_entropy_bits(s) for s in symbols.values()),
        values=values,
        symbols=symbols,
    )


def _values_crc32(values: np.ndarray, version: int) -> int:
    """CRC-32 of the values as little-endian bytes; from version 2 on, of the shape before them
    (u8 number of dimensions, then each as u64), so a permuted shape is caught too."""
    data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()
    if version < 2:
        return zlib.crc32(data)
    shape = struct.pack(f"<B{values.ndim}Q", values.ndim, *values.shape)
    return zlib.crc32(data, zlib.crc32(shape))


def _tensor_entries(header: dict, source: str) -> list[dict]:
    entries = header.get("tensors")
    if header.get("format") != ARCHIVE_FORMAT or not isinstance(entries, list) or not entries:
        raise BayesCompressError(f"{source}: archive header does not list any tensors")
    if len(entries) > MAX_TENSORS:
        raise BayesCompressError(f"{source}: archive header lists more than {MAX_TENSORS} tensors")
    total, names = 0, set()
    for entry in entries:
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or not isinstance(shape, list)
            or len(shape) > MAX_DIMS
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_LATENTS for d in shape)
            or not isinstance(entry.get("dtype"), str)
            or entry["dtype"] not in FLOAT_DTYPES
            or not isinstance(entry.get("params"), dict)
            or isinstance(entry.get("values_crc32"), bool)
            or not isinstance(entry.get("values_crc32"), int)
        ):
            raise BayesCompressError(f"{source}: archive header has a malformed tensor entry")
        name = entry["name"]
        validate_tensor_name(name, f"{source}: archive header")
        if name in names:
            raise BayesCompressError(f"{source}: archive header lists tensor {name!r} twice")
        names.add(name)
        size = 1
        for dim in shape:
            size *= dim
            if size > MAX_LATENTS:
                break
        total += size
        if total > MAX_LATENTS:
            raise BayesCompressError(f"{source}: archive header declares too many latents")
    return entries


def _symbol_counts(entries: list[dict]) -> list[int]:
    return [int(np.prod(e["shape"], dtype=np.int64)) if e["shape"] else 1 for e in entries]


def _sections(archive, source: str) -> tuple[bytes, bytes]:
    if "tables" not in archive.sections or "stream" not in archive.sections:
        raise BayesCompressError(f"{source}: archive lacks its tables or stream section")
    return archive.sections["tables"], archive.sections["stream"]


def unpack(path: str | os.PathLike, show_progress: bool | None = None) -> Unpacked:
    """Decode an archive into exactly the values pack chose, plus its side data."""
    source = str(path)
    archive = read_archive(path)
    header = archive.header
    entries = _tensor_entries(header, source)
    method = header.get("method")
    config = header.get("config")
    if not isinstance(method, str) or not isinstance(config, dict):
        raise BayesCompressError(f"{source}: archive header names no quantizer")
    try:
        quantizer = quantizer_class(method)
    except BayesCompressError as exc:
        raise BayesCompressError(f"{source}: archive uses a method this version cannot read ({exc})") from exc
    coder = coder_for(header.get("coder"), source)
    tables, stream = _sections(archive, source)
    try:
        decoded = coder.decode(header["coder"], tables, stream, _symbol_counts(entries))
    except BayesCompressError as exc:
        raise BayesCompressError(f"{source}: {exc}") from exc
    except (ValueError, RuntimeError, AssertionError) as exc:  # constriction reports a bad stream so
        raise BayesCompressError(f"{source}: stream does not decode ({type(exc).__name__})") from exc
    tensors = {}
    for entry, symbols in zip(entries, decoded, strict=True):
        try:
            values = quantizer.dequantize(symbols, entry["params"], config)
        except BayesCompressError as exc:
            raise BayesCompressError(f"{source}: tensor {entry['name']!r}: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise BayesCompressError(f"{source}: tensor {entry['name']!r} has malformed parameters") from exc
        with np.errstate(over="ignore"):  # a float64 value beyond float16/32 becomes inf; the CRC decides
            values = values.astype(entry["dtype"]).reshape(entry["shape"])
        if _values_crc32(values, archive.version) != entry["values_crc32"]:
            raise BayesCompressError(
                f"{source}: tensor {entry['name']!r} decodes to values that differ from what pack "
                "chose (different quantile function on this platform?)"
            )
        tensors[entry["name"]] = values
    vocab, model_spec, metadata = decode_side_data(
        archive.sections.get("side", b""), header.get("side", {"parts": []}), source
    )
    kind = header.get("kind") if header.get("kind") in KINDS else "generic"
    return Unpacked(tensors, kind, vocab, model_spec, metadata, header)


def archive_info(path: str | os.PathLike) -> dict:
    """Sizes, rates and tensors of an archive, JSON-ready; checksums are verified on the way."""
    source = str(path)
    archive = read_archive(path)
    header = archive.header
    entries = _tensor_entries(header, source)
    coder = coder_for(header.get("coder"), source)
    tables, stream = _sections(archive, source)
    counts = _symbol_counts(entries)
    try:
        estimates = coder.estimated_bits(tables, counts)
    except BayesCompressError as exc:
        raise BayesCompressError(f"{source}: {exc}") from exc
    side = len(archive.sections.get("side", b""))
    n_latents = sum(counts)
    tensors = []
    for entry, count, bits in zip(entries, counts, estimates, strict=True):
        tensors.append({
            "name": entry["name"],
            "shape": entry["shape"],
            "dtype": entry["dtype"],
            "n_latents": count,
            "estimated_bits_per_dim": bits / count if count else 0.0,
            "params": entry["params"],
        })
    total = archive.total_bytes
    return {
        "path": source,
        "writer": header.get("writer"),
        "kind": header.get("kind"),
        "method": header.get("method"),
        "config": header.get("config"),
        "coder": header.get("coder"),
        "total_bytes": total,
        "header_bytes": total - side - len(stream),
        "table_bytes": len(tables),
        "side_bytes": side,
        "stream_bytes": len(stream),
        "n_latents": n_latents,
        "bits_per_dim": 8.0 * total / n_latents if n_latents else 0.0,
        "bits_per_dim_without_side": 8.0 * (total - side) / n_latents if n_latents else 0.0,
        "estimated_stream_bits": float(sum(estimates)),
        "tensors": tensors,
        "vocab_size": header["side"].get("vocab_size") if isinstance(header.get("side"), dict) else None,
    }
