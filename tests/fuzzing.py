"""Seeded hostile inputs and the checks each must pass: the fuzz harness of tests/test_fuzz.py and
benchmarks/fuzz_long.py.

``run_case(seed, workdir)`` builds one input from ``seed`` alone (a damaged or crafted archive,
posterior file, .npz or Pyro store, or an extreme but valid posterior), feeds it to the library
or the command line, and classifies the outcome: ``ok``, ``refused`` (one BayesCompressError
line), or a defect: ``internal`` (any other exception or a warning), ``multiline`` (a refusal of
more than one line), ``leftover`` (an output file after a failure), ``outside`` (bytes of a file
outside the input reached an output), ``inexact`` (unpack differs from what pack chose).
``run_cases`` runs seeds in worker processes under a memory cap and a per-case timeout, adding
``hang`` and ``memory`` (the worker ran out of its address space or died).
"""

from __future__ import annotations

import contextlib
import io
import json
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

SECRET = b"FUZZ-SECRET-7f3a9c0e"  # content of a file outside every input; must never reach an output
KINDS = ("archive-header", "archive-sections", "archive-bytes", "posterior-bytes", "posterior-crafted",
         "npz", "pyro", "valid-extreme", "cli")
DEFECTS = ("internal", "multiline", "leftover", "outside", "inexact", "hang", "memory")


# ------------------------------------------------------------------------------------ bases


def build_bases(folder: Path) -> dict[str, Path]:
    """The valid inputs every mutation starts from (deterministic), and the secret file."""
    from bayescompress.networks.model_spec import mlp_spec
    from bayescompress.packing import pack
    from bayescompress.posterior import Posterior, TensorPosterior, Vocabulary

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(12345)
    bases = {}
    generic = Posterior({"w": TensorPosterior(rng.normal(size=(12, 5)).astype(np.float32),
                                              np.full((12, 5), 0.05, np.float32)),
                         "b": TensorPosterior(rng.normal(size=5), np.full(5, 0.2))},
                        kind="generic", metadata={"seed": 1})
    words = [f"w{i}" for i in range(16)]
    embedding = Posterior({"U": TensorPosterior(rng.normal(size=(16, 4)).astype(np.float32),
                                                np.full((16, 4), 0.1, np.float32))},
                          kind="embedding", vocab=Vocabulary(words, np.arange(16, 0, -1)))
    spec = mlp_spec([3, 4, 2], task="classification", classes=[0, 1], input_mean=[0.0] * 3,
                    input_std=[1.0] * 3)
    network = Posterior({"layers.0.weight": TensorPosterior(rng.normal(size=(4, 3)), np.full((4, 3), 0.1)),
                         "layers.0.bias": TensorPosterior(np.zeros(4), np.full(4, 0.1)),
                         "layers.1.weight": TensorPosterior(rng.normal(size=(2, 4)), np.full((2, 4), 0.1)),
                         "layers.1.bias": TensorPosterior(np.zeros(2), np.full(2, 0.1))},
                        kind="network", model_spec=spec)
    for name, post in (("generic", generic), ("embedding", embedding), ("network", network)):
        bases[f"{name}.h5"] = folder / f"{name}.h5"
        post.save(bases[f"{name}.h5"])
    bases["generic.bcz"] = folder / "generic.bcz"
    pack(generic, bases["generic.bcz"], lam=0.01)
    bases["escapes.bcz"] = folder / "escapes.bcz"
    pack(generic, bases["escapes.bcz"], lam=1e-9)
    bases["embedding.bcz"] = folder / "embedding.bcz"
    pack(embedding, bases["embedding.bcz"], lam=0.05)
    bases["network.bcz"] = folder / "network.bcz"
    pack(network, bases["network.bcz"], lam=0.05)
    bases["kmeans-lzma.bcz"] = folder / "kmeans-lzma.bcz"
    pack(generic, bases["kmeans-lzma.bcz"], method="kmeans", coder="lzma", k=8)
    data = folder / "data.npz"
    np.savez(data, X=rng.normal(size=(20, 3)), y=rng.integers(0, 2, 20))
    bases["data.npz"] = data
    bases["secret"] = folder / "secret.bin"
    bases["secret"].write_bytes(SECRET * 64)
    return bases


