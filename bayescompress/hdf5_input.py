"""Reading HDF5 files we did not write: only data stored in the file itself, reached by hard links.

Before anything is read, the whole tree is walked: soft and external links, virtual datasets,
external storage, compact layouts and user-defined filters are refused with one line naming the
object (they could read other files or run plugin code), as are group loops and datasets whose
declared size the file cannot hold.  Every libhdf5 error on a damaged file becomes one line too.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from .errors import BayesCompressError
from .limits import MAX_ATTRIBUTE_BYTES, MAX_DIMS, MAX_TENSORS

BUILTIN_FILTERS = (1, 2, 3, 4, 5, 6)  # deflate, shuffle, fletcher32, szip, nbit, scaleoffset
MAX_OBJECTS = 4 * MAX_TENSORS + 64  # links a posterior file may hold, all groups together
MAX_FILTER_EXPANSION = 1100  # deflate's best ratio is about 1032:1
_HEAP_MIN_BYTES = 4096  # libhdf5 never writes a smaller global heap collection
_SCAN_BYTES = 1 << 26  # bytes of the file searched for heap signatures at a time
_HEAP_HEADER = struct.Struct("<4sB3xQ")  # "GCOL", version 1, reserved, collection size
_HEAP_OBJECT = struct.Struct("<HH4xQ")  # heap index, reference count, reserved, object size
_LIBHDF5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, SystemError)


@contextlib.contextmanager
def hdf5_errors(source: str) -> Iterator[None]:
    """Turn what libhdf5 raises on a damaged file into one BayesCompressError naming the file."""
    try:
        yield
    except BayesCompressError:
        raise
    except MemoryError:
        raise BayesCompressError(f"{source}: damaged HDF5 file (declares more data than fits)") from None
    except _LIBHDF5_ERRORS as exc:
        reason = " ".join(str(exc).split())[:120]
        raise BayesCompressError(f"{source}: damaged or unreadable HDF5 file ({reason})") from None


def open_checked(path: str | os.PathLike):
    """Open ``path`` read-only and check its whole tree (check_tree); the caller closes it."""
    import h5py

    source = str(path)
    if not Path(path).is_file():
        raise BayesCompressError(f"{source}: no such file")
    check_global_heaps(path, source)
    try:
        h5 = h5py.File(path, "r")
    except _LIBHDF5_ERRORS as exc:
        raise BayesCompressError(f"{source}: not a readable HDF5 file") from exc
    try:
        with hdf5_errors(source):
            check_tree(h5, source, os.path.getsize(path))
    except BaseException:
        h5.close()
        raise
    return h5


def check_tree(h5, source: str, file_bytes: int) -> None:
    """Walk every link from the root: hard links only, no group loops, every dataset checked."""
    import h5py

    groups, seen, count = [("", h5)], {hash(h5.id)}, 0
    while groups:
        path, group = groups.pop()
        for name in group:
            count += 1
            if count > MAX_OBJECTS:
                raise BayesCompressError(f"{source}: HDF5 file holds more than {MAX_OBJECTS} objects")
            where = f"{path}/{name}"
            link = group.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):
                kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
                raise BayesCompressError(f"{source}: {where!r} is {kind}; only hard links are read")
            item = group[name]
            if isinstance(item, h5py.Group):
                if hash(item.id) in seen:
                    raise BayesCompressError(f"{source}: group {where!r} is linked more than once (a loop)")
                seen.add(hash(item.id))
                groups.append((where, item))
            elif isinstance(item, h5py.Dataset):
                check_dataset(item, where, source, file_bytes)
            else:
                raise BayesCompressError(f"{source}: {where!r} is neither a group nor a dataset")


def check_dataset(dataset, where: str, source: str, file_bytes: int) -> None:
    """Contiguous or chunked storage inside this file, built-in filters only, a size it can hold."""
    import h5py

    plist = dataset.id.get_create_plist()
    layout = plist.get_layout()
    if layout == h5py.h5d.VIRTUAL:
        raise BayesCompressError(f"{source}: dataset {where!r} is virtual (maps other files); refused")
    if layout not in (h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED):
        raise BayesCompressError(f"{source}: dataset {where!r} has a layout other than contiguous or chunked")
    if plist.get_external_count():
        raise BayesCompressError(f"{source}: dataset {where!r} stores its data in another file; refused")
    filters = [plist.get_filter(index)[0] for index in range(plist.get_nfilters())]
    unknown = [f for f in filters if f not in BUILTIN_FILTERS]
    if unknown:
        raise BayesCompressError(f"{source}: dataset {where!r} uses user-defined filter {unknown[0]}")
    if len(dataset.shape or ()) > MAX_DIMS:
        raise BayesCompressError(f"{source}: dataset {where!r} has more than {MAX_DIMS} dimensions")
    declared = dataset.size * dataset.dtype.itemsize if dataset.shape is not None else 0
    stored = dataset.id.get_storage_size()
    holdable = stored * MAX_FILTER_EXPANSION + (1 << 20) if filters else stored
    if stored > file_bytes or declared > holdable:
        raise BayesCompressError(
            f"{source}: dataset {where!r} declares {declared} bytes but the file stores {stored}"
        )


def read_attribute(obj, key: str, source: str):
    """The attribute ``key`` of ``obj`` (None if absent), refused past MAX_ATTRIBUTE_BYTES."""
    import h5py

    if key not in obj.attrs:
        return None
    attribute = h5py.h5a.open(obj.id, key.encode())
    if attribute.get_storage_size() > MAX_ATTRIBUTE_BYTES:
        raise BayesCompressError(f"{source}: attribute {key!r} is larger than {MAX_ATTRIBUTE_BYTES} bytes")
    return obj.attrs[key]


def check_global_heaps(path: str | os.PathLike, source: str) -> None:
    """Walk each global heap collection's objects as libhdf5 will, before libhdf5 does.

    libhdf5 (up to 2.0 at least) loops forever on a free-space object of size 0, which 16
    zeroed bytes in a variable-length string's heap make; a collection whose objects do not
    tile it exactly is refused instead.  Collections are found by signature, version and size.
    """
    size = os.path.getsize(path)
    if size < _HEAP_MIN_BYTES:
        return
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        # scanned window by window, each window's pages unmapped after it (MADV_DONTNEED): the
        # scan of a posterior of many GB would otherwise count the whole file in the process's RSS
        for window in range(0, size, _SCAN_BYTES):
            start = data.find(b"GCOL", window, min(size, window + _SCAN_BYTES + 3))
            while start >= 0:
                if start + _HEAP_HEADER.size <= size:
                    _, version, length = _HEAP_HEADER.unpack_from(data, start)
                    if version == 1 and _HEAP_MIN_BYTES <= length <= size - start:
                        _check_heap_objects(data, start, length, source)
                start = data.find(b"GCOL", start + 1, min(size, window + _SCAN_BYTES + 3))
            if hasattr(mmap, "MADV_DONTNEED"):
                data.madvise(mmap.MADV_DONTNEED, window, min(_SCAN_BYTES, size - window))


def _check_heap_objects(data, start: int, length: int, source: str) -> None:
    position, end = start + _HEAP_HEADER.size, start + length
    while position < end:
        if position + _HEAP_OBJECT.size > end:
            return  # a tail too short for an object header is free space
        index, _, object_size = _HEAP_OBJECT.unpack_from(data, position)
        step = object_size if index == 0 else _HEAP_OBJECT.size + ((object_size + 7) & ~7)
        if step <= 0 or position + step > end:
            raise BayesCompressError(
                f"{source}: damaged HDF5 file (global heap at byte {start} is malformed)"
            )
        position += step
