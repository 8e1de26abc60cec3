"""Whole-process speed and memory of pack and unpack from 10^7 to 10^9 latents (not run by CI).

For each size, in one run: a generated posterior (rows x 100, float32, written chunk by chunk so
that its size never has to fit in memory, kept in --data-dir for the next run), then as separate
processes: the I/O floor (read the posterior, write its means as raw float32), ``bayescompress
pack --lambda L``, ``bayescompress unpack`` to .npz.  Each prints wall seconds, latents per second,
peak RSS (os.wait4 of that process); the archive's bits per latent and its stream's bits over the
symbols' empirical entropy (symbols decoded again afterwards, not timed); throughput relative to
the smallest size.  Then Algorithm 1 against the paper's brute-force search (identical choices).

    python benchmarks/bench_pack.py [--latents 1e7,1e8,1e9] [--data-dir DIR] [--json F] [--csv F]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import describe_machine  # benchmarks/machine.py, beside this script

from bayescompress.posterior import FORMAT_NAME, FORMAT_VERSION
from bayescompress.vbq import GaussianPrior, choose_code_points, code_point_values, symbol_rates

DIM = 100
ROWS_PER_BLOCK = 1 << 17  # generated and written at a time: 13 M latents, 100 MB
REFERENCE_MAX_RATE = 11  # the reference code's max_codepoint_length = 10, plus the final 1 bit
REFERENCE_CHUNK = 100_000
BIN = Path(sys.executable).parent

IO_FLOOR = """
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as h5, open(sys.argv[2], "wb") as out:
    mean, std = h5["tensors/W/mean"], h5["tensors/W/std"]
    for start in range(0, mean.shape[0], int(sys.argv[3])):
        stop = start + int(sys.argv[3])
        block, _ = mean[start:stop], std[start:stop]
        out.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
