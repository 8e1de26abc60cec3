"""Posterior file: a mean-field Gaussian posterior over named tensors, stored in HDF5.

Every tensor (a Pyro site) has a ``mean`` and a ``std`` of one shape; embeddings carry their
vocabulary and networks their model spec beside them. Layout: docs/posterior-format.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import BayesCompressError
from .files import atomic_output
from .hdf5_input import hdf5_errors, open_checked, read_attribute
from .limits import (
    MAX_DIMS,
    MAX_NAME_CHARS,
    MAX_TENSORS,
    MAX_VOCAB_WORDS,
    MAX_WORD_CHARS,
    parse_json,
    printable_name,
)

FORMAT_NAME = "bayescompress-posterior"
FORMAT_VERSION = 1
KINDS = ("embedding", "network", "generic")
FLOAT_DTYPES = ("float16", "float32", "float64")
_BAD_NAME = re.compile(r"[/\s]|^\.{1,2}$")
_MAX_INFLATION = 256  # an .npy member may inflate to 1 MiB + this many times its compressed size
_BAD_WORD_CHARACTER = re.compile(r"[^\S\n]|[\x00-\x09\x0b-\x1f\x7f\ud800-\udfff]")


@dataclass
class TensorPosterior:
    """Mean and std of one tensor's mean-field Gaussian posterior (same shape)."""

    mean: np.ndarray
    std: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.mean.shape)


@dataclass
class Vocabulary:
    """Words of an embedding, in row order, with optional corpus counts."""

    words: list[str]
    counts: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.words)


@dataclass
class Posterior:
    """A mapping from tensor name to posterior, plus the side data a model needs to be rebuilt.

    >>> import numpy as np
    >>> post = Posterior({"w": TensorPosterior(np.zeros(3), np.ones(3))})
    >>> post.n_latents
    3
    """

    tensors: dict[str, TensorPosterior]
    kind: str = "generic"
    vocab: Vocabulary | None = None
    model_spec: dict | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def n_latents(self) -> int:
        return sum(int(t.mean.size) for t in self.tensors.values())

    def validate(self, source: str = "posterior") -> None:
        """Raise BayesCompressError naming the first tensor or field that is malformed."""
        validate_posterior(self, source)

    def select(self, names: Iterable[str] | None) -> Posterior:
        """The same posterior restricted to ``names`` (all tensors when None), in that order."""
        if names is None:
            return self
        chosen = {}
        for name in names:
            if name not in self.tensors:
                known = ", ".join(map(repr, self.tensors)) or "none"
                raise BayesCompressError(f"no tensor named {name!r} (tensors: {known})")
            chosen[name] = self.tensors[name]
        return Posterior(chosen, self.kind, self.vocab, self.model_spec, dict(self.metadata))

    def save(self, path: str | os.PathLike) -> None:
        """Write the posterior to an HDF5 file (atomically)."""
        save_posterior(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, tensors: Iterable[str] | None = None) -> Posterior:
        """Read and validate a posterior file; ``tensors`` limits which tensors are read."""
        return load_posterior(path, tensors)


def validate_tensor_name(name: str, source: str) -> None:
    """A name that is safe as an HDF5 group, a file-name part and one printed line."""
    if (not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS or _BAD_NAME.search(name)
            or not printable_name(name)):
        shown = name if not isinstance(name, str) or len(name) <= 80 else name[:77] + "..."
        raise BayesCompressError(
            f"{source}: tensor name {shown!r} is not allowed (no '/', whitespace or control "
            f"characters, not empty, at most {MAX_NAME_CHARS} characters)"
        )


