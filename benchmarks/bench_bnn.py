"""Networks judged on steady criteria: k-fold (every row a test row once), settings chosen on a
validation split; VBQ per prior and per posterior source against baselines at their best settings:
uniform grids (step x each tensor's RMS or x the model's) with the same range coder, VBQ without the
posterior (one std for every weight), and the peer codec nncodec (MPEG NNC; QPs with and without
its dependent quantization), all in one run per data set.

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/bench_bnn.py --data digits --out out/bnn-digits

Per fold a 1-hidden-layer MLP gets a posterior from each source: `fit-bnn` (bayescompress's own
Pyro SVI fit), `laplace` (Adam, then the diagonal Laplace import), `ivon` (trained with IVON,
then imported), `bayesian-torch` (its LinearReparameterization layers trained by its README's
recipe, then imported) and `bayesian-torch-elbo` (the same with the KL scaled as in the ELBO); the
float network is the posterior's means.  Every method is swept over its rate knob and every
archive's network is scored on the validation and test rows; bnn_picks.py then picks, per
criterion, the cheapest archive that meets it on validation.  Bits per weight = 8 x (file bytes -
model spec bytes) / weights; an NNC bitstream carries no spec.  Posteriors are kept in
OUT/posteriors; `--reuse` packs them again and fits only the missing ones, `--repack` also keeps the
nncodec rows (after a change of bayescompress's archive, when only our file sizes change).
Writes OUT/sweep.csv (every archive), OUT/picks.csv and OUT/summary.csv, and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from blind_vbq import BlindVBQQuantizer
from bnn_picks import markdown, pick_cheapest, read_sweep, split_by_setting, summarize, write_csv
from machine import describe_machine
from torch import nn
from uniform_grid import UniformGridQuantizer

from bayescompress.fit.bnn import svi_posterior
from bayescompress.networks.importers import bayesian_torch_posterior, ivon_posterior
from bayescompress.networks.laplace import laplace_posterior
from bayescompress.networks.mlp import network_from_arrays
from bayescompress.networks.model_spec import mlp_spec
from bayescompress.networks.tabular import kfold_splits, load_table
from bayescompress.packing import pack
from bayescompress.posterior import Posterior
from bayescompress.vbq import VBQQuantizer

HERE = Path(__file__).resolve().parent
NNCODEC_PYTHON = HERE / ".venv-nncodec" / "bin" / "python"
# dense (x1.47) where the picks fall, so VBQ's sweep is as fine in bits as the grid's (x1.35 per step)
LAMBDAS = (3e-5, 1e-4, 3e-4, *(float(f"{x:.3g}") for x in np.geomspace(1e-3, 10.0, 25)), 30.0)
PRIORS = ("rms", "t2", "tails", "auto")  # rms: the paper's Gaussian; tails: rms unless it would clip
# steps of several RMS prune almost every weight to 0, which small networks tolerate
GRID_STEPS = tuple(float(f"{x:.3g}") for x in np.geomspace(0.05, 16.0, 20))
GRID_OFFSETS = (0.0, 0.5)  # mid-tread (0 is a grid point) and mid-rise, in units of the step
NNC_QPS = tuple(range(-38, 1, 2))
# also: fit-bnn-tempered (fit bnn --kl-weight, below 1)
SOURCES = ("fit-bnn", "laplace", "ivon", "bayesian-torch", "bayesian-torch-elbo")


def methods(priors):
    for prior in priors:
        for lam in LAMBDAS:
            yield f"vbq-{prior}", f"lambda={lam:g}", VBQQuantizer(lam, prior=prior)


def baseline_methods(model_rms: float):
    """VBQ without the posterior (every std = the model's RMS), and the uniform grid's settings:
    step x each tensor's RMS, or x the model's (one step for every tensor)."""
    for lam in LAMBDAS:
        yield "vbq-blind", f"lambda={lam:g}", BlindVBQQuantizer(lam, model_rms)
    for scope, reference in (("tensor", None), ("model", model_rms)):
        for step in GRID_STEPS:
            for offset in GRID_OFFSETS:
                quantizer = UniformGridQuantizer(step, offset, reference)
                yield "uniform-grid", f"step={step:g}xRMS offset={offset:g} scope={scope}", quantizer


def mlp(sizes: list[int], linear=nn.Linear) -> nn.Sequential:
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def train_mlp(features, labels, sizes, steps, seed, optimizer_name):
    """An ordinary MLP trained on standardized ``features`` with Adam or IVON, 128 rows a step."""
    torch.manual_seed(seed)
    network = mlp(sizes)
    if optimizer_name == "ivon":
        import ivon

        optimizer = ivon.IVON(network.parameters(), lr=0.1, ess=len(labels), weight_decay=1e-4)
    else:
        optimizer = torch.optim.Adam(network.parameters(), lr=3e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = torch.randint(len(labels), (128,), generator=generator)
        if optimizer_name == "ivon":
            with optimizer.sampled_params(train=True):
                optimizer.zero_grad()
                nn.functional.cross_entropy(network(features[rows]), labels[rows]).backward()
        else:
            optimizer.zero_grad()
            nn.functional.cross_entropy(network(features[rows]), labels[rows]).backward()
        optimizer.step()
    return network, optimizer


def kl_sum(layer) -> torch.Tensor:
    """A LinearReparameterization layer's KL summed over its weights (its kl_loss averages them)."""
    return sum(layer.kl_div(mu, nn.functional.softplus(rho), prior_mu, prior_std) * mu.numel()
               for mu, rho, prior_mu, prior_std in
               ((layer.mu_weight, layer.rho_weight, layer.prior_weight_mu, layer.prior_weight_sigma),
                (layer.mu_bias, layer.rho_bias, layer.prior_bias_mu, layer.prior_bias_sigma)))


def train_bayesian_torch(features, labels, sizes, steps, seed, elbo=False):
    """bayesian-torch's own recipe (README, examples/main_bayesian_cifar.py): its default layers
    (prior N(0, 1), rho -3), cross-entropy of one weight sample + get_kl_loss / batch size, Adam 1e-3;
    ``elbo``: the KL summed over the weights and divided by the training rows instead."""
    from bayesian_torch.layers import LinearReparameterization
    from bayesian_torch.models.dnn_to_bnn import get_kl_loss

    torch.manual_seed(seed)
    network = mlp(sizes, LinearReparameterization)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = torch.randint(len(labels), (128,), generator=generator)
        outputs = features[rows]
        for layer in network:  # its layers return (output, kl) by default, which nn.Sequential cannot chain
            bayesian = isinstance(layer, LinearReparameterization)
            outputs = layer(outputs, return_kl=False) if bayesian else layer(outputs)
        if elbo:
            kl = sum(kl_sum(layer) for layer in network if isinstance(layer, LinearReparameterization))
            kl = kl / len(labels)
        else:
            kl = get_kl_loss(network) / len(rows)
        optimizer.zero_grad()
        (nn.functional.cross_entropy(outputs, labels[rows]) + kl).backward()
        optimizer.step()
    return network


def fit_posterior(source, args, raw, features, labels, train, sizes, seed, spec_options) -> Posterior:
    """The posterior of one source on the fold's training rows."""
    if source in ("fit-bnn", "fit-bnn-tempered"):
        spec = mlp_spec(sizes, task="classification", classes=list(range(sizes[-1])),
                        input_mean=spec_options["input_mean"], input_std=spec_options["input_std"],
                        prior_std=args.prior_std, data=spec_options["data"])
        kl_weight = args.tempered_kl_weight if source == "fit-bnn-tempered" else 1.0
        posterior, _ = svi_posterior(spec, raw[train], labels[train], steps=args.steps, lr=0.01, batch=128,
                                     seed=seed, kl_weight=kl_weight, show_progress=False)
        return posterior
    if source in ("bayesian-torch", "bayesian-torch-elbo"):
        network = train_bayesian_torch(features[train], labels[train], sizes, args.steps, seed,
                                       elbo=source == "bayesian-torch-elbo")
        return bayesian_torch_posterior(network, **spec_options)
    network, optimizer = train_mlp(features[train], labels[train], sizes, args.steps, seed,
                                   "ivon" if source == "ivon" else "adam")
    if source == "ivon":
        return ivon_posterior(network, optimizer, **spec_options)
    return laplace_posterior(network, features[train].numpy(), **spec_options)


def temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature minimizing NLL on these rows (golden-section search on log T)."""
    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2

    def nll(log_t):
        return float(nn.functional.cross_entropy(logits / math.exp(log_t), labels))

    for _ in range(40):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(a) < nll(b):
            high = b
        else:
            low = a
    return math.exp((low + high) / 2)


def scores(logits: torch.Tensor, labels: torch.Tensor, reference: torch.Tensor, split: dict) -> dict:
    """Accuracy, agreement with the float network, NLL and temperature-scaled NLL (T fit on validation)."""
    logits = logits.double()
    predictions = logits.argmax(1)
    t = temperature(logits[split["validation"]], labels[split["validation"]])
    record = {"temperature": t}
    for part, index in split.items():
        record |= {f"{part}_accuracy": float((predictions[index] == labels[index]).double().mean()),
                   f"{part}_agreement": float((predictions[index] == reference[index]).double().mean()),
                   f"{part}_nll": float(nn.functional.cross_entropy(logits[index], labels[index])),
                   f"{part}_nll_ts": float(nn.functional.cross_entropy(logits[index] / t, labels[index]))}
    return record


def run_nncodec(means: dict, work: Path, use_dq: bool = True) -> list[dict] | None:
    """NNC bitstreams of the means at every QP, biases at NNC's default QP and at the weights' QP;
    ``use_dq=False``: scalar instead of dependent (trellis) quantization."""
    if not NNCODEC_PYTHON.exists():
        return None
    return [record for nonweight in ("default", "same")
            for record in _nncodec_peer(means, work, nonweight, NNC_QPS, use_dq)]


def run_nncodec_at(means: dict, work: Path, qp: int, bias_qp: int, use_dq: bool = True) -> tuple[int, dict]:
    """One NNC bitstream of the means: its size in bytes and the values it decodes to."""
    (record,) = _nncodec_peer(means, work, str(bias_qp), (qp,), use_dq)
    return record["bytes"], record["values"]


def _nncodec_peer(means: dict, work: Path, nonweight: str, qps, use_dq: bool) -> list[dict]:
    """nncodec_peer.py's records for these QPs (biases at ``nonweight``), each with its decoded values."""
    np.savez(work / "means.npz", **{name: values.astype(np.float32) for name, values in means.items()})
    command = [str(NNCODEC_PYTHON), str(HERE / "nncodec_peer.py"), str(work / "means.npz"), str(work),
               "--nonweight-qp", nonweight, "--qp", *map(str, qps), *([] if use_dq else ["--no-dq"])]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"nncodec failed: {result.stderr.strip()[-500:]}")
    records = []
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            with np.load(record["decoded"], allow_pickle=False) as decoded:
                record["values"] = {name: decoded[name] for name in means}
            records.append(record)
    return records


