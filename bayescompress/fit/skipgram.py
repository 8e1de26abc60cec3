"""Bayesian skip-gram word embeddings (Bamler & Mandt 2017) fitted with Pyro SVI.

Word vectors U and context vectors V (vocabulary x dim) have N(0, prior_std^2) priors; the
counts follow log p = sum_ij n+_ij log sigmoid(u_i.v_j) + n-_ij log sigmoid(-u_i.v_j). A
mean-field Gaussian guide stores ``locs.U``, ``scales.U``, ``locs.V``, ``scales.V`` (AutoNormal's
names), so the fitted guide is a posterior file with tensors "U" and "V" and nothing renamed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.distributions import constraints

from ..errors import BayesCompressError
from ..files import atomic_output, check_output_path
from ..posterior import Posterior, TensorPosterior, Vocabulary
from .corpus import CoOccurrences, CorpusOptions, count_corpus
from .defaults import SKIPGRAM_DEFAULTS
from .distributed import ProcessGroup, device_for, process_group
from .fused import StepKernels
from .pairs import PairSampler, lazy_adam_step, normal_pool, pair_gradients
from .threads import torch_threads

CHECKPOINT_FORMAT = "bayescompress-skipgram-checkpoint"
CHECKPOINT_VERSION = 1
PARAMETERS = ("locs.U", "scales.U", "locs.V", "scales.V")
SCALE_CONSTRAINT = constraints.softplus_positive
# settings that define the model; a checkpoint only resumes a fit that agrees on all of them
_MODEL_SETTINGS = ("dim", "negatives", "prior_std", "subsample")
ESTIMATORS = ("auto", "pairs", "dense")


@dataclass
class SkipGramSettings:
    """Hyperparameters of the model, the guide's initialization and the optimizer."""

    dim: int = SKIPGRAM_DEFAULTS["dim"]
    negatives: int = SKIPGRAM_DEFAULTS["negatives"]
    # "pairs" (sampled pairs), "dense" (blocks) or "auto": dense up to DENSE_MAX_VOCAB words, else pairs
    estimator: str = SKIPGRAM_DEFAULTS["estimator"]
    steps: int | None = None  # default: SKIPGRAM_DEFAULTS["steps"][estimator]
    batch: int | None = None  # pairs: positive pairs per step; dense: block side. Default per estimator
    noise_contexts: int = SKIPGRAM_DEFAULTS["noise_contexts"]  # pairs: M negatives shared by the batch
    pair_power: float = SKIPGRAM_DEFAULTS["pair_power"]  # pairs: positives drawn in proportion to n^power
    stratified: bool = SKIPGRAM_DEFAULTS["stratified"]  # pairs: one positive per 1/B slice of the proposal
    subsample: float = SKIPGRAM_DEFAULTS["subsample"]  # word2vec's frequent-word threshold; 0: off
    lr: float = SKIPGRAM_DEFAULTS["lr"]
    lr_decay: float | None = None  # the last step's learning rate is lr * lr_decay; default per estimator
    prior_std: float = SKIPGRAM_DEFAULTS["prior_std"]
    init_std: float = SKIPGRAM_DEFAULTS["init_std"]  # spread of the guide's initial means
    init_scale: float | None = None  # the guide's initial standard deviations; default per estimator
    seed: int = SKIPGRAM_DEFAULTS["seed"]
    device: str = "cpu"
    checkpoint: str | None = None
    checkpoint_every: int = SKIPGRAM_DEFAULTS["checkpoint_every"]
    resume: bool = False
    threads: int | None = None  # torch threads on the CPU; None: default_threads()
    compile: bool = True  # pairs on the CPU: fuse the step's element-wise work with torch.compile if it can

    def __post_init__(self):
        if self.estimator not in ESTIMATORS:
            raise BayesCompressError(f"--estimator must be one of {', '.join(ESTIMATORS)}, "
                                     f"got {self.estimator!r}")
        if self.estimator != "auto":  # auto: resolved() fills these in once the vocabulary is known
            if self.steps is None:
                self.steps = SKIPGRAM_DEFAULTS["steps"][self.estimator]
            if self.batch is None:
                self.batch = SKIPGRAM_DEFAULTS["batch"][self.estimator]
            if self.init_scale is None:
                self.init_scale = SKIPGRAM_DEFAULTS["init_scale"][self.estimator]
            if self.lr_decay is None:
                self.lr_decay = SKIPGRAM_DEFAULTS["lr_decay"][self.estimator]
        if self.threads is not None and self.threads < 1:
            raise BayesCompressError(f"--threads must be at least 1, got {self.threads}")
        if not 0 <= self.pair_power <= 1:
            raise BayesCompressError(f"--pair-power must be between 0 and 1, got {self.pair_power}")
        for name in ("dim", "negatives", "steps", "batch", "noise_contexts", "checkpoint_every"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise BayesCompressError(f"--{name.replace('_', '-')} must be at least 1, got "
                                         f"{getattr(self, name)}")
        for name in ("lr", "lr_decay", "prior_std", "init_std", "init_scale"):
            value = getattr(self, name)
            if value is None:  # init_scale and lr_decay under auto: filled in by resolved()
                continue
            if not (value > 0 and math.isfinite(value)):
                raise BayesCompressError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
        if not 0 <= self.subsample < 1:
            raise BayesCompressError(f"--subsample must be at least 0 and below 1, got {self.subsample}")
        if self.resume and not self.checkpoint:
            raise BayesCompressError("--resume needs --checkpoint FILE to resume from")

    def resolved(self, vocab_size: int) -> SkipGramSettings:
        """These settings with ``auto`` replaced by the estimator measured faster at this vocabulary size.

        >>> SkipGramSettings().resolved(10000).estimator, SkipGramSettings().resolved(100000).estimator
        ('dense', 'pairs')
        """
        if self.estimator != "auto":
            return self
        chosen = "dense" if vocab_size <= SKIPGRAM_DEFAULTS["dense_max_vocab"] else "pairs"
        return dataclasses.replace(self, estimator=chosen)


def setting_type(name: str) -> type:
    """The type of a SkipGramSettings field's value, also where its default (None) is chosen per estimator.

    >>> setting_type("lr_decay"), setting_type("steps"), setting_type("stratified")
    (<class 'float'>, <class 'int'>, <class 'bool'>)
    """
    hint = typing.get_type_hints(SkipGramSettings)[name]
    return next((kind for kind in typing.get_args(hint) if kind is not type(None)), hint)


@dataclass
class Block:
    """A dense B_words x B_contexts block of the count matrices, with the plate sizes that scale it."""

    rows: torch.Tensor  # word ids (long)
    cols: torch.Tensor  # context ids (long)
    positive: torch.Tensor  # n+ block, float32
    negative: torch.Tensor  # n- block, float32
    n_rows: int  # size of the words plate (see draw_block)
    n_cols: int  # size of the contexts plate: the vocabulary size


class SkipGram:
    """The Pyro model and mean-field guide over one block of (word, context) pairs."""

    def __init__(self, vocab_size: int, dim: int, prior_std: float):
        self.vocab_size = vocab_size
        self.dim = dim
        self.prior_std = prior_std

    def model(self, block: Block) -> None:
        zero = block.positive.new_zeros(self.dim)
        prior = dist.Normal(zero, self.prior_std)
        words = pyro.plate("words", block.n_rows, subsample=block.rows, dim=-2)
        contexts = pyro.plate("contexts", block.n_cols, subsample=block.cols, dim=-1)
        with words:
            word_vectors = pyro.sample("U", prior.expand([len(block.rows), 1, self.dim]).to_event(1))
        with contexts:
            context_vectors = pyro.sample("V", prior.expand([len(block.cols), self.dim]).to_event(1))
        scores = word_vectors.squeeze(-2) @ context_vectors.T
        with words, contexts:
            # n+ log s(x) + n- log s(-x), using log s(-x) = log s(x) - x to save a pass
            pyro.factor("counts", (block.positive + block.negative) * F.logsigmoid(scores)
                        - block.negative * scores)

    def guide(self, block: Block) -> None:
        words = pyro.plate("words", block.n_rows, subsample=block.rows, dim=-2)
        contexts = pyro.plate("contexts", block.n_cols, subsample=block.cols, dim=-1)
        with words:
            locs, scales = self._rows_of("U", block.rows)
            pyro.sample("U", dist.Normal(locs.unsqueeze(-2), scales.unsqueeze(-2)).to_event(1))
        with contexts:
            locs, scales = self._rows_of("V", block.cols)
            pyro.sample("V", dist.Normal(locs, scales).to_event(1))

    def _rows_of(self, tensor: str, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Gather the block's rows of the unconstrained parameters and transform only those:
        # the gradients are then row-sparse, so a step costs O(block), not O(vocabulary).
        store = pyro.get_param_store()
        leaves = dict(store.named_parameters())
        locs = F.embedding(ids, leaves[f"locs.{tensor}"], sparse=True)
        raw_scales = F.embedding(ids, leaves[f"scales.{tensor}"], sparse=True)
        return locs, torch.distributions.transform_to(SCALE_CONSTRAINT)(raw_scales)

    def initialize(self, settings: SkipGramSettings, device: torch.device) -> list[torch.Tensor]:
        """Create the guide's parameters (same values on every rank); return them unconstrained."""
        generator = torch.Generator().manual_seed(settings.seed)
        shape = (self.vocab_size, self.dim)
        for tensor in ("U", "V"):
            locs = settings.init_std * torch.randn(shape, generator=generator)
            pyro.param(f"locs.{tensor}", locs.to(device))
            pyro.param(f"scales.{tensor}", torch.full(shape, settings.init_scale, device=device),
                       constraint=SCALE_CONSTRAINT)
        return unconstrained_parameters()


def unconstrained_parameters() -> list[torch.Tensor]:
    """The leaf tensors Adam updates, in the order of PARAMETERS."""
    store = pyro.get_param_store()
    return [store.get_param(name).unconstrained() for name in PARAMETERS]


@dataclass
class ResidentCounts:
    """The whole n+ matrix, dense, and the two n- factors, held on the fitting device.

    On a GPU a block is then two gathers instead of a sparse slice on the CPU and a copy: the
    CPU path costs far more than the block's maths once blocks grow past 1000 x 1000.
    """

    positive: torch.Tensor  # V x V float32
    negative_rows: torch.Tensor  # float64, as the CPU path multiplies them
    noise: torch.Tensor

    @classmethod
    def build(cls, counts: CoOccurrences, negative_rows: np.ndarray, noise: np.ndarray,
              device: torch.device) -> ResidentCounts:
        entries = counts.positive.tocoo(copy=True)
        entries.sum_duplicates()
        positive = torch.zeros(counts.vocab_size, counts.vocab_size, dtype=torch.float32, device=device)
        positive[torch.from_numpy(entries.row.astype(np.int64)).to(device),
                 torch.from_numpy(entries.col.astype(np.int64)).to(device)] = (
            torch.from_numpy(entries.data.astype(np.float32)).to(device))
        return cls(positive, torch.from_numpy(negative_rows).to(device), torch.from_numpy(noise).to(device))


def resident_counts_fit(vocab_size: int, device: torch.device) -> bool:
    """Whether the dense V x V counts fit in 70% of the GPU's free memory (never on the CPU).

    V = 100k takes 40 GB: it fits an 80 GB card, leaving room for the blocks and the model.
    """
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return 4 * vocab_size * vocab_size <= 0.7 * free


def draw_block(counts: CoOccurrences, negative_rows: np.ndarray, noise: np.ndarray, shard: np.ndarray,
               world_size: int, batch: int, rng: np.random.Generator, device: torch.device,
               resident: ResidentCounts | None = None) -> Block:
    """A random block: ``batch`` words from this rank's shard and ``batch`` contexts from all words.

    Ranks own disjoint shards of the words (rank r: ids r, r + N, ...), so each step's blocks
    differ across ranks. The words plate has size N x shard size, which makes every rank's
    loss N times its shard's share and the average over ranks an unbiased estimate of the full
    ELBO; with one process it is simply the vocabulary size.
    """
    vocab_size = counts.vocab_size
    rows = shard if batch >= len(shard) else np.sort(rng.choice(shard, batch, replace=False))
    every_word = np.arange(vocab_size)
    cols = every_word if batch >= vocab_size else np.sort(rng.choice(vocab_size, batch, replace=False))
    row_ids, col_ids = torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)
    if resident is None:
        positive = torch.from_numpy(counts.positive[rows][:, cols].toarray().astype(np.float32)).to(device)
        negative = torch.from_numpy(np.outer(negative_rows[rows], noise[cols]).astype(np.float32)).to(device)
    else:  # the same numbers, gathered on the device
        positive = resident.positive.index_select(0, row_ids).index_select(1, col_ids)
        negative = torch.outer(resident.negative_rows[row_ids], resident.noise[col_ids]).float()
    return Block(rows=row_ids, cols=col_ids, positive=positive, negative=negative,
                 n_rows=world_size * len(shard), n_cols=vocab_size)


def _step_seeds(seed: int, rank: int, step: int) -> tuple[np.random.Generator, int]:
    # a fresh stream per (seed, rank, step): resuming from a checkpoint replays the same draws
    state = np.random.SeedSequence([seed, rank, step]).generate_state(2, dtype=np.uint64)
    return np.random.default_rng(int(state[0])), int(state[1] % (1 << 63))


def learning_rate(settings: SkipGramSettings, step: int) -> float:
    """Exponential decay from ``lr`` at step 0 to ``lr * lr_decay`` at the last step.

    >>> learning_rate(SkipGramSettings(lr=0.1, lr_decay=0.01, steps=3), 2)
    0.001
    """
    fraction = step / max(settings.steps - 1, 1)
    return settings.lr * settings.lr_decay ** fraction


def _seed_torch(seed: int, device: torch.device) -> None:
    # the guide's samples come from torch's global generator (torch.manual_seed is slower: it
    # seeds every device type)
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)


