"""Caps on what untrusted input may declare, and the checks that apply them, in one place.

Every count read from a file is checked against these caps (and against the bytes that could
hold it) before anything is allocated from it; docs/archive-format.md lists them.
"""

from __future__ import annotations

import json
import re

from .errors import BayesCompressError

MAX_TENSORS = 1 << 16  # tensors in one archive or posterior
MAX_DIMS = 32  # dimensions of one tensor (numpy 1.x allows 32)
MAX_NAME_CHARS = 1024  # characters of a tensor name
MAX_LATENTS = 1 << 40  # latents in one archive
MAX_VOCAB_WORDS = 1 << 25  # words of a vocabulary
MAX_WORD_CHARS = 1 << 12  # characters of one vocabulary word
MAX_JSON_DEPTH = 64  # nesting of any JSON we read (header, model spec, metadata, attributes)
MAX_JSON_BYTES = 1 << 26  # any JSON text we read
HEADER_EXPANSION = 64  # a deflated archive header inflates to at most 1 MiB + this many times its size
MAX_SIDE_BYTES = 1 << 30  # side data after decompression
SIDE_EXPANSION = 64  # ... and at most 1 MiB + this many times its compressed size
LZMA_MEMORY_LIMIT = 1 << 27  # liblzma's memory for one stream (preset 9's dictionary is 64 MiB)
MAX_ATTRIBUTE_BYTES = 1 << 26  # one HDF5 attribute
STREAM_SLACK_BITS = 256  # a range-coded stream may fall short of its entropy bound by this much

_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def parse_json(text: bytes | str, what: str):
    """Parse untrusted JSON: one BayesCompressError for invalid text, excess size or depth."""
    if len(text) > MAX_JSON_BYTES:
        raise BayesCompressError(f"{what} is larger than {MAX_JSON_BYTES} bytes")
    try:
        value = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else "not valid JSON"
        raise BayesCompressError(f"{what} is {reason}") from None
    check_json_depth(value, what)
    return value


def check_json_depth(value, what: str) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH (later recursion would crash on it)."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise BayesCompressError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
        children = []
        for item in level:
            if isinstance(item, dict):
                children.extend(item.values())
            elif isinstance(item, list):
                children.extend(item)
        level = children


def printable_name(name: str) -> bool:
    """True if ``name`` is a str without control characters or lone surrogates (safe to print
    on one line, and to encode as UTF-8 into any output format)."""
    return isinstance(name, str) and _CONTROL.search(name) is None


def check_count(value, cap: int, what: str) -> int:
    """``value`` as an int in 0..cap (bools refused), or one BayesCompressError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= cap:
        raise BayesCompressError(f"{what} must be an integer in 0..{cap}, got {_short(value)}")
    return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