def nncodec_rows(args, out: Path, means: dict, n_weights: int, record, rows: list) -> None:
    """nncodec's bitstreams of one posterior's means as sweep rows, with its dependent (trellis)
    quantization and, setting "... no-dq", with scalar quantization: its best settings per pick."""
    for use_dq in (False,) if args.add_baselines else (True, False):
        with tempfile.TemporaryDirectory(dir=out) as work:
            nnc = run_nncodec(means, Path(work), use_dq=use_dq)
        if nnc is None:
            print(f"nncodec: ABSENT ({NNCODEC_PYTHON} not found; run benchmarks/setup_nncodec.sh)")
            args.skip_nncodec = True
            return
        for entry in nnc:
            setting = f"qp={entry['qp']} bias_qp={entry['nonweight_qp']}" + ("" if use_dq else " no-dq")
            rows.append(record("nncodec", setting, entry["values"], 8.0 * entry["bytes"] / n_weights,
                               file_bytes=entry["bytes"], side_bytes=0))


def fold_rows(args, table, fold_index, fold, out: Path) -> list[dict]:
    started = time.perf_counter()
    mean = table.features[fold.train].mean(0)
    std = table.features[fold.train].std(0)
    std[std == 0] = 1.0
    features = torch.tensor((table.features - mean) / std, dtype=torch.float32)
    raw = torch.tensor(table.features, dtype=torch.float32)
    labels = torch.tensor(table.targets.astype(np.int64))
    train = torch.as_tensor(fold.train)
    sizes = [table.features.shape[1], *args.hidden, int(labels.max()) + 1]
    spec_options = {"input_mean": mean.tolist(), "input_std": std.tolist(),
                    "data": {"path": args.data, "fold": fold_index, "folds": args.folds, "seed": args.seed}}
    split = {"validation": torch.as_tensor(fold.validation), "test": torch.as_tensor(fold.test)}
    rows = []
    for source in args.sources:
        cached = out / "posteriors" / f"{source}-fold{fold_index}.h5"
        if (args.reuse or args.repack) and cached.exists():
            posterior = Posterior.load(cached)
        elif args.repack:
            raise SystemExit(f"--repack: {cached} is missing; run without --repack first")
        else:
            posterior = fit_posterior(source, args, raw, features, labels, train, sizes,
                                      args.seed + fold_index, spec_options)
            cached.parent.mkdir(parents=True, exist_ok=True)
            posterior.save(cached)
        spec = posterior.model_spec
        means = {name: tensor.mean for name, tensor in posterior.tensors.items()}
        with torch.no_grad():
            float_logits = network_from_arrays(spec, means)(raw)
        reference = float_logits.argmax(1)
        stds = np.concatenate([tensor.std.ravel() for tensor in posterior.tensors.values()])
        all_means = np.concatenate([m.ravel() for m in means.values()])
        base = {"data": args.data, "fold": fold_index, "source": source, "n_weights": posterior.n_latents,
                "median_std": float(np.median(stds)),
                "snr_above_1": float(np.mean(np.abs(all_means) / stds > 1))}

        def record(method, setting, values, bits, base=base, spec=spec, reference=reference, **sizes_):
            with torch.no_grad():
                logits = network_from_arrays(spec, values)(raw)
            return dict(base, method=method, setting=setting, bits_per_weight=bits, **sizes_,
                        **scores(logits, labels, reference, split))

        if not (args.skip_nncodec or args.repack):
            nncodec_rows(args, out, means, posterior.n_latents, record, rows)
        model_rms = float(np.sqrt(np.mean(np.square(all_means.astype(np.float64)))))
        ours = [] if args.add_baselines else [*methods(args.priors)]
        if not args.add_baselines:
            rows.append(record("float32", "means", means, 32.0))
        for method, setting, quantizer in [*ours, *baseline_methods(model_rms)]:
            result = pack(posterior, out / "archive.bcz", method=quantizer, overwrite=True,
                          show_progress=False)
            rows.append(record(method, setting, result.values, result.bits_per_dim_without_side,
                               file_bytes=result.total_bytes, side_bytes=result.side_bytes,
                               header_bytes=result.header_bytes, table_bytes=result.table_bytes,
                               stream_bytes=result.stream_bytes))
    print(f"fold {fold_index}: {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--out", default="out/bnn-digits")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only-folds", type=lambda text: [int(f) for f in text.split(",")],
                        help="run these folds only (to time a run)")
    parser.add_argument("--hidden", type=lambda text: tuple(int(w) for w in text.split(",")), default=(64,))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--sources", type=lambda text: text.split(","), default=list(SOURCES))
    parser.add_argument("--priors", type=lambda text: text.split(","), default=list(PRIORS))
    parser.add_argument("--prior-std", type=float, default=0.3, help="fit-bnn's prior std")
    parser.add_argument("--tempered-kl-weight", type=float, default=0.1,
                        help="KL weight of the fit-bnn-tempered source (not run by default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="reuse OUT/posteriors instead of refitting")
    parser.add_argument("--repack", action="store_true",
                        help="pack OUT/posteriors again with this checkout's archive code and replace the "
                        "bayescompress rows of OUT/sweep.csv (kept as sweep-before-repack.csv); the "
                        "nncodec rows are kept as they are")
    parser.add_argument("--skip-nncodec", action="store_true")
    parser.add_argument("--add-baselines", action="store_true",
                        help="redo the rows of the uniform grid (both scopes) and VBQ without the posterior, "
                        "and add nncodec's scalar-quantization settings, in an OUT/sweep.csv written "
                        "before they were in every run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {describe_machine(f'torch {torch.__version__}', f'numpy {np.__version__}')}")
    table = load_table(args.data)
    folds = kfold_splits(table.n_rows, args.folds, args.seed, validation_fraction=0.2)
    rows = []
    if args.add_baselines:
        if not NNCODEC_PYTHON.exists():
            raise SystemExit(f"--add-baselines: {NNCODEC_PYTHON} not found; run benchmarks/setup_nncodec.sh")
        args.reuse = True
        redone = ("uniform-per-tensor", "uniform-grid", "vbq-blind")  # the grid's old name, and the new
        rows = [r for r in read_sweep(out / "sweep.csv") if r["source"] not in args.sources
                or (r["method"] not in redone
                    and not (r["method"] == "nncodec" and str(r["setting"]).endswith("no-dq")))]
    if args.repack:
        before = out / "sweep-before-repack.csv"  # kept until a repack finishes, so a failed one can rerun
        if not before.exists():
            (out / "sweep.csv").replace(before)
        rows = [r for r in read_sweep(before) if r["method"] == "nncodec"]
    for index, fold in enumerate(folds):
        if args.only_folds is None or index in args.only_folds:
            rows += fold_rows(args, table, index, fold, out)
            write_csv(out / "sweep.csv", rows)
    n_validation = {index: fold.validation.size for index, fold in enumerate(folds)}
    picks = pick_cheapest(rows, n_validation)
    write_csv(out / "picks.csv", picks)
    summary = summarize(picks, rows)
    write_csv(out / "summary.csv", summary)
    split = split_by_setting(rows)  # what each baseline's wider choice of settings changed
    write_csv(out / "summary-by-setting.csv", summarize(pick_cheapest(split, n_validation), split))
    if args.repack:
        (out / "sweep-before-repack.csv").unlink()
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
