"""The container: round trip, then every kind of damage is caught before any data is trusted."""

from __future__ import annotations

import struct

import pytest

from bayescompress.archive import (
    FORMAT_VERSION,
    MAGIC,
    SEGMENTED_VERSION,
    SINGLE_STREAM_VERSION,
    decode_archive,
    encode_archive,
    read_archive,
    write_archive,
)
from bayescompress.errors import BayesCompressError

SECTIONS = {"tables": b"\x01\x02\x03", "side": b"", "stream": bytes(range(200))}


def test_sections_and_header_round_trip(tmp_path):
    path = tmp_path / "a.bcz"
    size = write_archive(path, {"format": "x", "n": 3}, SECTIONS)
    archive = read_archive(path)
    assert size == path.stat().st_size == archive.total_bytes
    assert archive.sections == SECTIONS
    assert archive.header["n"] == 3


def test_archive_starts_with_magic_and_version():
    blob = encode_archive({}, SECTIONS)
    assert blob[:8] == MAGIC and struct.unpack_from("<H", blob, 8)[0] == SINGLE_STREAM_VERSION == 2
    assert FORMAT_VERSION == SEGMENTED_VERSION == 3  # what range-coded archives are written as


def test_every_truncation_is_detected():
    blob = encode_archive({"format": "x"}, SECTIONS)
    for length in range(len(blob)):
        with pytest.raises(BayesCompressError):
            decode_archive(blob[:length])


def test_every_single_bit_flip_is_detected():
    blob = encode_archive({"format": "x"}, {"stream": b"\xaa\x55" * 8})
    for position in range(len(blob) * 8):
        damaged = bytearray(blob)
        damaged[position // 8] ^= 1 << (position % 8)
        with pytest.raises(BayesCompressError):
            decode_archive(bytes(damaged))


def test_empty_file_is_named_as_such():
    with pytest.raises(BayesCompressError, match="empty"):
        decode_archive(b"", "x.bcz")


def test_unknown_version_is_rejected_with_the_versions_we_read():
    blob = bytearray(encode_archive({}, SECTIONS))
    struct.pack_into("<H", blob, 8, 99)
    with pytest.raises(BayesCompressError, match="version 99 is not supported"):
        decode_archive(bytes(blob))


def test_trailing_garbage_is_rejected():
    with pytest.raises(BayesCompressError, match="unexpected bytes"):
        decode_archive(encode_archive({}, SECTIONS) + b"\x00")


def test_a_header_length_beyond_the_file_is_not_trusted():
    blob = bytearray(encode_archive({}, SECTIONS))
    struct.pack_into("<I", blob, 12, 2**31)
    with pytest.raises(BayesCompressError, match="truncated"):
        decode_archive(bytes(blob))


def test_the_header_is_stored_deflated_and_a_plain_json_header_reads_too():
    import json
    import zlib

    blob = encode_archive({"format": "x"}, SECTIONS)
    assert struct.unpack_from("<H", blob, 10)[0] == 1  # flag bit 0: deflated header
    payload = blob[struct.calcsize("<8sHHI") + struct.unpack_from("<I", blob, 12)[0] + 4:]
    text = json.dumps(decode_archive(blob).header).encode()
    preamble = struct.pack("<8sHHI", MAGIC, 1, 0, len(text)) + text
    plain = preamble + struct.pack("<I", zlib.crc32(preamble)) + payload
    assert decode_archive(plain).sections == SECTIONS


def test_unknown_flags_are_refused():
    blob = bytearray(encode_archive({}, SECTIONS))
    struct.pack_into("<H", blob, 10, 3)
    with pytest.raises(BayesCompressError, match="unknown flags"):
        decode_archive(bytes(blob))
