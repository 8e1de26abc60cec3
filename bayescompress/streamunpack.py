"""Streaming unpack of a version-2 archive: segments decoded on worker threads, values handed
out piece by piece in tensor order, each tensor's checksum verified as its last piece passes.

Memory follows ``chunk_latents``; tensors nobody asked for are skipped without decoding.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from zlib import crc32 as zlib_crc32

import numpy as np

from .archive import COMPACT_VERSION, ArchiveFile, values_crc_seed
from .errors import BayesCompressError
from .segments import Piece, decode_index, decode_segment, segment_count, segment_pieces
from .streampack import CHUNK_LATENTS, available_cores

MAX_SEGMENT_LATENTS = 1 << 40


def segment_layout(archive: ArchiveFile, sizes: list[int]) -> tuple[int, np.ndarray]:
    """The segment size and the (table bytes, stream bytes) of each segment, checked."""
    source = str(archive.path)
    spec = archive.header.get("segments")
    latents = spec.get("latents") if isinstance(spec, dict) else None
    if not isinstance(latents, int) or not 1 <= latents <= MAX_SEGMENT_LATENTS:
        raise BayesCompressError(f"{source}: archive header has no valid segment size")
    count = segment_count(sizes, latents)
    if spec.get("count") != count or "index" not in archive.spans or "stream" not in archive.spans:
        raise BayesCompressError(f"{source}: archive's segment index does not match its tensors")
    try:
        lengths = decode_index(archive.read_section("index"), count)
    except BayesCompressError as exc:
        raise BayesCompressError(f"{source}: {exc}") from exc
    start, stop, _ = archive.spans["stream"]
    if int(lengths.sum()) != stop - start:
        raise BayesCompressError(f"{source}: segment index does not add up to the stream section")
    return latents, lengths


def decoded_pieces(
    archive: ArchiveFile,
    entries: list[dict],
    sizes: list[int],
    quantizer,
    config: dict,
    *,
    wanted: set[int] | None = None,
    workers: int | None = None,
    chunk_latents: int = CHUNK_LATENTS,
) -> Iterator[tuple[Piece, np.ndarray]]:
    """(piece, values) for every piece of the wanted tensors (all when None), in order."""
    source = str(archive.path)
    latents, lengths = segment_layout(archive, sizes)
    archive.verify_section("stream")
    offsets = archive.spans["stream"][0] + np.concatenate(([0], np.cumsum(lengths.sum(axis=1))))
    crcs = [values_crc_seed(entry["shape"], archive.version) for entry in entries]

    def decode(pieces, data, table_length):
        try:
            symbols = decode_segment(data, table_length, [p.size for p in pieces],
                                     archive.version >= COMPACT_VERSION)
        except BayesCompressError as exc:
            raise BayesCompressError(f"{source}: {exc}") from exc
        except (ValueError, RuntimeError, AssertionError) as exc:  # constriction reports a bad stream so
            raise BayesCompressError(f"{source}: stream does not decode ({type(exc).__name__})") from exc
        out = []
        for piece, piece_symbols in zip(pieces, symbols, strict=True):
            out.append(dequantized(quantizer, piece_symbols, entries[piece.tensor], config, source))
        return out

    with ThreadPoolExecutor(max_workers=workers or available_cores()) as pool:
        pending: deque = deque()
        in_flight = 0
        for number, pieces in enumerate(segment_pieces(sizes, latents)):
            if wanted is not None and not any(p.tensor in wanted for p in pieces):
                continue
            table_length, _ = lengths[number]
            data = archive.read_range(
                int(offsets[number]), int(offsets[number + 1] - offsets[number])
            )
            pending.append((pieces, pool.submit(decode, pieces, data, int(table_length))))
            in_flight += sum(p.size for p in pieces)
            while pending and in_flight > chunk_latents:
                in_flight -= yield from _hand_out(
                    pending.popleft(), entries, sizes, crcs, wanted, source
                )
        while pending:
            yield from _hand_out(pending.popleft(), entries, sizes, crcs, wanted, source)


def dequantized(quantizer, symbols: np.ndarray, entry: dict, config: dict, source: str) -> np.ndarray:
    """A tensor's (or piece's) values in its dtype; malformed parameters are one error line."""
    try:
        values = quantizer.dequantize(symbols, entry["params"], config)
    except BayesCompressError as exc:
        raise BayesCompressError(f"{source}: tensor {entry['name']!r}: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise BayesCompressError(f"{source}: tensor {entry['name']!r} has malformed parameters") from exc
    with np.errstate(over="ignore"):  # a float64 value beyond float16/32 becomes inf; the CRC decides
        return np.asarray(values).astype(entry["dtype"])


def _hand_out(item, entries, sizes, crcs, wanted, source):
    pieces, future = item
    for piece, values in zip(pieces, future.result(), strict=True):
        if wanted is not None and piece.tensor not in wanted:
            continue
        entry = entries[piece.tensor]
        little = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
        crcs[piece.tensor] = zlib_crc32(little, crcs[piece.tensor])
        if piece.stop == sizes[piece.tensor] and crcs[piece.tensor] != entry["values_crc32"]:
            raise BayesCompressError(
                f"{source}: tensor {entry['name']!r} decodes to values that differ from what pack "
                "chose (different quantile function on this platform?)"
            )
        yield piece, values
    return sum(p.size for p in pieces)


def estimated_bits(archive: ArchiveFile, sizes: list[int]) -> tuple[list[float], int]:
    """Each tensor's bits under its segments' tables (before coder overhead), and the bytes of
    all tables; reads the tables only."""
    from .coding import FrequencyTable

    latents, lengths = segment_layout(archive, sizes)
    offsets = archive.spans["stream"][0] + np.concatenate(([0], np.cumsum(lengths.sum(axis=1))))
    bits = [0.0] * len(sizes)
    for number, pieces in enumerate(segment_pieces(sizes, latents)):
        tables, offset = archive.read_range(int(offsets[number]), int(lengths[number, 0])), 0
        for piece in pieces:
            try:
                total = piece.size if archive.version >= COMPACT_VERSION else None
                table, offset = FrequencyTable.from_bytes(tables, offset, total)
            except BayesCompressError as exc:
                raise BayesCompressError(f"{archive.path}: {exc}") from exc
            bits[piece.tensor] += table.ideal_bits()
    return bits, int(lengths[:, 0].sum())
