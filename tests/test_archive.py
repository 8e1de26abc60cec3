"""The container: round trip, then every kind of damage is caught before any data is trusted."""

from __future__ import annotations

import struct
import zlib

import pytest

from bayescompress.archive import (
    COMPACT_VERSION,
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
    assert FORMAT_VERSION == COMPACT_VERSION == 4  # what range-coded archives are written as
    assert SEGMENTED_VERSION == 3


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


# --------------------------------------------------------------------------- version 4: compact header

HEADER = {"format": "bayescompress-archive", "kind": "network", "config": {"lambda": "0x1.999999999999ap-4"},
          "tensors": [{"name": "layers.0.weight", "shape": [50, 16], "values_crc32": 3025543001},
                      {"name": "layers.0.bias", "shape": [50], "values_crc32": 178608054}]}


def test_a_version_4_archive_round_trips_its_header_and_sections_without_offsets(tmp_path):
    size = write_archive(tmp_path / "a.bcz", HEADER, SECTIONS, version=COMPACT_VERSION)
    archive = read_archive(tmp_path / "a.bcz")
    assert archive.version == 4 and size == archive.total_bytes
    assert archive.sections == SECTIONS
    assert {k: v for k, v in archive.header.items() if k != "sections"} == HEADER
    assert all(set(entry) == {"length", "crc32"} for entry in archive.header["sections"].values())


def test_a_version_4_preamble_is_magic_version_flags_and_a_varint_length():
    blob = encode_archive(HEADER, SECTIONS, COMPACT_VERSION)
    assert blob[:8] == MAGIC and struct.unpack_from("<H", blob, 8)[0] == 4 and blob[10] in (0, 1)
    assert blob[11] & 0x80 == 0x80 or blob[11] < 0x80
    json_blob = encode_archive(HEADER, SECTIONS, SEGMENTED_VERSION)
    assert len(blob) < len(json_blob) - 60  # the same header, in fewer bytes


def test_every_truncation_and_bit_flip_of_a_version_4_archive_is_detected():
    blob = encode_archive(HEADER, {"stream": b"\xaa\x55" * 4}, COMPACT_VERSION)
    for length in range(len(blob)):
        with pytest.raises(BayesCompressError):
            decode_archive(blob[:length])
    for position in range(len(blob) * 8):
        damaged = bytearray(blob)
        damaged[position // 8] ^= 1 << (position % 8)
        with pytest.raises(BayesCompressError):
            decode_archive(bytes(damaged))


def test_a_version_4_header_length_beyond_the_file_or_over_long_is_not_trusted():
    blob = bytearray(encode_archive(HEADER, SECTIONS, COMPACT_VERSION))
    blob[11:12] = b"\xff\xff\xff\x7f"
    with pytest.raises(BayesCompressError, match="truncated"):
        decode_archive(bytes(blob))
    blob = bytearray(encode_archive(HEADER, SECTIONS, COMPACT_VERSION))
    blob[11:12] = b"\xff\xff\xff\xff\x01"
    with pytest.raises(BayesCompressError, match="header length is malformed"):
        decode_archive(bytes(blob))


def test_a_version_4_section_index_with_offsets_or_missing_a_crc_is_refused():
    from bayescompress import binaryjson
    from bayescompress.archive import _CRC, _varint

    def with_index(index):
        body = binaryjson.encode({**HEADER, "sections": index})
        preamble = MAGIC + struct.pack("<H", 4) + b"\x00" + _varint(len(body)) + body
        return preamble + _CRC.pack(zlib.crc32(preamble)) + SECTIONS["stream"]

    data = SECTIONS["stream"]
    assert decode_archive(with_index({"stream": {"length": len(data), "crc32": zlib.crc32(data)}})).sections
    for index in ({"stream": {"offset": 0, "length": len(data), "crc32": zlib.crc32(data)}},
                  {"stream": {"length": len(data)}}):
        with pytest.raises(BayesCompressError, match="malformed index entry"):
            decode_archive(with_index(index))
