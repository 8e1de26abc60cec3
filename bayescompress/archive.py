"""The archive container: magic, version, a length-prefixed header, checksummed sections.

Layout (docs/archive-format.md): 8-byte magic, u16 version, then (versions 1-3) u16 flags, u32
header length and the header as UTF-8 JSON, or (version 4) u8 flags, a varint header length and
the header in binaryjson's compact form; either may be raw-DEFLATE compressed (flag bit 0).  Then
the CRC-32 of everything before it, and the sections back to back.  The header gives each
section's length and CRC-32 (and, before version 4, its offset); nothing is allocated from a
length before it has been checked against the file's size.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from . import binaryjson
from .errors import BayesCompressError
from .files import atomic_output, write_bytes_atomically
from .limits import HEADER_EXPANSION, parse_json

MAGIC = b"\x89BCZ\r\n\x1a\n"
# version 2: values checksums cover the shape; VBQ names its quantile function (docs/archive-format.md)
# version 3: the stream cut into independently decodable segments, located by an index section
# version 4: compact fixed costs: a binary header, sections without offsets, tables that imply
# their last count, side data in binary JSON (docs/archive-format.md)
FORMAT_VERSION = 4
SINGLE_STREAM_VERSION = 2  # what the baseline byte coders still write: one stream for all tensors
SEGMENTED_VERSION = 3  # the first version whose stream is segmented
COMPACT_VERSION = 4  # the first version with the binary header
READABLE_VERSIONS = (1, 2, 3, 4)
MAX_HEADER_BYTES = 1 << 26
MAX_SECTIONS = 16  # each section is a copy of at most the file: this bounds the memory they take
_PREAMBLE = struct.Struct("<8sHHI")  # magic, version, flags, header length (versions 1-3)
_MAGIC_VERSION = struct.Struct("<8sH")  # version 4: then u8 flags and a varint header length
_CRC = struct.Struct("<I")
FLAG_DEFLATED_HEADER = 1
_READ_BYTES = 1 << 24


@dataclass
class Archive:
    """A parsed archive: its header and the bytes of each section, checksums verified."""

    header: dict
    sections: dict[str, bytes]
    header_bytes: int
    total_bytes: int
    version: int = SINGLE_STREAM_VERSION


def encode_archive(header: dict, sections: dict[str, bytes], version: int = SINGLE_STREAM_VERSION) -> bytes:
    """Serialize ``header`` plus ``sections``; fills in header['sections'] with offsets and CRCs."""
    spans = [(name, len(data), zlib.crc32(data)) for name, data in sections.items()]
    return encode_preamble(header, spans, version) + b"".join(sections.values())


def encode_preamble(header: dict, spans: list[tuple[str, int, int]], version: int) -> bytes:
    """Magic, version, flags, the header (with its section index filled in from ``spans``:
    name, length, CRC-32 of each section in file order) and its checksum."""
    header = dict(header)
    index, offset = {}, 0
    for name, length, crc in spans:
        index[name] = {"offset": offset, "length": length, "crc32": crc}
        offset += length
    if version >= COMPACT_VERSION:  # sections lie back to back: their lengths locate them
        index = {name: {"length": entry["length"], "crc32": entry["crc32"]} for name, entry in index.items()}
    header["sections"] = index
    if version >= COMPACT_VERSION:
        text = binaryjson.encode(header)
    else:
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > MAX_HEADER_BYTES:
        raise BayesCompressError("archive header is too large")
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflate.compress(text) + deflate.flush()
    if version < COMPACT_VERSION:
        preamble = _PREAMBLE.pack(MAGIC, version, FLAG_DEFLATED_HEADER, len(packed)) + packed
    else:  # deflate only when it pays (it rarely does on a small binary header)
        flags, body = (FLAG_DEFLATED_HEADER, packed) if len(packed) < len(text) else (0, text)
        preamble = _MAGIC_VERSION.pack(MAGIC, version) + bytes([flags]) + _varint(len(body)) + body
    return preamble + _CRC.pack(zlib.crc32(preamble))


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        out.append((number & 0x7F) | (0x80 if number >> 7 else 0))
        number >>= 7
        if not number:
            return bytes(out)


def write_archive(path: str | os.PathLike, header: dict, sections: dict[str, bytes],
                  version: int = SINGLE_STREAM_VERSION) -> int:
    """Write the archive atomically; return its size in bytes."""
    blob = encode_archive(header, sections, version)
    write_bytes_atomically(path, blob)
    return len(blob)


def write_spooled_archive(path: str | os.PathLike, header: dict, sections: dict[str, bytes],
                          stream: tuple[str | os.PathLike, int, int]) -> int:
    """Write a segmented (FORMAT_VERSION) archive atomically: ``sections``, then a section ``stream`` copied
    from a spool file, given as (path, length, crc32); return the archive's size in bytes."""
    spool, length, crc = stream
    spans = [(name, len(data), zlib.crc32(data)) for name, data in sections.items()]
    preamble = encode_preamble(header, [*spans, ("stream", length, crc)], FORMAT_VERSION)
    with atomic_output(path) as tmp, open(tmp, "wb") as handle, open(spool, "rb") as source:
        handle.write(preamble)
        for data in sections.values():
            handle.write(data)
        shutil.copyfileobj(source, handle, 1 << 24)
        handle.flush()
        os.fsync(handle.fileno())
        total = handle.tell()
    return total