def build_pyro_base(folder: Path) -> Path:
    """A saved Pyro param store of an AutoNormal guide (needs torch and pyro)."""
    import torch
    from pyro.distributions import constraints

    path = folder / "store.pt"
    if not path.exists():
        state = {"params": {"AutoNormal.locs.w": torch.randn(6, 3),
                            "AutoNormal.scales.w": torch.full((6, 3), -2.0)},
                 "constraints": {"AutoNormal.locs.w": constraints.real,
                                 "AutoNormal.scales.w": constraints.softplus_positive}}
        torch.save(state, path)
    return path


# ------------------------------------------------------------------------------ mutations


def hostile_value(rng: np.random.Generator):
    """A JSON value chosen to break a reader that trusts its input."""
    choices = [
        lambda: int(rng.integers(-5, 5)), lambda: 10 ** int(rng.integers(8, 40)), lambda: -1, lambda: True,
        lambda: False, lambda: None, lambda: "abc", lambda: float("nan"), lambda: float("inf"), lambda: 1e308,
        lambda: [], lambda: {}, lambda: [True], lambda: [0], lambda: [2**40, 2**40], lambda: list(range(70)),
        lambda: "../../x", lambda: "a\nb", lambda: "\ud800", lambda: "\x00", lambda: "x" * 5000,
        lambda: _nested(int(rng.integers(50, 5000))), lambda: "0x1.0p+0", lambda: "0x1.0p+2000",
        lambda: "-0x0.0p+0", lambda: [1.5], lambda: {"a": _nested(200)},
    ]
    return choices[int(rng.integers(len(choices)))]()


def _json_text(value) -> str:
    try:
        return json.dumps(value)
    except (RecursionError, ValueError):  # too deep for the encoder: write the nesting directly
        return "[" * 100000 + "]" * 100000


def _nested(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _mutate_json(header, rng: np.random.Generator):
    """Replace, delete or duplicate one randomly chosen node of the header."""
    paths: list[tuple] = []

    def walk(node, path):
        paths.append(path)
        if len(path) > 20:
            return
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, (*path, key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, (*path, index))

    walk(header, ())
    path = paths[int(rng.integers(1, len(paths)))] if len(paths) > 1 else ()
    parent = header
    for key in path[:-1]:
        parent = parent[key]
    action = rng.integers(4)
    if not path:
        return hostile_value(rng)
    if action == 0 and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == 1 and isinstance(parent, list):
        parent.append(parent[path[-1]])  # a duplicate (e.g. a tensor entry)
    elif action == 2 and isinstance(parent[path[-1]], list) and len(parent[path[-1]]) > 1:
        parent[path[-1]] = parent[path[-1]][::-1]  # e.g. a permuted shape
    else:
        parent[path[-1]] = hostile_value(rng)
    return header


def _archive_parts(blob: bytes) -> tuple[dict, dict[str, bytes]]:
    from bayescompress.archive import decode_archive

    archive = decode_archive(blob)
    header = dict(archive.header)
    header.pop("sections")
    return header, dict(archive.sections)


def _encode_raw(header, sections: dict[str, bytes], rng) -> bytes:
    """Like encode_archive, but for any JSON value as header, with correct checksums."""
    from bayescompress import binaryjson
    from bayescompress.archive import COMPACT_VERSION, FORMAT_VERSION, MAGIC, _varint
    from bayescompress.errors import BayesCompressError

    version = FORMAT_VERSION if rng.random() < 0.8 else int(rng.choice([0, 1, 2, 3, 4, 65535]))
    index, offset = {}, 0
    for name, data in sections.items():
        index[name] = {"offset": offset, "length": len(data), "crc32": zlib.crc32(data)}
        if version >= COMPACT_VERSION and rng.random() < 0.9:  # version 4 has no offsets
            del index[name]["offset"]
        offset += len(data)
    if isinstance(header, dict) and "sections" not in header:
        header = {**header, "sections": index}
    try:
        if version == COMPACT_VERSION and rng.random() < 0.9:
            text = binaryjson.encode(header)
        else:
            text = json.dumps(header, separators=(",", ":"), ensure_ascii=False)
            text = text.encode("utf-8", "surrogatepass")
    except (RecursionError, ValueError, BayesCompressError):
        text = b"[" * 100000
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflate.compress(text) + deflate.flush()
    if version == COMPACT_VERSION:
        flags, body = (1, packed) if rng.random() < 0.5 else (0, text)
        preamble = struct.pack("<8sHB", MAGIC, version, flags) + _varint(len(body)) + body
    else:
        preamble = struct.pack("<8sHHI", MAGIC, version, 1, len(packed)) + packed
    return b"".join([preamble, struct.pack("<I", zlib.crc32(preamble)), *sections.values()])


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _crafted_table(rng) -> bytes:
    """A frequency table that declares far more work than any stream pays for."""
    choice = int(rng.integers(5))
    big = int(10 ** rng.integers(6, 13))
    if choice == 0:  # all escapes, raw payload declared long
        return bytes([0]) + _varint(0) + _varint(big) + _varint(1) + _varint(40) + _varint(big)
    if choice == 1:  # two symbols with huge counts
        return bytes([0]) + _varint(2) + _varint(1) + _varint(0) + _varint(big) + _varint(big) + _varint(0)
    if choice == 2:  # a table of 2^20 symbols
        n = 1 << 20
        return bytes([0]) + _varint(n) + _varint(1) + bytes(n - 1) + b"\x01" * n + _varint(0)
    if choice == 3:  # escapes of length 1 only (zero payload bits)
        return bytes([0]) + _varint(0) + _varint(big) + _varint(1) + _varint(1) + _varint(big)
    return bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))


