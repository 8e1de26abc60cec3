"""Corpus to skip-gram counts: tokens, vocabulary, co-occurrences n+ and expected negatives n-.

The corpus is streamed twice over integer ids (never all tokens as Python objects), so memory
stays bounded by the vocabulary and the sparse count matrix, and the counts are cached on disk.

Conventions (those of word2vec and of Bamler & Mandt 2017, "Dynamic word embeddings"):

* A *document* is a Wikipedia article, or one line of a plain-text file. Windows never cross
  documents. Words outside the vocabulary are removed before windows are formed (as word2vec
  does), so a window spans ``window`` vocabulary words on each side.
* ``n+[i, j]`` counts the positions ``t`` and offsets ``0 < |o| <= window`` where word ``i``
  stands at ``t`` and word ``j`` at ``t + o``: both directions, so ``n+`` is symmetric, and every
  word sees ``window`` context words on each side (word2vec's skip-gram pairs with a fixed window).
  With ``window_weights="linear"`` a pair at distance ``d`` counts ``(window + 1 - d) / window``:
  the expected count under word2vec's dynamic window, which shrinks each position's window to a
  size drawn uniformly from 1..window, so nearer words count more.
* With ``subsample_tokens=T`` (word2vec's ``sample=T``) the counts are word2vec's expected training
  pairs when it drops each token of a frequent word before forming windows, so words on either
  side of dropped tokens become neighbours: see ``CooccurrenceCounter``.
* ``n-[i, j] = k * n+[i, :].sum() * P(j)`` with ``P(j) = c_j**0.75 / sum_j' c_j'**0.75`` and
  ``c_j`` the corpus count of vocabulary word ``j``: the expected number of times word2vec's
  negative sampling draws ``j`` as a negative for ``i`` when every positive pair draws ``k``
  negatives from the unigram^0.75 noise distribution. ``n-`` is rank one; only its two factors
  are stored.
"""

from __future__ import annotations

import bz2
import codecs
import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import os
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import ParseError

import numpy as np
import scipy.sparse as sp

from ..errors import BayesCompressError
from ..files import atomic_output
from .defaults import CORPUS_DEFAULTS, WINDOW_WEIGHTS

DOC_BREAK = -1  # separates documents in an id stream
DROPPED = -2  # marks words outside the vocabulary while ids are mapped
NOISE_POWER = 0.75  # word2vec's unigram^0.75 noise distribution
CACHE_FORMAT = "bayescompress-counts"
CACHE_VERSION = 1
WIKI_MIN_ARTICLE_TOKENS = 50  # gensim's WikiCorpus drops redirects and stubs shorter than this
_SUFFIX_COMPRESSION = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}
_HEAD_BYTES = 1 << 16  # what is checked for binary content and a Wikipedia header
_MAX_INVALID_SHARE = 0.1  # Latin-1 prose has a few non-UTF-8 bytes; binary data has far more
_PIECE_CHARS = 1 << 20  # plain text is read in pieces of at most this many characters
_SPOOL_TOKENS = 1 << 20  # ids are written to the spool file in runs of this many
DROPPED_TOKENS_REACH = 4  # with tokens dropped before windows, pairs reach 4 x window raw positions


@dataclass(frozen=True)
class CorpusOptions:
    """How a corpus becomes counts: tokenizer, vocabulary and window (all part of the cache key)."""

    vocab_size: int = CORPUS_DEFAULTS["vocab_size"]
    min_count: int = CORPUS_DEFAULTS["min_count"]
    window: int = CORPUS_DEFAULTS["window"]
    lowercase: bool = CORPUS_DEFAULTS["lowercase"]
    min_token_length: int = CORPUS_DEFAULTS["min_token_length"]
    max_token_length: int = CORPUS_DEFAULTS["max_token_length"]
    window_weights: str = CORPUS_DEFAULTS["window_weights"]
    subsample_tokens: float = CORPUS_DEFAULTS["subsample_tokens"]  # word2vec's sample, before windows

    def __post_init__(self):
        for name in ("vocab_size", "min_count", "window", "min_token_length"):
            if getattr(self, name) < 1:
                raise BayesCompressError(f"{name.replace('_', '-')} must be at least 1, got "
                                         f"{getattr(self, name)}")
        if self.max_token_length < self.min_token_length:
            raise BayesCompressError(
                f"max-token-length {self.max_token_length} is below min-token-length "
                f"{self.min_token_length}"
            )
        if self.window_weights not in WINDOW_WEIGHTS:
            raise BayesCompressError(f"window-weights must be one of {', '.join(WINDOW_WEIGHTS)}, got "
                                     f"{self.window_weights!r}")
        if not 0 <= self.subsample_tokens < 1:
            raise BayesCompressError(f"subsample-tokens must be at least 0 and below 1, got "
                                     f"{self.subsample_tokens}")


