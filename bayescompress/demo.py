"""The README's main job: fit word embeddings on the bundled Wikipedia sample, pack them at
several lambdas, unpack, and score analogies, beside a uniform grid packed to the same file size.

Everything runs on data that ships with gensim, so it needs no download.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEMO_CORPUS = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
DEMO_LAMBDAS = (0.03, 0.3, 1.0, 3.0, 10.0, 30.0)
UNIFORM_OFFSETS = ("zero", "half")


@dataclass
class DemoRow:
    """One archive of the demo: its real size, and analogy scores of VBQ and of uniform."""

    lam: float
    file_bytes: int
    side_bytes: int
    n_latents: int
    hits_at_10: float
    uniform_bytes: int
    uniform_hits_at_10: float

    @property
    def bits_per_dim(self) -> float:
        return 8.0 * self.file_bytes / self.n_latents

    @property
    def bits_per_dim_without_side(self) -> float:
        return 8.0 * (self.file_bytes - self.side_bytes) / self.n_latents


@dataclass
class DemoReport:
    posterior: Path
    refitted: bool
    uncompressed_hits_at_10: float
    coverage: float
    rows: list[DemoRow] = field(default_factory=list)
    word2vec_file: Path | None = None
    word2vec_words: int = 0
    word2vec_zero_rows: int = 0  # all-zero vectors left out of the word2vec file


def demo_corpus() -> str:
    from gensim.test.utils import datapath

    return datapath(DEMO_CORPUS)


def run_demo(out_dir: str | Path, seed: int = 0, lambdas=DEMO_LAMBDAS, refit: bool = False) -> DemoReport:
    """Fit (or reuse) the demo posterior, then pack / unpack / evaluate at each lambda."""
    from gensim.models import KeyedVectors

    from .errors import BayesCompressError
    from .evaluate.analogy import evaluate_analogies
    from .export import write_word2vec, zero_word_vectors
    from .packing import pack, unpack
    from .posterior import Posterior
    from .ratecontrol import pack_to_target

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    posterior_path = out / "posterior.h5"
    refitted = refit or not posterior_path.exists()
    if refitted:
        from .fit.corpus import CorpusOptions
        from .fit.skipgram import SkipGramSettings, fit_skipgram_corpus

        fit_skipgram_corpus(demo_corpus(), posterior_path, CorpusOptions(), SkipGramSettings(seed=seed),
                            overwrite=True)
    posterior = Posterior.load(posterior_path)
    words = posterior.vocab.words
    baseline = evaluate_analogies(posterior.tensors["U"].mean, words)
    report = DemoReport(posterior_path, refitted, baseline.hits_at_10, baseline.coverage)

    for lam in lambdas:
        archive = out / f"vbq-lambda-{lam:g}.bcz"
        packed = pack(posterior, archive, lam=lam, tensors=["U"], overwrite=True)
        hits = evaluate_analogies(unpack(archive).tensors["U"], words).hits_at_10
        # the baseline gets its best grid offset at the same file size
        best_bytes, best_hits = 0, -1.0
        for offset in UNIFORM_OFFSETS:
            target = out / f"uniform-{offset}-lambda-{lam:g}.bcz"
            try:
                uniform = pack_to_target(posterior, target, method="uniform", tensors=["U"], offset=offset,
                                         max_bytes=packed.total_bytes, overwrite=True)
            except BayesCompressError:  # this offset cannot get that small (a half-step grid has no 0)
                continue
            uniform_hits = evaluate_analogies(unpack(target).tensors["U"], words).hits_at_10
            if uniform_hits > best_hits:
                best_bytes, best_hits = uniform.pack.total_bytes, uniform_hits
        report.rows.append(DemoRow(lam, packed.total_bytes, packed.side_bytes, packed.n_latents, hits,
                                   best_bytes, best_hits))

    middle = lambdas[len(lambdas) // 2]
    report.word2vec_file = out / f"vbq-lambda-{middle:g}.txt"
    middle_model = unpack(out / f"vbq-lambda-{middle:g}.bcz")
    write_word2vec(middle_model, report.word2vec_file)
    report.word2vec_zero_rows = zero_word_vectors(middle_model)[0]
    report.word2vec_words = len(KeyedVectors.load_word2vec_format(str(report.word2vec_file)))
    return report


def format_demo_report(report: DemoReport) -> str:
    lines = [
        f"posterior: {report.posterior} "
        f"({'fitted now' if report.refitted else 'reused; --refit to fit again'})",
        f"analogy questions covered by the vocabulary: {report.coverage:.1%}; Hits@10 counts ties "
        "against the answer",
        "",
        f"{'lambda':>8} {'bits/dim':>9} {'w/o side':>9} {'file bytes':>11} {'Hits@10 VBQ':>12} "
        f"{'Hits@10 uniform':>16} {'uniform bytes':>14}",
        f"{'-':>8} {32.0:>9.3f} {'':>9} {'':>11} {report.uncompressed_hits_at_10:>12.4f} "
        f"{'(uncompressed float32)':>31}",
    ]
    for row in report.rows:
        lines.append(
            f"{row.lam:>8g} {row.bits_per_dim:>9.3f} {row.bits_per_dim_without_side:>9.3f} "
            f"{row.file_bytes:>11} {row.hits_at_10:>12.4f} {row.uniform_hits_at_10:>16.4f} "
            f"{row.uniform_bytes:>14}"
        )
    lines += [
        "",
        f"bits/dim = 8 x real file bytes / {report.rows[0].n_latents if report.rows else 0:,} latents "
        "of U (the vocabulary travels as side data);",
        "uniform = the same posterior means on a uniform grid, range coded, packed to at most VBQ's file",
        "size (best of two grid offsets).",
    ]
    if report.word2vec_file is not None:
        lines.append(f"unpacked {report.word2vec_file} in word2vec format; gensim loaded "
                     f"{report.word2vec_words} word vectors from it")
        if report.word2vec_zero_rows:
            lines.append(f"({report.word2vec_zero_rows} words whose vector VBQ sent to all zeros are "
                         "left out: unpack --zero-rows keep keeps them)")
    return "\n".join(lines)
