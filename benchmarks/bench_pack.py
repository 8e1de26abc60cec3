"""Speed and coding overhead of pack / unpack on a 10^7-latent posterior (not run by CI).

Measures, in one run: pack and unpack wall time (file to file), latents per second, archive and
stream bits over the empirical entropy of the symbols, and the speed-up of Algorithm 1 over the
brute-force search of the paper's reference code (mandt-lab/vbq, notebook
compress-trained-word-embeddings.ipynb: every code point up to 10 bits beyond the leading one,
i.e. rate 11 here, scored for chunks of 10^5 latents and argmin'd).

    python benchmarks/bench_pack.py [--rows 100000] [--dim 100] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import describe_machine  # benchmarks/machine.py, beside this script

from bayescompress.packing import pack, unpack
from bayescompress.synthetic import generated_posterior
from bayescompress.vbq import GaussianPrior, choose_code_points, code_point_values, symbol_rates

REFERENCE_MAX_RATE = 11  # the reference code's max_codepoint_length = 10, plus the final 1 bit
REFERENCE_CHUNK = 100_000


def brute_force_reference(means, stds, lam, prior, max_rate=REFERENCE_MAX_RATE):
    """The reference code's search: score every code point for every latent, take the argmin."""
    symbols_all = np.arange(1, 1 << max_rate, dtype=np.int64)
    points = code_point_values(symbols_all, prior)
    lengths = symbol_rates(symbols_all).astype(np.float64)
    chosen = np.empty(means.size, dtype=np.int64)
    for start in range(0, means.size, REFERENCE_CHUNK):
        mu = means[start:start + REFERENCE_CHUNK, None]
        penalty = (2 * lam) * np.square(stds[start:start + REFERENCE_CHUNK, None]) * lengths[None, :]
        scores = np.square(points[None, :] - mu) + penalty
        chosen[start:start + REFERENCE_CHUNK] = symbols_all[np.argmin(scores, axis=1)]
    return chosen


def timed(function, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lambdas", default="3000,300,30,3")
    parser.add_argument("--reference-latents", type=int, default=200_000,
                        help="latents timed with the brute-force search (it is extrapolated)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    posterior = generated_posterior(args.rows, args.dim)
    n = posterior.n_latents
    tensor = posterior.tensors["W"]
    print(f"machine: {describe_machine()}")
    print(f"posterior: {args.rows} x {args.dim} = {n} latents, float32\n")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "posterior.h5"
        posterior.save(source)
        for lam in [float(x) for x in args.lambdas.split(",")]:
            target = Path(folder) / "a.bcz"
            pack_time, result = timed(
                lambda target=target, lam=lam: pack(source, target, lam=lam, overwrite=True), args.repeats)
            unpack_time, unpacked = timed(lambda target=target: unpack(target), args.repeats)
            assert unpacked.tensors["W"].tobytes() == result.values["W"].tobytes()
            rows.append({
                "lambda": lam,
                "bits_per_dim": result.bits_per_dim,
                "file_bytes": result.total_bytes,
                "stream_bytes": result.stream_bytes,
                "header_bytes": result.header_bytes,
                "table_bytes": result.table_bytes,
                "entropy_bits": result.entropy_bits,
                "stream_overhead_pct": 100 * (8 * result.stream_bytes / result.entropy_bits - 1),
                "file_overhead_pct": 100 * (8 * result.total_bytes / result.entropy_bits - 1),
                "pack_s": pack_time,
                "unpack_s": unpack_time,
                "pack_latents_per_s": n / pack_time,
                "unpack_latents_per_s": n / unpack_time,
            })

    print("| lambda | bits/dim (file) | file bytes | table bytes | stream vs entropy | file vs entropy "
          "| pack s | unpack s | pack latents/s | unpack latents/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['lambda']:g} | {r['bits_per_dim']:.4f} | {r['file_bytes']} | {r['table_bytes']} "
              f"| {r['stream_overhead_pct']:+.4f}% | {r['file_overhead_pct']:+.4f}% | {r['pack_s']:.2f} "
              f"| {r['unpack_s']:.2f} | {r['pack_latents_per_s']:.3g} | {r['unpack_latents_per_s']:.3g} |")

    # Algorithm 1 against the reference brute force, same search space (rates <= 11), same latents
    k = min(args.reference_latents, n)
    means = tensor.mean.ravel()[:k].astype(np.float64)
    stds = tensor.std.ravel()[:k].astype(np.float64)
    prior = GaussianPrior.empirical(tensor.mean)
    lam = 30.0
    brute_time, brute = timed(lambda: brute_force_reference(means, stds, lam, prior), 1)
    fast_time, fast = timed(lambda: choose_code_points(means, stds, lam, prior, REFERENCE_MAX_RATE),
                            args.repeats)
    full_time, _ = timed(lambda: choose_code_points(tensor.mean, tensor.std, lam, prior), args.repeats)
    assert np.array_equal(brute, fast), "Algorithm 1 disagrees with the brute-force search"
    reference = {
        "latents": k,
        "brute_force_s": brute_time,
        "algorithm1_s": fast_time,
        "speedup": brute_time / fast_time,
        "brute_force_extrapolated_s_for_all": brute_time * n / k,
        "algorithm1_all_latents_all_rates_s": full_time,
    }
    print(f"\nAlgorithm 1 vs the reference brute force (lambda {lam:g}, rates <= {REFERENCE_MAX_RATE}, "
          f"{k} latents, identical choices): brute force {brute_time:.2f} s, Algorithm 1 "
          f"{fast_time:.3f} s, speed-up x{reference['speedup']:.0f}; brute force extrapolated to "
          f"{n} latents: {reference['brute_force_extrapolated_s_for_all']:.0f} s; Algorithm 1 on all "
          f"{n} latents with rates up to 53: {full_time:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": describe_machine(), "latents": n, "rows": rows,
                                               "reference": reference}, indent=2))


if __name__ == "__main__":
    main()