def tokenize(text: str, options: CorpusOptions) -> list[str]:
    """Alphabetic tokens of ``text`` as gensim's Wikipedia tokenizer finds them (no digits).

    >>> tokenize("The 3 Cats sat, the end.", CorpusOptions())
    ['the', 'cats', 'sat', 'the', 'end']
    """
    from gensim.corpora.wikicorpus import tokenize as gensim_tokenize

    return gensim_tokenize(text, options.min_token_length, options.max_token_length, options.lowercase)


# ------------------------------------------------------------------------- reading


def _compression_of(path: Path) -> str:
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return "gzip"
    if magic.startswith(b"BZh"):
        return "bzip2"
    if magic.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    return "plain"


def _open_binary(path: Path, compression: str):
    opener = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open, "plain": open}[compression]
    return opener(path, "rb")


def _head(path: Path, compression: str) -> bytes:
    """The first bytes of the (decompressed) file: enough to tell what it holds."""
    with _open_binary(path, compression) as handle:
        return handle.read(_HEAD_BYTES)


def _refuse_binary(head: bytes, source: Path) -> None:
    """A NUL byte, or many bytes that are not UTF-8, in the first block means the file is not text."""
    if b"\0" in head:
        raise BayesCompressError(f"{source}: not a text file (NUL bytes in its first {len(head)} bytes)")
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head, final=False)
    invalid = text.count("\ufffd")
    if invalid > _MAX_INVALID_SHARE * max(len(text), 1):
        raise BayesCompressError(f"{source}: not a text file ({100 * invalid / len(text):.0f}% of the "
                                 f"characters in its first {len(head)} bytes are not UTF-8)")


def _plain_text_pieces(handle: io.TextIOBase) -> Iterator[tuple[str, bool]]:
    """(text, ends_document) pieces of bounded size; a document is one line."""
    carry = ""
    while True:
        piece = handle.readline(_PIECE_CHARS)
        if not piece:
            if carry:
                yield carry, True
            return
        text = carry + piece
        if text.endswith("\n"):
            carry = ""
            yield text, True
            continue
        cut = max(text.rfind(" "), text.rfind("\t"))  # split a long line between words
        if cut <= 0:
            carry = ""
            yield text, False
        else:
            carry = text[cut:]
            yield text[:cut], False


def _wikipedia_articles(handle) -> Iterator[tuple[str, str]]:
    from gensim.corpora.wikicorpus import IGNORED_NAMESPACES, extract_pages, filter_wiki

    for title, text, _ in extract_pages(handle, filter_namespaces=("0",)):
        if not text or any((title or "").startswith(f"{space}:") for space in IGNORED_NAMESPACES):
            continue
        yield title, filter_wiki(text)