def _crafted_segment(rng, header: dict) -> tuple[bytearray, bytes]:
    """One segment (version 4: compact tables) whose tensor and table declare far more work
    than its words pay for; ``header`` gets the tensor and segment size to match."""
    big = int(10 ** rng.integers(6, 9))  # unpack may allocate the declared output, not more
    entry = header["tensors"][0] if isinstance(header["tensors"][0], dict) else {}
    header["tensors"] = [dict(entry, shape=[big])]
    header["segments"] = {"latents": big, "count": 1}
    if rng.random() < 0.5:  # all escapes of 40 bits (the last length count is implied)
        table = bytes([2]) + _varint(0) + _varint(1) + _varint(40)
    else:  # two symbols, the second's count implied
        table = bytes([0]) + _varint(2) + _varint(1) + _varint(0) + _varint(big // 2)
    words = bytes(rng.integers(0, 256, 4 * int(rng.integers(1, 64)), dtype=np.uint8))
    return bytearray(table + words), _varint(len(table)) + _varint(len(words))


def _side_bomb(rng) -> tuple[bytes, dict]:
    """Side data that inflates far beyond its size: a long vocabulary or a huge JSON part."""
    n = int(10 ** rng.integers(5, 8))
    raw = (b"w\n" * n)[:-1] if rng.random() < 0.5 else b"[" * n
    name = "vocab_words" if raw[:1] == b"w" else "metadata"
    blob = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}])
    return blob, {"codec": "lzma2-raw-preset9e", "raw_length": len(raw),
                  "parts": [{"name": name, "length": len(raw)}], "vocab_size": n}


def make_archive_case(kind: str, rng, bases: dict, out: Path) -> Path:
    names = [n for n in bases if n.endswith(".bcz")]
    blob = bases[names[int(rng.integers(len(names)))]].read_bytes()
    header, sections = _archive_parts(blob)
    if kind == "archive-header":
        for _ in range(int(rng.integers(1, 4))):
            header = _mutate_json(header, rng)
        if isinstance(header, dict) and rng.random() < 0.2 and isinstance(header.get("tensors"), list):
            many = header["tensors"][:1] * int(10 ** rng.integers(2, 6))  # many (duplicate) tensors
            header["tensors"] = [dict(entry, name=f"t{i}") if isinstance(entry, dict) else entry
                                 for i, entry in enumerate(many)]
        blob = _encode_raw(header, sections, rng)
    elif kind == "archive-sections":
        name = ["tables", "side", "stream", "index"][int(rng.integers(4))]
        data = bytearray(sections.get(name, b""))
        action = int(rng.integers(6))
        if action == 0 and data:
            for _ in range(int(rng.integers(1, 8))):
                position = int(rng.integers(len(data) * 8))
                data[position // 8] ^= 1 << (position % 8)
        elif action == 1:
            data = bytearray(data[: int(rng.integers(len(data) + 1))])
        elif action == 2:
            data += bytes(rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8))
        elif action == 3 and name == "tables":
            data = bytearray(_crafted_table(rng))
        elif (action == 3 and name == "stream" and "index" in sections
              and isinstance(header.get("tensors"), list) and header["tensors"]):
            data, sections["index"] = _crafted_segment(rng, header)
        elif action == 4 and name == "side":
            data, header["side"] = _side_bomb(rng)
            data = bytearray(data)
        else:
            data = bytearray(rng.integers(0, 256, len(data) + int(rng.integers(0, 9)), dtype=np.uint8))
        sections[name] = bytes(data)
        blob = _encode_raw(header, sections, rng)
    else:  # raw bytes: flips, zeroed runs, truncation, appended bytes, random files
        data = bytearray(blob)
        action = int(rng.integers(4))
        if action == 0:
            for _ in range(int(rng.integers(1, 6))):
                position = int(rng.integers(len(data) * 8))
                data[position // 8] ^= 1 << (position % 8)
        elif action == 1:
            data = data[: int(rng.integers(len(data)))]
        elif action == 2:
            start = int(rng.integers(len(data)))
            data[start:start + 16] = bytes(len(data[start:start + 16]))
        else:
            data = bytearray(rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8))
        blob = bytes(data)
    path = out / "input.bcz"
    path.write_bytes(blob)
    return path


