#!/usr/bin/env bash
# Build the benchmark-only environment for the peer tool nncodec (Fraunhofer's MPEG NNC codec).
#
# nncodec is never a dependency of bayescompress.  Its package declares torchvision, opencv,
# pandas, torchmetrics, ptflops and numpy<2, and a plain install would replace our CPU torch
# with a multi-GB CUDA build.  Its encoder and decoder (nncodec.nnc.compress / decompress) need
# only torch, numpy, h5py, scikit-learn and tqdm at run time; torchvision, cv2 and pandas are
# imported at module level by its data-set helpers and are replaced by inert stubs in
# benchmarks/nncodec_peer.py.  So: --no-deps, plus exactly those packages.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-nncodec"
python3 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.13.0 numpy h5py scikit-learn tqdm pybind11 setuptools wheel
# the C++ extension (DeepCABAC) is compiled here; no build isolation, so pybind11 comes from above
MAX_JOBS=2 "$venv/bin/pip" install -q --no-deps --no-build-isolation nncodec==2.1.3
"$venv/bin/python" "$here/nncodec_peer.py" --check