def iter_documents(path: str | os.PathLike, options: CorpusOptions) -> Iterator[tuple[list[str], bool]]:
    """Token lists of a corpus file, each with a flag saying whether it ends a document.

    Plain text (optionally gzip, bzip2 or xz compressed) yields each line, long lines in pieces;
    a Wikipedia XML dump yields each article's text (redirects and stubs skipped, as gensim's
    WikiCorpus does). Unreadable files raise BayesCompressError naming the file.
    """
    source = Path(path)
    if not source.exists():
        raise BayesCompressError(f"{source}: no such file")
    if source.is_dir():
        raise BayesCompressError(f"{source}: is a directory, not a corpus file")
    compression = _compression_of(source)
    kind = {"plain": "text", "gzip": "gzip", "bzip2": "bzip2", "xz": "xz"}[compression]
    expected = _SUFFIX_COMPRESSION.get(source.suffix.lower())
    if expected is not None and expected != compression:
        raise BayesCompressError(f"{source}: not a {expected} file (its name says it is compressed)")
    try:
        head = _head(source, compression)
        _refuse_binary(head, source)
        wiki = b"<mediawiki" in head[:4096]
        with _open_binary(source, compression) as binary:
            if wiki:
                for _, text in _wikipedia_articles(binary):
                    tokens = tokenize(text, options)
                    if len(tokens) >= WIKI_MIN_ARTICLE_TOKENS:
                        yield tokens, True
            else:
                text_handle = io.TextIOWrapper(binary, encoding="utf-8", errors="replace")
                for text, ends in _plain_text_pieces(text_handle):
                    yield tokenize(text, options), ends
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise BayesCompressError(f"{source}: not a readable {kind} file ({exc})") from None
    except ParseError as exc:
        raise BayesCompressError(f"{source}: malformed Wikipedia XML ({exc})") from None


# ------------------------------------------------------------------------- pass 1: words


@dataclass
class ScannedCorpus:
    """Pass 1: every distinct word with its count, and the corpus as ids spooled to a file."""

    words: list[str]  # in order of first appearance; id = position
    counts: np.ndarray  # int64, one per word
    n_tokens: int
    n_documents: int
    spool: object  # binary file of int32 ids, DOC_BREAK between documents


def scan_corpus(documents: Iterable[tuple[list[str], bool]], spool, progress: bool = False) -> ScannedCorpus:
    """Count words and write the token stream as int32 ids (DOC_BREAK between documents)."""
    from tqdm.auto import tqdm

    ids_of: dict[str, int] = {}
    counts = np.zeros(0, dtype=np.int64)
    pending: list[int] = []
    n_tokens = n_documents = 0
    open_document = False

    def flush():
        nonlocal counts, pending
        ids = np.asarray(pending, dtype=np.int32)
        ids.tofile(spool)
        words_only = ids[ids != DOC_BREAK]
        counts = np.concatenate([counts, np.zeros(len(ids_of) - len(counts), dtype=np.int64)])
        counts += np.bincount(words_only, minlength=len(ids_of)).astype(np.int64)
        pending = []

    with tqdm(desc="reading corpus", unit=" docs", disable=None if progress else True) as bar:
        for tokens, ends in documents:
            pending.extend(ids_of.setdefault(word, len(ids_of)) for word in tokens)
            n_tokens += len(tokens)
            open_document = open_document or bool(tokens)
            if ends and open_document:
                pending.append(DOC_BREAK)
                n_documents += 1
                open_document = False
                bar.update(1)
            if len(pending) >= _SPOOL_TOKENS:
                flush()
        if open_document:
            pending.append(DOC_BREAK)
            n_documents += 1
        flush()
    return ScannedCorpus(list(ids_of), counts, n_tokens, n_documents, spool)


def choose_vocabulary(counts: np.ndarray, vocab_size: int, min_count: int, source: str) -> np.ndarray:
    """Indices of the ``vocab_size`` most frequent words (count >= ``min_count``), most frequent first.

    Ties are broken by first appearance. Fewer qualifying words than ``vocab_size`` is an error
    that says which vocabulary size or minimum count would work.

    >>> choose_vocabulary(np.array([3, 9, 1, 9]), 3, 1, "corpus").tolist()
    [1, 3, 0]
    """
    if counts.size == 0 or counts.sum() == 0:
        raise BayesCompressError(f"{source}: no words found (is the corpus empty?)")
    order = np.argsort(-counts, kind="stable")
    qualifying = int(np.count_nonzero(counts >= min_count))
    if counts.size < vocab_size and qualifying == counts.size:
        raise BayesCompressError(
            f"{source}: the corpus has only {counts.size} distinct words, fewer than --vocab-size "
            f"{vocab_size}; use --vocab-size {counts.size} or lower"
        )
    if qualifying < vocab_size:
        hints = [f"--vocab-size {qualifying} or lower"] if qualifying else []
        if counts.size >= vocab_size:
            hints.append(f"--min-count {int(counts[order[vocab_size - 1]])} or lower")
        else:
            hints.append(f"--vocab-size {counts.size} or lower with --min-count {int(counts.min())}")
        raise BayesCompressError(
            f"{source}: only {qualifying} distinct words occur at least {min_count} times "
            f"(--min-count), fewer than --vocab-size {vocab_size}; use {', or '.join(hints)}"
        )
    return order[:vocab_size]


