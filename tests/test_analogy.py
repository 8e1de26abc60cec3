"""Analogy evaluation: the paper's protocol, gensim's, tie rules, chunking, coverage, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from bayescompress.errors import BayesCompressError
from bayescompress.evaluate.analogy import (
    evaluate_analogies,
    normalize_rows,
    question_ids,
    rank_answers,
    read_questions,
)


def write_questions(path, text: str):
    path.write_text(text)
    return path


def royal_vocabulary(n_distractors: int = 20, seed: int = 0):
    """man, woman, king, queen built from orthonormal parts, so king - man + woman = queen exactly."""
    rng = np.random.default_rng(seed)
    dim = 8
    male, female, person, royal = np.eye(dim, dtype=np.float32)[:4]
    vectors = [male + person, female + person, male + royal, female + royal]
    vectors += list(rng.standard_normal((n_distractors, dim)).astype(np.float32))
    words = ["man", "woman", "king", "queen"] + [f"other{i}" for i in range(n_distractors)]
    return np.array(vectors), words


def brute_force_ranks(vectors: np.ndarray, ids: np.ndarray):
    """One score per (question, word) in a plain loop: ties are exact by construction."""
    normed = normalize_rows(vectors).astype(np.float64)
    against, favourable, gensim = [], [], []
    for a, b, c, d in ids:
        query = normed[b] - normed[a] + normed[c]
        scores = np.array([float(np.dot(query, row)) for row in normed])
        others = np.arange(len(normed)) != d
        against.append(int(np.sum((scores >= scores[d]) & others)))
        favourable.append(int(np.sum((scores > scores[d]) & others)))
        candidates = others & ~np.isin(np.arange(len(normed)), [a, b, c])
        gensim.append(len(normed) if d in (a, b, c) else int(np.sum((scores >= scores[d]) & candidates)))
    return np.array(against), np.array(favourable), np.array(gensim)


# ------------------------------------------------------------------------- analytic truths


def test_king_minus_man_plus_woman_is_queen_at_rank_one(tmp_path):
    vectors, words = royal_vocabulary()
    questions = write_questions(tmp_path / "q.txt", ": family\nman king woman queen\nwoman queen man king\n")
    result = evaluate_analogies(vectors, words, questions)
    assert result.n_used == 2
    assert result.top1 == result.hits_at_10 == result.mrr == result.gensim_top1 == 1.0


def test_when_all_rows_are_identical_only_ties_in_favour_score(tmp_path):
    words = [f"w{i}" for i in range(50)]
    vectors = np.tile(np.array([[0.3, -1.2, 0.7]], dtype=np.float32), (50, 1))
    questions = write_questions(tmp_path / "q.txt", ": s\nw0 w1 w2 w3\nw4 w5 w6 w7\n")
    result = evaluate_analogies(vectors, words, questions)
    assert result.distinct_rows == 1
    assert result.hits_at_10_ties_favourable == 1.0
    assert result.hits_at_10 == 0.0
    assert result.gensim_hits_at_10 == 0.0
    assert result.mrr == pytest.approx(1 / 50)


def test_ties_against_is_exactly_the_paper_reference_formula():
    # the reference notebook (mandt-lab/vbq): rank = V - #(scores < answer's score) - 1
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    ids = rng.integers(0, 300, (200, 4))
    normed = vectors / (1e-8 + np.sqrt(np.sum(vectors**2, axis=1, keepdims=True)))
    scores = (normed[ids[:, 1]] - normed[ids[:, 0]] + normed[ids[:, 2]]) @ normed.T
    answer = scores[np.arange(len(ids)), ids[:, 3]]
    paper_ranks = len(vectors) - np.sum(scores < answer[:, None], axis=1) - 1
    np.testing.assert_array_equal(rank_answers(vectors, ids).against, paper_ranks)


def test_ranks_match_a_brute_force_count_with_collapsed_rows():
    rng = np.random.default_rng(4)
    distinct = rng.standard_normal((12, 5)).astype(np.float32)
    vectors = distinct[rng.integers(0, 12, 120)]  # ten words per vector on average: many ties
    vectors[:5] = 0.0  # collapsed to zero, as at very low rates
    ids = rng.integers(0, 120, (60, 4))
    ids[:5, 3] = ids[:5, 1]  # the answer is a query word
    ranks = rank_answers(vectors, ids)
    against, favourable, gensim = brute_force_ranks(vectors, ids)
    np.testing.assert_array_equal(ranks.against, against)
    np.testing.assert_array_equal(ranks.favourable, favourable)
    np.testing.assert_array_equal(ranks.gensim, gensim)
    assert np.all(ranks.favourable <= ranks.against) and np.any(ranks.favourable < ranks.against)


def test_gensim_protocol_sets_query_words_aside_and_the_paper_protocol_does_not():
    # b itself is nearer to b - a + c than the answer d is
    vectors = np.array([[1, 0], [0, 1], [1, 1], [1, 2]], dtype=np.float32)
    ranks = rank_answers(vectors, np.array([[0, 1, 2, 3], [0, 1, 2, 1]]))
    assert ranks.against.tolist() == [1, 0]  # paper: b beats d; an answer equal to b is found
    assert ranks.gensim.tolist() == [0, 4]  # gensim: d wins; an answer that is a query word never


def test_chunked_evaluation_equals_unchunked():
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((400, 12)).astype(np.float32)
    vectors[200:] = vectors[:200]  # duplicates take the weighted-count path
    ids = rng.integers(0, 400, (150, 4))
    whole = rank_answers(vectors, ids, chunk_size=len(ids))
    for chunk_size in (1, 7, 64, None):
        part = rank_answers(vectors, ids, chunk_size=chunk_size)
        for rule in ("against", "favourable", "gensim"):
            np.testing.assert_array_equal(getattr(part, rule), getattr(whole, rule))


def test_evaluation_is_deterministic(tmp_path):
    vectors, words = royal_vocabulary(n_distractors=200, seed=2)
    vectors = vectors + 0.3 * np.random.default_rng(0).standard_normal(vectors.shape).astype(np.float32)
    questions = write_questions(tmp_path / "q.txt", ": f\nman king woman queen\nking man queen woman\n")
    assert evaluate_analogies(vectors, words, questions) == evaluate_analogies(vectors, words, questions)


# ------------------------------------------------------------------------- coverage and sections


def test_coverage_counts_only_questions_with_all_four_words_in_the_vocabulary(tmp_path):
    vectors, words = royal_vocabulary()
    questions = write_questions(tmp_path / "q.txt", (
        ": family\nMan King Woman Queen\nman king woman princess\nboy king woman queen\n"
        ": gram-test\nwoman queen man king\nman king woman queen\n"
    ))
    result = evaluate_analogies(vectors, words, questions)
    assert (result.n_questions, result.n_used, result.coverage) == (5, 3, 0.6)
    assert (result.semantic.n_questions, result.semantic.n_used) == (3, 1)
    assert (result.syntactic.n_questions, result.syntactic.n_used) == (2, 2)
    assert result.sections["family"].coverage == pytest.approx(1 / 3)


def test_questions_are_lowercased_and_matched_to_the_first_of_words_differing_in_case(tmp_path):
    questions = read_questions(write_questions(tmp_path / "q.txt", ": s\nAthens Greece Oslo Norway\n"))
    assert questions.words == [("athens", "greece", "oslo", "norway")]
    ids = question_ids(questions, ["x", "Athens", "athens", "greece", "oslo", "norway"])
    assert ids.tolist() == [[1, 3, 4, 5]]


def test_restrict_vocab_keeps_only_the_first_words_like_gensim(tmp_path):
    vectors, words = royal_vocabulary()
    questions = write_questions(tmp_path / "q.txt", ": f\nman king woman queen\n")
    assert evaluate_analogies(vectors, words, questions, restrict_vocab=4).n_used == 1
    with pytest.raises(BayesCompressError, match="coverage 0"):
        evaluate_analogies(vectors, words, questions, restrict_vocab=3)


def test_default_questions_are_mikolovs_19544_in_14_sections():
    questions = read_questions()
    assert len(questions.words) == 19544
    assert len(set(questions.sections)) == 14
    assert sum(s.startswith("gram") for s in questions.sections) == 10675


# ------------------------------------------------------------------------- agreement with gensim


def test_gensim_protocol_top1_agrees_with_gensim_evaluate_word_analogies_question_by_question(tmp_path):
    from gensim.models import KeyedVectors

    full = read_questions()
    lines = []
    for section in ("capital-common-countries", "family"):
        lines.append(f": {section}")
        lines += [" ".join(q) for q, s in zip(full.words, full.sections, strict=True) if s == section]
    questions = write_questions(tmp_path / "q.txt", "\n".join(lines) + "\n")
    parsed = read_questions(questions)
    rng = np.random.default_rng(7)
    words = sorted({w for q in parsed.words for w in q}) + [f"filler{i}" for i in range(300)]
    words = [words[i] for i in rng.permutation(len(words))]
    row = {w: i for i, w in enumerate(words)}
    vectors = rng.standard_normal((len(words), 20)).astype(np.float32)
    offset = 2.0 * rng.standard_normal(20).astype(np.float32)  # capital -> country, with noise
    for capital, country, _, _ in parsed.words[:506]:
        vectors[row[country]] = vectors[row[capital]] + offset + 0.8 * rng.standard_normal(20)

    keyed = KeyedVectors(vector_size=20)
    keyed.add_vectors(words, vectors)
    gensim_score, gensim_sections = keyed.evaluate_word_analogies(str(questions))
    gensim_correct = sorted(q for s in gensim_sections[:-1] for q in s["correct"])

    result = evaluate_analogies(vectors, words, questions)
    ids = question_ids(parsed, words)
    ranks = rank_answers(vectors, ids)
    found = np.flatnonzero(ranks.gensim == 0)
    ours_correct = sorted(tuple(w.upper() for w in parsed.words[i]) for i in found)
    assert 0.2 < gensim_score < 0.9  # a case where both hits and misses occur
    assert ours_correct == gensim_correct
    assert result.gensim_top1 == pytest.approx(gensim_score)


# ------------------------------------------------------------------------- bad input


def test_a_missing_questions_file_is_a_one_line_error(tmp_path):
    vectors, words = royal_vocabulary()
    with pytest.raises(BayesCompressError, match="no such analogy questions file"):
        evaluate_analogies(vectors, words, tmp_path / "absent.txt")


def test_no_usable_question_says_coverage_zero(tmp_path):
    vectors, words = royal_vocabulary()
    questions = write_questions(tmp_path / "q.txt", ": s\nparis france rome italy\n")
    with pytest.raises(BayesCompressError, match=r"none of its 1 questions .* coverage 0"):
        evaluate_analogies(vectors, words, questions)


@pytest.mark.parametrize(("text", "message"), [
    (": s\nman king woman\n", "line 2 has 3 words"),
    ("", "contains no analogy questions"),
    (": only a header\n", "contains no analogy questions"),
])
def test_malformed_questions_files_are_rejected(tmp_path, text, message):
    vectors, words = royal_vocabulary()
    with pytest.raises(BayesCompressError, match=message):
        evaluate_analogies(vectors, words, write_questions(tmp_path / "q.txt", text))


def test_a_binary_questions_file_is_rejected(tmp_path):
    vectors, words = royal_vocabulary()
    path = tmp_path / "q.bin"
    path.write_bytes(b"\xff\xfe\x00\x89garbage")
    with pytest.raises(BayesCompressError, match="not a UTF-8 text file"):
        evaluate_analogies(vectors, words, path)


def test_vectors_that_do_not_match_the_words_or_are_not_finite_are_rejected():
    vectors, words = royal_vocabulary()
    with pytest.raises(BayesCompressError, match="do not match"):
        evaluate_analogies(vectors, words[:-1])
    vectors[0, 0] = np.nan
    with pytest.raises(BayesCompressError, match="not finite"):
        evaluate_analogies(vectors, words)
