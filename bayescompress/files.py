"""Safe output files: write to a temporary file beside the target, then rename it into place.

A failed or interrupted write never leaves a half-written file and never replaces what was there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import BayesCompressError


def check_output_path(path: str | os.PathLike, *, overwrite: bool, inputs: tuple = ()) -> Path:
    """Refuse outputs that would destroy something the user has: an input, or an existing file."""
    out = Path(path)
    for source in inputs:
        if source is not None and Path(source).exists() and out.exists() and out.samefile(source):
            raise BayesCompressError(f"{out}: output would overwrite the input; choose another -o")
    if out.is_dir():
        raise BayesCompressError(f"{out}: is a directory; give a file name with -o")
    if out.exists() and not overwrite:
        raise BayesCompressError(f"{out}: already exists; pass --force to overwrite it")
    if not out.parent.exists():
        raise BayesCompressError(f"{out.parent}: directory does not exist")
    return out


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` only on success."""
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; outputs get normal modes
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