# ------------------------------------------------------------------------- pass 2: pairs


class CooccurrenceCounter:
    """Streaming window counts: feed id chunks (DOC_BREAK between documents), read ``counts()``.

    Chunks may split documents anywhere; the last ``reach`` ids of a chunk are carried over, so
    the result does not depend on the chunking. Each chunk's pairs are merged with
    ``np.unique``; per-chunk sparse matrices are summed lazily, so memory is bounded by the
    number of distinct pairs, not the number of tokens.

    With ``keep`` (each word's probability that word2vec keeps a token of it) the counts are
    word2vec's expected pairs when tokens are dropped before windows: two tokens ``o`` apart, with
    ``C`` survivors among the ``o - 1`` between them (a Poisson-binomial, tracked per position as
    the offset grows), are a pair with weight ``keep(a) keep(b) E[w(C + 1); C < window]``, ``w`` the
    window weight of a distance. Offsets reach ``4 * window``, where a pair needs at least
    ``3 * window`` dropped tokens in between.

    >>> counter = CooccurrenceCounter(vocab_size=3, window=1)
    >>> counter.add(np.array([0, 1, DOC_BREAK, 1, 2]))
    >>> counter.counts().toarray().tolist()
    [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    """

    def __init__(self, vocab_size: int, window: int, window_weights: str = "flat",
                 keep: np.ndarray | None = None):
        self.vocab_size = int(vocab_size)
        self.window = int(window)
        self.linear = window_weights == "linear"
        self.keep = None if keep is None else np.asarray(keep, dtype=np.float64)
        self.reach = self.window if self.keep is None else DROPPED_TOKENS_REACH * self.window
        self._carry_ids = np.zeros(0, dtype=np.int64)
        self._carry_docs = np.zeros(0, dtype=np.int64)
        self._document = 0
        self._total = sp.csr_matrix((self.vocab_size, self.vocab_size), dtype=np.int64)
        self._pending: list[sp.csr_matrix] = []
        self._pending_nnz = 0

    def add(self, tokens: np.ndarray) -> None:
        tokens = np.asarray(tokens, dtype=np.int64)
        breaks = tokens == DOC_BREAK
        documents = self._document + np.cumsum(breaks)
        if tokens.size:
            self._document = int(documents[-1])
        ids = np.concatenate([self._carry_ids, tokens[~breaks]])
        docs = np.concatenate([self._carry_docs, documents[~breaks]])
        n_old = len(self._carry_ids)
        if self.keep is not None:
            self._add_dropped_token_pairs(ids, docs, n_old)
        else:
            keys, weights = [], []
            for offset in range(1, self.window + 1):
                start = max(n_old - offset, 0)  # the right-hand word of each pair is new in this chunk
                if start + offset >= len(ids):
                    break
                left, right = ids[start:len(ids) - offset], ids[start + offset:]
                same = docs[start:len(ids) - offset] == docs[start + offset:]
                keys.append(left[same] * self.vocab_size + right[same])
                if self.linear:  # integer weights window + 1 - offset here, divided by window in counts()
                    weights.append(np.full(len(keys[-1]), self.window + 1 - offset, dtype=np.int64))
            if keys:
                self._add_keys(np.concatenate(keys), np.concatenate(weights) if weights else None)
        self._carry_ids, self._carry_docs = ids[-self.reach:], docs[-self.reach:]

    def _add_dropped_token_pairs(self, ids: np.ndarray, docs: np.ndarray, n_old: int) -> None:
        """Expected pairs whose right-hand token is new, when tokens are dropped before windows."""
        first = max(n_old - self.reach, 0)  # the leftmost token that can pair with a new one
        keep = self.keep[ids[first:]]
        lefts = len(ids) - first - 1
        if lefts <= 0:
            return
        distance = np.arange(1, self.window + 1)
        window_weight = (self.window + 1 - distance) / self.window if self.linear else np.ones(self.window)
        between = np.zeros((lefts, self.window))  # P(C = c survivors in between), c < window
        between[:, 0] = 1.0
        keys, weights = [], []
        for offset in range(1, self.reach + 1):
            m = lefts + 1 - offset  # left tokens with a token `offset` to their right
            if m <= 0:
                break
            current = between[:m]
            weight = keep[:m] * keep[offset:offset + m] * (current @ window_weight)
            left = np.arange(first, first + m)
            useful = ((left + offset >= n_old) & (docs[left] == docs[left + offset]) & (weight > 0))
            keys.append(ids[left[useful]] * self.vocab_size + ids[left[useful] + offset])
            weights.append(weight[useful])
            survives = keep[offset:offset + m, None]  # the token at left + offset joins those between
            shifted = np.zeros_like(current)
            shifted[:, 1:] = current[:, :-1]
            between = current * (1 - survives) + shifted * survives
        self._add_keys(np.concatenate(keys), np.concatenate(weights))

    def _add_keys(self, keys: np.ndarray, weights: np.ndarray | None = None) -> None:
        if keys.size == 0:
            return
        if weights is None:
            pairs, counts = np.unique(keys, return_counts=True)
        else:
            pairs, inverse = np.unique(keys, return_inverse=True)
            counts = np.bincount(inverse, weights=weights)
            if self.keep is None:
                counts = counts.round().astype(np.int64)  # exact: integer weights
        rows, cols = np.divmod(pairs, self.vocab_size)
        shape = (self.vocab_size, self.vocab_size)
        self._pending.append(sp.csr_matrix((counts, (rows, cols)), shape=shape))
        self._pending_nnz += len(pairs)
        if self._pending_nnz > max(self._total.nnz, 1 << 22):  # merge when pending outgrows the total
            self._merge()

    def _merge(self) -> None:
        for matrix in self._pending:
            self._total = self._total + matrix
        self._pending, self._pending_nnz = [], 0

    def counts(self) -> sp.csr_matrix:
        """Symmetric n+ (CSR; int64 flat, float64 linear or dropped tokens): ordered pairs counted in
        both directions."""
        self._merge()
        ordered = self._total
        both = (ordered + ordered.T).tocsr()
        both.sum_duplicates()
        both.sort_indices()
        if self.keep is not None:
            both = both.astype(np.float64)
        elif self.linear:
            both = both.astype(np.float64) / self.window
        return both


