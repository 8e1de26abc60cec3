"""Side data of an archive: vocabulary, corpus counts, model spec and metadata, LZMA-compressed.

Parts are concatenated raw (words joined by newlines, counts as zigzag varint deltas, JSON)
and compressed together as one raw LZMA2 stream; the header records each part's length.
"""

from __future__ import annotations

import json
import lzma

import numpy as np

from .coding import decode_varints, encode_varints, unzigzag, zigzag
from .errors import BayesCompressError
from .limits import MAX_SIDE_BYTES, MAX_VOCAB_WORDS, SIDE_EXPANSION, parse_json
from .posterior import Vocabulary, validate_vocabulary

CODEC = "lzma2-raw-preset9e"
_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
PART_NAMES = ("vocab_words", "vocab_counts", "model_spec", "metadata")


def encode_side_data(
    vocab: Vocabulary | None, model_spec: dict | None, metadata: dict | None
) -> tuple[bytes, dict]:
    """Compress the side data; return the bytes and the header entry that describes them."""
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
    blob = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_FILTERS)
    descriptor = {
        "codec": CODEC,
        "raw_length": len(raw),
        "parts": [{"name": name, "length": len(data)} for name, data in parts],
    }
    if vocab is not None:
        descriptor["vocab_size"] = len(vocab)
    return blob, descriptor


def decode_side_data(
    blob: bytes, descriptor: dict, source: str = "archive"
) -> tuple[Vocabulary | None, dict | None, dict]:
    """Inverse of encode_side_data, checking every length before trusting it."""
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("parts"), list):
        raise BayesCompressError(f"{source}: side data descriptor is malformed")
    parts = descriptor["parts"]
    if not parts:
        return None, None, {}
    if descriptor.get("codec") != CODEC:
        raise BayesCompressError(f"{source}: side data codec {descriptor.get('codec')!r} is unknown")
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
    try:
        decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_FILTERS)
        raw = decompressor.decompress(blob, max_length=raw_length + 1)
    except lzma.LZMAError as exc:
        raise BayesCompressError(f"{source}: side data does not decompress") from exc
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
    model_spec = _parse_json(pieces.get("model_spec"), "model spec", source)
    metadata = _parse_json(pieces.get("metadata"), "metadata", source)
    for what, value in (("model spec", model_spec), ("metadata", metadata)):
        if value is not None and not isinstance(value, dict):
            raise BayesCompressError(f"{source}: {what} in side data is not a JSON object")
    return vocab, model_spec, metadata or {}


def _json_bytes(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _parse_json(data: bytes | None, what: str, source: str):
    if data is None:
        return None
    try:
        return parse_json(data, f"{what} in side data")
    except BayesCompressError as exc:
        raise BayesCompressError(f"{source}: {exc}") from None
