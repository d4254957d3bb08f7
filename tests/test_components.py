"""The one component surface every registered unit offers.

Every constructor parameter is a read-only property returning the value it
was given; a wrong type raises ``TypeError`` and a bad value ``ValueError``,
both naming the parameter; NumPy integers are accepted; parameter
combinations that make a unit meaningless are rejected.
"""

import inspect

import numpy as np
import pytest

from hdl import registry

# One legal non-default value per parameter (small, so construction is cheap).
OTHER = {
    "ccu_compress": {"lanes": 3, "saturate": False},
    "ccu_compare": {"lanes": 4, "max_elements": 64, "saturate": False},
    "dtsm": {"blocks": 8, "timesteps": 30, "max_elements": 16, "alpha_frac": 10,
             "decide_before_update": True, "reference": "computed"},
    "radit_detector": {"lanes": 8, "max_elements": 512, "blocks": 8, "timesteps": 32, "alpha_frac": 12,
                       "decide_before_update": True, "reference": "computed", "saturate": False},
    "defo_unit": {"entries": 100},
    "ditto_compute_unit": {"pes": 2, "max_row": 64},
    "ditto_encoder": {"in_lanes": 4, "max_row": 64, "queue_depth": 16, "max_offset": 8},
    "ditto_pe": {},
    "itc_pe": {},
    "orbis_dau": {"ch_lanes": 3, "code_width": 5, "weight_width": 10, "channels": 12},
    "orbis_min_tree": {"num_dst": 5, "dist_width": 9},
    "orbis_topk": {"size": 4, "loss_width": 7, "register_every": 2},
    "orbis_datm": {"num_tokens": 13, "channels": 10, "num_dst": 3, "ch_lanes": 4, "scale_width": 9,
                   "scale_frac": 6, "eps_frac": 12, "iter_width": 5, "topk_register_every": 2, "topk_buffer": 4},
    "orbis_qe": {"num_tokens": 13, "channels": 10, "ch_lanes": 4, "data_width": 6, "scale_frac": 6, "dtype": "fp16"},
    # dtype="fp16" fixes the widths (16, 16, 32) and reads them back as such,
    # so the non-default widths go with "int8"; test_fp16_systolic covers fp16.
    "systolic_array": {"rows": 4, "cols": 3, "in_bits": 6, "w_bits": 5, "acc_bits": 24, "dtype": "int8"},
    "systolic_pe": {"in_bits": 6, "w_bits": 5, "acc_bits": 24, "dtype": "int8"},
    "radit_accelerator": {"rows": 4, "cols": 8, "a_depth": 16, "w_depth": 32, "acc_depth": 8, "queue_depth": 4,
                          "stream_bytes": 2, "blocks": 3, "timesteps": 20, "code_depth": 32, "reuse_depth": 16,
                          "alpha_frac": 10},
    "ditto_accelerator": {"cus": 2, "pes": 4, "lanes": 4, "a_depth": 16, "w_depth": 32, "o_depth": 8, "p_depth": 16,
                          "max_k": 16, "defo_entries": 8, "queue_depth": 4, "stream_bytes": 2},
    "systolic_mac_ref": {"in_bits": 6, "w_bits": 5, "acc_bits": 24},
    "fp16_mul": {"lanes": 3},
    "fp32_add": {"lanes": 3},
    "fp16_to_int8": {"lanes": 3},
    "int32_to_fp16": {"lanes": 3},
    "fp32_to_fp16": {"lanes": 3},
    "fp16_to_fp32": {"lanes": 3},
    "axi_shell_demo": {"data_bytes": 8, "queue_depth": 6},
    "gemm_accelerator": {"rows": 4, "cols": 8, "a_depth": 16, "w_depth": 32, "acc_depth": 8, "queue_depth": 4,
                         "stream_bytes": 4, "dtype": "fp16"},
    "orbis_accelerator": {"rows": 4, "cols": 8, "a_depth": 16, "w_depth": 32, "acc_depth": 8, "queue_depth": 4,
                          "stream_bytes": 4, "tokens": 20, "channels": 16, "num_dst": 5, "layers": 3, "rc_steps": 2,
                          "scale_frac": 6, "topk_buffer": 4},
}

