"""Corpus pipeline: window counts against brute force, streaming, n-, vocabulary, cache, bad input."""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import hashlib
import json
import os

import numpy as np
import pytest

from bayescompress.errors import BayesCompressError
from bayescompress.fit import corpus as corpus_module
from bayescompress.fit.corpus import (
    DOC_BREAK,
    CooccurrenceCounter,
    CoOccurrences,
    CorpusOptions,
    choose_vocabulary,
    count_cooccurrences,
    count_corpus,
    iter_documents,
)

from .topic_corpus import write_topic_corpus


def random_stream(n_tokens: int, vocab_size: int, seed: int, break_rate: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab_size, n_tokens)
    tokens[rng.random(n_tokens) < break_rate] = DOC_BREAK
    return tokens


def brute_force_counts(tokens: np.ndarray, vocab_size: int, window: int) -> np.ndarray:
    """word2vec's pairs: every word with each of the `window` words on either side, same document."""
    counts = np.zeros((vocab_size, vocab_size), dtype=np.int64)
    documents = np.split(tokens, np.flatnonzero(tokens == DOC_BREAK))
    for document in documents:
        words = document[document != DOC_BREAK]
        for t, word in enumerate(words):
            for offset in range(-window, window + 1):
                if offset and 0 <= t + offset < len(words):
                    counts[word, words[t + offset]] += 1
    return counts


@pytest.mark.parametrize("window", [1, 2, 5])
def test_window_counts_equal_a_brute_force_count_in_both_directions(window):
    tokens = random_stream(600, vocab_size=9, seed=window)
    counts = count_cooccurrences(tokens, vocab_size=9, window=window)
    assert np.array_equal(counts.toarray(), brute_force_counts(tokens, 9, window))


def dynamic_window_counts(tokens: np.ndarray, vocab_size: int, window: int, draws: int,
                          seed: int) -> np.ndarray:
    """word2vec's dynamic window, simulated: each position's window shrinks to window - b, b uniform in
    0..window-1, drawn afresh for each position and draw; the mean count over the draws."""
    rng = np.random.default_rng(seed)
    total = np.zeros((vocab_size, vocab_size))
    documents = [d[d != DOC_BREAK] for d in np.split(tokens, np.flatnonzero(tokens == DOC_BREAK))]
    for words in documents:
        for offset in range(1, window + 1):
            centers, contexts = words[:-offset], words[offset:]  # both directions: the left word is a center,
            for a, b in ((centers, contexts), (contexts, centers)):  # then the right one
                reach = window - rng.integers(0, window, size=(draws, len(a)))
                np.add.at(total, (a, b), (reach >= offset).sum(0))
    return total / draws


def test_linear_window_weights_are_word2vecs_dynamic_window_in_expectation():
    tokens = random_stream(300, vocab_size=6, seed=7)
    exact = count_cooccurrences(tokens, vocab_size=6, window=4, window_weights="linear").toarray()
    simulated = dynamic_window_counts(tokens, 6, window=4, draws=4000, seed=0)
    flat = brute_force_counts(tokens, 6, 4)
    # each cell: a sum of at most a few hundred Bernoulli means over 4000 draws, sd < 0.15
    assert np.abs(exact - simulated).max() < 0.6
    assert np.abs(exact - flat).max() > 5  # the weighting really differs from the flat count
    assert exact.dtype == np.float64 and np.allclose(exact, exact.T)


def test_linear_window_weights_count_each_distance_by_window_plus_one_minus_distance_over_window():
    counts = count_cooccurrences(np.array([0, 1, 2, 3]), vocab_size=4, window=3,
                                 window_weights="linear").toarray()
    assert counts[0, 1] == counts[1, 0] == 1.0
    assert np.isclose(counts[0, 2], 2 / 3) and np.isclose(counts[0, 3], 1 / 3)


def test_streamed_linear_counts_do_not_depend_on_where_the_chunks_end():
    tokens = random_stream(2000, vocab_size=15, seed=5)
    one_shot = count_cooccurrences(tokens, 15, window=5, window_weights="linear").toarray()
    counter = CooccurrenceCounter(15, window=5, window_weights="linear")
    for piece in np.split(tokens, np.arange(37, len(tokens), 41)):
        counter.add(piece)
    assert np.array_equal(counter.counts().toarray(), one_shot)