@dataclass
class ArchiveFile:
    """An archive opened for reading piece by piece: header parsed, sections located, data read
    (and checksummed) on demand, so memory does not grow with the stream."""

    path: Path
    header: dict
    version: int
    header_bytes: int
    total_bytes: int
    spans: dict[str, tuple[int, int, int]]

    def read_section(self, name: str) -> bytes:
        start, stop, crc = self.spans[name]
        data = self.read_range(start, stop - start)
        if zlib.crc32(data) != crc:
            raise BayesCompressError(f"{self.path}: checksum mismatch in {name} section (file is corrupt)")
        return data

    def verify_section(self, name: str) -> None:
        """Check a section's CRC-32, reading it in bounded pieces."""
        start, stop, crc = self.spans[name]
        running = 0
        with open(self.path, "rb") as handle:
            handle.seek(start)
            for offset in range(start, stop, _READ_BYTES):
                running = zlib.crc32(handle.read(min(_READ_BYTES, stop - offset)), running)
        if running != crc:
            raise BayesCompressError(f"{self.path}: checksum mismatch in {name} section (file is corrupt)")

    def read_range(self, start: int, length: int) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(start)
            data = handle.read(length)
        if len(data) != length:
            raise BayesCompressError(f"{self.path}: archive is truncated")
        return data


def open_archive(path: str | os.PathLike) -> ArchiveFile:
    """Parse an archive's header and section index without reading its sections."""
    source = str(path)
    if not Path(path).is_file():
        raise BayesCompressError(f"{source}: no such file")
    size = Path(path).stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(_PREAMBLE.size)
        if len(head) == _PREAMBLE.size and head.startswith(MAGIC):
            try:
                _, _, start, length = _header_span(head, source)
            except BayesCompressError:
                start, length = len(head), 0  # parse_header names the problem
            head += handle.read(max(0, start + min(length, MAX_HEADER_BYTES) + _CRC.size - len(head)))
    header, end, version = parse_header(head, size, source)
    spans = section_spans(header, end, size, source, version)
    return ArchiveFile(Path(path), header, version, end, size, spans)


def values_crc_seed(shape, version: int) -> int:
    """Where a tensor's values_crc32 starts: from version 2 on, the CRC-32 of its shape (u8 number
    of dimensions, then each as u64), so that a permuted shape is caught too; else 0."""
    if version < 2:
        return 0
    return zlib.crc32(struct.pack(f"<B{len(shape)}Q", len(shape), *shape))


