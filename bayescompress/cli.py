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


def _lambda(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"lambda must be a finite number >= 0, got {text}")
    return value


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
    from .packing import archive_info, pack

    pack(
        args.posterior, args.output, method=args.method, tensors=args.tensors,
        overwrite=args.force, lam=args.lam, max_rate=args.max_rate, prior=args.prior,
    )
    info = archive_info(args.output)
    if args.json:
        _print_json(info)
    else:
        print(f"wrote {args.output}: {_size_line(info)}")
    return 0


def cmd_unpack(args) -> int:
    from .export import format_for, write_unpacked
    from .files import check_output_path
    from .packing import unpack

    fmt = format_for(args.output, args.format)
    check_output_path(args.output, overwrite=args.force, inputs=(args.archive,))
    unpacked = unpack(args.archive)
    write_unpacked(unpacked, args.output, fmt, tensor=args.tensor)
    print(f"wrote {args.output} ({fmt}): {', '.join(unpacked.tensors)}")
    return 0


def cmd_info(args) -> int:
    from .packing import archive_info

    info = archive_info(args.archive)
    if args.json:
        _print_json(info)
        return 0
    print(f"{info['path']}: {info['method']} archive of a {info['kind']} model ({info['writer']})")
    print(f"  config: {json.dumps(info['config'])}")
    print(f"  {'tensor':<24} {'shape':<18} {'latents':>10} {'symbols':>8} {'escaped':>8} "
          f"{'est. bits/dim':>14}")
    for t in info["tensors"]:
        shape = "x".join(map(str, t["shape"])) or "scalar"
        print(f"  {t['name']:<24} {shape:<18} {t['n_latents']:>10} {t['distinct_symbols']:>8} "
              f"{t['escaped_symbols']:>8} {t['estimated_bits_per_dim']:>14.4f}")
    print(f"  total: {_size_line(info)}")
    print(f"  without side data: {info['bits_per_dim_without_side']:.4f} bits/dim")
    return 0


def cmd_demo(args) -> int:
    from .demo import format_demo_table, run_demo

    rows = run_demo(args.out, seed=args.seed)
    print(format_demo_table(rows))
    return 0


def cmd_fit_skipgram(args) -> int:
    from .fit.corpus import CorpusOptions
    from .fit.skipgram import SkipGramSettings, fit_skipgram_corpus

    corpus_options = CorpusOptions(
        vocab_size=args.vocab_size, min_count=args.min_count, window=args.window,
        lowercase=not args.keep_case, min_token_length=args.min_token_length,
        max_token_length=args.max_token_length,
    )
    settings = SkipGramSettings(
        dim=args.dim, negatives=args.negatives, steps=args.steps, batch=args.batch, lr=args.lr,
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


def _add_fit_commands(commands):
    """``bayescompress fit MODEL``: the group that fitting commands join; returns its sub-parsers."""
    fit = commands.add_parser("fit", help="fit a Bayesian model and write its posterior file")
    models = fit.add_subparsers(dest="model", required=True, parser_class=_Parser)
    _add_fit_skipgram(models)
    return models


def _add_fit_skipgram(models) -> None:
    from .fit.defaults import CORPUS_DEFAULTS as corpus
    from .fit.defaults import SKIPGRAM_DEFAULTS as model

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
    sg.add_argument("--negatives", type=int, default=model["negatives"],
                    help="expected negative samples per positive pair, k (default %(default)s)")
    sg.add_argument("--steps", type=int, default=model["steps"], help="SVI steps (default %(default)s)")
    sg.add_argument("--batch", type=int, default=model["batch"],
                    help="words and contexts per minibatch block (default %(default)s)")
    sg.add_argument("--lr", type=float, default=model["lr"], help="Adam learning rate (default %(default)s)")
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




def build_parser() -> argparse.ArgumentParser:
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

    pack = commands.add_parser("pack", help="quantize a posterior and write an archive")
    pack.add_argument("posterior")
    pack.add_argument("--lambda", dest="lam", type=_lambda, required=True,
                      help="rate penalty: larger means smaller files (VBQ eq. 9)")
    pack.add_argument("-o", "--output", required=True, help="archive to write (.bcz)")
    pack.add_argument("--tensors", type=_names, help="comma-separated tensors to pack (default all)")
    pack.add_argument("--method", default="vbq", help="quantizer (default vbq)")
    pack.add_argument("--prior", choices=("rms", "fit"), default="rms",
                      help="empirical prior: rms = N(0, RMS of means) as in the paper; fit = N(mean, std)")
    pack.add_argument("--max-rate", type=int, default=53, help="longest code point in bits (1..53)")
    pack.add_argument("--json", action="store_true", help="print the archive's info as JSON")
    pack.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    pack.set_defaults(func=cmd_pack)

    unpack = commands.add_parser("unpack", help="decode an archive into a usable model file")
    unpack.add_argument("archive")
    unpack.add_argument("-o", "--output", required=True)
    unpack.add_argument("--format", choices=("npz", "hdf5", "word2vec"),
                        help="output format (default: from the suffix)")
    unpack.add_argument("--tensor", help="word2vec: which tensor holds the word vectors (default U)")
    unpack.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    unpack.set_defaults(func=cmd_unpack)

    info = commands.add_parser("info", help="show an archive's tensors, sizes and rates")
    info.add_argument("archive")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_info)

    _add_fit_commands(commands)

    demo = commands.add_parser("demo", help="run the pipeline on the embedded demo data")
    demo.add_argument("--out", default="demo-output", help="folder for the files (default demo-output)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)
    return parser


def _version() -> str:
    from . import __version__

    return f"bayescompress {__version__}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BayesCompressError as exc:
        if args.debug:
            raise
        print(f"bayescompress: error: {exc}", file=sys.stderr)
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
        print(f"bayescompress: internal error: {type(exc).__name__}: {exc} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return 2