def make_posterior_case(kind: str, rng, bases: dict, out: Path) -> Path:
    import h5py

    names = [n for n in bases if n.endswith(".h5")]
    base = bases[names[int(rng.integers(len(names)))]]
    path = out / "input.h5"
    shutil.copy(base, path)
    if kind == "posterior-bytes":
        data = bytearray(path.read_bytes())
        for _ in range(int(rng.integers(1, 3))):
            start = int(rng.integers(len(data)))
            if rng.random() < 0.6:
                data[start:start + 16] = bytes(len(data[start:start + 16]))
            else:
                data[start] ^= 1 << int(rng.integers(8))
        if rng.random() < 0.1:
            data = data[: int(rng.integers(len(data)))]
        path.write_bytes(bytes(data))
        return path
    secret = str(bases["secret"])
    with h5py.File(path, "r+") as h5:
        group = h5["tensors"]
        tensor = next(iter(group))
        target = group[tensor]
        shape, dtype = target["mean"].shape, target["mean"].dtype
        action = int(rng.integers(14))
        if action == 0:  # external storage: the data lives in another file
            del target["mean"]
            target.create_dataset("mean", shape=shape, dtype=dtype,
                                  external=[(secret, 0, int(np.prod(shape)) * dtype.itemsize)])
        elif action == 1:
            del target["mean"]
            target["mean"] = h5py.ExternalLink(secret, "/data")
        elif action == 2:
            del target["mean"]
            target["mean"] = h5py.SoftLink(f"/tensors/{tensor}/missing")  # dangling
        elif action == 3:
            del target["std"]
            target["std"] = h5py.SoftLink(f"/tensors/{tensor}/std")  # looping
        elif action == 4:  # a virtual dataset mapping another file
            layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
            layout[...] = h5py.VirtualSource(secret, "data", shape=shape)
            del target["mean"]
            target.create_virtual_dataset("mean", layout)
        elif action == 5:  # a filter that is not built into libhdf5
            values = target["mean"][()]
            del target["mean"]
            target.create_dataset("mean", data=values, compression="lzf")
        elif action == 6:  # huge, never written
            del target["mean"]
            target.create_dataset("mean", shape=(10**10,), dtype="f8", chunks=(1024,))
        elif action == 7:  # a group loop through a hard link
            target["loop"] = h5["tensors"]
        elif action == 8:
            h5.attrs["format_version"] = ["abc", "1", 2, 1.5][int(rng.integers(4))]
        elif action == 9:
            key = ["metadata", "model_spec", "kind", "format"][int(rng.integers(4))]
            value = hostile_value(rng)
            h5.attrs[key] = _json_text(value) if rng.random() < 0.7 else np.arange(4)
        elif action == 10:
            group.attrs["order"] = _json_text(hostile_value(rng))
        elif action == 11:  # a tensor name that must be refused or escaped
            name = ["../../x", "a\nb", "..", "x" * 3000, "nul\x01"][int(rng.integers(5))]
            group.move(tensor, name.replace("/", "_")) if "/" in name else group.move(tensor, name)
            group.attrs["order"] = json.dumps([name if n == tensor else n for n in json.loads(
                group.attrs["order"])])
        elif action == 12 and "vocab" in h5:
            words = [w.decode() if isinstance(w, bytes) else w for w in h5["vocab"]["words"][()]]
            words[int(rng.integers(len(words)))] = ["a\x01b", "a b", "", "x" * 5000][int(rng.integers(4))]
            del h5["vocab"]["words"]
            h5["vocab"].create_dataset("words", data=np.array(words, dtype=object),
                                       dtype=h5py.string_dtype("utf-8"))
        else:  # values: extreme, non-finite, wrong dtype, more dimensions
            values = target["mean"][()]
            del target["mean"]
            choice = int(rng.integers(4))
            if choice == 0:
                values = values * 1e300 if values.dtype == np.float64 else values * np.float32(1e38)
            elif choice == 1:
                values = values.copy()
                values.flat[0] = np.nan
            elif choice == 2:
                values = values.astype(np.int32)
            else:
                values = values.reshape(values.shape + (1,) * 40) if values.ndim < 2 else values[None]
            try:
                target.create_dataset("mean", data=values)
            except (ValueError, TypeError):
                target.create_dataset("mean", data=np.zeros(3))
    return path


