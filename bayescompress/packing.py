"""pack and unpack: posterior -> quantizer -> frequency tables + range coder -> archive, and back.

This module wires the stages together; each stage (vbq/quantizers, coding, sidedata, archive)
knows nothing of the others.  Sizes reported here are the real bytes of the archive file.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ._version import __version__
from .archive import (
    COMPACT_VERSION,
    SEGMENTED_VERSION,
    SINGLE_STREAM_VERSION,
    open_archive,
    read_archive,
    values_crc_seed,
    write_archive,
)
from .coders import SymbolCoder, coder_for, make_coder
from .coding import CODER_SPEC, RangeCoder, empirical_entropy_bits
from .errors import BayesCompressError
from .files import check_output_path
from .limits import MAX_DIMS, MAX_LATENTS, MAX_TENSORS
from .posterior import FLOAT_DTYPES, KINDS, Posterior, Vocabulary, validate_tensor_name
from .quantizers import Quantizer, make_quantizer, quantizer_class
from .segments import SEGMENT_LATENTS, Piece
from .sidedata import decode_side_data, encode_side_data
from .streampack import CHUNK_LATENTS, pack_stream
from .streamunpack import MAX_SEGMENT_LATENTS, decoded_pieces, dequantized, estimated_bits, segment_layout
from .tensorsource import PosteriorSource, from_posterior, open_posterior_source

ARCHIVE_FORMAT = "bayescompress-archive"
KEEP_VALUES_LATENTS = 1 << 22


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
    streaming: StreamOptions | None = None,
    **options,
) -> PackResult:
    """Quantize the posterior's tensors with ``method``, code them with ``coder``, write one archive.

    ``method`` is a quantizer's name, with ``options`` for it (for VBQ: ``lam``, ``max_rate``,
    ``prior``), or a quantizer object; ``coder`` is a coder's name or a coder object.  With the
    range coder a posterior file is read piece by piece (``streaming``: chunk, workers, segments).
    """
    if isinstance(method, str):
        quantizer = make_quantizer(method, **options)
    elif options:
        raise BayesCompressError(f"options {', '.join(sorted(options))} go to the quantizer's constructor, "
                                 "not to pack, when pack is given a quantizer object")
    elif isinstance(method, Quantizer):
        quantizer = method
    else:
        raise BayesCompressError(f"method {method!r} is neither a method name nor a Quantizer")
    symbol_coder = make_coder(coder)
    if isinstance(symbol_coder, RangeCoder) and not isinstance(source, Posterior):
        out = check_output_path(out, overwrite=overwrite, inputs=(source,))
        with open_posterior_source(source, tensors) as posterior:
            return _pack_segments(posterior, out, quantizer, streaming or StreamOptions(), show_progress)
    out, posterior = posterior_to_pack(source, out, tensors, overwrite)
    return _pack_posterior(posterior, out, quantizer, symbol_coder, show_progress, streaming)


@dataclass
class StreamOptions:
    """How a range-coded archive is written: latents read at a time, worker threads, segment
    size (the archive's bytes depend on it alone), and whether PackResult keeps the values
    (None: for a posterior in memory, or a file of at most KEEP_VALUES_LATENTS latents)."""

    chunk_latents: int = CHUNK_LATENTS
    workers: int | None = None
    segment_latents: int = SEGMENT_LATENTS
    keep_values: bool | None = None

    def __post_init__(self):
        bounds = (("chunk_latents", 1, MAX_LATENTS), ("segment_latents", 1, MAX_SEGMENT_LATENTS),
                  ("workers", 1, 1 << 16))
        for name, low, high in bounds:
            value = getattr(self, name)
            if name == "workers" and value is None:
                continue
            whole = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            if not whole or not low <= value <= high:
                raise BayesCompressError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
            setattr(self, name, int(value))


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
    posterior: Posterior, out, quantizer: Quantizer, coder: SymbolCoder, show_progress: bool | None,
    streaming: StreamOptions | None = None,
) -> PackResult:
    """Pack a posterior held in memory (already checked by ``posterior_to_pack``)."""
    if isinstance(coder, RangeCoder):
        options = streaming or StreamOptions()
        if options.keep_values is None:  # the values cost no more than the posterior already held
            options = replace(options, keep_values=True)
        return _pack_segments(from_posterior(posterior), out, quantizer, options, show_progress)
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
                "values_crc32": _values_crc32(chosen, SINGLE_STREAM_VERSION),
            })
    side, side_descriptor = encode_side_data(posterior.vocab, posterior.model_spec, posterior.metadata)
    tables, stream, coder_spec = coder.encode(list(symbols.values()))
    header = {**archive_header(posterior.kind, quantizer, coder_spec), "tensors": entries,
              "side": side_descriptor}
    sections = {"tables": tables, "side": side, "stream": stream}
    total = write_archive(out, header, sections, version=SINGLE_STREAM_VERSION)
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


def archive_header(kind: str, quantizer, coder_spec: dict) -> dict:
    """The header fields every archive starts with; the writer adds tensors, side data, sections."""
    return {
        "format": ARCHIVE_FORMAT,
        "writer": f"bayescompress {__version__}",
        "kind": kind,
        "method": quantizer.name,
        "config": quantizer.config(),
        "coder": coder_spec,
    }


def _pack_segments(posterior: PosteriorSource, out, quantizer, options: StreamOptions,
                   show_progress: bool | None) -> PackResult:
    """A segmented archive: segments coded in parallel from a source read piece by piece."""
    keep = options.keep_values
    if keep is None:
        keep = posterior.n_latents <= KEEP_VALUES_LATENTS
    header = archive_header(posterior.kind, quantizer, dict(CODER_SPEC))
    with _progress(posterior.n_latents, quantizer.name, show_progress) as bar:
        packed = pack_stream(posterior, out, quantizer, header, workers=options.workers,
                             chunk_latents=options.chunk_latents, segment_latents=options.segment_latents,
                             keep_values=keep, progress=bar)
    return PackResult(
        path=Path(out),
        total_bytes=packed.total_bytes,
        header_bytes=packed.total_bytes - packed.side_bytes - packed.stream_bytes,
        table_bytes=packed.table_bytes,
        side_bytes=packed.side_bytes,
        stream_bytes=packed.stream_bytes,
        n_latents=posterior.n_latents,
        entropy_bits=packed.entropy_bits,
        values=packed.values,
    )


def _values_crc32(values: np.ndarray, version: int) -> int:
    """CRC-32 of the values as little-endian bytes; from version 2 on, of the shape before them
    (archive.values_crc_seed), so a permuted shape is caught too."""
    data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()
    return zlib.crc32(data, values_crc_seed(values.shape, version))


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


@dataclass
class UnpackedStream:
    """An archive opened for decoding piece by piece: its side data now, its values on demand.

    ``pieces()`` yields (tensor entry, flat start, values) in tensor order; version-1 archives
    (one stream) hand out each tensor whole.
    """

    kind: str
    vocab: Vocabulary | None
    model_spec: dict | None
    metadata: dict
    header: dict
    entries: list[dict]
    _pieces: object = field(repr=False)

    def pieces(self, names: set[str] | None = None):
        wanted = None if names is None else {i for i, e in enumerate(self.entries) if e["name"] in names}
        for piece, values in self._pieces(wanted):
            yield self.entries[piece.tensor], piece.start, values


def open_unpacked(path: str | os.PathLike, *, workers: int | None = None,
                  chunk_latents: int = CHUNK_LATENTS) -> UnpackedStream:
    """Check an archive (every checksum) and get ready to decode it in bounded memory."""
    source = str(path)
    archive = open_archive(path)
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
    sizes = _symbol_counts(entries)
    if archive.version < SEGMENTED_VERSION:
        whole = read_archive(path)
        tables, stream = _sections(whole, source)
        side = whole.sections.get("side", b"")

        def pieces(wanted):
            decoded = _decode_whole(coder, header, tables, stream, sizes, source)
            for number, (entry, symbols) in enumerate(zip(entries, decoded, strict=True)):
                if wanted is None or number in wanted:
                    values = _checked_values(quantizer, symbols, entry, config, source, archive.version)
                    yield Piece(number, 0, sizes[number]), values
    else:
        if not isinstance(coder, RangeCoder):
            raise BayesCompressError(f"{source}: segmented archives are range coded; this one is not")
        side = archive.read_section("side") if "side" in archive.spans else b""
        segment_layout(archive, sizes)  # checks the index before anything is decoded

        def pieces(wanted):
            return decoded_pieces(archive, entries, sizes, quantizer, config, wanted=wanted,
                                  workers=workers, chunk_latents=chunk_latents)
    vocab, model_spec, metadata = decode_side_data(side, header.get("side", {"parts": []}), source,
                                                   compact=archive.version >= COMPACT_VERSION)
    kind = header.get("kind") if header.get("kind") in KINDS else "generic"
    return UnpackedStream(kind, vocab, model_spec, metadata, header, entries, pieces)


def _decode_whole(coder, header: dict, tables: bytes, stream: bytes, sizes: list[int], source: str):
    try:
        return coder.decode(header["coder"], tables, stream, sizes)
    except BayesCompressError as exc:
        raise BayesCompressError(f"{source}: {exc}") from exc
    except (ValueError, RuntimeError, AssertionError) as exc:  # constriction reports a bad stream so
        raise BayesCompressError(f"{source}: stream does not decode ({type(exc).__name__})") from exc


def _checked_values(quantizer, symbols: np.ndarray, entry: dict, config: dict, source: str,
                    version: int) -> np.ndarray:
    values = dequantized(quantizer, symbols, entry, config, source).reshape(entry["shape"])
    if _values_crc32(values, version) != entry["values_crc32"]:
        raise BayesCompressError(
            f"{source}: tensor {entry['name']!r} decodes to values that differ from what pack "
            "chose (different quantile function on this platform?)"
        )
    return values.reshape(-1)


def unpack(path: str | os.PathLike, show_progress: bool | None = None, *, workers: int | None = None,
           chunk_latents: int = CHUNK_LATENTS) -> Unpacked:
    """Decode an archive into exactly the values pack chose, plus its side data."""
    stream = open_unpacked(path, workers=workers, chunk_latents=chunk_latents)
    flat = {e["name"]: np.empty(size, dtype=e["dtype"])
            for e, size in zip(stream.entries, _symbol_counts(stream.entries), strict=True)}
    for entry, start, values in stream.pieces():
        flat[entry["name"]][start:start + values.size] = values
    tensors = {e["name"]: flat[e["name"]].reshape(e["shape"]) for e in stream.entries}
    return Unpacked(tensors, stream.kind, stream.vocab, stream.model_spec, stream.metadata, stream.header)


def archive_info(path: str | os.PathLike) -> dict:
    """Sizes, rates and tensors of an archive, JSON-ready; checksums are verified on the way."""
    source = str(path)
    opened = open_archive(path)
    header = opened.header
    entries = _tensor_entries(header, source)
    coder = coder_for(header.get("coder"), source)
    counts = _symbol_counts(entries)
    if opened.version < SEGMENTED_VERSION:
        archive = read_archive(path)
        tables, stream = _sections(archive, source)
        table_bytes, stream_bytes, side = len(tables), len(stream), len(archive.sections.get("side", b""))
        try:
            estimates = coder.estimated_bits(tables, counts)
        except BayesCompressError as exc:
            raise BayesCompressError(f"{source}: {exc}") from exc
    else:
        for name in opened.spans:
            opened.verify_section(name)
        estimates, table_bytes = estimated_bits(opened, counts)
        start, stop, _ = opened.spans["stream"]
        stream_bytes = stop - start - table_bytes
        index_start, index_stop, _ = opened.spans["index"]
        table_bytes += index_stop - index_start
        side_span = opened.spans.get("side", (0, 0, 0))
        side = side_span[1] - side_span[0]
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
    total = opened.total_bytes
    return {
        "path": source,
        "writer": header.get("writer"),
        "kind": header.get("kind"),
        "method": header.get("method"),
        "config": header.get("config"),
        "coder": header.get("coder"),
        "total_bytes": total,
        "header_bytes": total - side - stream_bytes,
        "table_bytes": table_bytes,
        "side_bytes": side,
        "stream_bytes": stream_bytes,
        "n_latents": n_latents,
        "bits_per_dim": 8.0 * total / n_latents if n_latents else 0.0,
        "bits_per_dim_without_side": 8.0 * (total - side) / n_latents if n_latents else 0.0,
        "estimated_stream_bits": float(sum(estimates)),
        "tensors": tensors,
        "vocab_size": header["side"].get("vocab_size") if isinstance(header.get("side"), dict) else None,
    }