def dropped_token_counts(tokens: np.ndarray, keep: np.ndarray, window: int, draws: int,
                         seed: int) -> np.ndarray:
    """word2vec's subsampling, simulated: each draw drops every token of word w with probability
    1 - keep[w] before windows are formed; the mean over the draws of the dynamic window's counts."""
    rng = np.random.default_rng(seed)
    total = np.zeros((len(keep), len(keep)))
    words = tokens != DOC_BREAK
    for _ in range(draws):
        kept = ~words | (rng.random(len(tokens)) < keep[np.where(words, tokens, 0)])
        total += count_cooccurrences(tokens[kept], len(keep), window, window_weights="linear").toarray()
    return total / draws


def test_dropped_token_counts_are_word2vecs_pairs_after_subsampling_in_expectation():
    tokens = random_stream(400, vocab_size=6, seed=11)
    keep = np.array([0.5, 0.7, 1.0, 0.9, 0.6, 1.0])
    exact = count_cooccurrences(tokens, 6, window=3, window_weights="linear", keep=keep).toarray()
    simulated = dropped_token_counts(tokens, keep, window=3, draws=3000, seed=0)
    linear = count_cooccurrences(tokens, 6, window=3, window_weights="linear").toarray()
    thinned = linear * np.outer(keep, keep)  # what --subsample (clean, per pair) counts
    # each cell: a sum of a few dozen pair indicators per draw, mean over 3000 draws: sd < 0.2
    assert np.abs(exact - simulated).max() < 0.6
    assert np.abs(exact - thinned).max() > 3  # dropped tokens really bring farther words into the window
    assert np.allclose(exact, exact.T)


def test_keeping_every_token_counts_the_plain_dynamic_window():
    tokens = random_stream(500, vocab_size=8, seed=12)
    exact = count_cooccurrences(tokens, 8, window=4, window_weights="linear", keep=np.ones(8)).toarray()
    assert np.allclose(exact, count_cooccurrences(tokens, 8, window=4, window_weights="linear").toarray())


def test_streamed_dropped_token_counts_do_not_depend_on_where_the_chunks_end():
    tokens = random_stream(2500, vocab_size=12, seed=13)
    keep = np.linspace(0.2, 1.0, 12)
    one_shot = count_cooccurrences(tokens, 12, window=3, window_weights="linear", keep=keep).toarray()
    counter = CooccurrenceCounter(12, window=3, window_weights="linear", keep=keep)
    for piece in np.split(tokens, np.arange(5, len(tokens), 29)):
        counter.add(piece)
    assert np.allclose(counter.counts().toarray(), one_shot)


def test_counting_with_dropped_tokens_uses_gensims_keep_probabilities_and_its_own_cache_key(tmp_path):
    corpus = tmp_path / "topics.txt"
    write_topic_corpus(corpus)
    plain = CorpusOptions(vocab_size=20, min_count=1, window=3, window_weights="linear")
    dropped = dataclasses.replace(plain, subsample_tokens=0.01)
    assert corpus_module.cache_key(corpus, plain) != corpus_module.cache_key(corpus, dropped)
    counts = count_corpus(corpus, dropped, cache_dir=tmp_path)
    base = count_corpus(corpus, plain, cache_dir=tmp_path)
    assert counts.positive.dtype == np.float64 and counts.words == base.words
    assert 0 < counts.positive.sum() < base.positive.sum()
    assert count_corpus(corpus, dropped, cache_dir=tmp_path).from_cache


@pytest.mark.parametrize("threshold", [-1e-3, 1.0])
def test_a_token_subsampling_threshold_outside_zero_to_one_is_refused(threshold):
    with pytest.raises(BayesCompressError, match="subsample-tokens"):
        CorpusOptions(subsample_tokens=threshold)


def test_windows_never_cross_a_document_break():
    counts = count_cooccurrences(np.array([0, 1, DOC_BREAK, 2, 3]), vocab_size=4, window=5).toarray()
    assert counts[1, 2] == counts[2, 1] == counts[0, 3] == 0
    assert counts[0, 1] == counts[2, 3] == 1


def test_streamed_counts_do_not_depend_on_where_the_chunks_end():
    tokens = random_stream(3000, vocab_size=20, seed=3)
    one_shot = count_cooccurrences(tokens, 20, window=4).toarray()
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(np.arange(1, len(tokens)), 80, replace=False))
    counter = CooccurrenceCounter(20, window=4)
    for piece in np.split(tokens, cuts):
        counter.add(piece)
    counter.add(np.array([], dtype=np.int64))
    assert np.array_equal(counter.counts().toarray(), one_shot)


