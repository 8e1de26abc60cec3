"""One object per method: what a quantizer declares is what pack, the CLI, sweeps and rate control use."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayescompress import quantizers
from bayescompress.baselines import UniformQuantizer
from bayescompress.bytecoders import ByteCompressorCoder
from bayescompress.cli import build_parser, main
from bayescompress.errors import BayesCompressError
from bayescompress.methods import default_methods, knob_for
from bayescompress.packing import pack, unpack
from bayescompress.quantizers import quantizer_classes
from bayescompress.ratecontrol import pack_to_target

DESIGN = Path(__file__).parent.parent / "docs" / "design.md"


def worked_example_source() -> str:
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("## Adding a quantizer", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


@pytest.fixture
def deadzone():
    """The quantizer of docs/design.md's worked example, registered for one test."""
    namespace: dict = {}
    exec(compile(worked_example_source(), str(DESIGN), "exec"), namespace)
    yield namespace["DeadZoneQuantizer"]
    quantizers._CLASSES.pop("deadzone", None)


@pytest.mark.parametrize("name", list(quantizer_classes()))
def test_every_method_declares_exactly_the_keywords_its_constructor_takes(name):
    cls = quantizer_classes()[name]
    parameters = inspect.signature(cls).parameters
    assert set(parameters) == set(cls.option_names())
    assert parameters[cls.knob.name].default is inspect.Parameter.empty
    for option in cls.options:
        assert parameters[option.name].default == option.default, option.name
        assert option.help


def test_an_option_shared_by_methods_reads_the_same_everywhere():
    seen = {}
    for cls in quantizer_classes().values():
        for option in (cls.knob, *cls.options):
            spelling = (option.command_line_flag, option.parse, option.choices, option is cls.knob)
            assert seen.setdefault(option.name, spelling) == spelling, option.name


def test_the_pack_command_has_a_flag_for_every_declared_option():
    pack_parser = build_parser()._subparsers._group_actions[0].choices["pack"]
    flags = {flag for action in pack_parser._actions for flag in action.option_strings}
    for cls in quantizer_classes().values():
        for option in (cls.knob, *cls.options):
            assert option.command_line_flag in flags


def test_the_default_sweep_is_the_methods_marked_for_it_then_the_byte_coder_baselines():
    marked = [name for name, cls in quantizer_classes().items() if cls.in_sweep]
    assert default_methods() == (*marked, "gzip", "bzip2", "lzma")
    assert "vbq-refined" not in default_methods() and "vbq" in default_methods()


def test_pack_takes_quantizer_and_coder_objects_and_writes_what_their_names_write(tmp_path, posterior):
    by_object = pack(posterior, tmp_path / "a.bcz", method=UniformQuantizer(0.05, offset="half"),
                     coder=ByteCompressorCoder("lzma"))
    by_name = pack(posterior, tmp_path / "b.bcz", method="uniform", coder="lzma", spacing=0.05, offset="half")
    assert by_object.total_bytes == by_name.total_bytes
    assert (tmp_path / "a.bcz").read_bytes() == (tmp_path / "b.bcz").read_bytes()


def test_pack_refuses_options_beside_a_quantizer_object(tmp_path, posterior):
    with pytest.raises(BayesCompressError, match="quantizer's constructor"):
        pack(posterior, tmp_path / "a.bcz", method=UniformQuantizer(0.05), spacing=0.1)
    assert not (tmp_path / "a.bcz").exists()


def test_a_method_without_its_rate_knob_is_named_with_the_options_it_takes():
    with pytest.raises(BayesCompressError, match="takes options lam, max_rate, prior; got prior"):
        quantizers.make_quantizer("vbq", prior="fit")


def test_the_worked_example_of_the_design_doc_packs_and_unpacks_through_the_command_line(
        tmp_path, posterior, posterior_file, deadzone):
    out = tmp_path / "dz.bcz"
    assert main(["pack", str(posterior_file), "--method", "deadzone", "--spacing", "0.05", "--width", "2",
                 "-o", str(out)]) == 0
    unpacked = unpack(out)
    assert unpacked.header["method"] == "deadzone"
    for name, tensor in posterior.tensors.items():
        expected = np.rint(tensor.mean / 0.05) * 0.05
        expected[np.abs(tensor.mean) < 2 * tensor.std] = 0
        np.testing.assert_allclose(unpacked.tensors[name], expected, rtol=1e-6, atol=1e-7)
    assert np.any(unpacked.tensors["U"] == 0) and np.any(unpacked.tensors["U"] != 0)


def test_the_worked_example_joins_the_sweep_and_rate_control(tmp_path, posterior, deadzone):
    assert "deadzone" in default_methods()
    knob = knob_for("deadzone", posterior)
    assert (knob.option, knob.shrinks) == ("spacing", True)
    result = pack_to_target(posterior, tmp_path / "t.bcz", method="deadzone", bits_per_dim=4.0, width=0.5)
    assert result.met and result.option == "spacing"
    assert abs(8 * result.pack.total_bytes / posterior.n_latents - 4.0) <= 0.04


def test_two_methods_cannot_share_a_name():
    with pytest.raises(TypeError, match="two quantizers are named 'uniform'"):
        type("Impostor", (quantizers.Quantizer,), {"name": "uniform"})


def test_commands_other_than_pack_and_sweep_do_not_import_the_methods(tmp_path, posterior):
    pack(posterior, tmp_path / "a.bcz", lam=1.0)
    code = ("import sys; from bayescompress.cli import main; main(['info', sys.argv[1]]); "
            "print(sorted(m for m in ('bayescompress.vbq', 'bayescompress.baselines', 'scipy.special') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.bcz")], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
