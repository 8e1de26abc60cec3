"""Entropy coding of integer symbols: a frequency table (the model) and a range-coded stream (the coder).

The table keeps the symbols that pay for their entry; rare ones are sent as an escape symbol
followed by their raw bits (the paper's concatenation code, S1.1), which bounds the alphabet
and keeps the table a small part of the file.  The coder's model is rebuilt from the integers
in the table alone: counts -> fixed-point probabilities by integer arithmetic -> constriction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .errors import BayesCompressError

PRECISION = 24  # constriction's Categorical works on 24-bit fixed-point probabilities
MAX_TABLE_SYMBOLS = 1 << 20
MAX_TOP_BITS = 8  # leading payload bits of an escape that a compact table may model (2^8 counts)
_CHUNK_BITS = 8
# stated in every archive header; docs/archive-format.md spells each field out
CODER_SPEC = {
    "name": "constriction-range",
    "word_bits": 32,
    "state_bits": 64,
    "precision": PRECISION,
    "model": "exact-fixed-point",
    "escape_chunk_bits": _CHUNK_BITS,
}


# ----------------------------------------------------------------------------- varints


def zigzag(values: np.ndarray) -> np.ndarray:
    """Map int64 to uint64 so that small magnitudes get small codes: 0,-1,1,-2 -> 0,1,2,3."""
    values = np.asarray(values, dtype=np.int64)
    return ((values << 1) ^ (values >> 63)).view(np.uint64)


def unzigzag(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.uint64)
    return ((codes >> np.uint64(1)) ^ (np.uint64(0) - (codes & np.uint64(1)))).view(np.int64)


def varint_sizes(values: np.ndarray) -> np.ndarray:
    """Bytes each unsigned value takes as a LEB128 varint."""
    values = np.asarray(values, dtype=np.uint64)
    sizes = np.ones(values.shape, dtype=np.int64)
    for shift in range(7, 64, 7):
        sizes += values >= (np.uint64(1) << np.uint64(shift))
    return sizes


def encode_varints(values: np.ndarray) -> bytes:
    """LEB128 encoding of unsigned integers, vectorized over the array.

    >>> encode_varints(np.array([0, 1, 127, 128, 300])).hex()
    '00017f8001ac02'
    """
    values = np.asarray(values, dtype=np.uint64).ravel()
    sizes = varint_sizes(values)
    ends = np.cumsum(sizes)
    out = np.empty(int(ends[-1]) if values.size else 0, dtype=np.uint8)
    starts = ends - sizes
    for position in range(int(sizes.max()) if values.size else 0):
        has = sizes > position
        chunk = (values[has] >> np.uint64(7 * position)) & np.uint64(0x7F)
        more = (sizes[has] > position + 1).astype(np.uint64) << np.uint64(7)
        out[starts[has] + position] = (chunk | more).astype(np.uint8)
    return out.tobytes()


def decode_varints(buffer: bytes | memoryview, count: int, offset: int = 0) -> tuple[np.ndarray, int]:
    """Read ``count`` varints from ``buffer[offset:]``; return them and the offset after them."""
    if count == 0:
        return np.zeros(0, dtype=np.uint64), offset
    if offset > len(buffer):
        raise BayesCompressError("frequency table is truncated")
    data = np.frombuffer(buffer, dtype=np.uint8, offset=offset)
    ends = np.flatnonzero(data[: 10 * count] < 0x80)  # a varint has at most 10 bytes
    if ends.size < count:
        raise BayesCompressError("frequency table is truncated")
    ends = ends[:count]
    starts = np.concatenate(([0], ends[:-1] + 1))
    sizes = ends - starts + 1
    if sizes.max() > 10:
        raise BayesCompressError("frequency table holds an over-long varint")
    values = np.zeros(count, dtype=np.uint64)
    for position in range(int(sizes.max())):
        has = sizes > position
        byte = data[starts[has] + position].astype(np.uint64) & np.uint64(0x7F)
        values[has] |= byte << np.uint64(7 * position)
    return values, offset + int(ends[-1]) + 1


def read_varint(buffer: bytes | memoryview, offset: int) -> tuple[int, int]:
    values, offset = decode_varints(buffer, 1, offset)
    return int(values[0]), offset


# --------------------------------------------------------------------- fixed-point model


def fixed_point_probabilities(counts: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Integer probabilities >= 1 summing to 2^precision, proportional to ``counts``.

    Pure integer arithmetic, so every machine derives the same model from the same counts.

    >>> fixed_point_probabilities(np.array([3, 1]), precision=4).tolist()
    [12, 4]
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = 1 << precision
    n = counts.size
    if n == 0 or n > total or counts.min() < 1:
        raise BayesCompressError("frequency table needs 1 .. 2^precision positive counts")
    grand = int(counts.sum())
    if grand >= 1 << (62 - precision):
        raise BayesCompressError("frequency table counts are too large")
    scaled = counts << precision
    probs = np.maximum(scaled // grand, 1)
    remainders = scaled % grand
    deficit = total - int(probs.sum())
    if deficit > 0:  # largest remainders first, ties to the lower index
        order = np.lexsort((np.arange(n), -remainders))
        probs[order[:deficit]] += 1
    while deficit < 0:  # the floor of 1 overshot: take from the largest entries
        order = np.lexsort((np.arange(n), -probs))
        takers = order[probs[order] > 1][: -deficit]
        probs[takers] -= 1
        deficit += takers.size
        deficit = total - int(probs.sum())
    return probs


def categorical_model(probs: np.ndarray):
    """A constriction model whose fixed-point probabilities are exactly ``probs``.

    constriction's fast quantizer gives symbol i the weight floor(cumsum * scale) + i; with
    float weights probs - 1 summing to 2^precision - n, the scale is exactly 1 and the
    quantized model equals ``probs`` bit for bit.
    """
    import constriction

    weights = (np.asarray(probs, dtype=np.int64) - 1).astype(np.float64)
    return constriction.stream.model.Categorical(weights, lazy=False, perfect=False)


def _uniform_probs(bits: int) -> np.ndarray:
    return np.full(1 << bits, 1 << (PRECISION - bits), dtype=np.int64)


# ------------------------------------------------------------------ frequency table


@dataclass
class FrequencyTable:
    """Which symbols are coded directly and how often; the rest are escaped with raw bits.

    ``lengths`` and ``length_counts`` describe the bit lengths of the escaped symbols (their
    zigzag code when the table is signed), which are coded before the raw bits.
    """

    symbols: np.ndarray
    counts: np.ndarray
    signed: bool
    escape_count: int = 0
    lengths: np.ndarray | None = None
    length_counts: np.ndarray | None = None
    top_bits: np.ndarray | None = None  # per escape length: leading payload bits coded with top_counts
    top_counts: list[np.ndarray] | None = None  # per length with top bits: 2^b counts (zeros allowed)

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.escape_count

    @property
    def alphabet_size(self) -> int:
        return self.symbols.size + (1 if self.escape_count else 0)

    @classmethod
    def fit(cls, symbols: np.ndarray, compact: bool = True) -> FrequencyTable:
        """Choose the cheapest split into table symbols and escapes for these symbols."""
        return cls.from_counts(*symbol_counts(symbols), compact)

    @classmethod
    def from_counts(cls, unique: np.ndarray, counts: np.ndarray, compact: bool = True) -> FrequencyTable:
        """``fit`` given the distinct symbols (sorted) and their counts: of the splits
        ``_candidate_splits`` proposes, the one whose table (serialized ``compact`` or not) plus
        stream costs the fewest bits (``file_bits``)."""
        signed = bool(unique.size and unique[0] < 0)
        best, best_bits = None, np.inf
        for escaped in _candidate_splits(unique, counts, signed):
            candidates = [cls.split(unique, counts, signed, escaped)]
            if compact and escaped.any():  # the same split with its escapes' top bits modeled
                topped = replace(candidates[0])  # model_top_bits only sets new attributes
                topped.model_top_bits(unique[escaped], counts[escaped])
                if topped.top_bits is not None:
                    candidates.append(topped)
            for table in candidates:  # histograms that save less than the per-length vector costs lose here
                bits = table.file_bits(compact)
                if bits < best_bits:
                    best, best_bits = table, bits
        return best

    def model_top_bits(self, escaped: np.ndarray, escaped_counts: np.ndarray) -> None:
        """For each escape length L, code the b leading payload bits (0 <= b <= MAX_TOP_BITS, L - 1)
        with a histogram of their 2^b values when that saves more bits than the histogram costs:
        escapes are uniform within a length only when the symbols are (compact tables only)."""
        codes = _raw_codes(escaped, self.signed)
        lengths = _bit_lengths(codes)
        top_bits = np.zeros(self.lengths.size, dtype=np.int64)
        histograms = []
        for index, length in enumerate(self.lengths.tolist()):  # at most 65 lengths
            members = lengths == length
            payload = (codes[members] & ((np.uint64(1) << np.uint64(max(length - 1, 0))) - np.uint64(1))
                       if length > 1 else codes[members])
            weights, total = escaped_counts[members], int(self.length_counts[index])
            best, best_bits, best_counts = 0, 0.0, None
            for bits in range(1, min(MAX_TOP_BITS, length - 1) + 1):
                tops = (payload >> np.uint64(length - 1 - bits)).astype(np.int64)
                histogram = np.bincount(tops, weights=weights, minlength=1 << bits).astype(np.int64)
                present = histogram[histogram > 0]
                saved = total * bits - float(np.sum(present * np.log2(total / present)))
                saved -= 8.0 * float(varint_sizes(histogram[:-1].astype(np.uint64)).sum())
                if saved > best_bits:
                    best, best_bits, best_counts = bits, saved, histogram
            top_bits[index] = best
            if best:
                histograms.append(best_counts)
        if histograms:
            self.top_bits, self.top_counts = top_bits, histograms

    def file_bits(self, compact: bool = True) -> float:
        """Bits this table costs in the file: its bytes, plus the stream's ideal bits under it."""
        return 8.0 * len(self.to_bytes(compact)) + self.ideal_bits()

    @classmethod
    def split(cls, unique: np.ndarray, counts: np.ndarray, signed: bool,
              escaped: np.ndarray) -> FrequencyTable:
        """The table that keeps the symbols not ``escaped`` and escapes the others."""
        table = cls(unique[~escaped], counts[~escaped], signed)
        if escaped.any():
            table.escape_count = int(counts[escaped].sum())
            lengths = _bit_lengths(_raw_codes(unique[escaped], signed))
            bins = np.bincount(lengths, weights=counts[escaped], minlength=65).astype(np.int64)
            table.lengths = np.flatnonzero(bins).astype(np.int64)
            table.length_counts = bins[table.lengths]
        return table

    def to_bytes(self, compact: bool = True) -> bytes:
        """Serialize: flags, symbol count, first symbol and gaps, counts, escape lengths.

        ``compact`` (format version 4): the flags say whether there are escapes and whether
        their top bits are modeled, and the last count of the symbols (or the escapes) and of the
        escape lengths is left out: the reader knows the total (``from_bytes``'s ``total``).
        Else the form of versions 1-3.
        """
        if not compact:
            return self._legacy_bytes()
        escaped = self.escape_count > 0
        topped = escaped and self.top_bits is not None
        parts = [bytes([(1 if self.signed else 0) | (2 if escaped else 0) | (4 if topped else 0)]),
                 encode_varints(np.array([self.symbols.size]))]
        if self.symbols.size:
            first = _raw_codes(self.symbols[:1], self.signed)
            with np.errstate(over="ignore"):  # differences wrap in int64 but are exact as uint64
                gaps = np.diff(self.symbols).astype(np.uint64) - np.uint64(1)
            parts += [encode_varints(first), encode_varints(gaps),
                      encode_varints(self.counts if escaped else self.counts[:-1])]
        if escaped:
            parts += [encode_varints(np.array([self.lengths.size])), encode_varints(self.lengths),
                      encode_varints(self.length_counts[:-1])]
        if topped:
            parts.append(encode_varints(self.top_bits))
            parts += [encode_varints(histogram[:-1]) for histogram in self.top_counts]
        return b"".join(parts)

    def _legacy_bytes(self) -> bytes:
        if self.top_bits is not None:
            raise BayesCompressError("internal: escape top bits need the compact table form")
        parts = [bytes([1 if self.signed else 0]), encode_varints(np.array([self.symbols.size]))]
        if self.symbols.size:
            first = _raw_codes(self.symbols[:1], self.signed)
            with np.errstate(over="ignore"):  # differences wrap in int64 but are exact as uint64
                gaps = np.diff(self.symbols).astype(np.uint64) - np.uint64(1)
            parts += [encode_varints(first), encode_varints(gaps), encode_varints(self.counts)]
        parts.append(encode_varints(np.array([self.escape_count])))
        if self.escape_count:
            parts.append(encode_varints(np.array([self.lengths.size])))
            parts.append(encode_varints(self.lengths))
            parts.append(encode_varints(self.length_counts))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, buffer: bytes | memoryview, offset: int = 0,
                   total: int | None = None) -> tuple[FrequencyTable, int]:
        """Parse one table at ``offset``; return it and the offset just after it.

        With ``total`` (the symbols it covers) the table is in the compact form of version 4.
        """
        if offset >= len(buffer):
            raise BayesCompressError("frequency table is truncated")
        flags = buffer[offset]
        if flags not in (range(8) if total is not None else (0, 1)) or flags & 6 == 4:
            raise BayesCompressError("frequency table has unknown flags")
        signed = bool(flags & 1)
        escaped = bool(flags & 2)
        topped = bool(flags & 4)
        n, offset = read_varint(buffer, offset + 1)
        if n > MAX_TABLE_SYMBOLS:
            raise BayesCompressError("frequency table is larger than any writer produces")
        if total is not None and not 0 <= total < 1 << 40:
            raise BayesCompressError("frequency table covers too many symbols")
        implied = total is not None and not escaped
        symbols = np.zeros(0, dtype=np.int64)
        counts = np.zeros(0, dtype=np.int64)
        if n:
            first, offset = decode_varints(buffer, 1, offset)
            gaps, offset = decode_varints(buffer, n - 1, offset)
            raw_counts, offset = decode_varints(buffer, n - 1 if implied else n, offset)
            start = unzigzag(first) if signed else first.view(np.int64)
            with np.errstate(over="ignore"):  # uint64 wraps; an overflow shows as a decrease below
                steps = np.cumsum(gaps + np.uint64(1), dtype=np.uint64)
                symbols = np.concatenate((start, (start.view(np.uint64) + steps).view(np.int64)))
            if not np.all(symbols[1:] > symbols[:-1]):
                raise BayesCompressError("frequency table symbols are out of range")
            if raw_counts.size and raw_counts.max() >= np.uint64(1 << 40):
                raise BayesCompressError("frequency table counts are out of range")
            counts = raw_counts.astype(np.int64)
            if implied:
                counts = np.append(counts, total - int(counts.sum()))
            if counts.min() < 1:
                raise BayesCompressError("frequency table counts are out of range")
        if total is None:
            escape_count, offset = read_varint(buffer, offset)
        else:
            escape_count = total - int(counts.sum())
            if escape_count < 0 or escaped != (escape_count > 0):
                raise BayesCompressError("frequency table counts do not add up to its piece")
        table = cls(symbols, counts, signed, escape_count)
        if escape_count:
            n_lengths, offset = read_varint(buffer, offset)
            if not 1 <= n_lengths <= 65:
                raise BayesCompressError("frequency table escape lengths are out of range")
            lengths, offset = decode_varints(buffer, n_lengths, offset)
            length_counts, offset = decode_varints(buffer, n_lengths - (total is not None), offset)
            if lengths.max() > 64 or np.any(np.diff(lengths.astype(np.int64)) <= 0):
                raise BayesCompressError("frequency table escape lengths are out of range")
            if length_counts.size and length_counts.max() >= np.uint64(1 << 40):
                raise BayesCompressError("frequency table escape counts do not add up")
            table.lengths = lengths.astype(np.int64)
            table.length_counts = length_counts.astype(np.int64)
            if total is not None:
                last = escape_count - int(table.length_counts.sum())
                table.length_counts = np.append(table.length_counts, last)
            if table.length_counts.sum() != escape_count or table.length_counts.min() < 1:
                raise BayesCompressError("frequency table escape counts do not add up")
            if topped:
                offset = table._read_top_bits(buffer, offset)
        return table, offset

    def _read_top_bits(self, buffer, offset: int) -> int:
        """Parse the top-bit histograms of a compact table's escape lengths; the offset after."""
        top_bits, offset = decode_varints(buffer, self.lengths.size, offset)
        top_bits = top_bits.astype(np.int64) if top_bits.max() <= MAX_TOP_BITS else None
        if top_bits is None or np.any(top_bits > np.maximum(self.lengths - 1, 0)) or not top_bits.any():
            raise BayesCompressError("frequency table escape top bits are out of range")
        histograms = []
        for bits, total in zip(top_bits.tolist(), self.length_counts.tolist(), strict=True):
            if bits:
                counts, offset = decode_varints(buffer, (1 << bits) - 1, offset)
                if counts.size and counts.max() >= np.uint64(1 << 40):
                    raise BayesCompressError("frequency table escape top counts do not add up")
                counts = counts.astype(np.int64)
                counts = np.append(counts, total - int(counts.sum()))
                if counts[-1] < 0:
                    raise BayesCompressError("frequency table escape top counts do not add up")
                histograms.append(counts)
        self.top_bits, self.top_counts = top_bits, histograms
        return offset

    def model_probabilities(self) -> np.ndarray:
        counts = self.counts
        if self.escape_count:
            counts = np.append(counts, self.escape_count)
        return fixed_point_probabilities(counts)

    def ideal_bits(self) -> float:
        """Bits the stream needs under this table's fixed-point model (before coder overhead)."""
        bits = 0.0
        if self.alphabet_size > 1:
            probs = self.model_probabilities()
            freq = np.append(self.counts, self.escape_count) if self.escape_count else self.counts
            bits += float(np.sum(freq * (PRECISION - np.log2(probs))))
        if self.escape_count:
            if self.lengths.size > 1:
                probs = fixed_point_probabilities(self.length_counts)
                bits += float(np.sum(self.length_counts * (PRECISION - np.log2(probs))))
            bits += float(np.sum(self.length_counts * np.maximum(self.lengths - 1, 0)))
            for histogram in self.top_counts or ():
                present = histogram[histogram > 0]
                if present.size > 1:
                    probs = fixed_point_probabilities(present)
                    bits += float(np.sum(present * (PRECISION - np.log2(probs))))
            if self.top_bits is not None:
                bits -= float(np.sum(self.length_counts * self.top_bits))
        return bits


