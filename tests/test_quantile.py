"""The code points' quantile function: basic IEEE operations only, close to scipy, same on every machine."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

import bayescompress.quantile as quantile
from bayescompress import vbq
from bayescompress.packing import pack, unpack

from .conftest import make_posterior


def test_the_quantile_is_within_eight_ulps_of_scipys_ndtri_on_every_kind_of_code_point():
    rng = np.random.default_rng(0)
    numerators = np.concatenate([np.arange(1, 1 << 16, 2), rng.integers(0, 1 << 51, 100000) * 2 + 1])
    rates = np.where(numerators < 1 << 16, 17, 53)
    p = np.ldexp(numerators.astype(np.float64), -rates)
    ours, theirs = quantile.lower_normal_quantile(p), scipy.special.ndtri(p)
    assert np.max(np.abs(ours - theirs) / np.spacing(np.abs(theirs))) <= 8


def test_the_quantile_increases_strictly_over_the_finest_tabulated_grid():
    p = np.ldexp(np.arange(1, (1 << 19) + 1, dtype=np.float64), -20)
    assert np.all(np.diff(quantile.lower_normal_quantile(p)) > 0)


def test_the_logarithm_from_basic_operations_is_within_two_ulps_of_numpys():
    x = np.exp(np.random.default_rng(1).uniform(-740, 700, 100000))
    assert np.max(np.abs(quantile.basic_log(x) - np.log(x)) / np.spacing(np.abs(np.log(x)))) <= 2


def test_decoding_a_current_archive_calls_no_log_exp_or_library_quantile(tmp_path, monkeypatch):
    result = pack(make_posterior(dtype=np.float64), tmp_path / "a.bcz", lam=1e-6)
    vbq._near_side_quantile_table.cache_clear()
    vbq._short_symbol_quantiles.cache_clear()

    def forbidden(*args, **kwargs):
        raise AssertionError("a transcendental function from a library was called while decoding")

    for name in ("log", "log2", "log1p", "exp", "expm1", "power"):
        monkeypatch.setattr(np, name, forbidden)
    monkeypatch.setattr(scipy.special, "ndtri", forbidden)
    # the stream-length check takes a log2 for a bound on sizes; it computes no decoded value
    monkeypatch.setattr("bayescompress.coding.check_stream_can_hold", lambda *args: None)
    unpacked = unpack(tmp_path / "a.bcz")
    for name, values in result.values.items():
        assert unpacked.tensors[name].tobytes() == values.tobytes()


def test_archives_name_the_quantile_function_and_version_1_archives_decode_with_the_legacy_one(tmp_path):
    pack(make_posterior(), tmp_path / "a.bcz", lam=0.1)
    assert unpack(tmp_path / "a.bcz").header["config"]["quantile"] == vbq.QUANTILE == "as241-basic-ops"
    assert vbq.VBQQuantizer.dequantize(np.array([2]), {"loc": "0x0.0p+0", "scale": "0x1.0p+0"}, {})[0] == (
        scipy.special.ndtri(0.25))


def test_an_unknown_quantile_function_is_refused():
    with pytest.raises(ValueError, match="unknown quantile function 'erfinv'"):
        vbq.VBQQuantizer.dequantize(np.array([2]), {"loc": "0x0.0p+0", "scale": "0x1.0p+0"},
                                    {"quantile": "erfinv"})
