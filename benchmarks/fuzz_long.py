"""The long fuzz run of issue 14: thousands of seeded hostile inputs, each under a memory cap and a timeout.

    nice .venv/bin/python benchmarks/fuzz_long.py --cases 10000 --workers 2 \
        --csv docs/results/fuzz_long.csv --table docs/results/fuzz_long.md

Each case is rebuilt from its seed alone (tests/fuzzing.py); rerun one with ``--seeds 1234``.
Outcomes: ok, refused (one line), and the defects internal, multiline, leftover, outside,
inexact, hang, memory.  The CSV holds one row per case; the table counts outcomes per kind.
"""

from __future__ import annotations

import argparse
import collections
import csv
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe_machine  # noqa: E402
from tests.fuzzing import DEFECTS, KINDS, run_cases  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10000)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--seeds", help="comma-separated seeds to rerun instead of a range")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-gib", type=float, default=4.0, help="address-space cap per worker")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it is a hang")
    parser.add_argument("--csv", type=Path, default=Path("docs/results/fuzz_long.csv"))
    parser.add_argument("--table", type=Path, default=Path("docs/results/fuzz_long.md"))
    args = parser.parse_args(argv)
    seeds = ([int(s) for s in args.seeds.split(",")] if args.seeds
             else list(range(args.start, args.start + args.cases)))
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    lock, done, began = threading.Lock(), [0], time.monotonic()
    rows: list[dict] = []

    def record(result: dict) -> None:
        with lock:
            rows.append(result)
            done[0] += 1
            if result["outcome"] not in ("ok", "refused"):
                print(f"DEFECT {result}", flush=True)
            if done[0] % 500 == 0:
                print(f"{done[0]}/{len(seeds)} cases, {time.monotonic() - began:.0f} s", flush=True)

    def chunk(index: int) -> None:
        run_cases(seeds[index::args.workers], memory_bytes=int(args.memory_gib * (1 << 30)),
                  timeout=args.timeout, progress=record)

    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(chunk, range(args.workers)))
    seconds = time.monotonic() - began
    rows.sort(key=lambda row: row["seed"])
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["seed", "kind", "outcome", "seconds", "detail"])
        writer.writeheader()
        writer.writerows(rows)
    args.table.write_text(outcome_table(rows, seconds, args))
    defects = sum(row["outcome"] in DEFECTS for row in rows)
    print(f"{len(rows)} cases in {seconds:.0f} s, {defects} defects; wrote {args.csv} and {args.table}")
    return 1 if defects else 0


def outcome_table(rows: list[dict], seconds: float, args) -> str:
    counts = collections.Counter((row["kind"], row["outcome"]) for row in rows)
    columns = ["ok", "refused", *DEFECTS]
    lines = [f"Fuzz run: {len(rows)} cases (seeds {rows[0]['seed']}..{rows[-1]['seed']}), "
             f"{args.workers} workers, {args.memory_gib:g} GiB address-space cap, {args.timeout:g} s "
             f"timeout per case, {seconds:.0f} s wall; machine: {describe_machine()}", "",
             "| kind | " + " | ".join(columns) + " | slowest case (s) |",
             "|---" * (len(columns) + 2) + "|"]
    for kind in KINDS:
        slowest = max((row["seconds"] for row in rows if row["kind"] == kind), default=0.0)
        cells = " | ".join(str(counts[kind, c]) for c in columns)
        lines.append(f"| {kind} | {cells} | {slowest:.2f} |")
    total = collections.Counter(row["outcome"] for row in rows)
    lines.append("| **all** | " + " | ".join(f"**{total[c]}**" for c in columns) + " | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