def make_npz_case(rng, bases: dict, out: Path) -> Path:
    path = out / "input.npz"
    arrays: dict[str, np.ndarray] = {"w.mean": rng.normal(size=(6, 3)), "w.std": np.full((6, 3), 0.1)}
    action = int(rng.integers(9))
    if action == 0:
        arrays["vocab"] = np.array(["a", "b\x00", "c", "d", "e", "f"])
    elif action == 1:
        arrays["vocab"] = np.array(["a", "b", "c", "d", "e", "f"], dtype=object)
    elif action == 2:
        arrays["w.mean"] = np.array([1.0, 1e-20])
        arrays["w.std"] = np.array([0.1, 0.1])
    elif action == 3:
        arrays["w.std"] = arrays["w.std"].astype(np.complex64)
    elif action == 4:
        arrays["../../x.mean"] = arrays.pop("w.mean")
        arrays["../../x.std"] = arrays.pop("w.std")
    elif action == 5:
        arrays["w.mean"] = np.logspace(-300, 300, 18).reshape(6, 3) * rng.choice([-1, 1], (6, 3))
    if action == 1:
        np.savez(path, **arrays)  # allow_pickle is the default for writing
    else:
        np.savez(path, **arrays)
    if action == 6:  # a .npy header declaring a huge shape over few bytes
        with zipfile.ZipFile(path, "w") as archive:
            header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
            npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header.ljust(117).encode() + b"\n"
            archive.writestr("w.mean.npy", npy + bytes(64))
            archive.writestr("w.std.npy", npy + bytes(64))
    elif action == 7:  # a zip bomb: a highly compressed huge array
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            buffer = io.BytesIO()
            np.save(buffer, np.zeros(int(10 ** rng.uniform(5, 7.7)), dtype=np.float32))
            archive.writestr("w.mean.npy", buffer.getvalue())
            archive.writestr("w.std.npy", buffer.getvalue())
    elif action == 8:
        _zero_bytes(path, rng, 8)
    return path


def make_pyro_case(rng, bases: dict, out: Path) -> Path:
    import torch
    from pyro.distributions import constraints

    path = out / "input.pt"
    loc, scale = torch.randn(6, 3), torch.full((6, 3), -2.0)
    params = {"AutoNormal.locs.w": loc, "AutoNormal.scales.w": scale}
    kinds = {"AutoNormal.locs.w": constraints.real, "AutoNormal.scales.w": constraints.softplus_positive}
    action = int(rng.integers(9))
    if action == 0:
        params["AutoNormal.locs.w"] = loc.to(torch.bfloat16)
    elif action == 1 and hasattr(torch, "float8_e4m3fn"):
        params["AutoNormal.locs.w"] = loc.to(torch.float8_e4m3fn)
    elif action == 2:
        params["AutoNormal.locs.w"] = loc.to_sparse()
    elif action == 3:  # a zero-stride tensor: a billion elements over four bytes
        params["AutoNormal.locs.w"] = torch.zeros(1).expand(10**9)
        params["AutoNormal.scales.w"] = torch.zeros(1).expand(10**9)
    elif action == 4:
        state = {"params": [loc], "constraints": kinds}
        torch.save(state, path)
        return path
    elif action == 5:
        kinds["AutoNormal.scales.w"] = constraints.greater_than(float("nan"))
    elif action == 6:
        params["AutoNormal.scales.w"] = torch.full((6, 3), 1e30)
    elif action == 7:  # pickled code: must never run
        torch.save({"params": params, "constraints": kinds, "x": _Exploit()}, path)
        return path
    torch.save({"params": params, "constraints": kinds}, path)
    if action == 8:
        _zero_bytes(path, rng, 16)
    return path


