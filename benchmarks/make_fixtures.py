"""Write tests/fixtures/vN-*.bcz archives of the versions written now and the values they decode to.

    .venv/bin/python benchmarks/make_fixtures.py

Fixtures of a released version are never rewritten: tests decode them on every run, so a reader
that stops decoding an old archive bit for bit fails there.  Run this once per new version.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from bayescompress.archive import open_archive
from bayescompress.packing import StreamOptions, pack, unpack
from bayescompress.posterior import Posterior, TensorPosterior, Vocabulary

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def fixture_posteriors() -> dict[str, tuple[Posterior, dict]]:
    """Embedding, float64 at tiny lambda (escapes), heavy-tailed (t2) and byte-coder posteriors."""
    rng = np.random.default_rng(2026)
    means = (0.3 * rng.standard_normal((64, 4))).astype(np.float32)
    stds = (0.3 * np.exp(rng.uniform(np.log(0.01), 0.0, (64, 4)))).astype(np.float32)
    embedding = Posterior({"U": TensorPosterior(means, stds), "V": TensorPosterior(means[::-1].copy(), stds)},
                          kind="embedding", vocab=Vocabulary([f"w{i}" for i in range(64)],
                                                            np.arange(64, 0, -1)))
    wide = Posterior({
        "U": TensorPosterior(rng.normal(size=(50, 3)) * 1e3, np.exp(rng.uniform(-8, 0, (50, 3)))),
        "b": TensorPosterior(rng.normal(size=3), np.full(3, 1e-4)),
    })
    small = Posterior({
        "U": TensorPosterior(rng.normal(size=(40, 4)).astype(np.float32), np.full((40, 4), 0.05, np.float32)),
        "b": TensorPosterior(rng.normal(size=4).astype(np.float32), np.full(4, 0.1, np.float32)),
    })
    # heavy tails (Student-t with 1.5 degrees of freedom) and one outlier at 10^3 rms: the t2 prior
    heavy_means = rng.standard_t(1.5, size=(30, 5))
    heavy_means[0, 0] = 1e3 * np.sqrt(np.mean(np.square(heavy_means)))
    heavy = Posterior({"W": TensorPosterior(heavy_means, np.exp(rng.uniform(-5, -1, (30, 5))))})
    # version 4: a network with a model spec and metadata (binary JSON side data)
    from bayescompress.networks.model_spec import mlp_spec

    spec = mlp_spec([5, 3, 2], task="classification", classes=["no", "yes"],
                    input_mean=rng.uniform(0, 9, 5).tolist(), input_std=rng.uniform(1, 3, 5).tolist(),
                    data={"path": "digits", "test_fraction": 0.2, "seed": 0})
    layers = {f"layers.{i}.{part}": TensorPosterior(rng.normal(size=shape).astype(np.float32),
                                                    np.full(shape, 0.2, np.float32))
              for i, (fan_in, fan_out) in enumerate(((5, 3), (3, 2)))
              for part, shape in (("weight", (fan_out, fan_in)), ("bias", (fan_out,)))}
    network = Posterior(layers, kind="network", model_spec=spec,
                        metadata={"fit": {"elbo": -12.345678901234567, "steps": 100},
                                  "note": "\u00e9t\u00e9"})
    return {"vbq": (embedding, {"lam": 0.05}), "vbq-network": (network, {"lam": 0.1}),
            "vbq-escapes": (wide, {"lam": 1e-7}),
            "vbq-t2": (heavy, {"lam": 0.01, "prior": "t2"}),
            "vbq-lzma": (small, {"lam": 0.05, "coder": "lzma"}),
            # version 3: segments of 96 latents, so a tensor spans several and one holds two tensors
            "vbq-segments": (wide, {"lam": 1e-4, "streaming": StreamOptions(segment_latents=96)})}


def main() -> int:
    for name, (posterior, options) in fixture_posteriors().items():
        scratch = FIXTURES / f".{name}.bcz"
        pack(posterior, scratch, overwrite=True, **options)
        version = open_archive(scratch).version  # the byte coders still write version 2
        path = FIXTURES / f"v{version}-{name}.bcz"
        if path.exists():
            scratch.unlink()
            print(f"{path} exists; fixtures of a version are written once")
            continue
        scratch.rename(path)
        np.savez(path.with_suffix(".npz"), **unpack(path).tensors)
        print(f"wrote {path} ({path.stat().st_size} bytes) and {path.with_suffix('.npz').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
