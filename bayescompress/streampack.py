"""Streaming pack: read a posterior piece by piece, quantize and code its segments on worker
threads, spool the coded segments to disk in order, then assemble a segmented archive.

Memory follows ``chunk_latents`` (latents read at a time), never the model's size, and the
bytes written depend on the segment size alone, not on the chunk size or the worker count.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .archive import COMPACT_VERSION, FORMAT_VERSION, values_crc_seed, write_spooled_archive
from .coding import symbol_counts
from .segments import SEGMENT_LATENTS, encode_index, encode_segment, segment_count, segment_pieces
from .sidedata import encode_side_data
from .tensorsource import PosteriorSource

CHUNK_LATENTS = 1 << 24  # read at a time; about 0.6 GB in flight with two chunks: fits 2 GiB
_PRIOR_READ = 1 << 22  # latents per read in the prior's pass (a multiple of vbq.PRIOR_BLOCK)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class TensorPlan:
    """A tensor's quantizer parameters, and its symbols when the quantizer needs it whole."""

    params: dict
    symbols: np.ndarray | None = None


@dataclass
class StreamedPack:
    """What streaming pack wrote and measured; packing.PackResult is built from it."""

    total_bytes: int
    side_bytes: int
    stream_bytes: int
    table_bytes: int
    entries: list[dict]
    entropy_bits: float
    values: dict[str, np.ndarray] = field(default_factory=dict)


def plan_tensors(posterior: PosteriorSource, quantizer, progress=None) -> list[TensorPlan]:
    """Pass 1: each tensor's parameters (VBQ: its empirical prior, from the means alone)."""
    plans = []
    for tensor in posterior.tensors:
        if getattr(quantizer, "blockwise", False):
            plans.append(TensorPlan(quantizer.fit_params(tensor.mean_blocks(_PRIOR_READ), tensor.strided,
                                                         tensor.size)))
        else:  # k-means, Lloyd, refined VBQ: fitted on the whole tensor, which must fit in memory
            means, stds = tensor.read(0, tensor.size, posterior.source)
            quantized = quantizer.quantize(means, stds, progress=progress)
            plans.append(
                TensorPlan(quantized.params, np.asarray(quantized.symbols, dtype=np.int64))
            )
    return plans


def pack_stream(
    posterior: PosteriorSource,
    out,
    quantizer,
    header: dict,
    *,
    workers: int | None = None,
    chunk_latents: int = CHUNK_LATENTS,
    segment_latents: int = SEGMENT_LATENTS,
    keep_values: bool = False,
    progress=None,
) -> StreamedPack:
    """Pass 2: code every segment on ``workers`` threads and write the archive to ``out``.

    ``header`` is completed with the tensor entries and the segment size.
    """
    blockwise = getattr(quantizer, "blockwise", False)
    plans = plan_tensors(posterior, quantizer, None if blockwise else progress)
    coder = _SegmentCoder(posterior, quantizer, plans)
    out = Path(out)
    with (
        tempfile.NamedTemporaryFile(
            prefix=f".{out.name}.", suffix=".segments", dir=out.parent
        ) as spool,
        ThreadPoolExecutor(max_workers=workers or available_cores()) as pool,
    ):
        sink = _SegmentSink(spool, posterior, keep_values, progress if blockwise else None)
        pending: deque = deque()
        in_flight = 0
        for pieces in segment_pieces(coder.sizes, segment_latents):
            pending.append((pieces, pool.submit(coder.code, pieces, coder.read(pieces))))
            in_flight += sum(piece.size for piece in pieces)
            while pending and in_flight > chunk_latents:
                in_flight -= sink.add(*pending.popleft())
        while pending:
            sink.add(*pending.popleft())
        spool.flush()
        entries = [
            {
                "name": t.name,
                "shape": list(t.shape),
                "dtype": np.dtype(t.dtype).name,
                "params": plan.params,
                "values_crc32": crc,
            }
            for t, plan, crc in zip(posterior.tensors, plans, sink.crcs, strict=True)
        ]
        side, side_descriptor = encode_side_data(posterior.vocab, posterior.model_spec, posterior.metadata,
                                                 compact=FORMAT_VERSION >= COMPACT_VERSION)
        header = {
            **header,
            "tensors": entries,
            "side": side_descriptor,
            "segments": {
                "latents": segment_latents,
                "count": segment_count(coder.sizes, segment_latents),
            },
        }
        index = encode_index(sink.lengths)
        total = write_spooled_archive(
            out,
            header,
            {"index": index, "side": side},
            (spool.name, sink.stream_length, sink.stream_crc),
        )
    return StreamedPack(
        total,
        len(side),
        sink.stream_length - sink.table_bytes,
        sink.table_bytes + len(index),
        entries,
        sink.entropy,
        sink.shaped_values,
    )


