"""The archive container: magic, version, a length-prefixed JSON header, checksummed sections.

Layout (docs/archive-format.md): 8-byte magic, u16 version, u16 flags, u32 header length, the
header as UTF-8 JSON (raw-DEFLATE compressed when flag bit 0 is set, as the writer always does:
it halves the header, which matters for small models), the CRC-32 of everything before it, then
the sections back to back.  The header locates each section by offset and length and holds its
CRC-32; nothing is allocated from a length before it has been checked against the file's size.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import BayesCompressError
from .files import write_bytes_atomically
from .limits import HEADER_EXPANSION, parse_json

MAGIC = b"\x89BCZ\r\n\x1a\n"
# version 2: values checksums cover the shape; VBQ names its quantile function (docs/archive-format.md)
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_HEADER_BYTES = 1 << 26
MAX_SECTIONS = 16  # each section is a copy of at most the file: this bounds the memory they take
_PREAMBLE = struct.Struct("<8sHHI")  # magic, version, flags, header length
_CRC = struct.Struct("<I")
FLAG_DEFLATED_HEADER = 1


@dataclass
class Archive:
    """A parsed archive: its header and the bytes of each section, checksums verified."""

    header: dict
    sections: dict[str, bytes]
    header_bytes: int
    total_bytes: int
    version: int = FORMAT_VERSION


def encode_archive(header: dict, sections: dict[str, bytes]) -> bytes:
    """Serialize ``header`` plus ``sections``; fills in header['sections'] with offsets and CRCs."""
    header = dict(header)
    index, offset = {}, 0
    for name, data in sections.items():
        index[name] = {"offset": offset, "length": len(data), "crc32": zlib.crc32(data)}
        offset += len(data)
    header["sections"] = index
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > MAX_HEADER_BYTES:
        raise BayesCompressError("archive header is too large")
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflate.compress(text) + deflate.flush()
    preamble = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, FLAG_DEFLATED_HEADER, len(packed)) + packed
    return b"".join([preamble, _CRC.pack(zlib.crc32(preamble)), *sections.values()])


def write_archive(path: str | os.PathLike, header: dict, sections: dict[str, bytes]) -> int:
    """Write the archive atomically; return its size in bytes."""
    blob = encode_archive(header, sections)
    write_bytes_atomically(path, blob)
    return len(blob)


def header_size(header_json_length: int) -> int:
    """Bytes of preamble, JSON header and header checksum."""
    return _PREAMBLE.size + header_json_length + _CRC.size


def read_archive(path: str | os.PathLike) -> Archive:
    """Read and verify an archive; every problem is one BayesCompressError naming the file."""
    source = str(path)
    if not Path(path).is_file():
        raise BayesCompressError(f"{source}: no such file")
    with open(path, "rb") as handle:
        blob = handle.read()
    return decode_archive(blob, source)


def decode_archive(blob: bytes, source: str = "archive") -> Archive:
    if len(blob) == 0:
        raise BayesCompressError(f"{source}: file is empty, not a bayescompress archive")
    if len(blob) < _PREAMBLE.size or not blob.startswith(MAGIC):
        raise BayesCompressError(f"{source}: not a bayescompress archive (bad magic number)")
    _, version, flags, length = _PREAMBLE.unpack_from(blob)
    if version not in READABLE_VERSIONS:
        raise BayesCompressError(
            f"{source}: archive format version {version} is not supported "
            f"(this bayescompress reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    if flags & ~FLAG_DEFLATED_HEADER:
        raise BayesCompressError(f"{source}: archive uses unknown flags {flags:#x}")
    end = header_size(length)
    if length > MAX_HEADER_BYTES or end > len(blob):
        raise BayesCompressError(f"{source}: archive is truncated (header runs past the end)")
    (stored_crc,) = _CRC.unpack_from(blob, end - _CRC.size)
    if zlib.crc32(blob[: end - _CRC.size]) != stored_crc:
        raise BayesCompressError(f"{source}: checksum mismatch in header (the file is corrupt)")
    text = blob[_PREAMBLE.size : end - _CRC.size]
    if flags & FLAG_DEFLATED_HEADER:
        text = _inflate_header(text, source)
    try:
        header = parse_json(text, "archive header")
    except BayesCompressError as exc:
        raise BayesCompressError(f"{source}: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("sections"), dict):
        raise BayesCompressError(f"{source}: archive header has no section index")
    if len(header["sections"]) > MAX_SECTIONS:
        raise BayesCompressError(f"{source}: archive header lists more than {MAX_SECTIONS} sections")
    sections, payload_end = {}, end
    for name, entry in header["sections"].items():
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(key), int) and not isinstance(entry[key], bool) and entry[key] >= 0
            for key in ("offset", "length", "crc32")
        ):
            raise BayesCompressError(f"{source}: section {name!r} has a malformed index entry")
        start = end + entry["offset"]
        stop = start + entry["length"]
        if stop > len(blob):
            raise BayesCompressError(f"{source}: archive is truncated ({name} section is cut off)")
        data = blob[start:stop]
        if zlib.crc32(data) != entry["crc32"]:
            raise BayesCompressError(
                f"{source}: checksum mismatch in {name} section (the file is corrupt)"
            )
        sections[name] = data
        payload_end = max(payload_end, stop)
    if payload_end != len(blob):
        extra = len(blob) - payload_end
        raise BayesCompressError(f"{source}: {extra} unexpected bytes after the last section")
    return Archive(header, sections, end, len(blob), version)


def _inflate_header(data: bytes, source: str) -> bytes:
    """Decompress the header, refusing one that would grow past MAX_HEADER_BYTES or 1 MiB +
    HEADER_EXPANSION times its compressed size (real headers deflate about 2-10 fold)."""
    inflate = zlib.decompressobj(-15)
    limit = min(MAX_HEADER_BYTES, (1 << 20) + HEADER_EXPANSION * len(data))
    try:
        text = inflate.decompress(data, limit)
    except zlib.error as exc:
        raise BayesCompressError(f"{source}: archive header does not decompress") from exc
    if inflate.unconsumed_tail and len(text) == limit:
        raise BayesCompressError(
            f"{source}: archive header inflates past {limit} bytes (1 MiB + {HEADER_EXPANSION}x its size)"
        )
    if not inflate.eof or inflate.unconsumed_tail or inflate.unused_data:
        raise BayesCompressError(f"{source}: archive header is malformed")
    return text