def validate_tensor(name: str, tensor: TensorPosterior, source: str) -> None:
    """Check one tensor: float arrays of equal shape, finite means, finite positive stds."""
    where = f"{source}: tensor {name!r}"
    for label, values in (("mean", tensor.mean), ("std", tensor.std)):
        if not isinstance(values, np.ndarray) or values.dtype.name not in FLOAT_DTYPES:
            dtype = getattr(values, "dtype", type(values).__name__)
            raise BayesCompressError(f"{where}: {label} must be a float array, got {dtype}")
    if tensor.mean.shape != tensor.std.shape:
        raise BayesCompressError(
            f"{where}: mean has shape {tensor.mean.shape} but std has shape {tensor.std.shape}"
        )
    if tensor.mean.size == 0:
        raise BayesCompressError(f"{where}: tensor is empty")
    if not np.all(np.isfinite(tensor.mean)):
        bad = int(np.count_nonzero(~np.isfinite(tensor.mean)))
        raise BayesCompressError(f"{where}: {bad} mean value(s) are not finite")
    if not np.all(np.isfinite(tensor.std)):
        bad = int(np.count_nonzero(~np.isfinite(tensor.std)))
        raise BayesCompressError(f"{where}: {bad} std value(s) are not finite")
    if not np.all(tensor.std > 0):
        bad = int(np.count_nonzero(~(tensor.std > 0)))
        raise BayesCompressError(f"{where}: {bad} std value(s) are not > 0")


def validate_vocabulary(vocab: Vocabulary, source: str) -> None:
    """Words must be unique, non-empty and free of whitespace (word2vec files split on it), of
    control characters and lone surrogates (no output format could hold them)."""
    words = vocab.words
    if len(words) > MAX_VOCAB_WORDS:
        raise BayesCompressError(f"{source}: vocabulary has more than {MAX_VOCAB_WORDS} words")
    if not all(isinstance(word, str) for word in words):
        raise BayesCompressError(f"{source}: vocabulary holds a word that is not a string")
    text = "\n".join(words)  # one regular-expression pass instead of a Python loop per character
    bad = _BAD_WORD_CHARACTER.search(text)
    if bad is None and words and (min(map(len, words)) == 0 or text.count("\n") != len(words) - 1):
        bad = next(index for index, word in enumerate(words) if not word or "\n" in word)
        raise BayesCompressError(f"{source}: vocabulary word {words[bad]!r} is empty or contains whitespace")
    if bad is not None:
        word = words[text.count("\n", 0, bad.start())]
        shown = word if len(word) <= 80 else word[:77] + "..."
        raise BayesCompressError(
            f"{source}: vocabulary word {shown!r} contains whitespace, a control character or a lone "
            "surrogate"
        )
    if words and max(map(len, words)) > MAX_WORD_CHARS:
        raise BayesCompressError(f"{source}: vocabulary has a word over {MAX_WORD_CHARS} characters")
    if len(set(vocab.words)) != len(vocab.words):
        raise BayesCompressError(f"{source}: vocabulary has duplicate words")
    if vocab.counts is not None:
        counts = vocab.counts
        if counts.ndim != 1 or len(counts) != len(vocab.words):
            raise BayesCompressError(
                f"{source}: vocabulary has {len(vocab.words)} words but {counts.size} counts"
            )
        if not np.issubdtype(counts.dtype, np.integer) or (counts.size and counts.min() < 0):
            raise BayesCompressError(f"{source}: vocabulary counts must be non-negative integers")


def validate_posterior(post: Posterior, source: str = "posterior") -> None:
    if post.kind not in KINDS:
        raise BayesCompressError(f"{source}: kind {post.kind!r} is not one of {', '.join(KINDS)}")
    if not post.tensors:
        raise BayesCompressError(f"{source}: posterior has no tensors")
    for name, tensor in post.tensors.items():
        validate_tensor_name(name, source)
        validate_tensor(name, tensor, source)
    if post.vocab is not None:
        validate_vocabulary(post.vocab, source)
        for name, tensor in post.tensors.items():
            if post.kind == "embedding" and (not tensor.shape or tensor.shape[0] != len(post.vocab)):
                raise BayesCompressError(
                    f"{source}: tensor {name!r} has shape {tensor.shape} but the vocabulary has "
                    f"{len(post.vocab)} words (rows must match)"
                )


