"""Coders behind one protocol: stateless encode, the spec beside the output, a registry by name."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from bayescompress.coders import CODER_NAMES, coder_for, make_coder
from bayescompress.errors import BayesCompressError


@pytest.mark.parametrize("name", CODER_NAMES)
def test_every_coder_decodes_what_it_encoded_from_the_spec_it_returned(name):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(-40, 40, 300), rng.integers(0, 3, 50), np.array([7])]
    coder = make_coder(name)
    tables, stream, spec = coder.encode(arrays)
    reader = coder_for(spec, "test")
    assert reader.name == name
    decoded = reader.decode(spec, tables, stream, [a.size for a in arrays])
    assert [d.tolist() for d in decoded] == [a.tolist() for a in arrays]


@pytest.mark.parametrize("name", CODER_NAMES)
def test_encoding_changes_no_state_of_the_coder(name):
    coder = make_coder(name)
    before = copy.deepcopy(vars(coder))
    wide = coder.encode([np.array([0, 1 << 40])])
    narrow = coder.encode([np.array([0, 1])])
    assert vars(coder) == before
    assert coder.encode([np.array([0, 1 << 40])]) == wide
    if name != "range":
        assert (wide[2]["width_bits"], narrow[2]["width_bits"]) == (64, 8)


def test_an_unknown_coder_name_or_spec_is_a_user_error():
    with pytest.raises(BayesCompressError, match="unknown coder 'zstd'"):
        make_coder("zstd")
    with pytest.raises(BayesCompressError, match="cannot decode"):
        coder_for({"name": "zstd"}, "a.bcz")


def test_pack_refuses_a_method_or_coder_that_is_neither_a_name_nor_an_object(tmp_path):
    from bayescompress.packing import pack
    from bayescompress.posterior import Posterior, TensorPosterior

    posterior = Posterior({"w": TensorPosterior(np.zeros(4), np.ones(4))})
    with pytest.raises(BayesCompressError, match="neither a coder name nor a coder object"):
        pack(posterior, tmp_path / "a.vbq", method="vbq", coder=3, lam=1.0)
    with pytest.raises(BayesCompressError, match="neither a method name nor a Quantizer"):
        pack(posterior, tmp_path / "a.vbq", method=object())
    assert not list(tmp_path.iterdir())
