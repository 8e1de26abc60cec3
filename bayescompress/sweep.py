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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .coding import empirical_entropy_bits
from .errors import BayesCompressError
from .files import atomic_output, check_output_path
from .methods import Method, default_methods, parse_method
from .packing import pack, unpack
from .posterior import Posterior, TensorPosterior
from .quality import generic_quality_of_sums, posterior_distortion, quality_for
from .quantizers import make_quantizer
from .ratecontrol import solve_knob
from .rdcurves import LEVELS, format_ratio_table, ratio_rows
from .samplerate import SAMPLE_LATENTS, sample_posterior
from .streamquality import archive_sums, streamed_sources
from .tensorsource import from_posterior, open_posterior_source
from .waterfilling import posterior_sources

STREAM_LATENTS = SAMPLE_LATENTS  # generic posterior files above this are swept piece by piece
UNIFORM_OFFSETS = ("zero", "half")  # the grid baselines get both; their curves keep the better
# the pruning baseline's kept shares (of the rows, most frequent first); its curve keeps the best at
# each rate. 0.3 of 100k rows: the 30k words most analogy questions use
PRUNE_KEEP_SHARES = (0.6, 0.3, 0.15)
PRUNED_QUANTIZERS = ("uniform-pruned", "vbq-pruned")
KEPT_MAX_BITS = 8.0  # bits per kept latent at a pruned method's highest point (past lossless for analogies)


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
    if knob.integer:
        return integer_knob_values(low, high, points)
    return [float(v) for v in np.geomspace(low, high, points)]


def integer_knob_values(low: float, high: float, points: int) -> list[int]:
    """``points`` distinct whole numbers spread log-evenly over [low, high], or every one there is.

    Rounding a log grid merges values at the small end; the grid is refined until ``points``
    distinct values remain, so an integer knob (k-means' k) gets as many points as any other.

    >>> integer_knob_values(1, 20, 12)  # a 12-point log grid rounds to only 10 distinct values
    [1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 16, 20]
    >>> integer_knob_values(2, 5, 12)
    [2, 3, 4, 5]
    """
    low, high = max(1, int(round(low))), max(1, int(round(high)))
    available = high - low + 1
    count = points
    while True:
        values = sorted({int(round(v)) for v in np.geomspace(low, high, count)})
        if len(values) >= min(points, available) or count > 64 * points:
            return values
        count += 1


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
    metric_options = dict(metric_options or {})
    setup = _streamed_setup if _streams(source, tensors) else _in_memory_setup
    reference, first_row, knob_posterior, measure = setup(source, tensors, metric_options)
    (out / "archives").mkdir(exist_ok=True)

    plan = []
    for method in parsed:
        plan.extend(_method_plan(method, knob_posterior, points, min_bits, max_bits))
    rows = [first_row]
    from tqdm.auto import tqdm

    hide = None if show_progress is None else not show_progress
    with tqdm(plan, desc="sweep", unit="archive", disable=hide) as bar:
        for method, index, value, variant in bar:
            bar.set_postfix_str(method.label)
            rows.append(measure(method, index, value, variant, out / "archives"))
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


def _method_plan(method: Method, posterior: Posterior, points: int, min_bits: float, max_bits: float) -> list:
    """(method, index, knob value, variant options) of each archive a method gets in the sweep.

    The uniform grid gets both offsets at the same spacings; the pruned methods get each kept
    share at knob values placed over that share's useful rates (share x min_bits to share x
    KEPT_MAX_BITS, at most max_bits).  Either curve then keeps the best point at each rate.
    """
    if method.quantizer == "uniform":
        values = knob_values(method, posterior, points, min_bits, max_bits)
        return [(method, index, value, {"offset": offset})
                for index, value in enumerate(values) for offset in UNIFORM_OFFSETS]
    if method.quantizer in PRUNED_QUANTIZERS and "keep_share" not in dict(method.options):
        plan = []
        for share in PRUNE_KEEP_SHARES:
            variant = {"keep_share": share}
            placed = replace(method, options=method.options + (("keep_share", share),))
            # the kept latents carry all the bits: place the points over their rates (min_bits to
            # KEPT_MAX_BITS each), so that each share's curve is dense where it bends
            low, high = share * min_bits, min(max_bits, share * KEPT_MAX_BITS)
            values = knob_values(placed, posterior, points, low, max(high, 2 * low))
            plan.extend((method, index, value, variant) for index, value in enumerate(values))
        return plan
    return [(method, index, value, {})
            for index, value in enumerate(knob_values(method, posterior, points, min_bits, max_bits))]


def _streams(source, tensors) -> bool:
    """Whether ``source`` is a generic posterior file above STREAM_LATENTS (then read piece by piece)."""
    if isinstance(source, Posterior):
        return False
    with open_posterior_source(source, tensors) as probe:
        return probe.kind == "generic" and probe.n_latents > STREAM_LATENTS


def _checked_metric(kind: str, metric_options: dict, posterior=None):
    metric = quality_for(kind)
    try:
        inspect.signature(metric).bind({}, posterior, **metric_options)
    except TypeError:
        raise BayesCompressError(f"the {kind} quality does not take option(s) "
                                 f"{', '.join(sorted(metric_options))}") from None
    return metric