def _zero_bytes(path: Path, rng, count: int) -> None:
    """Zero ``count`` bytes of the file at a random offset (fewer at its end)."""
    data = bytearray(path.read_bytes())
    position = int(rng.integers(len(data)))
    data[position:position + count] = bytes(len(data[position:position + count]))
    path.write_bytes(bytes(data))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-fuzz",))


def make_valid_extreme(rng) -> tuple:
    """A valid posterior with extreme but finite values, and pack options."""
    from bayescompress.posterior import Posterior, TensorPosterior

    n = int(rng.integers(1, 40))
    decades = rng.uniform(-300, 300, n) if rng.random() < 0.3 else rng.uniform(-17, 1, n)
    means = np.power(10.0, decades) * rng.choice([-1.0, 1.0, 0.0], n, p=[0.45, 0.45, 0.1])
    stds = np.power(10.0, rng.uniform(-200, 200, n) if rng.random() < 0.3 else rng.uniform(-6, 0, n))
    dtype = [np.float64, np.float32, np.float16][int(rng.integers(3))]
    with np.errstate(over="ignore", under="ignore"):
        means, stds = means.astype(dtype), stds.astype(dtype)
    means = np.where(np.isfinite(means), means, 0).astype(dtype)
    stds = np.where(np.isfinite(stds) & (stds > 0), stds, 1).astype(dtype)
    post = Posterior({"w": TensorPosterior(means, stds)})
    lam = float([0.0, 1e-30, 1e-6, 1.0, 1e30][int(rng.integers(5))])
    options = {"lam": lam}
    if rng.random() < 0.3:
        options["max_rate"] = int(rng.integers(1, 54))
    if rng.random() < 0.3:
        options["prior"] = "fit"
    return post, options


# ------------------------------------------------------------------------------- running


class CaseResult(dict):
    """seed, kind, outcome, detail."""


def _one_line(message: str) -> bool:
    return "\n" not in message.strip() and message.strip() != ""


def _exercise_archive(path: Path, out: Path, rng) -> str:
    """unpack, info, an export, load(): refusals are fine, anything else must be exact and clean."""
    from bayescompress.export import write_unpacked
    from bayescompress.loading import load
    from bayescompress.packing import archive_info, unpack

    info = archive_info(path) if rng.random() < 0.3 else None
    unpacked = unpack(path)
    fmt = ["npz", "hdf5", "word2vec", "torch"][int(rng.integers(4))]
    target = out / f"output.{fmt}"
    if fmt == "torch" and rng.random() < 0.5:
        fmt = "npz"  # torch is slow to import; keep most cases light
    write_unpacked(unpacked, target, fmt)
    if rng.random() < 0.1:
        load(path)
    return "ok" if info is None or info["total_bytes"] == path.stat().st_size else "inexact"


def _exercise_posterior(path: Path, out: Path, rng, bases) -> str:
    from bayescompress.packing import pack, unpack
    from bayescompress.posterior import Posterior, read_posterior_header

    if rng.random() < 0.3:
        read_posterior_header(path)
    post = Posterior.load(path)
    result = pack(post, out / "packed.bcz", lam=float(rng.choice([0.0, 0.01, 1.0])))
    return _check_exact(result, unpack(out / "packed.bcz"))


def _check_exact(result, unpacked) -> str:
    for name, values in result.values.items():
        if unpacked.tensors[name].tobytes() != values.tobytes():
            return "inexact"
    return "ok"


def _run_cli(args: list[str]) -> tuple[int, str]:
    from bayescompress.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(args)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


def case_kind(seed: int, kinds: tuple[str, ...] = KINDS) -> str:
    return kinds[seed % len(kinds)]


