"""How far table + stream lie above the symbols' empirical entropy plus the alphabet's description,
at 1e5 latents, for VBQ symbols with few and with many distinct values.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/table_overhead.py

docs/results/bnn/table-overhead-1e5.csv holds this run (code "cost-based") beside the same cases
under the escape rule of commit 90693f5 (code "estimated-prefix", its own script's output).

The alphabet's description is log2 C(2^(r-1), k_r) bits for the k_r distinct symbols of each rate
r, plus 6 bits per rate: what any code must spend to say which symbols occur.
"""

from __future__ import annotations

import numpy as np

from bayescompress.coding import (
    FrequencyTable,
    alphabet_description_bits,
    empirical_entropy_bits,
    encode_stream,
)
from bayescompress.vbq import prior_and_symbols


def main() -> int:
    rng = np.random.default_rng(0)
    n = 100_000
    heavy = 0.05 * rng.standard_t(3, n), 0.05 * np.exp(rng.uniform(-2.3, 0, n))
    cases = (("t3 means; stds 0.1-1 x scale", *heavy),
             ("normal means; stds 1e-4..7e-3", rng.normal(size=n), np.exp(rng.uniform(-9, -5, n))))
    print("code,case,lambda,prior,distinct,table_symbols,escaped,table_bytes,stream_bytes,entropy_bytes,"
          "alphabet_bytes,over_entropy_pct,over_entropy_plus_alphabet_pct")
    for name, means, stds in cases:
        for lam in (0.05, 0.5, 5.0):
            prior, symbols = prior_and_symbols(means, stds, lam, "auto")
            table = FrequencyTable.fit(symbols)
            table_bytes = len(table.to_bytes(compact=True))
            stream_bytes = len(encode_stream([(symbols, table)]))
            entropy, alphabet = empirical_entropy_bits(symbols), alphabet_description_bits(symbols)
            total = 8.0 * (table_bytes + stream_bytes)
            print(f"cost-based,{name},{lam},{prior.family},{np.unique(symbols).size},{table.symbols.size},"
                  f"{table.escape_count},{table_bytes},{stream_bytes},{entropy / 8:.0f},{alphabet / 8:.0f},"
                  f"{100 * (total / entropy - 1):.2f},{100 * (total / (entropy + alphabet) - 1):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