def _chunks_for(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """Row-block chunks of about 1 MiB so that readers can stream large tensors."""
    if not shape:
        return None
    row = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    rows = max(1, min(shape[0], (1 << 18) // max(row, 1)))
    return (rows, *shape[1:])


def save_posterior(post: Posterior, path: str | os.PathLike) -> None:
    import h5py

    validate_posterior(post, str(path))
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["format"] = FORMAT_NAME
        h5.attrs["format_version"] = FORMAT_VERSION
        h5.attrs["kind"] = post.kind
        h5.attrs["metadata"] = json.dumps(post.metadata, sort_keys=True)
        if post.model_spec is not None:
            h5.attrs["model_spec"] = json.dumps(post.model_spec, sort_keys=True)
        group = h5.create_group("tensors")
        group.attrs["order"] = json.dumps(list(post.tensors))
        for name, tensor in post.tensors.items():
            sub = group.create_group(name)
            for label, values in (("mean", tensor.mean), ("std", tensor.std)):
                sub.create_dataset(label, data=values, chunks=_chunks_for(values.shape))
        if post.vocab is not None:
            vocab = h5.create_group("vocab")
            vocab.create_dataset(
                "words",
                data=np.array(post.vocab.words, dtype=object),
                dtype=h5py.string_dtype("utf-8"),
            )
            if post.vocab.counts is not None:
                vocab.create_dataset("counts", data=post.vocab.counts.astype(np.int64))


def _attribute_text(h5, key: str, source: str) -> str | None:
    value = read_attribute(h5, key, source)
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise BayesCompressError(f"{source}: attribute {key!r} is not valid UTF-8") from None
    if not isinstance(value, str):
        raise BayesCompressError(f"{source}: attribute {key!r} must be a string")
    return value


def _read_json_attr(h5, key: str, source: str, expected: type = dict):
    text = _attribute_text(h5, key, source)
    if text is None:
        return None
    try:
        value = parse_json(text, f"attribute {key!r}")
    except BayesCompressError as exc:
        raise BayesCompressError(f"{source}: {exc}") from None
    if not isinstance(value, expected):
        raise BayesCompressError(f"{source}: attribute {key!r} must hold a JSON {expected.__name__}")
    return value


def read_posterior_header(path: str | os.PathLike) -> dict:
    """Kind, tensor names and shapes, vocabulary size: what a caller needs before reading data."""
    import h5py

    source = str(path)
    with open_checked(path) as h5, hdf5_errors(source):
        _check_format(h5, source)
        group = h5["tensors"]
        names = _tensor_order(group, source)
        shapes = {}
        for name in names:
            if not isinstance(group.get(name), h5py.Group) or "mean" not in group[name]:
                raise BayesCompressError(f"{source}: tensor {name!r} has no 'mean' dataset")
            shapes[name] = tuple(group[name]["mean"].shape or ())
        words = h5["vocab"].get("words") if isinstance(h5.get("vocab"), h5py.Group) else None
        return {
            "kind": _attribute_text(h5, "kind", source) or "generic",
            "tensors": shapes,
            "vocab_size": len(words) if isinstance(words, h5py.Dataset) and words.ndim == 1 else None,
            "metadata": _read_json_attr(h5, "metadata", source) or {},
            "model_spec": _read_json_attr(h5, "model_spec", source),
        }


def _check_format(h5, source: str) -> None:
    import h5py

    fmt = _attribute_text(h5, "format", source)
    if fmt != FORMAT_NAME:
        shown = fmt if fmt is None or len(fmt) <= 60 else fmt[:57] + "..."
        raise BayesCompressError(f"{source}: not a bayescompress posterior file (format={shown!r})")
    version = read_attribute(h5, "format_version", source)
    if version != FORMAT_VERSION or not isinstance(version, (int, np.integer)) or isinstance(version, bool):
        shown = repr(version) if len(repr(version)) <= 60 else repr(version)[:57] + "..."
        raise BayesCompressError(
            f"{source}: posterior format version {shown} is not supported "
            f"(this bayescompress reads version {FORMAT_VERSION})"
        )
    if not isinstance(h5.get("tensors"), h5py.Group):
        raise BayesCompressError(f"{source}: has no 'tensors' group")


def _tensor_order(group, source: str) -> list[str]:
    present = list(group)
    if len(present) > MAX_TENSORS:
        raise BayesCompressError(f"{source}: holds more than {MAX_TENSORS} tensors")
    order = _read_json_attr(group, "order", source, list)
    if order is None:
        order = sorted(present)
    if not all(isinstance(name, str) for name in order) or sorted(order) != sorted(present):
        raise BayesCompressError(f"{source}: tensor order attribute does not match the tensors")
    return list(order)


def load_posterior(path: str | os.PathLike, tensors: Iterable[str] | None = None) -> Posterior:
    source = str(path)
    with open_tensor_datasets(path, tensors) as (h5, datasets):
        loaded = {
            name: TensorPosterior(np.asarray(mean[()]), np.asarray(std[()]))
            for name, (mean, std) in datasets.items()
        }
        kind, vocab, model_spec, metadata = load_side_data(h5, source)
    post = Posterior(loaded, kind=kind, vocab=vocab, model_spec=model_spec, metadata=metadata)
    validate_posterior(post, source)
    return post


@contextlib.contextmanager
def open_tensor_datasets(path: str | os.PathLike, tensors: Iterable[str] | None = None):
    """The open file and, per wanted tensor in order, its (mean, std) HDF5 datasets, unread."""
    import h5py

    source = str(path)
    with open_checked(path) as h5, hdf5_errors(source):
        _check_format(h5, source)
        group = h5["tensors"]
        names = _tensor_order(group, source)
        wanted = list(tensors) if tensors is not None else names
        datasets = {}
        for name in wanted:
            if name not in names:
                raise BayesCompressError(
                    f"{source}: no tensor named {name!r} (tensors: {', '.join(map(repr, names))})"
                )
            sub = group[name]
            if not isinstance(sub, h5py.Group) or "mean" not in sub or "std" not in sub:
                raise BayesCompressError(f"{source}: tensor {name!r} needs 'mean' and 'std' datasets")
            pair = []
            for label in ("mean", "std"):
                dataset = sub[label]
                if not isinstance(dataset, h5py.Dataset) or dataset.dtype.name not in FLOAT_DTYPES:
                    raise BayesCompressError(
                        f"{source}: tensor {name!r}: {label} must be a float dataset"
                    )
                pair.append(dataset)
            datasets[name] = tuple(pair)
        yield h5, datasets


def load_side_data(h5, source: str) -> tuple[str, Vocabulary | None, dict | None, dict]:
    """Kind, vocabulary, model spec and metadata of an open posterior file."""
    vocab = _read_vocabulary(h5["vocab"], source) if "vocab" in h5 else None
    return (
        _attribute_text(h5, "kind", source) or "generic",
        vocab,
        _read_json_attr(h5, "model_spec", source),
        _read_json_attr(h5, "metadata", source) or {},
    )


def _read_vocabulary(group, source: str) -> Vocabulary:
    import h5py

    words = group.get("words") if isinstance(group, h5py.Group) else None
    if not isinstance(words, h5py.Dataset) or words.ndim != 1 or words.dtype.kind not in "OSU":
        raise BayesCompressError(f"{source}: vocabulary words must be a 1-D string dataset")
    if len(words) > MAX_VOCAB_WORDS:
        raise BayesCompressError(f"{source}: vocabulary has more than {MAX_VOCAB_WORDS} words")
    try:
        words = [str(w) for w in words.asstr()[()]]
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise BayesCompressError(f"{source}: vocabulary words are unreadable") from exc
    counts = group.get("counts")
    if counts is not None:
        if not isinstance(counts, h5py.Dataset) or counts.ndim != 1 or counts.dtype.kind not in "iu":
            raise BayesCompressError(f"{source}: vocabulary counts must be a 1-D integer dataset")
        counts = np.asarray(counts[()])
    return Vocabulary(words, counts)


def open_npz(path: str | os.PathLike):
    """Open an .npz file without unpickling anything; one-line errors for what is not one."""
    import zipfile

    source = str(path)
    if not Path(path).is_file():
        raise BayesCompressError(f"{source}: no such file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise BayesCompressError(f"{source}: not a readable .npz file") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise BayesCompressError(f"{source}: not an .npz archive (a single .npy array?)")
    try:
        _check_npz_members(archive.zip, source)
    except BaseException:
        archive.close()
        raise
    return archive


def _check_npz_members(zipped, source: str) -> None:
    """Each .npy member must hold exactly the bytes its header declares and inflate at most
    _MAX_INFLATION-fold: nothing is allocated or inflated that the file's size does not back."""
    import zipfile

    members = zipped.infolist()
    if len(members) > 2 * MAX_TENSORS + 2:
        raise BayesCompressError(f"{source}: .npz holds more than {2 * MAX_TENSORS + 2} arrays")
    for member in members:
        where = f"{source}: array {member.filename!r}"
        if member.file_size > (1 << 20) + _MAX_INFLATION * member.compress_size:
            raise BayesCompressError(f"{where} inflates {member.file_size} bytes from {member.compress_size}")
        try:
            with zipped.open(member) as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
                header_bytes = stream.tell()
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, SyntaxError, TypeError) as exc:
            raise BayesCompressError(f"{where} has no readable .npy header") from exc
        if dtype.hasobject:
            continue  # refused when read: np.load(allow_pickle=False) never unpickles
        count = 1
        for dim in shape:
            count *= dim
        if len(shape) > MAX_DIMS or header_bytes + count * dtype.itemsize != member.file_size:
            raise BayesCompressError(
                f"{where} declares shape {shape[:MAX_DIMS]} of {dtype} but the file holds "
                f"{member.file_size - header_bytes} bytes of data"
            )


def import_npz(path: str | os.PathLike, kind: str | None = None) -> Posterior:
    """Read a posterior fitted elsewhere: keys ``NAME.mean`` and ``NAME.std`` per tensor,
    optional ``vocab`` (1-D str) and ``counts`` (1-D int)."""
    import zipfile

    source = str(path)
    with open_npz(path) as archive:
        try:
            arrays = {key: archive[key] for key in archive.files}
        except ValueError as exc:
            raise BayesCompressError(
                f"{source}: holds an object array; store vocab as a unicode string array "
                "(np.array(words, dtype=str)), never pickled objects"
            ) from exc
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise BayesCompressError(f"{source}: an array inside the .npz is corrupt") from exc
    tensors: dict[str, dict[str, np.ndarray]] = {}
    for key, values in arrays.items():
        if key in ("vocab", "counts"):
            continue
        stem, dot, label = key.rpartition(".")
        if not dot or label not in ("mean", "std") or not stem:
            raise BayesCompressError(
                f"{source}: unexpected key {key!r} (expected NAME.mean, NAME.std, vocab, counts)"
            )
        tensors.setdefault(stem, {})[label] = values
    if not tensors:
        raise BayesCompressError(f"{source}: no NAME.mean / NAME.std arrays found")
    posterior_tensors = {}
    for name, pair in tensors.items():
        missing = {"mean", "std"} - set(pair)
        if missing:
            raise BayesCompressError(f"{source}: tensor {name!r} has no {missing.pop()} array")
        posterior_tensors[name] = TensorPosterior(pair["mean"], pair["std"])
    vocab = None
    if "vocab" in arrays:
        words = arrays["vocab"]
        if words.ndim != 1 or words.dtype.kind != "U":
            raise BayesCompressError(f"{source}: 'vocab' must be a 1-D unicode string array")
        counts = arrays.get("counts")
        if counts is not None and (counts.ndim != 1 or counts.dtype.kind not in "iu"):
            raise BayesCompressError(f"{source}: 'counts' must be a 1-D integer array")
        vocab = Vocabulary([str(w) for w in words], None if counts is None else counts.astype(np.int64))
    elif "counts" in arrays:
        raise BayesCompressError(f"{source}: 'counts' given without 'vocab'")
    if kind is None:
        kind = "embedding" if vocab is not None else "generic"
    post = Posterior(posterior_tensors, kind=kind, vocab=vocab,
                     metadata={"imported_from": Path(path).name})
    validate_posterior(post, source)
    return post
