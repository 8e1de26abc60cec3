"""Bytes of a VBQ archive by part (header + tables, side data, stream) for the given posteriors and
lambdas: run under two checkouts to compare format versions on real networks.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/archive_bytes_by_part.py POSTERIOR.h5 ... --label v4
    (cd OLD_CHECKOUT && PYTHONPATH=. python benchmarks/archive_bytes_by_part.py ... --label v3)

docs/results/bnn/archive-bytes-real-networks.csv holds both runs on fitted networks (copies of issue
12's k-fold posteriors: breast_cancer and mnist5k fold 0, Laplace and fit bnn; a 2000-step digits fit).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bayescompress.archive import FORMAT_VERSION
from bayescompress.packing import pack
from bayescompress.posterior import Posterior


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("posteriors", nargs="+")
    parser.add_argument("--lambdas", default="0.01,0.05,0.2,1.0")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    print("code,format_version,posterior,weights,tensors,lambda,total_bytes,header_bytes_incl_tables,"
          "table_bytes,side_bytes,stream_bytes,entropy_bytes,bits_per_weight_without_side")
    with tempfile.TemporaryDirectory() as folder:
        for path in args.posteriors:
            posterior = Posterior.load(path)
            for lam in (float(v) for v in args.lambdas.split(",")):
                result = pack(posterior, Path(folder) / "a.bcz", lam=lam, overwrite=True, show_progress=False)
                print(f"{args.label},{FORMAT_VERSION},{Path(path).name},{posterior.n_latents},"
                      f"{len(posterior.tensors)},{lam},{result.total_bytes},{result.header_bytes},"
                      f"{result.table_bytes},{result.side_bytes},{result.stream_bytes},"
                      f"{result.entropy_bits / 8:.0f},{result.bits_per_dim_without_side:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