# ------------------------------------------------------------------------- checkpoints


def _checkpoint_identity(counts: CoOccurrences, settings: SkipGramSettings) -> dict:
    words = "\n".join(counts.words).encode()
    identity = {
        "vocab_size": counts.vocab_size,
        "vocabulary_sha256": hashlib.sha256(words).hexdigest(),
        "pairs": int(counts.positive.sum()),
        **{name: getattr(settings, name) for name in _MODEL_SETTINGS},
    }
    if counts.options.window_weights != "flat":  # absent when flat: checkpoints from before still resume
        identity["window_weights"] = counts.options.window_weights
    if counts.options.subsample_tokens > 0:  # likewise
        identity["subsample_tokens"] = counts.options.subsample_tokens
    return identity


def save_checkpoint(path: str | os.PathLike, step: int, identity: dict, parameters: list[torch.Tensor],
                    optimizer: torch.optim.Optimizer, elbos: list[float]) -> None:
    """Guide parameters, optimizer state and the ELBO trace, via torch.save of plain tensors and dicts."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "step": step,
        "identity": json.dumps(identity, sort_keys=True),
        "parameters": {name: p.detach().cpu() for name, p in zip(PARAMETERS, parameters, strict=True)},
        "optimizer": optimizer.state_dict(),
        "elbos": torch.tensor(elbos, dtype=torch.float64),
    }
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike, identity: dict) -> dict:
    """A checkpoint's contents (weights_only: no code runs), checked against this fit."""
    source = Path(path)
    if not source.is_file():
        raise BayesCompressError(f"{source}: no checkpoint to resume from")
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise BayesCompressError(f"{source}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise BayesCompressError(f"{source}: not a bayescompress skip-gram checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise BayesCompressError(f"{source}: checkpoint version {state.get('version')} is not supported")
    saved = json.loads(state["identity"])
    for key, value in identity.items():
        if saved.get(key) != value:
            raise BayesCompressError(
                f"{source}: checkpoint was made with {key}={saved.get(key)!r}, this fit has {value!r}; "
                "resume with the same corpus, vocabulary and model settings"
            )
    return state


# ------------------------------------------------------------------------- fitting


@dataclass
class FitResult:
    """What a fit produced: the posterior (on rank 0) and a summary for the user."""

    posterior: Posterior | None
    final_elbo: float
    elbos: list[float]  # the minibatch ELBO estimate of every step
    steps: int
    seconds: float
    world_size: int


def fit_skipgram(counts: CoOccurrences, settings: SkipGramSettings, group: ProcessGroup | None = None,
                 progress: bool = False, resident: bool | None = None) -> FitResult:
    """Fit U and V to ``counts`` by SVI (closed-form KL) with lazy Adam; every rank calls this.

    Gradients are averaged over the ranks of ``group`` (default: this process alone) before
    each step; only rank 0 writes checkpoints and returns the posterior. ``resident`` keeps the
    dense counts on the device (default: on a GPU where they fit; dense estimator only); the fit
    is the same either way. Torch runs ``settings.threads`` threads (restored afterwards).
    """
    with torch_threads(settings.threads):
        return _fit_skipgram(counts, settings, group, progress, resident)


def _fit_skipgram(counts: CoOccurrences, settings: SkipGramSettings, group: ProcessGroup | None,
                  progress: bool, resident: bool | None) -> FitResult:
    from tqdm.auto import tqdm

    settings = settings.resolved(counts.vocab_size)
    refuse_double_subsampling(counts.options, settings)
    if settings.subsample > 0:
        counts = counts.subsampled(settings.subsample)
    group = group or ProcessGroup(device=device_for(settings.device))
    device = group.device
    skipgram = SkipGram(counts.vocab_size, settings.dim, settings.prior_std)
    pyro.clear_param_store()
    parameters = skipgram.initialize(settings, device)
    # lazy Adam: a step moves only the rows in the block, and their moments count their own steps
    optimizer = torch.optim.SparseAdam(parameters, lr=settings.lr)
    identity = _checkpoint_identity(counts, settings)
    start, elbos = 0, []
    if settings.resume:
        state = load_checkpoint(settings.checkpoint, identity)
        with torch.no_grad():
            for name, parameter in zip(PARAMETERS, parameters, strict=True):
                parameter.copy_(state["parameters"][name].to(device))
        optimizer.load_state_dict(state["optimizer"])
        start, elbos = int(state["step"]), state["elbos"].tolist()
        if start > settings.steps:
            raise BayesCompressError(f"{settings.checkpoint}: checkpoint is at step {start}, beyond "
                                     f"--steps {settings.steps}")
    group.broadcast_(parameters)

    negative_rows, noise = counts.negative_factors(settings.negatives)
    pairs = max(float(counts.positive.sum() + negative_rows.sum()), 1.0)  # per-pair figures
    if settings.estimator == "pairs":
        sampler = PairSampler(counts, settings.negatives, settings.batch, settings.noise_contexts,
                              settings.pair_power, device, stratified=settings.stratified)
        pool = normal_pool(settings.batch, settings.noise_contexts, settings.dim, settings.seed, device)
        kernels = StepKernels(compile=settings.compile and device.type == "cpu")

        def step_gradients(rng: np.random.Generator) -> torch.Tensor:
            batch = sampler.draw(rng)
            word_normals, context_normals = sampler.normals(pool, rng, settings.dim)
            loss, gradients = pair_gradients(parameters, batch, word_normals, context_normals,
                                             settings.prior_std, sampler.unreached_words,
                                             sampler.unreached_contexts, kernels)
            for parameter, gradient in zip(parameters, gradients, strict=True):
                parameter.grad = gradient
            return torch.tensor(loss)

        def update() -> None:
            lazy_adam_step(optimizer)
        pairs_per_step = sampler.batch  # positive pairs, each scored against the M shared negatives
    else:
        kernels = None
        shard = np.arange(group.rank, counts.vocab_size, group.world_size)
        if resident is None:
            resident = resident_counts_fit(counts.vocab_size, device)
        on_device = ResidentCounts.build(counts, negative_rows, noise, device) if resident else None
        elbo = pyro.infer.TraceMeanField_ELBO()

        def step_gradients(rng: np.random.Generator) -> torch.Tensor:
            block = draw_block(counts, negative_rows, noise, shard, group.world_size, settings.batch,
                               rng, device, on_device)
            loss = elbo.differentiable_loss(skipgram.model, skipgram.guide, block)
            loss.backward()
            return loss

        def update() -> None:
            optimizer.step()
        pairs_per_step = min(settings.batch, len(shard)) * min(settings.batch, counts.vocab_size)
    began = time.perf_counter()
    # argument checks cost more than the maths here; the inputs are built by draw_block
    with pyro.validation_enabled(False), tqdm(
            total=settings.steps, initial=start, desc="fitting skip-gram", unit=" steps",
            disable=None if (progress and group.is_main) else True) as bar:
        for step in range(start, settings.steps):
            rng, torch_seed = _step_seeds(settings.seed, group.rank, step)
            _seed_torch(torch_seed, device)
            for group_settings in optimizer.param_groups:
                group_settings["lr"] = learning_rate(settings, step)
            optimizer.zero_grad(set_to_none=True)
            loss = step_gradients(rng)
            elbos.append(-group.average_gradients(parameters, loss))
            update()
            bar.update(1)
            if step % 10 == 0 or step == settings.steps - 1:
                rate = (step + 1 - start) * pairs_per_step / max(time.perf_counter() - began, 1e-9)
                bar.set_postfix_str(f"ELBO {elbos[-1]:.4g} ({elbos[-1] / pairs:.4f}/pair), "
                                    f"{rate:.3g} pairs/s")
            done = step + 1
            if settings.checkpoint and group.is_main and (done % settings.checkpoint_every == 0
                                                          or done == settings.steps):
                save_checkpoint(settings.checkpoint, done, identity, parameters, optimizer, elbos)
    seconds = time.perf_counter() - began
    final_elbo = float(np.mean(elbos[-max(1, min(100, len(elbos) // 10)):])) if elbos else float("nan")
    posterior = None
    if group.is_main:
        posterior = posterior_from_guide(counts)
        posterior.metadata = {
            "model": "bayesian-skipgram",
            "settings": {k: v for k, v in dataclasses.asdict(settings).items()
                         if k not in ("checkpoint", "resume", "checkpoint_every", "threads", "compile")},
            "corpus": {**counts.source, **dataclasses.asdict(counts.options),
                       "tokens": counts.n_tokens, "documents": counts.n_documents,
                       "positive_pairs": int(counts.positive.sum())},
            "final_elbo": final_elbo,
            "final_elbo_per_pair": final_elbo / pairs,
            "elbo_estimate": "mean of the last minibatch ELBO estimates (full-data scale)",
            "torch_threads": torch.get_num_threads(),
            "compiled_step": bool(kernels and kernels.compiled),
            "world_size": group.world_size,
            "fit_seconds": seconds,
        }
    return FitResult(posterior, final_elbo, elbos, settings.steps, seconds, group.world_size)


def posterior_from_guide(counts: CoOccurrences) -> Posterior:
    """The guide in Pyro's parameter store as a posterior: tensors U and V, vocabulary and counts."""
    tensors = {}
    for name in ("U", "V"):
        means = pyro.param(f"locs.{name}").detach().cpu().numpy().astype(np.float32)
        stds = pyro.param(f"scales.{name}").detach().cpu().numpy().astype(np.float32)
        tensors[name] = TensorPosterior(means, stds)
    vocab = Vocabulary(list(counts.words), counts.word_counts.copy())
    return Posterior(tensors, kind="embedding", vocab=vocab)


def log_likelihood_per_pair(counts: CoOccurrences, word_vectors: np.ndarray, context_vectors: np.ndarray,
                            negatives: int, rows_per_block: int = 1024) -> float:
    """Mean over all (n+ + n-) pairs of the log-likelihood at fixed vectors (e.g. posterior means).

    Computed exactly over the whole vocabulary in row blocks, so memory stays at a block.
    """
    negative_rows, noise = counts.negative_factors(negatives)
    total = 0.0
    contexts = torch.from_numpy(np.asarray(context_vectors, dtype=np.float64))
    noise_t = torch.from_numpy(noise)
    for start in range(0, counts.vocab_size, rows_per_block):
        stop = min(start + rows_per_block, counts.vocab_size)
        scores = torch.from_numpy(np.asarray(word_vectors[start:stop], dtype=np.float64)) @ contexts.T
        positive = torch.from_numpy(counts.positive[start:stop].toarray().astype(np.float64))
        negative = torch.from_numpy(negative_rows[start:stop])[:, None] * noise_t[None, :]
        total += float((positive * F.logsigmoid(scores) + negative * F.logsigmoid(-scores)).sum())
    return total / float(counts.positive.sum() + negative_rows.sum())


def refuse_double_subsampling(options: CorpusOptions, settings: SkipGramSettings) -> None:
    """Counts whose tokens were subsampled (--subsample-tokens) must not be thinned again per pair."""
    if options.subsample_tokens > 0 and settings.subsample > 0:
        raise BayesCompressError("--subsample and --subsample-tokens both thin frequent words: choose one")


def fit_skipgram_corpus(corpus: str | os.PathLike, output: str | os.PathLike, corpus_options: CorpusOptions,
                        settings: SkipGramSettings, cache_dir: str | os.PathLike | None = None,
                        use_cache: bool = True, overwrite: bool = False, progress: bool = True) -> FitResult:
    """Count (or load cached counts of) a corpus, fit the skip-gram model, write the posterior file.

    Under ``torchrun`` every rank calls this; rank 0 counts first (the others then read its
    cache), all ranks train, and only rank 0 writes ``output`` and checkpoints.
    """
    check_output_path(output, overwrite=overwrite, inputs=(corpus,))
    refuse_double_subsampling(corpus_options, settings)  # before minutes of counting
    if settings.checkpoint:
        if Path(settings.checkpoint).resolve() in (Path(output).resolve(), Path(corpus).resolve()):
            raise BayesCompressError(f"{settings.checkpoint}: the checkpoint must be a file of its own")
        if not settings.resume and Path(settings.checkpoint).exists() and not overwrite:
            raise BayesCompressError(f"{settings.checkpoint}: already exists; pass --resume to continue "
                                     "from it or --force to overwrite it")
    with process_group(settings.device) as group:
        counts = group.rank0_first(lambda: count_corpus(
            corpus, corpus_options, cache_dir=cache_dir, use_cache=use_cache,
            progress=progress and group.is_main))
        result = fit_skipgram(counts, settings, group, progress=progress)
        if group.is_main:
            result.posterior.metadata["corpus"]["counts_from_cache"] = counts.from_cache
            result.posterior.save(output)
    return result