def symbol_counts(symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct symbols (sorted) and how often each occurs.

    Symbols in a window around 0 of max(2^16, 4n) values are counted with one bincount; only
    those outside it (rare for every quantizer here) are sorted.
    """
    symbols = np.asarray(symbols, dtype=np.int64).ravel()
    if symbols.size == 0:
        return symbols, np.zeros(0, dtype=np.int64)
    smallest, largest = int(symbols.min()), int(symbols.max())
    width = max(1 << 16, 4 * symbols.size)
    if largest - smallest < width:
        counts = np.bincount(symbols - smallest, minlength=largest - smallest + 1)
        present = np.flatnonzero(counts)
        return present.astype(np.int64) + smallest, counts[present].astype(np.int64)
    low = max(smallest, -(width // 2))
    offsets = _window_offsets(symbols, low, width)
    inside = offsets < width
    counts = np.bincount(offsets[inside].astype(np.int64), minlength=width)
    present = np.flatnonzero(counts)
    outliers, outlier_counts = np.unique(symbols[~inside], return_counts=True)
    below = outliers < low
    unique = np.concatenate((outliers[below], present.astype(np.int64) + low, outliers[~below]))
    tallies = np.concatenate((outlier_counts[below], counts[present], outlier_counts[~below]))
    return unique, tallies.astype(np.int64)


def _window_offsets(symbols: np.ndarray, low: int, width: int) -> np.ndarray:
    """symbols - low as uint64, clipped to ``width`` (outside the window); wrapping is harmless
    because a difference outside [0, width) never wraps into it."""
    offsets = (symbols - np.int64(low)).view(np.uint64)
    return np.minimum(offsets, np.uint64(width), out=offsets)


def empirical_entropy_bits(symbols: np.ndarray) -> float:
    """N log2 N - sum c log2 c: the bits an ideal coder needs given the symbols' own frequencies."""
    _, counts = symbol_counts(symbols)
    total = counts.sum()
    return float(total * np.log2(total) - np.sum(counts * np.log2(counts))) if total else 0.0


def alphabet_description_bits(symbols: np.ndarray) -> float:
    """What any code must spend to say which symbols occur: log2 C(2^(L-1), k_L) bits for the k_L
    distinct symbols of each raw code length L (VBQ: each rate), plus 6 bits per length.

    >>> round(alphabet_description_bits(np.array([4, 5, 5, 7])), 3)  # 3 of the 4 three-bit codes
    8.0
    """
    from scipy.special import gammaln

    unique, _ = symbol_counts(symbols)
    lengths = _bit_lengths(_raw_codes(unique, bool(unique.size and unique[0] < 0)))
    present, k = np.unique(lengths, return_counts=True)
    m = np.exp2(np.maximum(present - 1, 0).astype(np.float64))  # codes of each length
    bits = (gammaln(m + 1) - gammaln(k + 1) - gammaln(m - k + 1)) / np.log(2) + 6.0
    return float(bits.sum())


def _raw_codes(symbols: np.ndarray, signed: bool) -> np.ndarray:
    return zigzag(symbols) if signed else np.asarray(symbols, dtype=np.int64).view(np.uint64)


def _bit_lengths(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.uint64)
    lengths = np.zeros(codes.shape, dtype=np.int64)
    remaining = codes.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        big = remaining >= (np.uint64(1) << np.uint64(shift))
        lengths[big] += shift
        remaining[big] >>= np.uint64(shift)
    return lengths + (remaining > 0)


def _candidate_splits(unique: np.ndarray, counts: np.ndarray, signed: bool) -> list[np.ndarray]:
    """Which symbols to escape (masks): none, all, and the split that minimizes the estimated
    file bits, twice (entry gaps guessed as one byte, then measured on the first split's table).

    Sent as escapes, the symbols whose raw code has L bits cost log2(N / n_L) + L - 1 bits each
    (n_L: the escaped occurrences of that length, coded with the length table), so lengths are
    independent choices: in each, keep the k most frequent symbols, for the k that costs least.
    """
    n = unique.size
    if n <= 1:
        return [np.zeros(n, dtype=bool)]
    lengths = _bit_lengths(_raw_codes(unique, signed))
    splits = [np.ones(n, dtype=bool)]
    if n <= MAX_TABLE_SYMBOLS:
        splits.append(np.zeros(n, dtype=bool))
    gap_bytes = np.ones(n, dtype=np.int64)
    for _ in range(2):
        escaped = _cheapest_split(counts, lengths, 8.0 * (gap_bytes + varint_sizes(counts)))
        splits.append(escaped)
        kept = np.flatnonzero(~escaped)
        if kept.size == 0:
            break
        # the gap each symbol would have in that table: to the kept symbol before it
        before = np.searchsorted(kept, np.arange(n), side="left") - 1
        with np.errstate(over="ignore"):
            gaps = (unique - unique[kept[np.maximum(before, 0)]]).astype(np.uint64) - np.uint64(1)
        gap_bytes = np.where(before >= 0, varint_sizes(gaps), varint_sizes(_raw_codes(unique, signed)))
    return splits


def _cheapest_split(counts: np.ndarray, lengths: np.ndarray, entry_bits: np.ndarray) -> np.ndarray:
    """Escape mask minimizing the estimated bits: per raw code length L, the k most frequent
    symbols kept (each c log2(N/c) bits in the stream + its entry), the rest R occurrences
    escaped (R log2(N/R) + R (L - 1) bits + about two bytes in the length list)."""
    n = counts.size
    total = float(counts.sum())
    escaped = np.ones(n, dtype=bool)
    order = np.lexsort((np.arange(n), -counts, lengths))
    sorted_lengths = lengths[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_lengths[1:] != sorted_lengths[:-1])))
    stops = np.append(starts[1:], n)
    for start, stop in zip(starts, stops, strict=True):  # at most 65 lengths
        members = order[start:stop]
        member_counts = counts[members].astype(np.float64)
        keep_bits = np.cumsum(member_counts * np.log2(total / member_counts) + entry_bits[members])
        rest = member_counts.sum() - np.concatenate(([0.0], np.cumsum(member_counts)))
        payload_bits = max(int(sorted_lengths[start]) - 1, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            rest_bits = np.where(rest > 0, rest * (np.log2(total / rest) + payload_bits) + 16.0, 0.0)
        costs = np.concatenate(([0.0], keep_bits)) + rest_bits
        kept = int(np.argmin(costs))
        escaped[members[:kept]] = False
    kept = np.flatnonzero(~escaped)
    if kept.size > MAX_TABLE_SYMBOLS:  # a huge segment: the rarest kept symbols go back to escapes
        rarest = kept[np.lexsort((kept, counts[kept]))[: kept.size - MAX_TABLE_SYMBOLS]]
        escaped[rarest] = True
    return escaped


# ------------------------------------------------------------------ stream coder


def encode_stream(blocks: list[tuple[np.ndarray, FrequencyTable]]) -> bytes:
    """Range-code each block's symbols with its table, in order, into one stream of 32-bit words."""
    import constriction

    encoder = constriction.stream.queue.RangeEncoder()
    for symbols, table in blocks:
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        dense = dense_indices(symbols, table.symbols)
        in_table = dense < table.symbols.size
        if table.alphabet_size > 1:
            encoder.encode(dense, categorical_model(table.model_probabilities()))
        elif table.alphabet_size == 1 and table.escape_count == 0 and not in_table.all():
            raise BayesCompressError("internal: symbol missing from its frequency table")
        if table.escape_count:
            codes = _raw_codes(symbols[~in_table], table.signed)
            if codes.size != table.escape_count:
                raise BayesCompressError("internal: escape count does not match the table")
            _encode_escapes(encoder, codes, table)
    words = encoder.get_compressed()
    return np.asarray(words, dtype="<u4").tobytes()


def dense_indices(symbols: np.ndarray, alphabet: np.ndarray) -> np.ndarray:
    """Position of each symbol in the sorted ``alphabet``; ``alphabet.size`` (the escape) if absent.

    One gather through a lookup table over the alphabet's range when that range is small (it
    is for every table ``FrequencyTable.fit`` builds with escapes), else a binary search.
    """
    symbols = np.asarray(symbols, dtype=np.int64).ravel()
    if alphabet.size == 0 or symbols.size == 0:
        return np.full(symbols.size, alphabet.size, dtype=np.int32)
    low, high = int(alphabet[0]), int(alphabet[-1])
    width = high - low + 1
    if width <= max(1 << 16, 4 * symbols.size):
        lookup = np.full(width + 1, alphabet.size, dtype=np.int32)
        lookup[alphabet - low] = np.arange(alphabet.size, dtype=np.int32)
        return lookup[_window_offsets(symbols, low, width)]
    dense = np.full(symbols.size, alphabet.size, dtype=np.int32)
    position = np.minimum(np.searchsorted(alphabet, symbols), alphabet.size - 1)
    found = alphabet[position] == symbols
    dense[found] = position[found]
    return dense


def _encode_escapes(encoder, codes: np.ndarray, table: FrequencyTable) -> None:
    lengths = _bit_lengths(codes)
    if table.lengths.size > 1:
        dense = np.searchsorted(table.lengths, lengths).astype(np.int32)
        encoder.encode(dense, categorical_model(fixed_point_probabilities(table.length_counts)))
    payload_bits = np.maximum(lengths - 1, 0)
    payload = codes & ((np.uint64(1) << np.maximum(lengths - 1, 0).astype(np.uint64)) - np.uint64(1))
    for selected, low_bits, histogram in _top_plan(table, lengths):
        tops = (payload[selected] >> np.uint64(low_bits)).astype(np.int64)
        present = np.flatnonzero(histogram)
        if present.size > 1:
            dense = np.searchsorted(present, tops).astype(np.int32)
            encoder.encode(dense, categorical_model(fixed_point_probabilities(histogram[present])))
        elif np.any(tops != present[0]):
            raise BayesCompressError("internal: escape top bits missing from their histogram")
        payload[selected] &= (np.uint64(1) << np.uint64(low_bits)) - np.uint64(1)
        payload_bits[selected] = low_bits
    for chunk, bits, selected in _chunk_plan(payload_bits):
        values = (payload[selected] >> np.uint64(chunk * _CHUNK_BITS)) & np.uint64((1 << bits) - 1)
        encoder.encode(values.astype(np.int32), categorical_model(_uniform_probs(bits)))


def _top_plan(table: FrequencyTable, lengths: np.ndarray):
    """For each escape length whose leading payload bits are modeled, in the table's order: the
    escapes of that length (indices), the payload bits left below the top bits, the histogram."""
    if table.top_bits is None:
        return
    histograms = iter(table.top_counts)
    for length, bits in zip(table.lengths.tolist(), table.top_bits.tolist(), strict=True):
        if bits:
            yield np.flatnonzero(lengths == length), length - 1 - bits, next(histograms)


def _chunk_plan(payload_bits: np.ndarray):
    """Order in which raw payload chunks are coded: by chunk index, then by chunk width."""
    for chunk in range(64 // _CHUNK_BITS):
        widths = np.clip(payload_bits - chunk * _CHUNK_BITS, 0, _CHUNK_BITS)
        if not widths.any():
            break
        for bits in range(1, _CHUNK_BITS + 1):
            selected = np.flatnonzero(widths == bits)
            if selected.size:
                yield chunk, bits, selected


def check_stream_can_hold(stream: bytes, blocks: list[tuple[int, FrequencyTable]]) -> None:
    """Refuse tables whose symbols need more bits than the stream has, before decoding anything.

    A range coder cannot beat the information content of its message under its model, which
    is each table's ideal_bits (raw escape bits included); STREAM_SLACK_BITS covers the coder's
    final state and rounding.  So a small stream can never declare a long decode.
    """
    from .limits import STREAM_SLACK_BITS

    needed = 0.0
    for count, table in blocks:
        if table.total != count:
            raise BayesCompressError(
                f"frequency table covers {table.total} symbols but the tensor has {count}"
            )
        needed += table.ideal_bits()
    if needed > 8 * len(stream) * (1 + 1e-9) + STREAM_SLACK_BITS:
        raise BayesCompressError(
            f"frequency tables need {needed:.0f} bits but the stream holds only {8 * len(stream)}"
        )


def decode_stream(stream: bytes, blocks: list[tuple[int, FrequencyTable]]) -> list[np.ndarray]:
    """Inverse of encode_stream: ``blocks`` gives each block's symbol count and table."""
    import constriction

    if len(stream) % 4:
        raise BayesCompressError("stream length is not a whole number of 32-bit words")
    words = np.frombuffer(stream, dtype="<u4").astype(np.uint32)
    decoder = constriction.stream.queue.RangeDecoder(words)
    decoded = []
    for count, table in blocks:
        if table.total != count:
            raise BayesCompressError(
                f"frequency table covers {table.total} symbols but the tensor has {count}"
            )
        if table.alphabet_size > 1:
            dense = np.asarray(decoder.decode(categorical_model(table.model_probabilities()), count))
        else:
            dense = np.zeros(count, dtype=np.int32)  # the one symbol, or the escape
        symbols = np.empty(count, dtype=np.int64)
        in_table = dense < table.symbols.size
        symbols[in_table] = table.symbols[dense[in_table]]
        if table.escape_count:
            escapes = int(np.count_nonzero(~in_table))
            if escapes != table.escape_count:
                raise BayesCompressError("stream decodes to a different number of escapes")
            codes = _decode_escapes(decoder, escapes, table)
            symbols[~in_table] = unzigzag(codes) if table.signed else codes.view(np.int64)
        decoded.append(symbols)
    return decoded


def _decode_escapes(decoder, count: int, table: FrequencyTable) -> np.ndarray:
    if table.lengths.size > 1:
        model = categorical_model(fixed_point_probabilities(table.length_counts))
        lengths = table.lengths[np.asarray(decoder.decode(model, count))]
    else:
        lengths = np.full(count, table.lengths[0], dtype=np.int64)
    payload_bits = np.maximum(lengths - 1, 0)
    payload = np.zeros(count, dtype=np.uint64)
    for selected, low_bits, histogram in _top_plan(table, lengths):
        present = np.flatnonzero(histogram)
        if selected.size != histogram.sum():
            raise BayesCompressError("stream decodes to a different number of escapes of a length")
        if present.size > 1:
            model = categorical_model(fixed_point_probabilities(histogram[present]))
            tops = present[np.asarray(decoder.decode(model, selected.size))]
        else:
            tops = np.full(selected.size, present[0])
        payload[selected] = tops.astype(np.uint64) << np.uint64(low_bits)
        payload_bits[selected] = low_bits
    for chunk, bits, selected in _chunk_plan(payload_bits):
        values = np.asarray(decoder.decode(categorical_model(_uniform_probs(bits)), selected.size))
        payload[selected] |= values.astype(np.uint64) << np.uint64(chunk * _CHUNK_BITS)
    leading = np.where(lengths > 0, np.uint64(1) << np.maximum(lengths - 1, 0).astype(np.uint64), 0)
    return payload | leading.astype(np.uint64)


class RangeCoder:
    """The default coder: one frequency table per tensor and one range-coded stream for all."""

    name = "range"

    @staticmethod
    def reads(spec: dict) -> bool:
        return spec == CODER_SPEC

    def encode(self, symbol_arrays: list[np.ndarray]) -> tuple[bytes, bytes, dict]:
        """Tables section, stream section and coder spec for these tensors' symbols."""
        tables = [FrequencyTable.fit(symbols, compact=False) for symbols in symbol_arrays]
        stream = encode_stream(list(zip(symbol_arrays, tables, strict=True)))
        return b"".join(table.to_bytes(compact=False) for table in tables), stream, dict(CODER_SPEC)

    @staticmethod
    def read_tables(data: bytes, n_tensors: int) -> list[FrequencyTable]:
        tables, offset = [], 0
        for _ in range(n_tensors):
            table, offset = FrequencyTable.from_bytes(data, offset)
            tables.append(table)
        if offset != len(data):
            raise BayesCompressError("tables section has trailing bytes")
        return tables

    @classmethod
    def decode(cls, spec: dict, tables: bytes, stream: bytes, counts: list[int]) -> list[np.ndarray]:
        parsed = cls.read_tables(tables, len(counts))
        check_stream_can_hold(stream, list(zip(counts, parsed, strict=True)))
        return decode_stream(stream, list(zip(counts, parsed, strict=True)))

    @classmethod
    def estimated_bits(cls, tables: bytes, counts: list[int]) -> list[float]:
        """Bits each tensor's symbols take under its table's model (before coder overhead)."""
        return [table.ideal_bits() for table in cls.read_tables(tables, len(counts))]
