#!/usr/bin/env bash
# Decode every shipped fixture archive under the newest numpy/scipy/constriction (the project's
# venv) and under the OLDEST versions pyproject.toml allows (a second venv), and compare the
# SHA-256 of every decoded tensor.  Issue 14: decoding must not depend on library versions.
#
#   benchmarks/decode_across_versions.sh [OLD_VENV_DIR]      (default /tmp/bayescompress-oldest)
#
# Set WHEELS=/path/to/wheels to install the old versions offline (pip --no-index --find-links).
# Exit status 0 when every version-2+ fixture decodes identically under both; the per-file table
# is printed (docs/robustness.md quotes it).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:-/tmp/bayescompress-oldest}
NEW_PY=${NEW_PY:-.venv/bin/python}
OLDEST=("numpy==1.24.0" "scipy==1.10.0" "constriction==0.4.0")

if [ ! -x "$OLD/bin/python" ]; then
    python3.11 -m venv "$OLD"
    if [ -n "${WHEELS:-}" ]; then
        "$OLD/bin/pip" install -q --no-index --find-links "$WHEELS" "${OLDEST[@]}"
    else
        "$OLD/bin/pip" install -q --only-binary=:all: "${OLDEST[@]}"
    fi
fi

# decoding needs numpy, scipy and constriction only; the checkout is imported from its folder
read -r -d '' DECODE <<'EOF' || true
import hashlib, json, sys
from pathlib import Path
from importlib.metadata import version
import numpy, scipy
from bayescompress.archive import read_archive
from bayescompress.packing import unpack
from bayescompress.errors import BayesCompressError
out = {"versions": {"numpy": numpy.__version__, "scipy": scipy.__version__,
                    "constriction": version("constriction")}, "files": {}}
for path in sorted(Path("tests/fixtures").glob("v*.bcz")):
    try:
        tensors = unpack(path).tensors
        digest = {n: hashlib.sha256(v.tobytes()).hexdigest()[:16] for n, v in sorted(tensors.items())}
    except BayesCompressError as exc:
        digest = {"refused": str(exc).split(": ", 1)[-1][:90]}
    out["files"][path.name] = {"version": read_archive(path).version, "sha256": digest}
# every code point's value up to rate 21, and 10^6 random ones up to rate 53, by each quantile function
from bayescompress.vbq import LEGACY_QUANTILE, QUANTILE, standard_quantiles
symbols = numpy.concatenate([numpy.arange(1, 1 << 21), numpy.random.default_rng(0).integers(1 << 21, 1 << 53, 10**6)])
for name in (QUANTILE, LEGACY_QUANTILE):
    digest = hashlib.sha256(standard_quantiles(symbols, name).tobytes()).hexdigest()[:16]
    out["files"][f"code points by {name}"] = {"version": 2 if name == QUANTILE else 1,
                                               "sha256": {"values": digest}}
print(json.dumps(out))
EOF

new=$(PYTHONPATH=. "$NEW_PY" -c "$DECODE")
old=$(PYTHONPATH=. "$OLD/bin/python" -c "$DECODE")
NEW_JSON="$new" OLD_JSON="$old" "$NEW_PY" - <<'EOF'
import json, os, sys
new, old = json.loads(os.environ["NEW_JSON"]), json.loads(os.environ["OLD_JSON"])
print(f"newest: {new['versions']}")
print(f"oldest: {old['versions']}")
print("| fixture | format version | decoded SHA-256 (newest) | oldest | same |")
print("|---|---|---|---|---|")
failed = False
for name, entry in new["files"].items():
    a, b = entry["sha256"], old["files"][name]["sha256"]
    same = a == b and "refused" not in a
    failed |= entry["version"] >= 2 and not same
    show = lambda d: ", ".join(f"{k} {v}" for k, v in d.items())
    print(f"| {name} | {entry['version']} | {show(a)} | {show(b)} | {'yes' if same else 'NO'} |")
sys.exit(1 if failed else 0)
EOF