def run_case(seed: int, workdir: Path, bases: dict, kinds: tuple[str, ...] = KINDS) -> CaseResult:
    """Build case ``seed``, run it in this process, classify what happened."""
    from bayescompress.errors import BayesCompressError

    kind = case_kind(seed, kinds)
    rng = np.random.default_rng([seed, 14])
    case = workdir / f"case-{seed}"
    shutil.rmtree(case, ignore_errors=True)
    (case / "out").mkdir(parents=True)
    out = case / "out"
    outcome, detail = "ok", ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            outcome = _dispatch(kind, rng, bases, case, out)
    except BayesCompressError as exc:
        outcome, detail = ("refused" if _one_line(str(exc)) else "multiline"), str(exc)[:200]
    except MemoryError:
        outcome, detail = "memory", "MemoryError"
    except _CliFailure as exc:
        outcome, detail = exc.outcome, exc.detail
    except Exception as exc:  # noqa: BLE001 - every other exception is the defect we are looking for
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        outcome, detail = "internal", f"{type(exc).__name__} at {where}: {str(exc)[:150]}"
    if outcome not in ("ok",) and any(out.iterdir()):
        leftovers = sorted(p.name for p in out.iterdir())
        outcome, detail = "leftover", f"{leftovers} after {outcome}: {detail}"
    for produced in out.iterdir():
        if produced.is_file() and SECRET in produced.read_bytes():
            outcome, detail = "outside", f"{produced.name} holds bytes of a file outside the input"
    if (case / "pwned-by-fuzz").exists() or Path("pwned-by-fuzz").exists():
        outcome, detail = "outside", "pickled code ran"
    shutil.rmtree(case, ignore_errors=True)
    return CaseResult(seed=seed, kind=kind, outcome=outcome, detail=detail.replace("\n", "\\n"))


class _CliFailure(Exception):
    def __init__(self, outcome: str, detail: str):
        super().__init__(detail)
        self.outcome, self.detail = outcome, detail


def _dispatch(kind: str, rng, bases: dict, case: Path, out: Path) -> str:
    from bayescompress.errors import BayesCompressError
    from bayescompress.packing import pack, unpack

    if kind.startswith("archive"):
        return _exercise_archive(make_archive_case(kind, rng, bases, case), out, rng)
    if kind.startswith("posterior"):
        return _exercise_posterior(make_posterior_case(kind, rng, bases, case), out, rng, bases)
    if kind == "npz":
        from bayescompress.posterior import import_npz

        post = import_npz(make_npz_case(rng, bases, case))
        post.save(out / "imported.h5")
        return "ok"
    if kind == "pyro":
        from bayescompress.fit.pyro_store import import_pyro

        cwd = os.getcwd()
        os.chdir(case)  # a pickled os.system would leave its mark here
        try:
            import_pyro(make_pyro_case(rng, bases, case)).save(out / "imported.h5")
        finally:
            os.chdir(cwd)
        return "ok"
    if kind == "valid-extreme":
        post, options = make_valid_extreme(rng)
        result = pack(post, out / "packed.bcz", **options)
        outcome = _check_exact(result, unpack(out / "packed.bcz"))
        tensor = post.tensors["w"]
        means = tensor.mean.astype(np.float64)
        if options["lam"] == 0.0 and "max_rate" not in options and np.all(np.abs(means) < 1e150):
            # within 1e-3 std, or the code points' resolution: 53-bit quantiles of the prior
            from bayescompress.vbq import GaussianPrior

            prior = GaussianPrior.empirical(means, fit_loc=options.get("prior") == "fit")
            with np.errstate(over="ignore", under="ignore"):  # a 2^-53 step in probability moves
                z = np.minimum(np.abs(means - prior.loc) / prior.scale, 37.0)  # z by 2^-53 / pdf(z)
                density = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
                eps = float(np.finfo(tensor.mean.dtype).eps)
                resolution = prior.scale * 2.0**-51 / density + eps * np.abs(means)
            error = np.abs(result.values["w"].astype(np.float64) - means)
            if not np.all(error <= 1e-3 * tensor.std + resolution):
                raise BayesCompressError("valid posterior packed at lambda 0 is not within 1e-3 std")
        return outcome
    return _cli_case(rng, bases, case, out)


