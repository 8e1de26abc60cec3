"""Zero 16 bytes at every STEP-th offset of a valid posterior file (with vocabulary, model spec and
metadata) and load each damaged copy in a worker process with a timeout: nothing may hang, crash or
be accepted with a traceback.  Issue 14: such bytes made libhdf5 spin for over 60 s.

    nice .venv/bin/python benchmarks/zeroed_bytes_posterior.py --step 8
"""

from __future__ import annotations

import argparse
import collections
import select
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bayescompress.posterior import Posterior, TensorPosterior, Vocabulary  # noqa: E402

WORKER = r"""
import sys
from bayescompress.errors import BayesCompressError
from bayescompress.posterior import Posterior
for line in sys.stdin:
    try:
        Posterior.load(line.strip())
        print("ok", flush=True)
    except BayesCompressError as exc:
        print("refused" if "\n" not in str(exc) else "multiline", flush=True)
    except Exception as exc:
        print("internal", type(exc).__name__, str(exc)[:80].replace("\n", " "), flush=True)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(50)]
    post = Posterior({"U": TensorPosterior(rng.normal(size=(50, 4)).astype(np.float32),
                                           np.full((50, 4), 0.1, np.float32)),
                      "b": TensorPosterior(np.zeros(50), np.ones(50))}, kind="embedding",
                     vocab=Vocabulary(words, np.arange(50)[::-1].copy()), model_spec={"a": 1},
                     metadata={"x": [1, 2]})
    folder = Path(tempfile.mkdtemp(prefix="bczeroed-"))
    post.save(folder / "base.h5")
    blob = (folder / "base.h5").read_bytes()

    def start():
        return subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, cwd=ROOT)

    worker, counts, defects = start(), collections.Counter(), []
    for offset in range(0, len(blob) - 16, args.step):
        damaged = bytearray(blob)
        damaged[offset:offset + 16] = bytes(16)
        path = folder / "damaged.h5"
        path.write_bytes(bytes(damaged))
        worker.stdin.write(f"{path}\n")
        worker.stdin.flush()
        ready, _, _ = select.select([worker.stdout], [], [], args.timeout)
        line = worker.stdout.readline().strip() if ready else ""
        if not line:
            line = "hang" if not ready else "died"
            worker.kill()
            worker.wait()
            worker = start()
        counts[line.split()[0]] += 1
        if line.split()[0] not in ("ok", "refused"):
            defects.append((offset, line))
            print(offset, line, flush=True)
    worker.stdin.close()
    worker.wait()
    total = sum(counts.values())
    print(f"{len(blob)}-byte posterior, 16 zeroed bytes at {total} offsets, step {args.step}: {dict(counts)}")
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
