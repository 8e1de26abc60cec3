"""`bayescompress evaluate analogy` end to end, through the installed command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayescompress.evaluate.analogy import evaluate_analogies
from bayescompress.export import write_word2vec
from bayescompress.packing import pack, unpack
from bayescompress.posterior import Posterior, TensorPosterior, Vocabulary

COMMAND = str(Path(sys.executable).parent / "bayescompress")
QUESTIONS = (": capital-common-countries\nathens greece oslo norway\noslo norway rome italy\n"
             "rome italy athens greece\nparis france rome italy\n"
             ": gram8-plural\ncar cars dog dogs\ndog dogs car cars\n")


def run_cli(*args):
    return subprocess.run([COMMAND, *map(str, args)], capture_output=True, text=True, check=False)


@pytest.fixture
def targets(tmp_path):
    """A posterior where country - capital is one exact offset (all rows of norm sqrt 2), packed."""
    rng = np.random.default_rng(0)
    words = ["athens", "greece", "oslo", "norway", "rome", "italy", "car", "cars", "dog", "dogs"]
    words += [f"w{i}" for i in range(40)]
    means = rng.standard_normal((len(words), 16)).astype(np.float32)
    basis = np.eye(16, dtype=np.float32)
    for pair in range(5):  # capital = e_pair + e_14, country = e_pair + e_15
        means[2 * pair] = basis[pair] + basis[14]
        means[2 * pair + 1] = basis[pair] + basis[15]
    stds = np.full_like(means, 0.001)
    posterior = Posterior({"U": TensorPosterior(means, stds), "V": TensorPosterior(means[::-1].copy(), stds)},
                          kind="embedding", vocab=Vocabulary(words, np.arange(len(words), 0, -1)))
    posterior.save(tmp_path / "post.h5")
    pack(posterior, tmp_path / "emb.bcz", lam=0.01)
    write_word2vec(unpack(tmp_path / "emb.bcz"), tmp_path / "vectors.txt")
    write_word2vec(unpack(tmp_path / "emb.bcz"), tmp_path / "vectors.bin")
    (tmp_path / "questions.txt").write_text(QUESTIONS)
    return tmp_path


@pytest.mark.parametrize("target", ["post.h5", "emb.bcz", "vectors.txt", "vectors.bin"])
def test_evaluate_analogy_prints_the_figures_of_every_kind_of_target_as_json(targets, target):
    done = run_cli("evaluate", "analogy", targets / target, "--questions", targets / "questions.txt",
                   "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    if target == "post.h5":
        vectors = Posterior.load(targets / "post.h5").tensors["U"].mean
    else:
        vectors = unpack(targets / "emb.bcz").tensors["U"]
    expected = evaluate_analogies(vectors, Posterior.load(targets / "post.h5").vocab.words,
                                  targets / "questions.txt")
    assert figures["n_questions"] == 6 and figures["n_used"] == 5
    for key in ("hits_at_10", "hits_at_10_ties_favourable", "top1", "mrr", "gensim_top1"):
        assert figures[key] == pytest.approx(getattr(expected, key))
    assert figures["top1"] == 1.0
    assert figures["sections"]["gram8-plural"]["n_used"] == 2
    assert figures["tensor"] == (None if target.startswith("vectors") else "U")


def test_evaluate_analogy_prints_a_short_table_by_default(targets):
    done = run_cli("evaluate", "analogy", targets / "post.h5", "--questions", targets / "questions.txt")
    assert done.returncode == 0, done.stderr
    assert "5 of 6 usable (coverage 83.3%)" in done.stdout
    assert done.stdout.splitlines()[3].split()[:3] == ["all", "5", "1.0000"]


def test_evaluate_analogy_uses_the_tensor_asked_for(targets):
    done = run_cli("evaluate", "analogy", targets / "emb.bcz", "--tensor", "V", "--questions",
                   targets / "questions.txt", "--json")
    assert json.loads(done.stdout)["tensor"] == "V"


@pytest.mark.parametrize(("args", "message"), [
    (["emb.bcz", "--questions", "absent.txt"], "absent.txt: no such analogy questions file"),
    (["emb.bcz", "--tensor", "W"], "no tensor named 'W'"),
    (["absent.bcz"], "absent.bcz: no such file"),
    (["questions.txt"], "not a word2vec file"),
])
def test_evaluate_analogy_bad_input_is_one_line_and_status_1(targets, args, message):
    args = [targets / a if a.endswith((".bcz", ".txt")) else a for a in args]
    done = run_cli("evaluate", "analogy", *args)
    assert done.returncode == 1
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""


def test_evaluate_analogy_with_no_usable_question_says_coverage_0(targets):
    (targets / "other.txt").write_text(": s\nberlin germany madrid spain\n")
    done = run_cli("evaluate", "analogy", targets / "post.h5", "--questions", targets / "other.txt")
    assert done.returncode == 1 and "coverage 0" in done.stderr
