"""Rate-quality sweeps: every method over its knob, real archives, measured quality, CSV, plot, ratios.

Each point is an archive written to disk, unpacked, and evaluated; its rate is 8 x file bytes /
latents.  The table answers the question the tool exists for: how many bits VBQ needs, relative
to each baseline, at equal quality.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .coding import empirical_entropy_bits
from .errors import BayesCompressError
from .files import atomic_output, check_output_path
from .methods import Method, default_methods, parse_method
from .packing import pack, unpack
from .posterior import Posterior
from .quality import posterior_distortion, quality_for
from .quantizers import make_quantizer
from .ratecontrol import solve_knob
from .rdcurves import LEVELS, format_ratio_table, ratio_rows
from .samplerate import SAMPLE_LATENTS, sample_posterior
from .tensorsource import from_posterior
from .waterfilling import posterior_sources

UNIFORM_OFFSETS = ("zero", "half")  # the grid baselines get both; their curves keep the better


@dataclass
class SweepResult:
    """Rows of the sweep CSV, the ratio rows, and where everything was written."""

    rows: list[dict]
    ratios: list[dict]
    reference_quality: float
    quality_name: str
    table: str
    csv_path: Path
    ratios_path: Path
    plot_path: Path | None
    notes: list[str] = field(default_factory=list)


def estimated_bits_per_dim(method: Method, posterior: Posterior, value) -> float:
    """Empirical entropy of the symbols per latent at knob ``value``: cheap, no file written."""
    knob = method.knob(posterior)
    quantizer = make_quantizer(method.quantizer, **{knob.option: value}, **dict(method.options))
    bits = sum(empirical_entropy_bits(quantizer.quantize(t.mean, t.std).symbols)
               for t in posterior.tensors.values())
    return bits / posterior.n_latents


def knob_values(method: Method, posterior: Posterior, points: int, min_bits: float, max_bits: float) -> list:
    """``points`` knob values, log-spaced between those giving about ``min_bits`` and ``max_bits``.

    Rates are estimated on a sample of SAMPLE_LATENTS latents when the posterior is larger.
    """
    if posterior.n_latents > SAMPLE_LATENTS:
        posterior = sample_posterior(from_posterior(posterior))
    knob = method.knob(posterior)
    ends = []
    for target in (min_bits, max_bits):
        search = solve_knob(lambda v: estimated_bits_per_dim(method, posterior, v), knob,
                            0.95 * target, 1.05 * target)
        ends.append(search.closest(target)[0])
    low, high = sorted(ends)
    if low == high:
        return [low]
    values = np.geomspace(low, high, points)
    if knob.integer:
        return sorted({max(1, int(round(v))) for v in values})
    return [float(v) for v in values]


def run_sweep(
    source: Posterior | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    methods: list[str] | tuple | None = None,
    points: int = 12,
    tensors: list[str] | None = None,
    min_bits: float = 0.05,
    max_bits: float = 6.0,
    include_side: bool = False,
    metric_options: dict | None = None,
    levels=LEVELS,
    overwrite: bool = False,
    plot: bool = True,
    show_progress: bool | None = None,
) -> SweepResult:
    """Sweep every method, write DIR/sweep.csv, DIR/ratios.csv, DIR/sweep.png and DIR/archives/.

    ``methods`` are names (``vbq``, ``uniform+lzma``) or ``Method`` records (default: every
    method marked for sweeps, see ``methods.default_methods``), which can fix quantizer options
    (``Method("vbq-fit", "vbq", "range", (("prior", "fit"),))``).

    Rates on the plot and in the ratios are 8 x (file bytes - side-data bytes) / latents:
    real bytes of everything that encodes the numbers (header, tables, stream); the vocabulary
    and metadata are the same for every method and are listed apart (``include_side`` counts
    them too).  Embedding posteriors pack only the evaluated word vectors unless ``tensors``
    says otherwise, as in the paper; tensors not packed enter the evaluated model at their means.
    """
    if not isinstance(points, int) or points < 2:
        raise BayesCompressError(f"a sweep needs at least 2 points per method, got {points!r}")
    if not 0 < min_bits < max_bits:
        raise BayesCompressError(f"need 0 < min bits < max bits, got {min_bits} and {max_bits}")
    methods = default_methods() if methods is None else methods
    parsed = [m if isinstance(m, Method) else parse_method(m) for m in methods]
    if len({m.label for m in parsed}) != len(parsed):
        raise BayesCompressError("a method is listed twice")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BayesCompressError(f"{out}: exists and is not a directory")
    if not out.parent.exists():
        raise BayesCompressError(f"{out.parent}: directory does not exist")
    out.mkdir(exist_ok=True)
    paths = [out / "sweep.csv", out / "ratios.csv", out / "sweep.png"]
    inputs = (source,) if not isinstance(source, Posterior) else ()
    for path in paths:
        check_output_path(path, overwrite=overwrite, inputs=inputs)
    if plot:
        from .sweepplot import plot_sweep  # needs matplotlib: fail before any work when it is missing
    full = source if isinstance(source, Posterior) else Posterior.load(source)
    full.validate()
    metric_options = dict(metric_options or {})
    if tensors is None and full.kind == "embedding":
        tensors = [metric_options.get("tensor", "U")]
    selected = full.select(tensors)
    metric = quality_for(full.kind)
    try:
        inspect.signature(metric).bind({}, full, **metric_options)
    except TypeError:
        raise BayesCompressError(f"the {full.kind} quality does not take option(s) "
                                 f"{', '.join(sorted(metric_options))}") from None
    means = {name: t.mean for name, t in full.tensors.items()}
    reference = metric(means, full, **metric_options)
    shannon = posterior_sources(selected)
    (out / "archives").mkdir(exist_ok=True)

    plan = []
    for method in parsed:
        offsets = UNIFORM_OFFSETS if method.quantizer == "uniform" else (None,)
        for index, value in enumerate(knob_values(method, selected, points, min_bits, max_bits)):
            plan.extend((method, index, value, offset) for offset in offsets)
    rows = [_uncompressed_row(selected, reference)]
    known_qualities: dict[str, object] = {}  # the grid through gzip/bzip2/lzma decodes to the same values
    from tqdm.auto import tqdm

    hide = None if show_progress is None else not show_progress
    with tqdm(plan, desc="sweep", unit="archive", disable=hide) as bar:
        for method, index, value, offset in bar:
            bar.set_postfix_str(method.label)
            rows.append(_measure_point(method, index, value, offset, selected, full, metric, metric_options,
                                       shannon, out / "archives", known_qualities))
    add_relative_quality(rows, reference.value)
    rate_key = "bits_per_dim" if include_side else "bits_per_dim_without_side"
    curves = {}
    for row in rows[1:]:
        bits, quality = curves.setdefault(row["method"], ([], []))
        bits.append(row[rate_key])
        quality.append(row["quality"])
    ratios = ratio_rows(curves, reference.value, levels=levels)
    table = format_ratio_table(ratios, quality_name=reference.name, reference_quality=reference.value)
    _write_csv(paths[0], rows)
    _write_csv(paths[1], ratios or [{"method": "", "level": "", "quality": "", "vbq_bits": "",
                                     "method_bits": "", "ratio": ""}])
    plot_path = None
    if plot:
        plot_path = plot_sweep(rows, paths[2], rate_key, reference.name, reference.value)
    notes = [] if "vbq" in curves else ["no vbq in the methods: no ratios"]
    return SweepResult(rows, ratios, reference.value, reference.name, table, paths[0], paths[1], plot_path,
                       notes)


def _uncompressed_row(selected: Posterior, reference) -> dict:
    raw_bytes = sum(t.mean.nbytes for t in selected.tensors.values())
    bits = 8.0 * raw_bytes / selected.n_latents
    return {"method": "uncompressed", "quantizer": "", "coder": "", "knob": "", "knob_value": "",
            "offset": "", "archive": "", "file_bytes": raw_bytes, "side_bytes": 0,
            "n_latents": selected.n_latents, "bits_per_dim": bits, "bits_per_dim_without_side": bits,
            "quality_metric": reference.name, "quality": reference.value, "relative_quality": 1.0,
            "distortion_per_dim": 0.0, **reference.extras}


def values_digest(values: dict[str, np.ndarray]) -> str:
    """A hash of named arrays (names, dtypes, shapes, bytes): equal digests mean identical values.

    >>> zeros, ones = {"w": np.zeros(2)}, {"w": np.ones(2)}
    >>> values_digest(zeros) == values_digest({"w": np.zeros(2)}) != values_digest(ones)
    True
    """
    digest = hashlib.sha256()
    for name in sorted(values):
        array = np.ascontiguousarray(values[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _measure_point(method: Method, index: int, value, offset, selected: Posterior, full: Posterior,
                   metric, metric_options: dict, shannon, folder: Path, known_qualities: dict) -> dict:
    knob = method.knob(selected)
    options = {knob.option: value, **dict(method.options)}
    if offset is not None:
        options["offset"] = offset
    name = method.label.replace("+", "_") + f"-{index:02d}" + (f"-{offset}" if offset else "")
    path = folder / f"{name}.bcz"
    result = pack(selected, path, method=method.quantizer, coder=method.coder, overwrite=True,
                  show_progress=False, **options)
    size = path.stat().st_size
    unpacked = unpack(path).tensors
    model = {name: t.mean for name, t in full.tensors.items()} | unpacked
    # an archive that decodes to values already evaluated (the same grid through another coder)
    # has the same quality: evaluate once (an analogy test of 100k words takes about 20 s)
    key = values_digest(unpacked)
    if key not in known_qualities:
        known_qualities[key] = metric(model, full, **metric_options)
    quality = known_qualities[key]
    distortion = posterior_distortion(unpacked, selected)
    n = selected.n_latents
    errors = np.concatenate([(unpacked[k].astype(np.float64) - t.mean).ravel()
                             for k, t in selected.tensors.items()])
    return {
        "method": method.label, "quantizer": method.quantizer, "coder": method.coder,
        "knob": knob.option, "knob_value": value, "offset": offset or "", "archive": str(path),
        "file_bytes": size, "header_bytes": result.header_bytes, "table_bytes": result.table_bytes,
        "side_bytes": result.side_bytes, "stream_bytes": result.stream_bytes, "n_latents": n,
        "bits_per_dim": 8.0 * size / n, "bits_per_dim_without_side": 8.0 * (size - result.side_bytes) / n,
        "entropy_bits_per_dim": result.entropy_bits / n,
        "quality_metric": quality.name, "quality": quality.value,
        "distortion_per_dim": distortion / n, "rmse": float(np.sqrt(np.mean(np.square(errors)))),
        "gaussian_rd_bits_per_dim": shannon.bits(distortion) / n,
        **quality.extras,
    }


def _write_csv(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})


def _csv_value(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def add_relative_quality(rows: list[dict], reference_quality: float) -> None:
    """Quality as a fraction of the uncompressed model's, on every row."""
    for row in rows:
        row["relative_quality"] = row["quality"] / reference_quality if reference_quality else math.nan