def test_single_token_chunks_count_like_one_chunk():
    tokens = random_stream(200, vocab_size=6, seed=4)
    counter = CooccurrenceCounter(6, window=3)
    for token in tokens:
        counter.add(np.array([token]))
    assert np.array_equal(counter.counts().toarray(), count_cooccurrences(tokens, 6, 3).toarray())


def make_counts(positive: np.ndarray, word_counts: np.ndarray) -> CoOccurrences:
    import scipy.sparse as sp

    words = [f"w{chr(97 + i)}" for i in range(len(word_counts))]
    return CoOccurrences(words, np.asarray(word_counts), sp.csr_matrix(positive),
                         n_tokens=int(word_counts.sum()), n_documents=1,
                         options=CorpusOptions(vocab_size=len(words), min_count=1))


def test_negative_counts_are_k_times_the_row_total_times_unigram_to_the_three_quarters():
    positive = np.array([[0, 4, 2], [4, 0, 0], [2, 0, 6]])
    word_counts = np.array([16, 81, 1])
    counts = make_counts(positive, word_counts)
    noise = np.array([8.0, 27.0, 1.0]) / 36.0  # 16^0.75, 81^0.75, 1^0.75 normalized
    expected = 5 * positive.sum(axis=1)[:, None] * noise[None, :]
    assert np.allclose(counts.negative_counts(5), expected)


def test_each_positive_pair_brings_k_negative_pairs_in_expectation():
    rng = np.random.default_rng(0)
    positive = rng.integers(0, 9, (7, 7))
    counts = make_counts(positive + positive.T, rng.integers(1, 100, 7))
    assert counts.negative_counts(3).sum() == pytest.approx(3 * counts.positive.sum())


def test_subsampled_counts_thin_each_pair_by_both_words_keep_probabilities_as_word2vec_does():
    rng = np.random.default_rng(1)
    positive = rng.integers(0, 9, (4, 4))
    positive = positive + positive.T
    word_counts = np.array([5000, 900, 40, 3])  # of 10,000 tokens: shares 0.5, 0.09, 0.004, 0.0003
    counts = make_counts(positive, word_counts)
    counts.n_tokens = 10_000
    thinned = counts.subsampled(1e-3)
    share = word_counts / 10_000
    keep = np.minimum(1.0, (np.sqrt(share / 1e-3) + 1) * 1e-3 / share)  # gensim's formula
    assert keep[3] == 1.0 and keep[0] < 0.05  # the rarest word keeps every token, the commonest few
    assert np.allclose(thinned.positive.toarray(), positive * keep[:, None] * keep[None, :])
    assert np.array_equal(counts.positive.toarray(), positive)  # the counts themselves are untouched
    assert np.allclose(counts.subsampled(0.0).positive.toarray(), positive)


def test_vocabulary_is_the_most_frequent_words_at_or_above_min_count_most_frequent_first():
    counts = np.array([5, 1, 9, 5, 2, 7])
    assert choose_vocabulary(counts, 4, min_count=2, source="c").tolist() == [2, 5, 0, 3]


def test_counting_a_file_gives_vocabulary_counts_and_pairs(tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("The cat sat on the mat\nthe cat ate\n", encoding="utf-8")
    counts = count_corpus(corpus, CorpusOptions(vocab_size=3, min_count=1, window=1), use_cache=False)
    assert counts.words == ["the", "cat", "sat"]
    assert counts.word_counts.tolist() == [3, 2, 1]
    assert counts.n_tokens == 9 and counts.n_documents == 2
    # out-of-vocabulary words are removed before windows form: line 1 becomes "the cat sat the"
    assert counts.positive.toarray().tolist() == [[0, 2, 1], [2, 0, 1], [1, 1, 0]]


def test_plain_gzip_and_bzip2_corpora_give_the_same_counts(tmp_path):
    plain = write_topic_corpus(tmp_path / "topics.txt")
    data = plain.read_bytes()
    (tmp_path / "topics.txt.gz").write_bytes(gzip.compress(data))
    (tmp_path / "topics.txt.bz2").write_bytes(bz2.compress(data))
    options = CorpusOptions(vocab_size=20, min_count=1, window=3)
    results = [count_corpus(tmp_path / name, options, use_cache=False)
               for name in ("topics.txt", "topics.txt.gz", "topics.txt.bz2")]
    for other in results[1:]:
        assert other.words == results[0].words
        assert (other.positive != results[0].positive).nnz == 0


def test_long_lines_are_read_in_pieces_without_cutting_words(tmp_path, monkeypatch):
    words = [f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(500)]
    corpus = tmp_path / "long.txt"
    corpus.write_text(" ".join(words) + "\nshort line\n", encoding="utf-8")
    monkeypatch.setattr(corpus_module, "_PIECE_CHARS", 37)
    pieces = list(iter_documents(corpus, CorpusOptions()))
    assert [w for tokens, _ in pieces[:-1] for w in tokens] == words
    assert [ends for _, ends in pieces] == [False] * (len(pieces) - 2) + [True, True]


WIKI_PAGE = """<page><title>{title}</title><ns>{ns}</ns><id>{id}</id>
<revision><text>{text}</text></revision></page>"""


def write_wiki_dump(path, pages) -> None:
    body = "\n".join(WIKI_PAGE.format(title=title, ns=ns, id=i, text=text)
                     for i, (title, ns, text) in enumerate(pages))
    xml = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/"><siteinfo></siteinfo>'
           f"{body}</mediawiki>")
    path.write_bytes(bz2.compress(xml.encode()))