def _header_span(head: bytes, source: str) -> tuple[int, int, int, int]:
    """Version, flags, where the header starts and its stored length, from the first bytes (at
    least 16, or the whole file)."""
    if len(head) < _MAGIC_VERSION.size:
        raise BayesCompressError(f"{source}: not a bayescompress archive (bad magic number)")
    version = _MAGIC_VERSION.unpack_from(head)[1]
    if version not in READABLE_VERSIONS:
        raise BayesCompressError(
            f"{source}: archive format version {version} is not supported "
            f"(this bayescompress reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    if version < COMPACT_VERSION:
        if len(head) < _PREAMBLE.size:
            raise BayesCompressError(f"{source}: archive is truncated (header runs past the end)")
        _, _, flags, length = _PREAMBLE.unpack_from(head)
        return version, flags, _PREAMBLE.size, length
    position, length = _MAGIC_VERSION.size + 1, 0
    if position > len(head):
        raise BayesCompressError(f"{source}: archive is truncated (header runs past the end)")
    flags = head[_MAGIC_VERSION.size]
    for shift in range(0, 28, 7):  # at most 4 bytes: MAX_HEADER_BYTES < 2^28
        if position >= len(head):
            raise BayesCompressError(f"{source}: archive is truncated (header runs past the end)")
        byte = head[position]
        position += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and shift:
                break
            return version, flags, position, length
    raise BayesCompressError(f"{source}: archive header length is malformed")


def read_archive(path: str | os.PathLike) -> Archive:
    """Read and verify an archive; every problem is one BayesCompressError naming the file."""
    source = str(path)
    if not Path(path).is_file():
        raise BayesCompressError(f"{source}: no such file")
    with open(path, "rb") as handle:
        blob = handle.read()
    return decode_archive(blob, source)


def decode_archive(blob: bytes, source: str = "archive") -> Archive:
    header, end, version = parse_header(blob, len(blob), source)
    sections, payload_end = {}, end
    for name, (start, stop, crc) in section_spans(header, end, len(blob), source, version).items():
        data = blob[start:stop]
        if zlib.crc32(data) != crc:
            raise BayesCompressError(
                f"{source}: checksum mismatch in {name} section (the file is corrupt)"
            )
        sections[name] = data
        payload_end = max(payload_end, stop)
    return Archive(header, sections, end, len(blob), version)


def parse_header(head: bytes, file_size: int, source: str) -> tuple[dict, int, int]:
    """The header of an archive whose first bytes are ``head`` (at least through the header
    checksum, or the whole file if shorter): it, the offset where sections start, the version."""
    if file_size == 0:
        raise BayesCompressError(f"{source}: file is empty, not a bayescompress archive")
    if not head.startswith(MAGIC):
        raise BayesCompressError(f"{source}: not a bayescompress archive (bad magic number)")
    version, flags, start, length = _header_span(head, source)
    if flags & ~FLAG_DEFLATED_HEADER:
        raise BayesCompressError(f"{source}: archive uses unknown flags {flags:#x}")
    end = start + length + _CRC.size
    if length > MAX_HEADER_BYTES or end > file_size or end > len(head):
        raise BayesCompressError(f"{source}: archive is truncated (header runs past the end)")
    (stored_crc,) = _CRC.unpack_from(head, end - _CRC.size)
    if zlib.crc32(head[: end - _CRC.size]) != stored_crc:
        raise BayesCompressError(f"{source}: checksum mismatch in header (the file is corrupt)")
    text = head[start : end - _CRC.size]
    if flags & FLAG_DEFLATED_HEADER:
        text = _inflate_header(text, source)
    try:
        if version >= COMPACT_VERSION:
            header = binaryjson.decode(text, "archive header", stored_bytes=length)
        else:
            header = parse_json(text, "archive header")
    except BayesCompressError as exc:
        raise BayesCompressError(f"{source}: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("sections"), dict):
        raise BayesCompressError(f"{source}: archive header has no section index")
    if len(header["sections"]) > MAX_SECTIONS:
        raise BayesCompressError(f"{source}: archive header lists more than {MAX_SECTIONS} sections")
    return header, end, version


def section_spans(header: dict, end: int, file_size: int, source: str,
                  version: int = SINGLE_STREAM_VERSION) -> dict[str, tuple[int, int, int]]:
    """Each section's (start, stop, crc32) in the file, checked to lie inside it with nothing after.

    From version 4 on the sections lie back to back in index order and have no offsets."""
    spans, payload_end = {}, end
    keys = ("length", "crc32") if version >= COMPACT_VERSION else ("offset", "length", "crc32")
    for name, entry in header["sections"].items():
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(key), int) and not isinstance(entry[key], bool) and entry[key] >= 0
            for key in keys
        ) or (version >= COMPACT_VERSION and len(entry) != len(keys)):
            raise BayesCompressError(f"{source}: section {name!r} has a malformed index entry")
        start = end + entry["offset"] if version < COMPACT_VERSION else payload_end
        stop = start + entry["length"]
        if stop > file_size:
            raise BayesCompressError(f"{source}: archive is truncated ({name} section is cut off)")
        spans[name] = (start, stop, entry["crc32"])
        payload_end = max(payload_end, stop)
    if payload_end != file_size:
        extra = file_size - payload_end
        raise BayesCompressError(f"{source}: {extra} unexpected bytes after the last section")
    return spans


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
