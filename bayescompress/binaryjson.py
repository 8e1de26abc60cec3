"""A compact binary form of JSON values, for version-4 archive headers and side data.

Small models pay for every byte of their header: this form tags each value with one byte, names
common keys from a fixed word list, stores numbers and hex-float strings in binary (4 bytes when
a float32 holds them exactly), runs of numbers as typed arrays, and a string as the part it does
not share with the string before it.  Decoding returns exactly the value that was encoded; it
refuses malformed input, depth beyond MAX_JSON_DEPTH, and output beyond a multiple of its size.
"""

from __future__ import annotations

import math
import struct

from .errors import BayesCompressError
from .limits import MAX_JSON_BYTES, MAX_JSON_DEPTH

# Fixed for format version 4: word i is the one-byte tag WORD_BASE + i (at most 256 - WORD_BASE words).
WORDS = (
    "format", "bayescompress-archive", "writer", "kind", "embedding", "network", "generic", "method",
    "vbq", "config", "lambda", "max_rate", "prior", "quantile", "as241-basic-ops", "tails", "auto",
    "t2", "rms", "fit", "coder", "name", "constriction-range", "word_bits", "state_bits", "precision",
    "model", "exact-fixed-point", "escape_chunk_bits", "tensors", "shape", "dtype", "float16",
    "float32", "float64", "params", "loc", "scale", "family", "values_crc32", "side", "codec",
    "raw_length", "parts", "length", "vocab_size", "vocab_words", "vocab_counts", "model_spec",
    "metadata", "segments", "latents", "count", "sections", "index", "stream", "tables", "offset",
    "crc32", "width_bits", "gzip", "bzip2", "lzma", "uniform", "kmeans", "lloyd", "bits", "k",
    "codebook", "step", "levels", "version", "task", "layers", "in_features", "out_features",
    "activation", "relu", "tanh", "sigmoid", "identity", "likelihood", "classes", "categorical",
    "gaussian", "classification", "regression", "noise_std", "normalization", "input_mean",
    "input_std", "target_mean", "target_std", "normal", "std", "data", "path", "seed",
    "test_fraction", "bayescompress-mlp", "weight", "bias", "none", "deflate-raw-9",
    "lzma2-raw-preset9e", "steps", "lr", "source", "posterior", "student-t", "df", "checksum",
    "features", "rows", "target", "fold", "folds", "fitted_by", "imported_from", "batch", "device",
    "elbo", "guide", "init_scale", "kl_weight", "prior_std", "digits",
)
WORD_BASE = 64
_WORD_CODES = {word: code for code, word in enumerate(WORDS)}
FIRST_PREVIOUS = "bayescompress "  # what the first string may share a prefix with (the writer's name)
EXPANSION = 64  # decoded characters and items: at most 1 MiB + this many times the encoded size

(NULL, FALSE, TRUE, UINT, NEGINT, BIGINT, FLOAT64, FLOAT32, FLOAT_INT, STRING, STRING_PREFIXED, RECORDS,
 HEX64, HEX32, HEX_INT, LIST, DICT, FLOAT64_LIST, FLOAT32_LIST, INT_LIST, UINT32) = range(21)
_F64, _F32 = struct.Struct("<d"), struct.Struct("<f")
_INT64 = 1 << 63


def encode(value) -> bytes:
    """The compact form of a JSON value (dict, list, str, int, float, bool, None).

    >>> data = encode({"kind": "network", "loc": "0x0.0p+0", "n": [1, 2, 3]})
    >>> len(data), decode(data)
    (15, {'kind': 'network', 'loc': '0x0.0p+0', 'n': [1, 2, 3]})
    """
    out = bytearray()
    _Encoder(out).value(value)
    return bytes(out)


def decode(data: bytes | memoryview, what: str = "value", stored_bytes: int | None = None):
    """Inverse of ``encode``; any malformed input is one BayesCompressError naming ``what``.

    ``stored_bytes``: the size ``data`` had in the file before it was inflated, which bounds
    what decoding may produce (a deflated header must not earn two expansion factors).
    """
    decoder = _Decoder(bytes(data), what, len(data) if stored_bytes is None else stored_bytes)
    value = decoder.value(1)
    if decoder.offset != len(decoder.data):
        raise BayesCompressError(f"{what} has trailing bytes")
    return value


def _varint(out: bytearray, number: int) -> None:
    while True:
        byte = number & 0x7F
        number >>= 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return


def _float32_exact(number: float) -> bool:
    if not math.isfinite(number):
        return True  # inf and nan are float32 too (a nan's payload is not kept: JSON has one nan)
    try:
        return _F32.unpack(_F32.pack(number))[0] == number
    except OverflowError:
        return False


def _integral(number: float) -> bool:
    return math.isfinite(number) and number == int(number) and abs(number) < 2.0**53 and (
        number != 0 or math.copysign(1.0, number) > 0)


