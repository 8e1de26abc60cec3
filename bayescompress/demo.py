"""The README's main job: a posterior through pack, unpack and info at several lambdas, as a table.

Until a fitted model is at hand this uses a generated posterior whose stds span two orders of
magnitude, so that VBQ's use of uncertainty is visible in the numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .posterior import Posterior, TensorPosterior

DEMO_LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0)


def generated_posterior(rows: int = 20000, dim: int = 50, seed: int = 0) -> Posterior:
    """Gaussian means with stds log-uniform over [0.01, 1] x the means' scale."""
    rng = np.random.default_rng(seed)
    means = (0.3 * rng.standard_normal((rows, dim))).astype(np.float32)
    stds = (0.3 * np.exp(rng.uniform(np.log(0.01), 0.0, (rows, dim)))).astype(np.float32)
    return Posterior({"W": TensorPosterior(means, stds)}, kind="generic",
                     metadata={"source": "generated", "seed": seed})


def run_demo(out_dir: str | Path, seed: int = 0, lambdas=DEMO_LAMBDAS) -> list[dict]:
    from .packing import archive_info, pack, unpack

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    posterior = generated_posterior(seed=seed)
    posterior.save(out / "posterior.h5")
    tensor = posterior.tensors["W"]
    rows = []
    for lam in lambdas:
        archive = out / f"lambda-{lam:g}.bcz"
        pack(out / "posterior.h5", archive, lam=lam, overwrite=True)
        values = unpack(archive).tensors["W"]
        info = archive_info(archive)
        error = values.astype(np.float64) - tensor.mean
        rows.append({
            "lambda": lam,
            "bits_per_dim": info["bits_per_dim"],
            "file_bytes": info["total_bytes"],
            "rmse": float(np.sqrt(np.mean(np.square(error)))),
            "rms_error_in_stds": float(np.sqrt(np.mean(np.square(error / tensor.std)))),
        })
    return rows


def format_demo_table(rows: list[dict]) -> str:
    lines = [f"{'lambda':>8} {'bits/dim':>9} {'file bytes':>11} {'RMSE':>9} {'RMS error / std':>16}"]
    for row in rows:
        lines.append(f"{row['lambda']:>8g} {row['bits_per_dim']:>9.3f} {row['file_bytes']:>11} "
                     f"{row['rmse']:>9.4f} {row['rms_error_in_stds']:>16.3f}")
    return "\n".join(lines)