# Combinations that are legal parameter by parameter but make the unit
# meaningless: (unit, parameters, the parameter the error names).
MEANINGLESS = [
    # A block is at least one beat; a smaller Δ range saturates within a beat.
    ("ccu_compare", {"lanes": 16, "max_elements": 8}, "max_elements"),
    ("radit_detector", {"lanes": 16, "max_elements": 8}, "max_elements"),
    # The element index must hold a whole beat; the queue must hold two beats.
    ("ditto_encoder", {"in_lanes": 8, "max_row": 4}, "max_row"),
    ("ditto_encoder", {"in_lanes": 8, "queue_depth": 16}, "queue_depth"),
    ("ditto_encoder", {"queue_depth": 48}, "queue_depth"),
    ("ditto_encoder", {"max_offset": 100}, "max_offset"),
    # The distance width holds `channels` terms: a wider beat would overflow it.
    ("orbis_dau", {"ch_lanes": 16, "channels": 8}, "channels"),
    ("orbis_topk", {"size": 12}, "size"),
    # Every weight round(S²/2^F) is 0: the engine would pair at random.
    ("orbis_datm", {"scale_width": 1, "scale_frac": 24}, "scale_frac"),
    ("orbis_datm", {"scale_width": 4, "scale_frac": 9}, "scale_frac"),
    # D dst tokens need at least one src.
    ("orbis_datm", {"num_tokens": 16, "num_dst": 16}, "num_dst"),
    # An AXI4-Stream beat must split an array row into whole beats.
    ("gemm_accelerator", {"rows": 4, "cols": 8, "stream_bytes": 8}, "stream_bytes"),
    # The matched SDPA output is whole N tiles; D dst tokens need a src.
    ("orbis_accelerator", {"channels": 24}, "channels"),
    ("orbis_accelerator", {"tokens": 16, "num_dst": 16}, "num_dst"),
]


UNITS = list(registry.units())


def _params(name):
    return {p.kwarg: p for p in registry.get(name).params.values()}


def _build(name, **kwargs):
    return registry.get(name).component(**kwargs)


def test_every_unit_has_other_values():
    for name in registry.units():
        assert set(OTHER.get(name, {"?": None})) == set(_params(name)), name


@pytest.mark.parametrize("name", UNITS)
def test_parameters_are_read_only_properties(name):
    params = _params(name)
    for values in ({k: p.default for k, p in params.items()}, OTHER[name]):
        c = _build(name, **values)
        for kwarg, value in values.items():
            attr = inspect.getattr_static(type(c), kwarg, None)
            assert isinstance(attr, property), f"{name}.{kwarg} is not a property"
            assert getattr(c, kwarg) == value and type(getattr(c, kwarg)) is type(value), (name, kwarg)
            with pytest.raises(AttributeError):
                setattr(c, kwarg, value)


@pytest.mark.parametrize("name", UNITS)
def test_wrong_type_is_a_type_error_naming_the_parameter(name):
    for kwarg, p in _params(name).items():
        wrong = {int: [2.0, "8", True], bool: [1, "yes", None], str: [1, None]}[p.kind]
        for value in wrong:
            with pytest.raises(TypeError, match=rf"\b{kwarg}\b"):
                _build(name, **{kwarg: value})


@pytest.mark.parametrize("name", UNITS)
def test_bad_value_is_a_value_error_naming_the_parameter(name):
    for kwarg, p in _params(name).items():
        if p.kind is bool:
            continue  # both values are legal
        bad = {int: [-1, 1 << 50], str: ["no-such-choice"]}[p.kind]
        for value in bad:
            with pytest.raises(ValueError, match=rf"\b{kwarg}\b"):
                _build(name, **{kwarg: value})


@pytest.mark.parametrize("name", UNITS)
def test_numpy_integers_work(name):
    values = OTHER[name]
    as_numpy = {k: np.int64(v) if isinstance(v, int) and not isinstance(v, bool) else v
                for k, v in values.items()}
    c = _build(name, **as_numpy)
    plain = _build(name, **values)
    assert c.signature == plain.signature
    for kwarg, value in values.items():
        assert getattr(c, kwarg) == value


@pytest.mark.parametrize("name, params, word", MEANINGLESS, ids=[f"{n}-{'-'.join(p)}" for n, p, _ in MEANINGLESS])
def test_meaningless_combinations_are_rejected(name, params, word):
    with pytest.raises(ValueError, match=rf"\b{word}\b"):
        _build(name, **params)


def test_cli_reports_a_type_error_in_one_line(capsys, tmp_path):
    from amaranth.lib import wiring

    from ditgen import cli
    from hdl.common.params import check_int

    # The command line parses values into each default's type, so a
    # TypeError can only come from a constructor's own checks: a probe unit.
    @registry.unit("probe_type_error", testbench="sim.tb_selftest")
    class Probe(wiring.Component):
        def __init__(self, *, width=4):
            check_int("width", float(width))

    assert cli.main(["emit", "probe_type_error", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "width" in err[0], err


@pytest.mark.parametrize("name", UNITS)
def test_docstring_cites_a_spec_section(name):
    import re

    from hdl.paths import DOCS

    headings = [h.strip() for h in re.findall(r"^#+ (.*)$", (DOCS / "SPEC.md").read_text(), re.M)]
    doc = " ".join(inspect.getdoc(registry.get(name).component).split())
    cited = re.findall(r'docs/SPEC\.md "([^"]+)"', doc)
    assert cited, f"{name} cites no docs/SPEC.md section"
    for section in cited:
        assert any(h.startswith(section) for h in headings), (name, section)
