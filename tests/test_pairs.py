"""Sampled-pair ELBO estimator: unbiased for the exact full-data ELBO, ranks draw different pairs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from bayescompress.fit.corpus import CoOccurrences, CorpusOptions
from bayescompress.fit.pairs import (
    PairBatch,
    PairSampler,
    kl_rows,
    lazy_adam_step,
    normal_pool,
    pair_elbo_terms,
    pair_gradients,
    pair_loss,
)
from bayescompress.fit.skipgram import _step_seeds, log_likelihood_per_pair

VOCAB, DIM, NEGATIVES, PRIOR_STD = 15, 3, 4, 0.6
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def heavy_tailed_counts(seed: int = 0) -> CoOccurrences:
    """Symmetric n+ with counts from 1 to ~1000 on a third of the cells; the last word has no pairs."""
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((VOCAB, VOCAB)) < 0.35) * np.floor(rng.pareto(1.2, (VOCAB, VOCAB)) * 5 + 1)
    positive = upper + np.triu(upper, 1).T
    positive[-1, :] = positive[:, -1] = 0
    words = [f"w{i:02d}" for i in range(VOCAB)]
    return CoOccurrences(words, rng.integers(1, 500, VOCAB), sp.csr_matrix(positive.astype(np.int64)),
                         n_tokens=1000, n_documents=1, options=CorpusOptions(vocab_size=VOCAB, min_count=1))


def random_guide(seed: int = 1) -> list[torch.Tensor]:
    """locs.U, scales.U, locs.V, scales.V as the fit stores them (scales before softplus)."""
    rng = np.random.default_rng(seed)
    tensors = []
    for _ in ("U", "V"):
        locs = rng.normal(0, 0.5, (VOCAB, DIM))
        scales = rng.uniform(0.2, 0.8, (VOCAB, DIM))
        raw_scales = np.log(np.expm1(scales))  # softplus(raw) = scales
        tensors += [torch.tensor(locs, dtype=torch.float32), torch.tensor(raw_scales, dtype=torch.float32)]
    return tensors


def exact_terms(counts: CoOccurrences, guide: list[torch.Tensor], word_normals: np.ndarray,
                context_normals: np.ndarray) -> tuple[float, float]:
    """Full-data log-likelihood at one fixed sample per row (in row blocks) and the closed-form KL."""
    locs_u, raw_u, locs_v, raw_v = (t.double() for t in guide)
    scales_u, scales_v = F.softplus(raw_u), F.softplus(raw_v)
    word_vectors = (locs_u + scales_u * torch.from_numpy(word_normals)).numpy()
    context_vectors = (locs_v + scales_v * torch.from_numpy(context_normals)).numpy()
    negative_rows, _ = counts.negative_factors(NEGATIVES)
    pairs = float(counts.positive.sum() + negative_rows.sum())
    log_likelihood = log_likelihood_per_pair(counts, word_vectors, context_vectors, NEGATIVES,
                                             rows_per_block=4)
    kl = float(kl_rows(locs_u, scales_u, PRIOR_STD).sum() + kl_rows(locs_v, scales_v, PRIOR_STD).sum())
    return log_likelihood * pairs, kl


@pytest.mark.parametrize("power, stratified", [(0.75, False), (1.0, False), (0.0, False), (0.75, True)])
def test_the_mean_of_many_sampled_pair_estimates_is_the_exact_full_data_elbo(power, stratified):
    """Same noise per row in both, so the only randomness left is which pairs are drawn; the
    log-likelihood and the KL are each checked, and the loss is their difference."""
    counts = heavy_tailed_counts()
    guide = random_guide()
    rng = np.random.default_rng(2)
    word_normals, context_normals = rng.standard_normal((2, VOCAB, DIM))
    exact = exact_terms(counts, guide, word_normals, context_normals)

    sampler = PairSampler(counts, NEGATIVES, batch=8, noise_contexts=4, power=power, device=CPU,
                          stratified=stratified)
    assert sampler.unreached_words.tolist() == [VOCAB - 1]  # its KL is charged in full every step
    word_normals_t = torch.tensor(word_normals, dtype=torch.float32)
    context_normals_t = torch.tensor(context_normals, dtype=torch.float32)
    estimates = []
    with torch.no_grad():
        for _ in range(6000):
            batch = sampler.draw(rng)
            normals = word_normals_t[batch.words], context_normals_t[batch.contexts]
            terms = pair_elbo_terms(guide, batch, *normals, PRIOR_STD, sampler.unreached_words,
                                    sampler.unreached_contexts)
            estimates.append([float(term) for term in terms])
        loss = pair_loss(guide, batch, *normals, PRIOR_STD, sampler.unreached_words,
                         sampler.unreached_contexts)
        assert float(loss) == pytest.approx(float(terms[1] - terms[0]))
    mean = np.mean(estimates, axis=0)
    standard_error = np.std(estimates, axis=0) / np.sqrt(len(estimates))
    for term in range(2):  # log-likelihood, KL
        assert standard_error[term] < 0.01 * abs(exact[term])  # power to see a weight 10% off
        assert abs(mean[term] - exact[term]) < 4 * standard_error[term]


def test_a_positive_drawn_twice_as_often_weighs_half_as_much():
    counts = heavy_tailed_counts()
    sampler = PairSampler(counts, NEGATIVES, batch=8, noise_contexts=4, power=1.0, device=CPU)
    batch = sampler.draw(np.random.default_rng(0))
    # with p_e proportional to n_e, n_e / (B p_e) is the same for every entry: sum n+ / B
    np.testing.assert_allclose(batch.positive_weights.numpy(), counts.positive.sum() / 8, rtol=1e-5)


def test_ranks_draw_different_pairs_and_a_step_replays_the_same_pairs():
    counts = heavy_tailed_counts()
    sampler = PairSampler(counts, NEGATIVES, batch=8, noise_contexts=4, power=0.75, device=CPU)

    def drawn(rank: int, step: int) -> tuple[list[int], list[int]]:
        batch = sampler.draw(_step_seeds(7, rank, step)[0])
        return batch.words.tolist(), batch.contexts.tolist()

    assert drawn(0, 5) != drawn(1, 5)
    assert drawn(0, 5) != drawn(0, 6)
    assert drawn(1, 5) == drawn(1, 5)


def test_the_normal_pool_is_standard_normal_and_fixed_by_the_seed():
    pool = normal_pool(batch=8, noise_contexts=4, dim=DIM, seed=3, device=torch.device("cpu"))
    assert torch.equal(pool, normal_pool(8, 4, DIM, 3, torch.device("cpu")))
    assert abs(float(pool.mean())) < 0.005 and abs(float(pool.std()) - 1) < 0.005
    sampler = PairSampler(heavy_tailed_counts(), NEGATIVES, 8, 4, 0.75, torch.device("cpu"))
    words, contexts = sampler.normals(pool, np.random.default_rng(0), DIM)
    assert words.shape == (8, DIM) and contexts.shape == (12, DIM)


def test_the_closed_form_gradients_are_autograds_gradients_of_the_loss():
    counts = heavy_tailed_counts()
    guide = [tensor.double().requires_grad_() for tensor in random_guide()]
    sampler = PairSampler(counts, NEGATIVES, batch=8, noise_contexts=4, power=0.75, device=CPU)
    rng = np.random.default_rng(4)
    batch = sampler.draw(rng)
    batch = PairBatch(**{name: value.double() if value.is_floating_point() else value
                         for name, value in vars(batch).items()})
    word_normals = torch.from_numpy(rng.standard_normal((8, DIM)))
    context_normals = torch.from_numpy(rng.standard_normal((12, DIM)))
    arguments = (batch, word_normals, context_normals, PRIOR_STD, sampler.unreached_words,
                 sampler.unreached_contexts)
    loss = pair_loss(guide, *arguments)
    loss.backward()
    value, gradients = pair_gradients(guide, *arguments)
    assert value == pytest.approx(float(loss.detach()), rel=1e-12)
    for leaf, gradient in zip(guide, gradients, strict=True):
        expected = leaf.grad.to_dense().numpy()
        np.testing.assert_allclose(gradient.to_dense().numpy(), expected, rtol=1e-9, atol=1e-12)


def test_a_loss_value_read_from_some_noise_contexts_is_unbiased_and_leaves_the_gradients_alone():
    counts = heavy_tailed_counts()
    guide = random_guide()
    sampler = PairSampler(counts, NEGATIVES, batch=8, noise_contexts=16, power=0.75, device=CPU)
    rng = np.random.default_rng(5)
    full, read_four = [], []
    for _ in range(3000):
        batch = sampler.draw(rng)
        normals = torch.from_numpy(rng.standard_normal((8 + 24, DIM)).astype(np.float32))
        arguments = (batch, normals[:8], normals[8:], PRIOR_STD, sampler.unreached_words,
                     sampler.unreached_contexts)
        value, gradients = pair_gradients(guide, *arguments, value_noise_contexts=4)
        every, every_gradients = pair_gradients(guide, *arguments, value_noise_contexts=0)
        for gradient, reference in zip(gradients, every_gradients, strict=True):
            assert torch.equal(gradient.to_dense(), reference.to_dense())
        read_four.append(value)
        full.append(every)
    assert read_four != full  # four of the sixteen columns: a different number on most steps
    differences = np.subtract(read_four, full)
    assert abs(differences.mean()) < 4 * differences.std() / np.sqrt(len(differences))
    assert differences.std() < 0.1 * abs(np.mean(full))  # a value that still tracks the loss


def test_lazy_adam_moves_rows_exactly_as_sparse_adam_does():
    torch.manual_seed(0)
    ours, reference = (torch.randn(6, 3).requires_grad_() for _ in range(2))
    with torch.no_grad():
        reference.copy_(ours)
    optimizers = [torch.optim.SparseAdam([p], lr=0.1) for p in (ours, reference)]
    for step in range(4):
        rows = torch.tensor([0, 2, 5]) if step % 2 else torch.tensor([1, 2])
        values = torch.randn(len(rows), 3)
        for parameter in (ours, reference):
            gradient = torch.sparse_coo_tensor(rows[None], values, (6, 3), check_invariants=True)
            parameter.grad = gradient.coalesce()
        lazy_adam_step(optimizers[0])
        optimizers[1].step()
        torch.testing.assert_close(ours, reference)
    assert optimizers[0].state_dict()["state"][0]["step"] == 4
