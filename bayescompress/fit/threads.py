"""How many threads torch uses in a fit: one by default, ``--threads N`` to choose.

Measured (docs/skipgram.md): a step's element-wise work is small, and on a machine whose cores
are shared, OpenMP's barriers make two threads far slower than one; a busy machine cannot be
detected reliably beforehand, so one thread is the default that never loses badly.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

DEFAULT_THREADS = 1


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run the body with ``threads`` torch threads (None: DEFAULT_THREADS), then restore the old count."""
    chosen = DEFAULT_THREADS if threads is None else threads
    before = torch.get_num_threads()
    torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        torch.set_num_threads(before)
