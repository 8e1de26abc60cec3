"""Exports written piece by piece as values are decoded: npz through a zip stream of .npy
members, HDF5 datasets row block by row block, word2vec row by row.

Each takes an ``UnpackedStream`` (packing.open_unpacked) and writes through a temporary file
and a rename, so memory follows the decoder's chunk, not the model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile

import numpy as np

from .errors import BayesCompressError
from .files import atomic_output

VALUES_FORMAT = "bayescompress-values"


def row_blocks(pieces, entries: list[dict]):
    """(entry, first row, values shaped (rows, *shape[1:])) from flat pieces, whole rows only.

    A partial row is held until the piece that completes it arrives.
    """
    carry: dict[str, np.ndarray] = {}
    for entry, start, values in pieces:
        shape = entry["shape"]
        row = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
        held = carry.pop(entry["name"], values[:0])
        flat = np.concatenate((held, values)) if held.size else values
        first = (start - held.size) // row
        whole = flat.size // row * row
        if flat.size > whole:
            carry[entry["name"]] = flat[whole:].copy()
        if whole:
            yield entry, first, flat[:whole].reshape((-1, *shape[1:]) if shape else ())


def write_npz_stream(unpacked, path: str | os.PathLike) -> None:
    """One .npy member per tensor, written as its values arrive; ``vocab`` and ``counts`` after."""
    names = [entry["name"] for entry in unpacked.entries]
    if unpacked.vocab is not None:
        clash = {"vocab", "counts"} & set(names)
        if clash:
            raise BayesCompressError(f"tensor name {clash.pop()!r} clashes with the vocabulary key")
    with atomic_output(path) as tmp, \
            zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        member, current = None, None
        for entry, _, values in unpacked.pieces():
            if entry["name"] != current:
                if member is not None:
                    member.close()
                current = entry["name"]
                member = archive.open(f"{current}.npy", "w", force_zip64=True)
                np.lib.format.write_array_header_1_0(member, {
                    "descr": np.lib.format.dtype_to_descr(np.dtype(entry["dtype"])),
                    "fortran_order": False,
                    "shape": tuple(entry["shape"]),
                })
            member.write(np.ascontiguousarray(values).tobytes())
        if member is not None:
            member.close()
        if unpacked.vocab is not None:
            with archive.open("vocab.npy", "w", force_zip64=True) as handle:
                np.save(handle, np.array(unpacked.vocab.words, dtype=str))
            if unpacked.vocab.counts is not None:
                with archive.open("counts.npy", "w", force_zip64=True) as handle:
                    np.save(handle, np.asarray(unpacked.vocab.counts, dtype=np.int64))


def write_hdf5_stream(unpacked, path: str | os.PathLike) -> None:
    """/tensors/NAME datasets filled block by block, /vocab like the posterior file, JSON attributes."""
    import h5py

    with atomic_output(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["format"] = VALUES_FORMAT
        h5.attrs["format_version"] = 1
        h5.attrs["kind"] = unpacked.kind
        h5.attrs["metadata"] = json.dumps(unpacked.metadata, sort_keys=True)
        h5.attrs["archive_method"] = str(unpacked.header.get("method"))
        h5.attrs["archive_config"] = json.dumps(unpacked.header.get("config"), sort_keys=True)
        if unpacked.model_spec is not None:
            h5.attrs["model_spec"] = json.dumps(unpacked.model_spec, sort_keys=True)
        group = h5.create_group("tensors")
        group.attrs["order"] = json.dumps([entry["name"] for entry in unpacked.entries])
        datasets = {e["name"]: group.create_dataset(e["name"], shape=tuple(e["shape"]), dtype=e["dtype"])
                    for e in unpacked.entries}
        for entry, first, block in row_blocks(unpacked.pieces(), unpacked.entries):
            if entry["shape"]:
                datasets[entry["name"]][first:first + block.shape[0]] = block
            else:
                datasets[entry["name"]][()] = block
        if unpacked.vocab is not None:
            vocab = h5.create_group("vocab")
            vocab.create_dataset("words", data=np.array(unpacked.vocab.words, dtype=object),
                                 dtype=h5py.string_dtype("utf-8"))
            if unpacked.vocab.counts is not None:
                vocab.create_dataset("counts", data=np.asarray(unpacked.vocab.counts))


def embedding_entry(unpacked, tensor: str | None = None) -> dict:
    """The word-vector tensor's entry: ``tensor``, else U, else the only one; checked against the vocab."""
    if unpacked.vocab is None:
        raise BayesCompressError("archive has no vocabulary; it is not a word embedding")
    entries = {entry["name"]: entry for entry in unpacked.entries}
    names = list(entries)
    if tensor is None:
        tensor = "U" if "U" in entries else (names[0] if len(names) == 1 else None)
        if tensor is None:
            raise BayesCompressError(f"archive has several tensors ({', '.join(names)}); pick one")
    if tensor not in entries:
        raise BayesCompressError(f"archive has no tensor {tensor!r} (tensors: {', '.join(names)})")
    shape = tuple(entries[tensor]["shape"])
    if len(shape) != 2 or shape[0] != len(unpacked.vocab):
        raise BayesCompressError(f"tensor {tensor!r} has shape {shape}, not (vocabulary size, dimension)")
    return entries[tensor]