def test_wikipedia_dump_articles_are_documents_and_redirects_are_skipped(tmp_path):
    first = " ".join(["alpha beta"] * 30) + " '''bold''' [[link|gamma]]"
    second = " ".join(["delta"] * 60)
    dump = tmp_path / "wiki.xml.bz2"
    write_wiki_dump(dump, [("First", 0, first), ("Redirect", 0, "#REDIRECT [[First]]"),
                           ("Talk:First", 1, second), ("Second", 0, second)])
    documents = list(iter_documents(dump, CorpusOptions()))
    assert [ends for _, ends in documents] == [True, True]
    assert documents[0][0][-2:] == ["bold", "gamma"]
    assert documents[1][0] == ["delta"] * 60
    counts = count_corpus(dump, CorpusOptions(vocab_size=5, min_count=1, window=2), use_cache=False)
    delta, gamma = counts.words.index("delta"), counts.words.index("gamma")
    assert counts.positive[gamma, delta] == 0  # no window spans two articles


# ------------------------------------------------------------------------- cache


def test_counts_file_round_trip(tmp_path):
    counts = count_corpus(write_topic_corpus(tmp_path / "t.txt"), CorpusOptions(vocab_size=20, min_count=1),
                          use_cache=False)
    counts.save(tmp_path / "counts.npz")
    again = CoOccurrences.load(tmp_path / "counts.npz")
    assert again.words == counts.words and np.array_equal(again.word_counts, counts.word_counts)
    assert (again.positive != counts.positive).nnz == 0
    assert (again.n_tokens, again.n_documents, again.options) == (counts.n_tokens, counts.n_documents,
                                                                  counts.options)


def test_linear_counts_survive_the_cache_as_floats(tmp_path):
    corpus = write_topic_corpus(tmp_path / "t.txt")
    options = CorpusOptions(vocab_size=20, min_count=1, window=3, window_weights="linear")
    first = count_corpus(corpus, options, cache_dir=tmp_path / "cache")
    second = count_corpus(corpus, options, cache_dir=tmp_path / "cache")
    assert second.from_cache and second.options == options
    assert second.positive.dtype == np.float64 and (second.positive != first.positive).nnz == 0
    assert not np.allclose(first.positive.data, np.round(first.positive.data))  # real fractions kept


def test_flat_window_weights_and_no_token_subsampling_keep_the_cache_keys_counts_had_before(tmp_path):
    corpus = write_topic_corpus(tmp_path / "t.txt")
    options = CorpusOptions(vocab_size=20, min_count=1)
    added_later = ("window_weights", "subsample_tokens")
    fields = {k: v for k, v in dataclasses.asdict(options).items() if k not in added_later}
    identity = {"path": str(corpus.resolve()), "size": corpus.stat().st_size,
                "mtime_ns": corpus.stat().st_mtime_ns, "options": fields,
                "version": corpus_module.CACHE_VERSION}
    before = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
    assert corpus_module.cache_key(corpus, options) == before


def test_unknown_window_weights_are_refused():
    with pytest.raises(BayesCompressError, match="window-weights"):
        CorpusOptions(window_weights="triangular")