def _canonical_hex(text: str) -> float | None:
    """The float whose float.hex() is exactly ``text``, else None."""
    if not 6 <= len(text) <= 32 or "0x" not in text[:3]:
        return None
    try:
        number = float.fromhex(text)
    except (ValueError, OverflowError):
        return None
    return number if number.hex() == text else None


class _Encoder:
    def __init__(self, out: bytearray):
        self.out, self.previous = out, FIRST_PREVIOUS

    def value(self, value) -> None:
        out = self.out
        if value is None:
            out.append(NULL)
        elif value is True or value is False:
            out.append(TRUE if value else FALSE)
        elif isinstance(value, int):
            if 1 << 28 <= value < 1 << 32:  # checksums: 4 bytes, not a 5-byte varint
                out.append(UINT32)
                out += value.to_bytes(4, "little")
            elif 0 <= value < 1 << 64:
                out.append(UINT)
                _varint(out, value)
            elif -(1 << 64) <= value < 0:
                out.append(NEGINT)
                _varint(out, -1 - value)
            else:
                self.string_body(str(value).encode("ascii"), BIGINT)
        elif isinstance(value, float):
            self.number(value)
        elif isinstance(value, str):
            self.string(value)
        elif isinstance(value, (list, tuple)):
            self.sequence(list(value))
        elif isinstance(value, dict):
            out.append(DICT)
            _varint(out, len(value))
            for key, item in value.items():
                if not isinstance(key, str):
                    raise BayesCompressError(f"JSON object keys must be strings, got {type(key).__name__}")
                self.string(key, key=True)
                self.value(item)
        else:
            raise BayesCompressError(f"{type(value).__name__} is not a JSON value")

    def number(self, number: float) -> None:
        if _integral(number):
            self.out.append(FLOAT_INT)
            _varint(self.out, _zigzag(int(number)))
        elif _float32_exact(number):
            self.out.append(FLOAT32)
            self.out += _F32.pack(number)
        else:
            self.out.append(FLOAT64)
            self.out += _F64.pack(number)

    def sequence(self, items: list) -> None:
        out = self.out
        floats = len(items) > 1 and all(type(item) is float for item in items)
        ints = len(items) > 1 and all(type(item) is int and -_INT64 <= item < _INT64 for item in items)
        if floats:
            narrow = all(_float32_exact(item) for item in items)
            out.append(FLOAT32_LIST if narrow else FLOAT64_LIST)
            _varint(out, len(items))
            out += struct.pack(f"<{len(items)}{'f' if narrow else 'd'}", *items)
        elif _same_keys(items):
            out.append(RECORDS)
            _varint(out, len(items))
            _varint(out, len(items[0]))
            for key in items[0]:
                self.string(key, key=True)
            for item in items:
                for entry in item.values():
                    self.value(entry)
        elif ints:
            out.append(INT_LIST)
            _varint(out, len(items))
            for item in items:
                _varint(out, _zigzag(item))
        else:
            out.append(LIST)
            _varint(out, len(items))
            for item in items:
                self.value(item)

    def string(self, text: str, key: bool = False) -> None:
        out = self.out
        number = _canonical_hex(text) if not key and text[:3].lstrip("-").startswith("0x") else None
        if number is not None:
            if _integral(number):
                out.append(HEX_INT)
                _varint(out, _zigzag(int(number)))
            elif _float32_exact(number):
                out.append(HEX32)
                out += _F32.pack(number)
            else:
                out.append(HEX64)
                out += _F64.pack(number)
            return
        if text in _WORD_CODES:
            out.append(WORD_BASE + _WORD_CODES[text])
            return
        shared = _shared_prefix(self.previous, text)
        shared = shared if shared >= 2 else 0
        self.previous = text
        body = text[shared:].encode("utf-8", "surrogatepass")
        if shared:
            out.append(STRING_PREFIXED)
            _varint(out, shared)
            self.string_body(body, None)
        else:
            self.string_body(body, STRING)

    def string_body(self, body: bytes, tag: int | None) -> None:
        if tag is not None:
            self.out.append(tag)
        _varint(self.out, len(body))
        self.out += body


def _same_keys(items: list) -> bool:
    """A list of at least two objects with the same keys in the same order (keys stored once)."""
    if len(items) < 2 or not all(type(item) is dict for item in items):
        return False
    keys = list(items[0])
    return bool(keys) and all(isinstance(key, str) for key in keys) and all(
        list(item) == keys for item in items)


def _shared_prefix(first: str, second: str) -> int:
    limit = min(len(first), len(second))
    shared = 0
    while shared < limit and first[shared] == second[shared]:
        shared += 1
    return shared


def _zigzag(number: int) -> int:
    return 2 * number if number >= 0 else -2 * number - 1


def _unzigzag(code: int) -> int:
    return code >> 1 if not code & 1 else -((code + 1) >> 1)