def _in_memory_setup(source, tensors, metric_options: dict):
    """Reference quality, uncompressed row, posterior for the knobs, and the point measure."""
    full = source if isinstance(source, Posterior) else Posterior.load(source)
    full.validate()
    if tensors is None and full.kind == "embedding":
        tensors = [metric_options.get("tensor", "U")]
    selected = full.select(tensors)
    metric = _checked_metric(full.kind, metric_options, full)
    means = {name: t.mean for name, t in full.tensors.items()}
    reference = metric(means, full, **metric_options)
    shannon = posterior_sources(selected)
    known: dict[str, object] = {}  # the grid through gzip/bzip2/lzma decodes to the same values

    def measure(method, index, value, variant, folder):
        return _measure_point(method, index, value, variant, selected, full, metric, metric_options,
                              shannon, folder, known)
    raw_bytes = sum(t.mean.nbytes for t in selected.tensors.values())
    return reference, _uncompressed_row(raw_bytes, selected.n_latents, reference), selected, measure


def _streamed_setup(path, tensors, metric_options: dict):
    """``_in_memory_setup`` for a generic posterior file read piece by piece: knob values on the
    rate control's sample (the whole posterior up to SAMPLE_LATENTS), quality from streamed sums."""
    _checked_metric("generic", metric_options)
    with open_posterior_source(path, tensors) as source:
        n = source.n_latents
        raw_bytes = sum(t.size * t.dtype.itemsize for t in source.tensors)
        whole = {t.name: TensorPosterior(*t.read(0, t.size, source.source)) for t in source.tensors} \
            if n <= SAMPLE_LATENTS else None  # at most SAMPLE_LATENTS latents held
        knob_posterior = sample_posterior(source, SAMPLE_LATENTS) if whole is None else Posterior(whole)
        shannon = streamed_sources(source)
    reference = generic_quality_of_sums(0.0, n, n, **metric_options)

    def measure(method, index, value, variant, folder):
        knob, options, archive = _point_plan(method, index, value, variant, knob_posterior, folder)
        result = pack(path, archive, method=method.quantizer, coder=method.coder, tensors=tensors,
                      overwrite=True, show_progress=False, **options)
        with open_posterior_source(path, tensors) as posterior:
            sums = archive_sums(archive, posterior)
        quality = generic_quality_of_sums(sums.distortion, sums.within, sums.count, **metric_options)
        return _point_row(method, knob, value, variant, result, quality, sums.distortion, sums.rmse, shannon)
    return reference, _uncompressed_row(raw_bytes, n, reference), knob_posterior, measure


def _uncompressed_row(raw_bytes: int, n_latents: int, reference) -> dict:
    bits = 8.0 * raw_bytes / n_latents
    return {"method": "uncompressed", "quantizer": "", "coder": "", "knob": "", "knob_value": "",
            "offset": "", "keep_share": "", "archive": "", "file_bytes": raw_bytes, "side_bytes": 0,
            "n_latents": n_latents, "bits_per_dim": bits, "bits_per_dim_without_side": bits,
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


def _point_plan(method: Method, index: int, value, variant: dict, posterior: Posterior, folder: Path):
    """The knob, the quantizer options and the archive path of one sweep point."""
    knob = method.knob(posterior)
    options = {knob.option: value, **dict(method.options), **variant}
    name = method.label.replace("+", "_") + f"-{index:02d}"
    if "offset" in variant:
        name += f"-{variant['offset']}"
    if "keep_share" in variant:
        name += f"-keep{variant['keep_share']:g}"
    return knob, options, folder / f"{name}.bcz"


def _measure_point(method: Method, index: int, value, variant: dict, selected: Posterior, full: Posterior,
                   metric, metric_options: dict, shannon, folder: Path, known_qualities: dict) -> dict:
    knob, options, path = _point_plan(method, index, value, variant, selected, folder)
    result = pack(selected, path, method=method.quantizer, coder=method.coder, overwrite=True,
                  show_progress=False, **options)
    unpacked = unpack(path).tensors
    model = {name: t.mean for name, t in full.tensors.items()} | unpacked
    # an archive that decodes to values already evaluated (the same grid through another coder)
    # has the same quality: evaluate once (an analogy test of 100k words takes about 20 s)
    key = values_digest(unpacked)
    if key not in known_qualities:
        known_qualities[key] = metric(model, full, **metric_options)
    quality = known_qualities[key]
    distortion = posterior_distortion(unpacked, selected)
    errors = np.concatenate([(unpacked[k].astype(np.float64) - t.mean).ravel()
                             for k, t in selected.tensors.items()])
    rmse = float(np.sqrt(np.mean(np.square(errors))))
    return _point_row(method, knob, value, variant, result, quality, distortion, rmse, shannon)


def _point_row(method: Method, knob, value, variant: dict, result, quality, distortion: float, rmse: float,
               shannon) -> dict:
    """One archive's row of the sweep CSV; its size read off the file itself."""
    size = result.path.stat().st_size
    n = result.n_latents
    return {
        "method": method.label, "quantizer": method.quantizer, "coder": method.coder,
        "knob": knob.option, "knob_value": value, "offset": variant.get("offset", ""),
        "keep_share": variant.get("keep_share", ""), "archive": str(result.path),
        "file_bytes": size, "header_bytes": result.header_bytes, "table_bytes": result.table_bytes,
        "side_bytes": result.side_bytes, "stream_bytes": result.stream_bytes, "n_latents": n,
        "bits_per_dim": 8.0 * size / n, "bits_per_dim_without_side": 8.0 * (size - result.side_bytes) / n,
        "entropy_bits_per_dim": result.entropy_bits / n,
        "quality_metric": quality.name, "quality": quality.value,
        "distortion_per_dim": distortion / n, "rmse": rmse,
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