def count_cooccurrences(tokens: np.ndarray, vocab_size: int, window: int,
                        window_weights: str = "flat", keep: np.ndarray | None = None) -> sp.csr_matrix:
    """n+ of one id array (DOC_BREAK between documents) in one call; see CooccurrenceCounter."""
    counter = CooccurrenceCounter(vocab_size, window, window_weights, keep)
    counter.add(tokens)
    return counter.counts()


# ------------------------------------------------------------------------- the counts


@dataclass
class CoOccurrences:
    """What the skip-gram model is fitted to: vocabulary, word counts, n+ and n-'s factors."""

    words: list[str]
    word_counts: np.ndarray  # int64, corpus count of each vocabulary word
    positive: sp.csr_matrix  # n+, symmetric: int64, float64 expected counts if linear or subsampled
    n_tokens: int  # all tokens read, in and out of the vocabulary
    n_documents: int
    options: CorpusOptions
    source: dict = dataclasses.field(default_factory=dict)
    from_cache: bool = False

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def noise_distribution(self) -> np.ndarray:
        """P(j) proportional to count_j ** 0.75 (word2vec's negative-sampling distribution)."""
        weights = np.power(self.word_counts.astype(np.float64), NOISE_POWER)
        return weights / weights.sum()

    def negative_factors(self, negatives: int) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) with ``n-[i, j] = row[i] * column[j] = k * n+[i, :].sum() * P(j)``."""
        row_totals = np.asarray(self.positive.sum(axis=1), dtype=np.float64).ravel()
        return negatives * row_totals, self.noise_distribution()

    def negative_counts(self, negatives: int) -> np.ndarray:
        """Dense n- (V x V); for small vocabularies and tests only."""
        row, column = self.negative_factors(negatives)
        return np.outer(row, column)

    def subsampled(self, threshold: float) -> CoOccurrences:
        """These counts as word2vec sees them after dropping frequent tokens (``sample=threshold``):
        n+[i, j] x keep(i) x keep(j), expected counts with gensim's keep probabilities."""
        keep = keep_probabilities(self.word_counts, self.n_tokens, threshold)
        entries = self.positive.tocoo()
        weights = entries.data * keep[entries.row] * keep[entries.col]
        positive = sp.csr_matrix((weights, (entries.row, entries.col)), shape=entries.shape)
        return dataclasses.replace(self, positive=positive)

    def save(self, path: str | os.PathLike) -> None:
        """Write the counts to an .npz file (no pickled objects), atomically."""
        positive = self.positive.tocsr()
        with atomic_output(path) as tmp, open(tmp, "wb") as handle:
            np.savez(
                handle,
                format=np.array(CACHE_FORMAT),
                version=np.array(CACHE_VERSION),
                words=np.array(self.words, dtype=str),
                word_counts=self.word_counts.astype(np.int64),
                indptr=positive.indptr.astype(np.int64),
                indices=positive.indices.astype(np.int64),
                data=positive.data if positive.data.dtype == np.float64 else positive.data.astype(np.int64),
                n_tokens=np.array(self.n_tokens, dtype=np.int64),
                n_documents=np.array(self.n_documents, dtype=np.int64),
                options=np.array(json.dumps(dataclasses.asdict(self.options))),
                source=np.array(json.dumps(self.source)),
            )

    @classmethod
    def load(cls, path: str | os.PathLike) -> CoOccurrences:
        """Read counts written by ``save``; raise BayesCompressError if the file is not one."""
        try:
            with np.load(path, allow_pickle=False) as archive:
                if str(archive["format"]) != CACHE_FORMAT or int(archive["version"]) != CACHE_VERSION:
                    raise BayesCompressError(f"{path}: not a bayescompress counts file of version "
                                             f"{CACHE_VERSION}")
                words = [str(word) for word in archive["words"]]
                size = len(words)
                positive = sp.csr_matrix(
                    (archive["data"], archive["indices"], archive["indptr"]), shape=(size, size)
                )
                return cls(
                    words=words,
                    word_counts=archive["word_counts"],
                    positive=positive,
                    n_tokens=int(archive["n_tokens"]),
                    n_documents=int(archive["n_documents"]),
                    options=CorpusOptions(**json.loads(str(archive["options"]))),
                    source=json.loads(str(archive["source"])),
                )
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, EOFError) as exc:
            if isinstance(exc, BayesCompressError):
                raise
            raise BayesCompressError(f"{path}: not a readable counts file ({exc})") from None


