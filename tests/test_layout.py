"""The numeric core starts fast: pack, unpack and info never import torch or pyro."""

from __future__ import annotations

import subprocess
import sys

from bayescompress.packing import pack

CHECK = """
import sys
from bayescompress.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "pyro", "gensim", "matplotlib") if m in sys.modules)
print("heavy:", ",".join(heavy))
sys.exit(code)
"""


def run_cli_in_fresh_interpreter(*args):
    return subprocess.run([sys.executable, "-c", CHECK, *map(str, args)], capture_output=True, text=True)


def test_pack_unpack_and_info_import_no_torch_pyro_gensim_or_matplotlib(tmp_path, posterior_file):
    commands = [
        ("pack", posterior_file, "--lambda", "1", "-o", tmp_path / "a.bcz"),
        ("info", tmp_path / "a.bcz"),
        ("unpack", tmp_path / "a.bcz", "-o", tmp_path / "a.npz"),
    ]
    for command in commands:
        result = run_cli_in_fresh_interpreter(*command)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith("heavy:"), (command[0], result.stdout)


def test_the_library_api_needs_no_heavy_imports_either(tmp_path, posterior):
    pack(posterior, tmp_path / "a.bcz", lam=1.0)
    code = ("import sys, bayescompress as bc; bc.unpack(sys.argv[1]); bc.archive_info(sys.argv[1]);"
            "print('torch' in sys.modules or 'pyro' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.bcz")],
                            capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
