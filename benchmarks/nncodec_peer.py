"""Run the peer codec nncodec (MPEG NNC, DeepCABAC) on a dict of float32 tensors, in its own venv.

Run by benchmarks/bench_bnn.py as ``.venv-nncodec/bin/python nncodec_peer.py IN.npz OUT_DIR
--qp -30 -34 ...``: for each QP it writes the bitstream OUT_DIR/qp_N_nw_M.nnc and the decoded tensors
OUT_DIR/qp_N_nw_M.npz, and prints one JSON line per QP.  ``--check`` only proves that nncodec imports.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import types
from contextlib import redirect_stdout
from pathlib import Path

# nncodec.nnc.compression imports its data-set and training helpers at module level, and those
# import torchvision, cv2 and pandas.  compress()/decompress() on a dict of numpy arrays never
# call them, so they are stubbed instead of installed (torchvision alone would pull a CUDA torch).
# A stub object raises as soon as anything actually uses it, so a silent dependency cannot hide.
STUBBED_MODULES = ("torchvision", "torchvision.datasets", "torchvision.transforms", "cv2", "pandas")


class _InertMeta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return cls


class _Inert(metaclass=_InertMeta):
    """Stands for any class or function of a stubbed module: can be subclassed and built, not used."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError("nncodec_peer: a stubbed module (torchvision/cv2/pandas) was used")


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert


def install_stubs() -> None:
    for name in STUBBED_MODULES:
        if name not in sys.modules:
            sys.modules[name] = _StubModule(name)


def encode_decode(tensors: dict, qp: int, nonweight_qp: int | None, out_dir: Path,
                  use_dq: bool = True) -> dict:
    """Encode ``tensors`` at ``qp`` with NNC's default tools (dependent quantization unless
    ``use_dq`` is False, parameter optimization), write the bitstream, decode it.  1-D tensors
    (biases) get ``nonweight_qp``, NNC's default -75 (near lossless) when None."""
    import numpy as np
    from nncodec import nnc

    nonweight = -75 if nonweight_qp is None else nonweight_qp
    stem = f"qp_{qp}_nw_{nonweight}" + ("" if use_dq else "_nodq")
    bitstream_path = out_dir / f"{stem}.nnc"
    with redirect_stdout(io.StringIO()):  # nncodec prints progress on stdout; our stdout is JSON
        bitstream = nnc.compress(
            tensors, bitstream_path=str(bitstream_path), qp=qp, nonweight_qp=nonweight, use_dq=use_dq,
            param_opt=True,
            opt_qp=False, return_bitstream=True, verbose=False,
        )
        bitstream_path.write_bytes(bytes(bitstream))
        decoded = nnc.decompress(bytearray(bitstream_path.read_bytes()), verbose=False)
    decoded = {name: np.asarray(decoded[name], dtype=np.float32).reshape(tensors[name].shape)
               for name in tensors}
    np.savez(out_dir / f"{stem}.npz", **decoded)
    return {"qp": qp, "nonweight_qp": nonweight, "bitstream": str(bitstream_path),
            "bytes": bitstream_path.stat().st_size, "decoded": str(out_dir / f"{stem}.npz")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tensors", nargs="?", help=".npz of float32 tensors to encode")
    parser.add_argument("out_dir", nargs="?")
    parser.add_argument("--qp", type=int, nargs="+", default=[-32])
    parser.add_argument("--nonweight-qp", default="default",
                        help="QP of 1-D tensors: 'default' (NNC's -75), 'same' (= --qp) or a number")
    parser.add_argument("--no-dq", action="store_true",
                        help="scalar quantization instead of NNC's dependent (trellis) quantization")
    parser.add_argument("--check", action="store_true", help="only check that nncodec imports")
    args = parser.parse_args()
    install_stubs()
    import numpy as np
    from nncodec import nnc  # noqa: F401

    if args.check:
        from importlib.metadata import version

        print(json.dumps({"nncodec": version("nncodec"), "numpy": np.__version__}))
        return 0
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with np.load(args.tensors, allow_pickle=False) as archive:
        tensors = {name: np.ascontiguousarray(archive[name], dtype=np.float32) for name in archive.files}
    for qp in args.qp:
        nonweight = {"default": None, "same": qp}.get(args.nonweight_qp)
        if nonweight is None and args.nonweight_qp not in ("default", "same"):
            nonweight = int(args.nonweight_qp)
        print(json.dumps(encode_decode(tensors, qp, nonweight, out_dir, use_dq=not args.no_dq)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