def keep_probabilities(word_counts: np.ndarray, n_tokens: int, threshold: float) -> np.ndarray:
    """gensim's probability that word2vec keeps a token of each word (``sample=threshold``):
    min(1, (sqrt(f / t) + 1) t / f) with f the word's share of the corpus; 1 everywhere at t = 0.

    >>> keep_probabilities(np.array([1000, 10]), 10_000, 1e-3).round(4).tolist()
    [0.11, 1.0]
    """
    if threshold <= 0:
        return np.ones(len(word_counts))
    share = np.asarray(word_counts, dtype=np.float64) / n_tokens
    with np.errstate(divide="ignore"):
        keep = (np.sqrt(share / threshold) + 1.0) * threshold / share
    return np.minimum(keep, 1.0)


def default_cache_dir() -> Path:
    """$BAYESCOMPRESS_CACHE, else $XDG_CACHE_HOME/bayescompress, else ~/.cache/bayescompress."""
    if os.environ.get("BAYESCOMPRESS_CACHE"):
        return Path(os.environ["BAYESCOMPRESS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bayescompress"


def cache_key(path: str | os.PathLike, options: CorpusOptions) -> str:
    """Hash of the corpus file's identity (absolute path, size, mtime) and the counting options."""
    source = Path(path).resolve()
    status = source.stat()
    identity = {
        "path": str(source),
        "size": status.st_size,
        "mtime_ns": status.st_mtime_ns,
        "options": _key_options(options),
        "version": CACHE_VERSION,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def _key_options(options: CorpusOptions) -> dict:
    """The options as the cache key sees them: flat window weights and no token subsampling are left
    out, so counts cached before those options existed keep their keys."""
    fields = dataclasses.asdict(options)
    if fields["window_weights"] == "flat":
        del fields["window_weights"]
    if fields["subsample_tokens"] == 0:
        del fields["subsample_tokens"]
    return fields


def count_corpus(
    path: str | os.PathLike,
    options: CorpusOptions | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> CoOccurrences:
    """Counts of a corpus file, from the cache when this file and these options were counted before.

    ``cache_dir`` defaults to ``default_cache_dir()``; the cache file is
    ``counts-<key>.npz`` where the key hashes the file's path, size, mtime and ``options``.
    """
    options = options or CorpusOptions()
    source = Path(path)
    if not source.exists():
        raise BayesCompressError(f"{source}: no such file")
    cache_file = None
    if use_cache:
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        cache_file = folder / f"counts-{cache_key(source, options)}.npz"
        if cache_file.is_file():
            try:
                counts = CoOccurrences.load(cache_file)
                counts.from_cache = True
                return counts
            except BayesCompressError as exc:
                warnings.warn(f"ignoring unreadable count cache: {exc}", stacklevel=2)
    counts = _count_corpus_file(source, options, progress)
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            counts.save(cache_file)
        except OSError as exc:
            warnings.warn(f"could not write the count cache {cache_file}: {exc}", stacklevel=2)
    return counts


def _count_corpus_file(source: Path, options: CorpusOptions, progress: bool) -> CoOccurrences:
    from tqdm.auto import tqdm

    with tempfile.TemporaryFile(prefix="bayescompress-ids-") as spool:
        scanned = scan_corpus(iter_documents(source, options), spool, progress)
        chosen = choose_vocabulary(scanned.counts, options.vocab_size, options.min_count, str(source))
        # provisional id -> vocabulary id, DROPPED outside the vocabulary; the extra last slot is
        # what DOC_BREAK (-1) indexes, so document breaks map to themselves
        vocab_id = np.full(len(scanned.words) + 1, DROPPED, dtype=np.int64)
        vocab_id[chosen] = np.arange(len(chosen))
        vocab_id[DOC_BREAK] = DOC_BREAK
        keep = None
        if options.subsample_tokens > 0:  # gensim's keep probabilities: shares of in-vocabulary tokens
            in_vocabulary = scanned.counts[chosen]
            keep = keep_probabilities(in_vocabulary, int(in_vocabulary.sum()), options.subsample_tokens)
        counter = CooccurrenceCounter(len(chosen), options.window, options.window_weights, keep)
        chunk = max(1 << 16, (1 << 22) // counter.reach)
        spool.seek(0)
        with tqdm(total=scanned.n_tokens, desc="counting pairs", unit=" tokens", unit_scale=True,
                  disable=None if progress else True) as bar:
            while True:
                ids = np.fromfile(spool, dtype=np.int32, count=chunk)
                if ids.size == 0:
                    break
                mapped = vocab_id[ids]
                counter.add(mapped[mapped != DROPPED])
                bar.update(int(np.count_nonzero(ids != DOC_BREAK)))
    status = source.stat()
    return CoOccurrences(
        words=[scanned.words[index] for index in chosen],
        word_counts=scanned.counts[chosen].astype(np.int64),
        positive=counter.counts(),
        n_tokens=scanned.n_tokens,
        n_documents=scanned.n_documents,
        options=options,
        source={"path": str(source.resolve()), "name": source.name, "size": status.st_size,
                "mtime_ns": status.st_mtime_ns},
    )