def write_word2vec_stream(unpacked, path: str | os.PathLike, tensor: str | None = None,
                          zero_rows: str = "drop") -> tuple[int, int]:
    """word2vec text (binary when the name ends in .bin) that load_word2vec_format reads, rows in
    gensim's order (descending corpus count, ties in row order), each as gensim writes it.

    ``zero_rows``: "drop" leaves out words whose vector is all zero (gensim cannot normalise
    them), "keep" keeps them.  Rows are formatted as they are decoded into a spool file, then
    copied out in order under a header with the count, so memory stays bounded.  Returns the
    number of all-zero vectors and of rows.
    """
    if zero_rows not in ("drop", "keep"):
        raise BayesCompressError(f"zero rows must be 'drop' or 'keep', got {zero_rows!r}")
    entry = embedding_entry(unpacked, tensor)
    binary = str(path).lower().endswith(".bin")
    rows, dim = entry["shape"]
    counts = unpacked.vocab.counts
    order = None if counts is None else np.argsort(-np.asarray(counts, dtype=np.int64), kind="stable")
    if order is not None and np.array_equal(order, np.arange(rows)):
        order = None
    with atomic_output(path) as tmp, open(tmp, "wb") as handle, \
            tempfile.TemporaryFile(dir=os.path.dirname(os.path.abspath(path))) as spool:
        sizes, zeros = [], []
        for line_sizes, lines, zero in _word2vec_lines(unpacked, entry, binary):
            spool.write(lines)
            sizes.append(line_sizes)
            zeros.append(zero)
        lengths = np.concatenate(sizes) if sizes else np.zeros(0, dtype=np.int64)
        zero = np.concatenate(zeros) if zeros else np.zeros(0, dtype=bool)
        keep = ~zero if zero_rows == "drop" else np.ones(rows, dtype=bool)
        if not keep.any():
            raise BayesCompressError("every word vector is all zero; nothing is left to write "
                                     "(keep them with --zero-rows keep / zero_rows='keep')")
        handle.write(f"{int(keep.sum())} {dim}\n".encode())
        spool.seek(0)
        if order is None and keep.all():
            shutil.copyfileobj(spool, handle, 1 << 24)
        elif order is None:
            for row in range(rows):
                line = spool.read(int(lengths[row]))
                if keep[row]:
                    handle.write(line)
        else:
            starts = np.cumsum(lengths) - lengths
            for row in order[keep[order]]:
                spool.seek(int(starts[row]))
                handle.write(spool.read(int(lengths[row])))
    return int(zero.sum()), rows


def _word2vec_lines(unpacked, entry: dict, binary: bool):
    """(byte length of each line, the lines joined, which rows are all zero) per decoded block of
    rows, in row order."""
    words = unpacked.vocab.words
    for _, first, block in row_blocks(unpacked.pieces({entry["name"]}), unpacked.entries):
        lines = []
        for offset, vector in enumerate(block.astype(np.float32)):
            word = words[first + offset]
            if binary:
                lines.append(f"{word} ".encode() + vector.tobytes())
            else:
                lines.append(f"{word} {' '.join(str(value) for value in vector)}\n".encode())
        sizes = np.array([len(line) for line in lines], dtype=np.int64)
        yield sizes, b"".join(lines), ~np.any(block, axis=1)
