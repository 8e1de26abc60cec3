"""How good a (compressed) model is, by the posterior's kind: a small registry the sweep looks up.

generic: how probable the values are under the posterior; embedding: Hits@10 on word analogies;
network: the task metric.  The task evaluators (bayescompress/evaluate/) are imported only when used.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import BayesCompressError
from .posterior import Posterior

# embeddings larger than this are also scored with only their most frequent words as candidates
# (questions whose four words are among them), so zeroed rare rows earn nothing
FREQUENT_CANDIDATES = 30000


@dataclass
class Quality:
    """One model's quality (higher is better, the sweep's y-axis) and whatever else was measured."""

    value: float
    name: str
    extras: dict[str, float] = field(default_factory=dict)


def posterior_distortion(values: dict[str, np.ndarray], posterior: Posterior) -> float:
    """D = sum over latents of (z_hat - mu)^2 / (2 sigma^2): minus the log posterior density ratio.

    >>> from bayescompress.posterior import TensorPosterior
    >>> post = Posterior({"w": TensorPosterior(np.zeros(2), np.array([1.0, 0.5]))})
    >>> posterior_distortion({"w": np.array([1.0, 1.0])}, post)
    2.5
    """
    total = 0.0
    for name, chosen in values.items():
        tensor = posterior.tensors[name]
        error = (np.asarray(chosen, dtype=np.float64) - tensor.mean) / tensor.std
        total += 0.5 * float(np.dot(error.ravel(), error.ravel()))
    return total


def generic_quality(values: dict[str, np.ndarray], posterior: Posterior, *,
                    measure: str = "density") -> Quality:
    """exp(-D / K): the per-latent geometric mean of q(z_hat) / q(mu) under the posterior.

    1 for the uncompressed means, towards 0 as the values leave their posteriors (a sample
    from the posterior itself scores exp(-1/2) = 0.61 on average).  Under a Laplace
    approximation D is the drop in training log-likelihood in nats, so this is the per-latent
    likelihood ratio; being a function of D alone, it also puts the Gaussian R(D) bound on the
    same axes.  It is VBQ's own objective (eq. 7): on a generic posterior the sweep shows what
    using the stds buys under the posterior, not task quality.  ``measure="within-1-std"``
    makes the fraction of latents within one posterior std of their mean the quality instead;
    both are always reported.

    >>> from bayescompress.posterior import TensorPosterior
    >>> post = Posterior({"w": TensorPosterior(np.zeros(2), np.ones(2))})
    >>> q = generic_quality({"w": np.array([0.0, 2.0])}, post)
    >>> round(q.value, 4), q.extras["within_1_std"]
    (0.3679, 0.5)
    """
    count = sum(int(np.size(v)) for v in values.values())
    within = sum(
        int(np.count_nonzero(np.abs(np.asarray(v, dtype=np.float64) - posterior.tensors[n].mean)
                             <= posterior.tensors[n].std))
        for n, v in values.items())
    return generic_quality_of_sums(posterior_distortion(values, posterior), within, count, measure=measure)


def generic_quality_of_sums(distortion: float, within: int, count: int, *,
                            measure: str = "density") -> Quality:
    """``generic_quality`` from its sums: D, latents within one std, and latents (for streaming)."""
    if measure not in ("density", "within-1-std"):
        raise BayesCompressError(f"generic quality measure must be density or within-1-std, got {measure!r}")
    density = math.exp(-distortion / count)
    within = within / count
    if measure == "within-1-std":
        return Quality(within, "within_1_std", {"posterior_density_ratio": density})
    return Quality(density, "posterior_density_ratio", {"within_1_std": within})


def _evaluator(module: str, function: str, what: str):
    try:
        return getattr(importlib.import_module(module), function)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise BayesCompressError(
                f"{what} quality needs {module}.{function}, which this installation lacks "
                "(the evaluator is not installed or not merged yet)") from exc
        raise BayesCompressError(f"{what} quality: {module} needs {exc.name!r}, which is missing") from exc
    except AttributeError as exc:
        raise BayesCompressError(f"{what} quality: {module} has no function {function!r}") from exc


def embedding_quality(values: dict[str, np.ndarray], posterior: Posterior, *, tensor: str = "U",
                      questions: str | None = None) -> Quality:
    """Hits@10 on word analogies (ties counted against the answer) of the word vectors ``tensor``.

    Calls ``bayescompress.evaluate.analogy.evaluate_analogies(vectors, words, questions_path=...)``.
    """
    evaluate_analogies = _evaluator("bayescompress.evaluate.analogy", "evaluate_analogies", "embedding")
    if posterior.vocab is None:
        raise BayesCompressError("embedding quality needs the posterior's vocabulary, which it lacks")
    if tensor not in values:
        raise BayesCompressError(f"embedding quality: no tensor {tensor!r} (tensors: {', '.join(values)})")
    words = list(posterior.vocab.words)
    vectors = np.asarray(values[tensor])
    result = evaluate_analogies(vectors, words, questions_path=questions)
    extras = {}
    for name in ("hits_at_10_ties_favourable", "top1", "mrr", "coverage"):
        value = getattr(result, name, None)
        if isinstance(value, (int, float)):
            extras[name] = float(value)
    extras["zero_rows"] = int(np.count_nonzero(~np.any(vectors.reshape(len(vectors), -1), axis=1)))
    if len(words) > FREQUENT_CANDIDATES:  # no pruning bonus: rows past the frequent words never compete
        frequent = frequent_rows(posterior.vocab, FREQUENT_CANDIDATES)
        n = FREQUENT_CANDIDATES
        label = f"{n // 1000}k" if n % 1000 == 0 else str(n)
        try:
            restricted = evaluate_analogies(vectors[frequent], [words[i] for i in frequent],
                                            questions_path=questions)
        except BayesCompressError:  # no question has its four words among the frequent ones
            extras[f"hits_at_10_top{label}"] = math.nan
        else:
            extras[f"hits_at_10_top{label}"] = float(restricted.hits_at_10)
    return Quality(float(result.hits_at_10), "hits_at_10", extras)


def frequent_rows(vocab, n: int) -> np.ndarray:
    """Rows of the ``n`` most frequent words, in row order (the first ``n`` rows without counts).

    >>> from bayescompress.posterior import Vocabulary
    >>> frequent_rows(Vocabulary(["a", "b", "c"], np.array([5, 9, 7])), 2).tolist()
    [1, 2]
    """
    if vocab.counts is None:
        return np.arange(min(n, len(vocab)))
    order = np.argsort(-np.asarray(vocab.counts, dtype=np.float64), kind="stable")
    return np.sort(order[:n])


def network_quality(values: dict[str, np.ndarray], posterior: Posterior, *, data=None,
                    split: str = "test") -> Quality:
    """The network's task metric from ``bayescompress.evaluate.bnn.evaluate_network``: test accuracy
    (classification) or minus the test RMSE (regression), with the NLL beside it; ``data`` and
    ``split`` are passed through (named, so that the sweep refuses any other option up front).
    """
    evaluate_network = _evaluator("bayescompress.evaluate.bnn", "evaluate_network", "network")
    result = evaluate_network(values, posterior.model_spec, data=data, split=split)
    extras = {"nll": float(result.nll)}
    if result.accuracy is not None:
        return Quality(float(result.accuracy), "accuracy", extras)
    return Quality(-float(result.rmse), "negative_rmse", extras | {"rmse": float(result.rmse)})


METRICS: dict[str, Callable[..., Quality]] = {
    "generic": generic_quality,
    "embedding": embedding_quality,
    "network": network_quality,
}


def quality_for(kind: str) -> Callable[..., Quality]:
    """The quality function for a posterior kind."""
    if kind not in METRICS:
        raise BayesCompressError(f"no quality metric for kind {kind!r} (kinds: {', '.join(METRICS)})")
    return METRICS[kind]