class _Decoder:
    def __init__(self, data: bytes, what: str, stored_bytes: int):
        self.data, self.what, self.offset = data, what, 0
        self.previous = FIRST_PREVIOUS
        self.stored_bytes = stored_bytes
        # characters and items it may produce: never more than a JSON text we would read
        self.budget = min((1 << 20) + EXPANSION * stored_bytes, MAX_JSON_BYTES)

    def fail(self, reason: str):
        raise BayesCompressError(f"{self.what} is {reason}")

    def spend(self, amount: int) -> None:
        self.budget -= amount
        if self.budget < 0:
            self.fail(f"larger than 1 MiB + {EXPANSION}x its {self.stored_bytes} stored bytes "
                      f"(and at most {MAX_JSON_BYTES} characters) once decoded")

    def byte(self) -> int:
        if self.offset >= len(self.data):
            self.fail("truncated")
        self.offset += 1
        return self.data[self.offset - 1]

    def varint(self, max_bytes: int = 10) -> int:
        number, shift = 0, 0
        for _ in range(max_bytes):
            byte = self.byte()
            number |= (byte & 0x7F) << shift
            if byte < 0x80:
                if byte == 0 and shift:
                    self.fail("malformed (a varint with a redundant byte)")
                return number
            shift += 7
        self.fail("malformed (an over-long varint)")

    def take(self, length: int) -> bytes:
        if length > len(self.data) - self.offset:
            self.fail("truncated")
        self.offset += length
        return self.data[self.offset - length : self.offset]

    def count(self, item_bytes: int) -> int:
        """A count of items that each take at least ``item_bytes`` bytes: no more than fit."""
        number = self.varint()
        if number * item_bytes > len(self.data) - self.offset:
            self.fail("truncated (it declares more items than its bytes hold)")
        self.spend(number)
        return number

    def text(self, body: bytes) -> str:
        try:
            return body.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            self.fail("malformed (a string is not UTF-8)")

    def value(self, depth: int):
        if depth > MAX_JSON_DEPTH:
            self.fail(f"nested more than {MAX_JSON_DEPTH} levels deep")
        tag = self.byte()
        if tag == NULL:
            return None
        if tag in (FALSE, TRUE):
            return tag == TRUE
        if tag == UINT:
            return self.varint()
        if tag == NEGINT:
            return -1 - self.varint()
        if tag == UINT32:
            return int.from_bytes(self.take(4), "little")
        if tag == BIGINT:
            body = self.take(self.count(1))
            if not body or len(body) > 4300 or not body[body[:1] == b"-":].isdigit():
                self.fail("malformed (a bad integer)")
            return int(body)
        if tag == FLOAT64:
            return _F64.unpack(self.take(8))[0]
        if tag == FLOAT32:
            return _F32.unpack(self.take(4))[0]
        if tag == FLOAT_INT:
            return float(_unzigzag(self.varint(8)))
        if tag in (STRING, STRING_PREFIXED, HEX64, HEX32, HEX_INT) or tag >= WORD_BASE:
            return self.string(tag)
        if tag == LIST:
            return [self.value(depth + 1) for _ in range(self.count(1))]
        if tag == DICT:
            result = {}
            for _ in range(self.count(2)):
                key = self.key()
                if key in result:
                    self.fail("malformed (an object has a key twice)")
                result[key] = self.value(depth + 1)
            return result
        if tag == RECORDS:
            rows = self.count(1)
            keys = self.keys(self.count(1))
            if rows * len(keys) > len(self.data) - self.offset:
                self.fail("truncated (it declares more items than its bytes hold)")
            self.spend(rows * len(keys))
            return [{key: self.value(depth + 2) for key in keys} for _ in range(rows)]
        if tag in (FLOAT64_LIST, FLOAT32_LIST):
            width = 8 if tag == FLOAT64_LIST else 4
            number = self.count(width)
            return list(struct.unpack(f"<{number}{'d' if width == 8 else 'f'}", self.take(number * width)))
        if tag == INT_LIST:
            return [_unzigzag(self.varint()) for _ in range(self.count(1))]
        self.fail(f"malformed (unknown tag {tag})")

    def key(self) -> str:
        tag = self.byte()
        if tag not in (STRING, STRING_PREFIXED) and tag < WORD_BASE:
            self.fail("malformed (an object key is not a string)")
        return self.string(tag)

    def keys(self, number: int) -> list[str]:
        keys = [self.key() for _ in range(number)]
        if len(set(keys)) != len(keys):
            self.fail("malformed (an object has a key twice)")
        return keys

    def string(self, tag: int) -> str:
        if tag >= WORD_BASE:
            if tag - WORD_BASE >= len(WORDS):
                self.fail("malformed (an unknown word)")
            return WORDS[tag - WORD_BASE]
        if tag in (HEX64, HEX32, HEX_INT):
            if tag == HEX_INT:
                number = float(_unzigzag(self.varint(8)))
            else:
                number = (_F64 if tag == HEX64 else _F32).unpack(self.take(8 if tag == HEX64 else 4))[0]
            return number.hex()
        shared = self.varint() if tag == STRING_PREFIXED else 0
        if shared > len(self.previous):
            self.fail("malformed (a string shares more than the previous one has)")
        body = self.take(self.count(1))
        text = self.previous[:shared] + self.text(body)
        self.spend(len(text))
        self.previous = text
        return text
