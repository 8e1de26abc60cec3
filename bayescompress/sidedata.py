"""Side data of an archive: vocabulary, corpus counts, model spec and metadata, compressed.

Parts are concatenated raw (words joined by newlines, counts as zigzag varint deltas, the model
spec and metadata as JSON, or from format version 4 on in binaryjson's compact form) and
compressed together: raw LZMA2 before version 4; from version 4 whichever of none, raw DEFLATE
and raw LZMA2 is smallest (LZMA2's own overhead outweighs its gain on a small model's spec).
The header records the codec and each part's length.
"""

from __future__ import annotations

import json
import lzma
import zlib

import numpy as np

from . import binaryjson
from .coding import decode_varints, encode_varints, unzigzag, zigzag
from .errors import BayesCompressError
from .limits import MAX_SIDE_BYTES, MAX_VOCAB_WORDS, SIDE_EXPANSION, parse_json
from .posterior import Vocabulary, validate_vocabulary

CODEC = "lzma2-raw-preset9e"
DEFLATE = "deflate-raw-9"
STORED = "none"
CODECS = (CODEC, DEFLATE, STORED)  # version 4 chooses among these; versions 1-3 use CODEC
_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
PART_NAMES = ("vocab_words", "vocab_counts", "model_spec", "metadata")


def encode_side_data(
    vocab: Vocabulary | None, model_spec: dict | None, metadata: dict | None, compact: bool = False
) -> tuple[bytes, dict]:
    """Compress the side data; return the bytes and the header entry that describes them.

    ``compact`` (format version 4): the spec and metadata in binary JSON, the cheapest codec."""
    _json_bytes = _binary_json if compact else _plain_json
    parts: list[tuple[str, bytes]] = []
    if vocab is not None:
        parts.append(("vocab_words", "\n".join(vocab.words).encode("utf-8")))
        if vocab.counts is not None:
            deltas = np.diff(np.asarray(vocab.counts, dtype=np.int64), prepend=0)
            parts.append(("vocab_counts", encode_varints(zigzag(deltas))))
    if model_spec is not None:
        parts.append(("model_spec", _json_bytes(model_spec)))
    if metadata:
        parts.append(("metadata", _json_bytes(metadata)))
    if not parts:
        return b"", {"codec": None, "parts": []}
    raw = b"".join(data for _, data in parts)
    codec, blob = CODEC, lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_FILTERS)
    if compact:
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        options = [(len(blob), CODEC, blob), (len(raw), STORED, raw)]
        deflated = deflate.compress(raw) + deflate.flush()
        options.append((len(deflated), DEFLATE, deflated))
        _, codec, blob = min(options, key=lambda option: (option[0], CODECS.index(option[1])))
    descriptor = {
        "codec": codec,
        "raw_length": len(raw),
        "parts": [{"name": name, "length": len(data)} for name, data in parts],
    }
    if vocab is not None:
        descriptor["vocab_size"] = len(vocab)
    return blob, descriptor


def decode_side_data(
    blob: bytes, descriptor: dict, source: str = "archive", compact: bool = False
) -> tuple[Vocabulary | None, dict | None, dict]:
    """Inverse of encode_side_data, checking every length before trusting it."""
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("parts"), list):
        raise BayesCompressError(f"{source}: side data descriptor is malformed")
    parts = descriptor["parts"]
    if not parts:
        return None, None, {}
    codec = descriptor.get("codec")
    if codec not in (CODECS if compact else (CODEC,)):
        raise BayesCompressError(f"{source}: side data codec {codec!r} is unknown")
    raw_length = descriptor.get("raw_length")
    names = [part.get("name") if isinstance(part, dict) else None for part in parts]
    known = all(isinstance(name, str) and name in PART_NAMES for name in names)
    if len(parts) > len(PART_NAMES) or not known or len(set(names)) != len(names):
        raise BayesCompressError(f"{source}: side data parts are malformed")
    lengths = [part.get("length") for part in parts]
    if (
        isinstance(raw_length, bool)
        or not isinstance(raw_length, int)
        or not 0 <= raw_length <= MAX_SIDE_BYTES
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in lengths)
        or sum(lengths) != raw_length
    ):
        raise BayesCompressError(f"{source}: side data lengths are malformed")
    if raw_length > (1 << 20) + SIDE_EXPANSION * len(blob):
        raise BayesCompressError(
            f"{source}: side data claims {raw_length} bytes from {len(blob)} compressed "
            f"(more than {SIDE_EXPANSION}x); refused"
        )
    raw = _decompressed(blob, codec, raw_length, source)
    if len(raw) != raw_length:
        raise BayesCompressError(f"{source}: side data has the wrong length after decompression")
    pieces, offset = {}, 0
    for part, length in zip(parts, lengths, strict=True):
        pieces[part.get("name")] = raw[offset : offset + length]
        offset += length
    vocab = None
    if "vocab_words" in pieces:
        try:
            text = pieces["vocab_words"].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BayesCompressError(f"{source}: vocabulary is not valid UTF-8") from exc
        if text.count("\n") >= MAX_VOCAB_WORDS:
            raise BayesCompressError(f"{source}: vocabulary has more than {MAX_VOCAB_WORDS} words")
        words = text.split("\n")
        counts = None
        if "vocab_counts" in pieces:
            deltas, used = decode_varints(pieces["vocab_counts"], len(words))
            if used != len(pieces["vocab_counts"]):
                raise BayesCompressError(f"{source}: vocabulary counts are malformed")
            counts = np.cumsum(unzigzag(deltas))
        vocab = Vocabulary(words, counts)
        validate_vocabulary(vocab, source)
        if descriptor.get("vocab_size", len(words)) != len(words):
            raise BayesCompressError(f"{source}: side data vocabulary size does not match its words")
    model_spec = _parse_json(pieces.get("model_spec"), "model spec", source, compact)
    metadata = _parse_json(pieces.get("metadata"), "metadata", source, compact)
    for what, value in (("model spec", model_spec), ("metadata", metadata)):
        if value is not None and not isinstance(value, dict):
            raise BayesCompressError(f"{source}: {what} in side data is not a JSON object")
    return vocab, model_spec, metadata or {}


def _decompressed(blob: bytes, codec: str, raw_length: int, source: str) -> bytes:
    """The side data's raw bytes; decompression stops one byte past the declared length."""
    if codec == STORED:
        return blob
    try:
        if codec == DEFLATE:
            inflate = zlib.decompressobj(-15)
            return inflate.decompress(blob, raw_length + 1)
        decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_FILTERS)
        return decompressor.decompress(blob, max_length=raw_length + 1)
    except (lzma.LZMAError, zlib.error) as exc:
        raise BayesCompressError(f"{source}: side data does not decompress") from exc


def _sorted_keys(value):
    """``value`` with every dict's keys in sorted order, so that equal specs give equal bytes."""
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def _binary_json(value) -> bytes:
    return binaryjson.encode(_sorted_keys(value))


def _plain_json(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _parse_json(data: bytes | None, what: str, source: str, compact: bool = False):
    if data is None:
        return None
    try:
        if compact:
            return binaryjson.decode(data, f"{what} in side data")
        return parse_json(data, f"{what} in side data")
    except BayesCompressError as exc:
        raise BayesCompressError(f"{source}: {exc}") from None