def _cli_case(rng, bases: dict, case: Path, out: Path) -> str:
    """A command through cli.main on a damaged input: exit 0, or exit 1 with one stderr line."""
    command = int(rng.integers(5))
    sub = rng.integers(1 << 30)
    if command in (0, 1):
        source = make_archive_case(["archive-header", "archive-sections", "archive-bytes"][int(sub % 3)],
                                   rng, bases, case)
        args = (["unpack", str(source), "-o", str(out / "out.npz")] if command == 0
                else ["info", str(source)])
    elif command == 2:
        source = make_posterior_case(["posterior-bytes", "posterior-crafted"][int(sub % 2)], rng, bases, case)
        args = ["pack", str(source), "--lambda", "0.1", "-o", str(out / "out.bcz")]
    elif command == 3:
        source = make_posterior_case(["posterior-bytes", "posterior-crafted"][int(sub % 2)], rng, bases, case)
        args = ["sweep", str(source), "-o", str(out / "sweep"), "--points", "2", "--methods", "vbq,uniform",
                "--no-plot", "--quality", "density"]
    else:
        network = rng.random() < 0.5
        source = (make_archive_case("archive-sections", rng, bases, case) if network
                  else make_posterior_case("posterior-bytes", rng, bases, case))
        if network and rng.random() < 0.5:
            source = bases["network.bcz"]
        args = ["evaluate", "bnn", str(source), "--data", str(bases["data.npz"]), "--split", "all"]
    code, err = _run_cli(args)
    if code == 0:
        return "ok"
    if "internal error" in err or code not in (1,):
        raise _CliFailure("internal", f"exit {code}: {err.strip()[:200]}")
    if not _one_line(err):
        raise _CliFailure("multiline", err.strip()[:200])
    if (out / "sweep").is_dir() and not any((out / "sweep").iterdir()):
        shutil.rmtree(out / "sweep")  # an empty folder the command was asked to fill is no output
    raise _CliFailure("refused", err.strip()[:200])


# ------------------------------------------------------------------------------- workers

_WORKER = """
import json, os, resource, sys
from pathlib import Path
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.path.insert(0, sys.argv[3])
from tests.fuzzing import build_bases, run_case, KINDS
workdir = Path(sys.argv[2])
kinds = tuple(sys.argv[4].split(","))
bases = build_bases(workdir / f"bases-{os.getpid()}")
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    result = run_case(int(line), workdir, bases, kinds)
    print(json.dumps(result), flush=True)
"""


def _stop(process) -> None:
    process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        with contextlib.suppress(OSError):
            stream.close()


def run_cases(seeds, *, memory_bytes: int = 4 << 30, timeout: float = 20.0, kinds: tuple[str, ...] = KINDS,
              workdir: Path | None = None, progress=None) -> list[dict]:
    """Run ``seeds`` one by one in a worker process capped at ``memory_bytes`` of address space;
    a case running past ``timeout`` seconds is a hang, a dead worker a memory blow-up; the worker
    is restarted after either."""
    import select

    root = Path(__file__).resolve().parent.parent
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="bcfuzz-")) if own else workdir
    results, worker = [], None
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="error")

    log = open(workdir / "worker-stderr.log", "a")  # noqa: SIM115 - open while workers run

    def start():
        process = subprocess.Popen([sys.executable, "-c", _WORKER, str(memory_bytes), str(workdir), str(root),
                                    ",".join(kinds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=log, text=True, env=env, cwd=workdir)
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"fuzz worker did not start (see {workdir / 'worker-stderr.log'})")
        return process

    try:
        for seed in seeds:
            if worker is None:
                worker = start()
            began = time.monotonic()
            worker.stdin.write(f"{seed}\n")
            worker.stdin.flush()
            ready, _, _ = select.select([worker.stdout], [], [], timeout)
            line = worker.stdout.readline() if ready else ""
            seconds = time.monotonic() - began
            if line:
                result = json.loads(line)
            else:
                timed_out = not ready
                _stop(worker)
                worker = None
                result = {"seed": seed, "kind": case_kind(seed, kinds),
                          "outcome": "hang" if timed_out else "memory",
                          "detail": f"no answer in {timeout:.0f} s" if timed_out else "worker died"}
            result["seconds"] = round(seconds, 3)
            results.append(result)
            if progress is not None:
                progress(result)
    finally:
        if worker is not None:
            _stop(worker)
        log.close()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    return results