class _SegmentCoder:
    """Reads a segment's pieces (main thread) and quantizes and codes them (worker threads)."""

    def __init__(self, posterior: PosteriorSource, quantizer, plans: list[TensorPlan]):
        self.posterior, self.quantizer, self.plans = posterior, quantizer, plans
        self.config = quantizer.config()
        self.sizes = [t.size for t in posterior.tensors]

    def read(self, pieces) -> list:
        tensors, source = self.posterior.tensors, self.posterior.source
        return [
            None
            if self.plans[p.tensor].symbols is not None
            else tensors[p.tensor].read(p.start, p.stop, source)
            for p in pieces
        ]

    def code(self, pieces, inputs):
        symbols, chosen = [], []
        for piece, data in zip(pieces, inputs, strict=True):
            plan = self.plans[piece.tensor]
            if plan.symbols is not None:
                piece_symbols = plan.symbols[piece.start : piece.stop]
            else:
                piece_symbols = np.asarray(
                    self.quantizer.quantize_block(*data, plan.params), dtype=np.int64
                )
            symbols.append(piece_symbols)
            values = self.quantizer.dequantize(piece_symbols, plan.params, self.config)
            with np.errstate(over="ignore"):  # a value past float16/32's range rounds to inf, as in unpack
                chosen.append(np.asarray(values).astype(self.posterior.tensors[piece.tensor].dtype))
        tallies = [symbol_counts(s) for s in symbols]
        data, table_length = encode_segment(symbols, tallies, compact=FORMAT_VERSION >= COMPACT_VERSION)
        return data, table_length, chosen, tallies


class _SegmentSink:
    """Takes coded segments in order: spools their bytes, keeps the index, CRCs and symbol counts."""

    def __init__(self, spool, posterior: PosteriorSource, keep_values: bool, progress):
        self.spool, self.progress = spool, progress
        self.dtypes = [np.dtype(t.dtype).newbyteorder("<") for t in posterior.tensors]
        self.crcs = [values_crc_seed(t.shape, FORMAT_VERSION) for t in posterior.tensors]
        # the symbols' empirical entropy under each piece's own counts, summed (the bits an ideal
        # coder needs given each segment's tables): a tensor's empirical entropy when it lies in
        # one segment, slightly less across segments; a running sum keeps memory bounded
        self.entropy = 0.0
        self.values = (
            {t.name: np.empty(t.size, dtype=t.dtype) for t in posterior.tensors}
            if keep_values
            else {}
        )
        self.shapes = {t.name: t.shape for t in posterior.tensors}
        self.names = [t.name for t in posterior.tensors]
        self.lengths: list[tuple[int, int]] = []
        self.table_bytes = self.stream_length = self.stream_crc = 0

    def add(self, pieces, future) -> int:
        data, table_length, chosen, tallies = future.result()
        self.spool.write(data)
        self.stream_crc = zlib.crc32(data, self.stream_crc)
        self.stream_length += len(data)
        self.table_bytes += table_length
        self.lengths.append((table_length, len(data) - table_length))
        for piece, values, tally in zip(pieces, chosen, tallies, strict=True):
            little = np.ascontiguousarray(values, dtype=self.dtypes[piece.tensor])
            self.crcs[piece.tensor] = zlib.crc32(little, self.crcs[piece.tensor])
            counts = tally[1]
            total = int(counts.sum())
            self.entropy += float(total * np.log2(total) - np.sum(counts * np.log2(counts))) if total else 0.0
            if self.values:
                self.values[self.names[piece.tensor]][piece.start : piece.stop] = values
        latents = sum(piece.size for piece in pieces)
        if self.progress is not None:
            self.progress.update(latents)
        return latents

    @property
    def shaped_values(self) -> dict[str, np.ndarray]:
        return {name: values.reshape(self.shapes[name]) for name, values in self.values.items()}