"""


def generate_posterior(path: Path, rows: int, seed: int = 0) -> None:
    """Means N(0, 0.3^2), stds log-uniform over [0.003, 0.3], as synthetic.generated_posterior, but
    written ROWS_PER_BLOCK rows at a time."""
    import h5py

    tmp = path.with_suffix(".partial")
    chunk_rows = max(1, (1 << 18) // DIM)
    with h5py.File(tmp, "w") as h5:
        h5.attrs["format"] = FORMAT_NAME
        h5.attrs["format_version"] = FORMAT_VERSION
        h5.attrs["kind"] = "generic"
        h5.attrs["metadata"] = json.dumps({"source": "bench_pack", "seed": seed})
        group = h5.create_group("tensors")
        group.attrs["order"] = json.dumps(["W"])
        tensor = group.create_group("W")
        mean = tensor.create_dataset("mean", (rows, DIM), "f4", chunks=(min(chunk_rows, rows), DIM))
        std = tensor.create_dataset("std", (rows, DIM), "f4", chunks=(min(chunk_rows, rows), DIM))
        for block, start in enumerate(range(0, rows, ROWS_PER_BLOCK)):
            stop = min(rows, start + ROWS_PER_BLOCK)
            rng = np.random.default_rng([seed, block])
            mean[start:stop] = (0.3 * rng.standard_normal((stop - start, DIM))).astype(np.float32)
            std[start:stop] = (0.3 * np.exp(rng.uniform(np.log(0.01), 0.0, (stop - start, DIM)))).astype(
                np.float32)
    tmp.rename(path)


def run_process(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one process, which must succeed."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0


def median_run(command: list[str], repeats: int) -> tuple[float, float]:
    runs = [run_process(command) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def entropy_of_archive(path: Path) -> tuple[float, int, int]:
    """Empirical entropy (bits) of the archive's symbols per tensor, its stream bytes (tables
    excluded) and its table bytes: symbols decoded segment by segment, counted exactly."""
    from bayescompress.archive import open_archive
    from bayescompress.coding import symbol_counts
    from bayescompress.segments import decode_segment, segment_pieces
    from bayescompress.streamunpack import segment_layout

    archive = open_archive(path)
    sizes = [int(np.prod(e["shape"])) for e in archive.header["tensors"]]
    latents, lengths = segment_layout(archive, sizes)
    offset = archive.spans["stream"][0]
    tallies: list[list] = [[] for _ in sizes]
    for number, pieces in enumerate(segment_pieces(sizes, latents)):
        table_length, stream_length = (int(x) for x in lengths[number])
        data = archive.read_range(offset, table_length + stream_length)
        offset += table_length + stream_length
        for piece, symbols in zip(pieces, decode_segment(data, table_length, [p.size for p in pieces]),
                                  strict=True):
            tallies[piece.tensor].append(symbol_counts(symbols))
    bits = 0.0
    for parts in tallies:
        unique, inverse = np.unique(np.concatenate([u for u, _ in parts]), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([c for _, c in parts]))
        total = counts.sum()
        bits += float(total * np.log2(total) - np.sum(counts * np.log2(counts)))
    return bits, int(lengths[:, 1].sum()), int(lengths[:, 0].sum())


def brute_force_reference(means, stds, lam, prior, max_rate=REFERENCE_MAX_RATE):
    """The reference code's search (mandt-lab/vbq, compress-trained-word-embeddings.ipynb): score
    every code point up to rate 11 for chunks of 10^5 latents and take the argmin."""
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


def reference_comparison(source: Path, latents: int) -> dict:
    """Algorithm 1 against the brute force on the first ``latents`` latents (same choices)."""
    import h5py

    with h5py.File(source, "r") as h5:
        rows = -(-latents // DIM)
        means = h5["tensors/W/mean"][:rows].ravel()[:latents].astype(np.float64)
        stds = h5["tensors/W/std"][:rows].ravel()[:latents].astype(np.float64)
    prior, lam = GaussianPrior.empirical(means), 30.0
    start = time.perf_counter()
    brute = brute_force_reference(means, stds, lam, prior)
    brute_s = time.perf_counter() - start
    start = time.perf_counter()
    fast = choose_code_points(means, stds, lam, prior, REFERENCE_MAX_RATE)
    fast_s = time.perf_counter() - start
    assert np.array_equal(brute, fast), "Algorithm 1 disagrees with the brute-force search"
    return {"latents": latents, "lambda": lam, "brute_force_s": brute_s, "algorithm1_s": fast_s,
            "speedup": brute_s / fast_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latents", default="1e7,1e8,1e9", help="model sizes (multiples of 100)")
    parser.add_argument("--data-dir", default="/work/bench-data", help="where posteriors are kept")
    parser.add_argument("--lam", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3, help="runs per process below 10^9 latents")
    parser.add_argument("--extra", default="", help="extra pack/unpack options, e.g. '--workers 1'")
    parser.add_argument("--reference-latents", type=int, default=200_000)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--csv", help="also write the table's rows to this CSV file")
    args = parser.parse_args()

    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    sizes = [int(float(x)) for x in args.latents.split(",")]
    print(f"machine: {describe_machine()}; load average before: {os.getloadavg()[0]:.2f}")
    rows_out = []
    for n in sizes:
        source = data / f"posterior-{n:.0e}.h5".replace("+", "")
        if not source.exists():
            print(f"generating {source} ...", flush=True)
            generate_posterior(source, n // DIM)
        repeats = 1 if n >= 10**9 else args.repeats
        with tempfile.TemporaryDirectory(dir=data) as folder:
            work = Path(folder)
            floor_s, floor_rss = median_run(
                [sys.executable, "-c", IO_FLOOR, str(source), str(work / "means.f32"), str(ROWS_PER_BLOCK)],
                repeats)
            (work / "means.f32").unlink()
            archive = work / "a.bcz"
            pack_s, pack_rss = median_run(
                [str(BIN / "bayescompress"), "pack", str(source), "--lambda", str(args.lam),
                 "-o", str(archive), "--force", *args.extra.split()], repeats)
            unpack_s, unpack_rss = median_run(
                [str(BIN / "bayescompress"), "unpack", str(archive), "-o", str(work / "v.npz"), "--force",
                 *args.extra.split()], repeats)
            entropy, stream_bytes, table_bytes = entropy_of_archive(archive)
            total = archive.stat().st_size
        rows_out.append({
            "latents": n, "floor_s": floor_s, "floor_rss_mib": floor_rss,
            "pack_s": pack_s, "pack_rss_mib": pack_rss, "unpack_s": unpack_s, "unpack_rss_mib": unpack_rss,
            "pack_latents_per_s": n / pack_s, "unpack_latents_per_s": n / unpack_s,
            "bits_per_latent": 8 * total / n, "file_bytes": total, "table_bytes": table_bytes,
            "stream_over_entropy_pct": 100 * (8 * stream_bytes / entropy - 1),
            "file_over_entropy_pct": 100 * (8 * total / entropy - 1),
            "load_after": os.getloadavg()[0],
        })
        print(f"  {n:.0e} done: pack {pack_s:.2f} s, unpack {unpack_s:.2f} s", flush=True)

    base = rows_out[0]
    print(f"\nlambda {args.lam:g}, posterior rows x {DIM} float32, whole processes "
          f"(median of {args.repeats} below 10^9, one run at 10^9)\n")
    columns = ["latents", "I/O floor s", "pack s", "pack latents/s", "pack vs 1st size", "pack / floor",
               "pack peak RSS MiB", "unpack s", "unpack latents/s", "unpack peak RSS MiB", "bits/latent",
               "stream over entropy", "load"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows_out:
        relative = r["pack_latents_per_s"] / base["pack_latents_per_s"]
        cells = [f"{r['latents']:.0e}", f"{r['floor_s']:.2f}", f"{r['pack_s']:.2f}",
                 f"{r['pack_latents_per_s']:.3g}", f"{relative:.2f}", f"{r['pack_s'] / r['floor_s']:.1f}",
                 f"{r['pack_rss_mib']:.0f}", f"{r['unpack_s']:.2f}", f"{r['unpack_latents_per_s']:.3g}",
                 f"{r['unpack_rss_mib']:.0f}", f"{r['bits_per_latent']:.4f}",
                 f"{r['stream_over_entropy_pct']:+.3f}%", f"{r['load_after']:.1f}"]
        print("| " + " | ".join(cells) + " |")
    reference = reference_comparison(data / f"posterior-{sizes[0]:.0e}.h5".replace("+", ""),
                                     args.reference_latents)
    print(f"\nAlgorithm 1 vs the reference brute force (lambda {reference['lambda']:g}, rates <= "
          f"{REFERENCE_MAX_RATE}, {reference['latents']} latents, identical choices): brute force "
          f"{reference['brute_force_s']:.2f} s, Algorithm 1 {reference['algorithm1_s']:.3f} s, "
          f"x{reference['speedup']:.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": describe_machine(), "lambda": args.lam,
                                               "rows": rows_out, "reference": reference}, indent=2))
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows_out[0]))
            writer.writeheader()
            writer.writerows(rows_out)


if __name__ == "__main__":
    main()
