"""Word analogies (Mikolov's questions-words): is d among the words nearest to b - a + c?

Two protocols: the paper's (cosine against the whole vocabulary, query words included) and
gensim's (query words excluded). Ties, frequent once quantization collapses rows onto one
vector, count against the answer in the headline figure so a coarse archive cannot score by
collapse; the tie-favourable count is reported beside it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import BayesCompressError

TOP_K = 10
DEFAULT_CHUNK_FLOATS = 1 << 24  # scores held per chunk of questions: 64 MiB of float32
NORM_EPSILON = 1e-8  # the reference code's guard against zero rows


# ------------------------------------------------------------------------- questions


@dataclass
class AnalogyQuestions:
    """Questions "a b c d" (a is to b as c is to d), lowercased, with their section names."""

    words: list[tuple[str, str, str, str]]
    sections: list[str]
    path: str


def default_questions_path() -> str:
    """The questions-words.txt that gensim ships (19,544 questions in 14 sections)."""
    from gensim.test.utils import datapath

    return datapath("questions-words.txt")


def read_questions(path: str | os.PathLike | None = None) -> AnalogyQuestions:
    """Parse a questions file: ``: section`` header lines, then four words per line.

    >>> questions = read_questions()
    >>> len(questions.words), questions.words[0], questions.sections[0]
    (19544, ('athens', 'greece', 'baghdad', 'iraq'), 'capital-common-countries')
    """
    source = str(path) if path is not None else default_questions_path()
    if not os.path.isfile(source):
        raise BayesCompressError(f"{source}: no such analogy questions file")
    try:
        with open(source, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except UnicodeDecodeError:
        raise BayesCompressError(f"{source}: not a UTF-8 text file of analogy questions") from None
    words, sections, section = [], [], "questions"
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith(":"):
            section = text[1:].strip() or "questions"
            continue
        fields = text.lower().split()
        if len(fields) != 4:
            raise BayesCompressError(
                f"{source}: line {number} has {len(fields)} words; an analogy question has four "
                "('a b c d': a is to b as c is to d)"
            )
        words.append(tuple(fields))
        sections.append(section)
    if not words:
        raise BayesCompressError(f"{source}: contains no analogy questions")
    return AnalogyQuestions(words, sections, source)


def question_ids(questions: AnalogyQuestions, words: list[str]) -> np.ndarray:
    """Row of each question word in ``words`` (matched lowercase, first occurrence), -1 if absent."""
    rows: dict[str, int] = {}
    for row in range(len(words) - 1, -1, -1):
        rows[words[row].lower()] = row
    return np.array([[rows.get(w, -1) for w in q] for q in questions.words], dtype=np.int64).reshape(-1, 4)


# ------------------------------------------------------------------------- ranks


@dataclass
class AnswerRanks:
    """Per question, how many other words score at least as high as the answer (and more).

    ``against``: ties count against the answer (the paper's reference code computes exactly this,
    ``V - #(scores < answer) - 1``); ``favourable``: only strictly higher words count;
    ``gensim``: like ``against`` but the three query words are not candidates (an answer that is
    itself a query word can never be found: rank = vocabulary size).
    """

    against: np.ndarray
    favourable: np.ndarray
    gensim: np.ndarray
    distinct_rows: int = 0


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows divided by (1e-8 + their L2 norm), float32, as in the paper's reference code."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.sqrt(np.sum(np.square(vectors, dtype=np.float64), axis=1, keepdims=True))
    # + 0.0 turns -0.0 into 0.0, so rows that differ only in the sign of zeros are one row
    return (vectors / (NORM_EPSILON + norms)).astype(np.float32) + np.float32(0.0)


def rank_answers(vectors: np.ndarray, ids: np.ndarray, chunk_size: int | None = None) -> AnswerRanks:
    """Rank each question's answer among all words by cosine to b - a + c.

    ``ids`` holds rows (a, b, c, d), all valid. Identical rows are scored once and counted with
    their multiplicity, so ties are exact whatever the matrix product's rounding, and a heavily
    quantized matrix (few distinct rows) is fast. ``chunk_size`` questions are scored at a time.

    Here b itself scores above the answer d, which only gensim's protocol sets aside:

    >>> vectors = np.array([[1, 0], [0, 1], [1, 1], [1, 2]], dtype=np.float32)
    >>> ranks = rank_answers(vectors, np.array([[0, 1, 2, 3]]))
    >>> int(ranks.against[0]), int(ranks.gensim[0])
    (1, 0)
    """
    ids = np.asarray(ids, dtype=np.int64)
    normed = normalize_rows(vectors)
    distinct, row_of, multiplicity = np.unique(normed, axis=0, return_inverse=True, return_counts=True)
    row_of = row_of.reshape(-1)
    weights = multiplicity.astype(np.float64) if np.any(multiplicity > 1) else None
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_CHUNK_FLOATS // len(distinct))
    n_words = len(normed)
    against = np.empty(len(ids), dtype=np.int64)
    favourable = np.empty(len(ids), dtype=np.int64)
    gensim = np.empty(len(ids), dtype=np.int64)
    for start in range(0, len(ids), chunk_size):
        block = ids[start:start + chunk_size]
        queries = normed[block[:, 1]] - normed[block[:, 0]] + normed[block[:, 2]]
        scores = queries @ distinct.T  # (questions, distinct rows)
        picked = np.take_along_axis(scores, row_of[block], axis=1)  # scores of a, b, c, d
        answer = picked[:, 3:]
        at_least = _weighted_count(scores >= answer, weights) - 1  # - 1: the answer itself
        higher = _weighted_count(scores > answer, weights)
        done = slice(start, start + len(block))
        against[done], favourable[done] = at_least, higher
        answer_is_query_word = np.any(block[:, :3] == block[:, 3:], axis=1)
        gensim[done] = np.where(answer_is_query_word, n_words,
                                at_least - _query_words_at_least_as_high(block, picked))
    return AnswerRanks(against, favourable, gensim, len(distinct))


def _weighted_count(mask: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    if weights is None:
        return np.count_nonzero(mask, axis=1)
    return np.rint(mask @ weights).astype(np.int64)


def _query_words_at_least_as_high(block: np.ndarray, picked: np.ndarray) -> np.ndarray:
    """How many distinct query words (other than the answer) score >= the answer."""
    at_least = picked[:, :3] >= picked[:, 3:]
    distinct = np.ones_like(at_least)
    distinct[:, 1] = block[:, 1] != block[:, 0]
    distinct[:, 2] = (block[:, 2] != block[:, 0]) & (block[:, 2] != block[:, 1])
    not_answer = block[:, :3] != block[:, 3:]
    return np.count_nonzero(at_least & distinct & not_answer, axis=1)


# ------------------------------------------------------------------------- figures


@dataclass
class AnalogyScores:
    """Figures over one set of questions; None where no question of the set was usable."""

    n_questions: int
    n_used: int
    coverage: float
    hits_at_10: float | None  # ties against: THE figure for curves
    hits_at_10_ties_favourable: float | None
    top1: float | None
    mrr: float | None
    gensim_hits_at_10: float | None
    gensim_top1: float | None


@dataclass
class AnalogyResult(AnalogyScores):
    """Figures over all questions, by semantic / syntactic group and by section."""

    vocab_size: int = 0
    distinct_rows: int = 0
    questions_path: str = ""
    semantic: AnalogyScores | None = None
    syntactic: AnalogyScores | None = None
    sections: dict[str, AnalogyScores] = field(default_factory=dict)
    source: str | None = None
    tensor: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def scores_from_ranks(ranks: AnswerRanks, n_questions: int) -> AnalogyScores:
    """Hits@10 (both tie rules), top-1, MRR and gensim's figures from answer ranks."""
    n_used = len(ranks.against)
    coverage = n_used / n_questions if n_questions else 0.0
    if n_used == 0:
        return AnalogyScores(n_questions, 0, coverage, None, None, None, None, None, None)

    def share(hit: np.ndarray) -> float:
        return float(np.mean(hit))

    return AnalogyScores(
        n_questions=n_questions,
        n_used=n_used,
        coverage=coverage,
        hits_at_10=share(ranks.against < TOP_K),
        hits_at_10_ties_favourable=share(ranks.favourable < TOP_K),
        top1=share(ranks.against < 1),
        mrr=float(np.mean(1.0 / (1.0 + ranks.against))),
        gensim_hits_at_10=share(ranks.gensim < TOP_K),
        gensim_top1=share(ranks.gensim < 1),
    )


def is_syntactic(section: str) -> bool:
    """Mikolov's syntactic sections are named gram1-... to gram9-...; the rest are semantic."""
    return section.startswith("gram")


def evaluate_analogies(
    vectors: np.ndarray,
    words: list[str],
    questions_path: str | os.PathLike | None = None,
    *,
    restrict_vocab: int | None = None,
    chunk_size: int | None = None,
) -> AnalogyResult:
    """Analogy figures of word vectors (rows in the order of ``words``).

    Questions with a word outside the vocabulary are skipped and reported through ``coverage``.
    ``restrict_vocab`` keeps only the first N words, as gensim does (with N = 300,000).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "questions.txt"
    >>> _ = path.write_text(": family\\nman king woman queen\\nman king woman duchess\\n")
    >>> vectors = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1]], dtype=np.float32)
    >>> result = evaluate_analogies(vectors, ["man", "king", "woman", "queen"], path)
    >>> result.top1, result.coverage, result.n_used
    (1.0, 0.5, 1)
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(words) or vectors.size == 0:
        raise BayesCompressError(
            f"word vectors of shape {vectors.shape} do not match a vocabulary of {len(words)} words"
        )
    if not np.all(np.isfinite(vectors)):
        raise BayesCompressError("word vectors contain values that are not finite")
    if restrict_vocab is not None:
        vectors, words = vectors[:restrict_vocab], list(words[:restrict_vocab])
    questions = read_questions(questions_path)
    ids = question_ids(questions, words)
    used = np.all(ids >= 0, axis=1)
    if not np.any(used):
        examples = ", ".join(repr(w) for w in words[:3])
        raise BayesCompressError(
            f"{questions.path}: none of its {len(ids)} questions has all four words in the "
            f"vocabulary of {len(words)} words ({examples}, ...): coverage 0"
        )
    ranks = rank_answers(vectors, ids[used], chunk_size)
    sections = np.array(questions.sections, dtype=object)
    syntactic = np.array([is_syntactic(s) for s in questions.sections], dtype=bool)

    def scores_where(in_set: np.ndarray) -> AnalogyScores:
        chosen = in_set[used]
        subset = AnswerRanks(ranks.against[chosen], ranks.favourable[chosen], ranks.gensim[chosen])
        return scores_from_ranks(subset, int(np.count_nonzero(in_set)))

    overall = scores_from_ranks(ranks, len(ids))
    by_section = {name: scores_where(sections == name) for name in dict.fromkeys(questions.sections)}
    return AnalogyResult(
        **asdict(overall),
        vocab_size=len(words),
        distinct_rows=ranks.distinct_rows,
        questions_path=questions.path,
        semantic=scores_where(~syntactic),
        syntactic=scores_where(syntactic),
        sections=by_section,
    )


def evaluate_analogy_target(
    target: str | os.PathLike,
    questions_path: str | os.PathLike | None = None,
    tensor: str | None = None,
) -> AnalogyResult:
    """Analogy figures of a posterior file (means), an archive, or a word2vec file."""
    from .word_vectors import load_word_vectors

    loaded = load_word_vectors(target, tensor)
    result = evaluate_analogies(loaded.vectors, loaded.words, questions_path)
    result.source, result.tensor = loaded.source, loaded.tensor
    return result


def format_analogy_table(result: AnalogyResult) -> str:
    """A short human-readable table of the figures (all, semantic, syntactic)."""
    what = result.source or "vectors"
    if result.tensor:
        what += f" (tensor {result.tensor})"
    lines = [
        f"{what}: {result.vocab_size} words, {result.distinct_rows} distinct vectors",
        f"questions {result.questions_path}: {result.n_used} of {result.n_questions} usable "
        f"(coverage {result.coverage:.1%})",
        f"{'':<10} {'used':>6} {'Hits@10':>8} {'ties+':>7} {'top-1':>7} {'MRR':>7} "
        f"{'gensim@10':>9} {'gensim@1':>8}",
    ]
    for label, scores in (("all", result), ("semantic", result.semantic), ("syntactic", result.syntactic)):
        if scores is None:
            continue
        figures = [scores.hits_at_10, scores.hits_at_10_ties_favourable, scores.top1, scores.mrr,
                   scores.gensim_hits_at_10, scores.gensim_top1]
        cells = [("-" if f is None else f"{f:.4f}") for f in figures]
        lines.append(f"{label:<10} {scores.n_used:>6} {cells[0]:>8} {cells[1]:>7} {cells[2]:>7} "
                     f"{cells[3]:>7} {cells[4]:>9} {cells[5]:>8}")
    lines.append("Hits@10: ties counted against the answer (the figure to compare); ties+: ties in its "
                 "favour; gensim: query words excluded")
    return "\n".join(lines)
