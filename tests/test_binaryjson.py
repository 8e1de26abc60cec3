"""The compact binary JSON of version-4 headers: exact round trips, small sizes, refusals."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayescompress.binaryjson import decode, encode
from bayescompress.errors import BayesCompressError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["0x1.8p+1", "-0x0.0p+0", "0x1.999999999999ap-4", "layers.0.bias"]),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_every_json_value_decodes_to_exactly_what_was_encoded(value):
    decoded = decode(encode(value))
    assert json.dumps(decoded) == json.dumps(value)  # the same types, floats bit for bit (-0.0 too)


def test_hex_floats_lists_of_numbers_and_records_take_a_fraction_of_their_json():
    header = {"tensors": [{"name": f"layers.{i}.weight", "shape": [128, 64], "dtype": "float32",
                           "params": {"loc": "0x0.0p+0", "scale": (0.1 * (i + 1)).hex()},
                           "values_crc32": 2**31 + i}
                          for i in range(4)],
              "input_mean": [float(i) / 3 for i in range(64)]}
    assert len(encode(header)) < 0.5 * len(json.dumps(header, separators=(",", ":")))
    assert len(encode([0.5] * 64)) == 2 + 4 * 64 and len(encode([0.1] * 64)) == 2 + 8 * 64
    assert decode(encode(header)) == header


def test_a_string_sharing_a_prefix_with_the_one_before_stores_only_the_rest():
    alone = len(encode(["layers.0.weight"]))
    assert len(encode(["layers.0.weight", "layers.0.bias"])) <= alone + 7


@pytest.mark.parametrize("data, fragment", [
    (b"", "truncated"),
    (b"\x10\x05", "truncated"),  # a list declaring five items in no bytes
    (b"\x03\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", "over-long varint"),
    (b"\x03\x80\x00", "redundant byte"),
    (b"\x3f", "unknown tag"),
    (b"\xff", "unknown word"),
    (b"\x09\x02\xc3\x28", "not UTF-8"),
    (b"\x10\x02\x40\x00\x40\x00", "key twice"),
    (b"\x10\x01\x03\x00\x00", "key is not a string"),
    (b"\x0a\x40\x01x", "shares more than"),
    (b"\x00\x00", "trailing bytes"),
    (b"\x05\x03--5", "a bad integer"),  # at most one minus sign
])
def test_malformed_input_is_one_error_naming_what_is_wrong(data, fragment):
    with pytest.raises(BayesCompressError, match=fragment):
        decode(data, "archive header")


def test_nesting_beyond_64_levels_is_refused_without_recursing_further():
    with pytest.raises(BayesCompressError, match="nested more than 64 levels"):
        decode(b"\x0f\x01" * 100000 + b"\x00")


def test_a_small_input_cannot_decode_into_a_large_value():
    long_string = b"\x09" + bytes([0x80, 0x80, 0x04]) + b"x" * 65536  # 64 KiB
    copies = b"\x0a\x80\x80\x04\x00" * 2000  # each repeats it whole: 128 MiB from 10 kB
    with pytest.raises(BayesCompressError, match="larger than 1 MiB"):
        decode(b"\x0f" + bytes([0xd1, 0x0f]) + long_string + copies)


def test_every_word_has_its_own_one_byte_tag_above_the_value_tags():
    from bayescompress.binaryjson import UINT32, WORD_BASE, WORDS

    assert len(set(WORDS)) == len(WORDS) and len(WORDS) <= 256 - WORD_BASE and UINT32 < WORD_BASE
    assert [encode(word) for word in WORDS[:3]] == [bytes([WORD_BASE]), bytes([WORD_BASE + 1]),
                                                     bytes([WORD_BASE + 2])]


def test_a_deflated_header_is_bounded_by_its_stored_size_not_by_its_inflated_size():
    # the archive inflates a header to at most 1 MiB + 64x its stored bytes; decoding must not
    # then allow another 64x of that (a 244 kB archive made the parser allocate about 1 GB)
    inflated = encode("x" * 3_000_000)
    assert decode(inflated) == "x" * 3_000_000
    with pytest.raises(BayesCompressError, match="larger than 1 MiB"):
        decode(inflated, "archive header", stored_bytes=10_000)