def test_a_second_count_of_the_same_file_reads_the_cache_without_a_pass(tmp_path, monkeypatch):
    corpus = write_topic_corpus(tmp_path / "t.txt")
    options = CorpusOptions(vocab_size=20, min_count=1)
    first = count_corpus(corpus, options, cache_dir=tmp_path / "cache")
    assert not first.from_cache and len(list((tmp_path / "cache").iterdir())) == 1

    def no_pass(*args, **kwargs):
        raise AssertionError("the corpus was read again")

    monkeypatch.setattr(corpus_module, "_count_corpus_file", no_pass)
    second = count_corpus(corpus, options, cache_dir=tmp_path / "cache")
    assert second.from_cache and (second.positive != first.positive).nnz == 0
    with pytest.raises(AssertionError, match="read again"):  # other options: another key
        count_corpus(corpus, CorpusOptions(vocab_size=20, min_count=1, window=2),
                     cache_dir=tmp_path / "cache")
    with pytest.raises(AssertionError, match="read again"):  # other window weights: another key
        count_corpus(corpus, CorpusOptions(vocab_size=20, min_count=1, window_weights="linear"),
                     cache_dir=tmp_path / "cache")
    os.utime(corpus, ns=(1, 1))
    with pytest.raises(AssertionError, match="read again"):  # the file changed: another key
        count_corpus(corpus, options, cache_dir=tmp_path / "cache")


# ------------------------------------------------------------------------- bad input


def test_empty_corpus_is_an_error(tmp_path):
    corpus = tmp_path / "empty.txt"
    corpus.write_text("\n 123 \n", encoding="utf-8")
    with pytest.raises(BayesCompressError, match="empty.txt: no words found"):
        count_corpus(corpus, use_cache=False)


def test_too_few_words_for_the_vocabulary_names_settings_that_work(tmp_path):
    corpus = write_topic_corpus(tmp_path / "t.txt")  # 24 distinct words
    too_big = r"only 24 distinct words, fewer than --vocab-size 30; use --vocab-size 24 or lower"
    with pytest.raises(BayesCompressError, match=too_big) as info:
        count_corpus(corpus, CorpusOptions(vocab_size=30, min_count=1), use_cache=False)
    assert "t.txt" in str(info.value)
    with pytest.raises(BayesCompressError, match=r"--min-count (\d+) or lower") as info:
        count_corpus(corpus, CorpusOptions(vocab_size=20, min_count=10**6), use_cache=False)
    suggested = int(info.value.args[0].split("--min-count ")[-1].split()[0])
    works = count_corpus(corpus, CorpusOptions(vocab_size=20, min_count=suggested), use_cache=False)
    assert works.vocab_size == 20


def test_missing_corpus_is_an_error(tmp_path):
    with pytest.raises(BayesCompressError, match="nowhere.txt: no such file"):
        count_corpus(tmp_path / "nowhere.txt", use_cache=False)


def test_truncated_gzip_corpus_is_an_error(tmp_path):
    data = gzip.compress(b"some words here\n" * 2000)
    corpus = tmp_path / "broken.txt.gz"
    corpus.write_bytes(data[: len(data) // 2])
    with pytest.raises(BayesCompressError, match="broken.txt.gz: not a readable gzip file"):
        count_corpus(corpus, use_cache=False)


def test_a_file_named_bz2_that_is_not_bzip2_is_an_error(tmp_path):
    corpus = tmp_path / "fake.bz2"
    corpus.write_bytes(b"plain words pretending\n")
    with pytest.raises(BayesCompressError, match="fake.bz2: not a bzip2 file"):
        count_corpus(corpus, use_cache=False)


def test_a_binary_file_is_refused_as_not_text_instead_of_being_counted(tmp_path):
    corpus = tmp_path / "model.bin"
    corpus.write_bytes(b"some words first " * 100 + b"\x00\x01\x02" + os.urandom(5000))
    with pytest.raises(BayesCompressError, match="model.bin: not a text file \\(NUL bytes"):
        count_corpus(corpus, use_cache=False)


def test_bytes_that_are_mostly_not_utf8_are_refused_even_when_compressed(tmp_path):
    corpus = tmp_path / "noise.txt.bz2"
    high_bytes = np.random.default_rng(0).integers(128, 256, 50_000, dtype=np.uint8)
    corpus.write_bytes(bz2.compress(bytes(high_bytes)))
    with pytest.raises(BayesCompressError, match=r"noise.txt.bz2: not a text file \(\d+% of the characters"):
        count_corpus(corpus, use_cache=False)


def test_latin1_prose_with_a_few_accented_letters_is_still_read_as_text(tmp_path):
    corpus = tmp_path / "latin1.txt"
    lines = [" ".join(f"w{chr(97 + (i * j) % 26)}{chr(97 + j % 26)}" for j in range(30)) + " café"
             for i in range(50)]
    corpus.write_bytes("\n".join(lines).encode("latin-1"))
    counts = count_corpus(corpus, CorpusOptions(vocab_size=20, min_count=1, window=2), use_cache=False)
    assert counts.vocab_size == 20
