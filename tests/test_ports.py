"""Every unit's documented ports, names and widths, read from its signature.

One explicit test per unit, at the defaults and at one other parameter set,
so that an accidental change of a port layout fails here rather than in a
testbench. The numbers are written out, not recomputed from the unit's own
width formulas. Port names are the Verilog ones (signature paths joined with
``__``, as Amaranth emits them); ``in``/``out`` are seen from the unit.
"""

import pytest
from amaranth.hdl import Shape, Value
from amaranth.lib import data, wiring

from hdl import registry


def ports(component) -> dict[str, tuple[str, int]]:
    """``{verilog_name: (direction, width)}`` of a component's signature."""
    out = {}
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        out[name] = ("in" if member.flow == wiring.In else "out", len(Value.cast(value)))
    return out


def fields(component, member: str, sub: str = "payload") -> dict[str, int]:
    """Field sizes of a struct payload (``i.payload`` ...), in declaration order."""
    layout = data.Layout.cast(component.signature.members[member].signature.members[sub].shape)
    return {name: _width(field.shape) for name, field in layout}


def _width(shape) -> int:
    return shape.size if isinstance(shape, data.Layout) else Shape.cast(shape).width


def stream(prefix: str, payload: int, direction: str) -> dict[str, tuple[str, int]]:
    """The three ports of a stream member: payload and valid flow with it, ready against it."""
    back = "out" if direction == "in" else "in"
    return {f"{prefix}__payload": (direction, payload), f"{prefix}__valid": (direction, 1),
            f"{prefix}__ready": (back, 1)}


def axi_lite(prefix: str, addr_width: int) -> dict[str, tuple[str, int]]:
    """An AXI4-Lite subordinate port (32-bit data), seen from the unit."""
    channels = {"awaddr": ("in", addr_width), "awprot": ("in", 3), "awvalid": ("in", 1), "awready": ("out", 1),
                "wdata": ("in", 32), "wstrb": ("in", 4), "wvalid": ("in", 1), "wready": ("out", 1),
                "bresp": ("out", 2), "bvalid": ("out", 1), "bready": ("in", 1),
                "araddr": ("in", addr_width), "arprot": ("in", 3), "arvalid": ("in", 1), "arready": ("out", 1),
                "rdata": ("out", 32), "rresp": ("out", 2), "rvalid": ("out", 1), "rready": ("in", 1)}
    return {f"{prefix}__{name}": port for name, port in channels.items()}


def axi_stream(prefix: str, data_bits: int, direction: str) -> dict[str, tuple[str, int]]:
    """An AXI4-Stream port with ``tlast``: ``tready`` flows against the data."""
    back = "out" if direction == "in" else "in"
    return {f"{prefix}__tdata": (direction, data_bits), f"{prefix}__tvalid": (direction, 1),
            f"{prefix}__tready": (back, 1), f"{prefix}__tlast": (direction, 1)}


def build(name, **params):
    return registry.get(name).build({k.upper(): v for k, v in params.items()})


def test_every_unit_is_covered_here_or_by_its_owner():
    covered = {name[len("test_"):-len("_ports")] for name in globals()
               if name.startswith("test_") and name.endswith("_ports")}
    assert set(registry.units()) <= covered, set(registry.units()) - covered


# ---------------------------------------------------------------------------- RADiT

@pytest.mark.parametrize("params, lanes", [({}, 16), ({"lanes": 3}, 3)])
def test_ccu_compress_ports(params, lanes):
    c = build("ccu_compress", **params)
    assert ports(c) == {**stream("i", 16 * lanes, "in"), **stream("o", 4 * lanes, "out")}


@pytest.mark.parametrize("params, lanes, dw", [({}, 16, 21), ({"lanes": 4, "max_elements": 64}, 4, 9)])
def test_ccu_compare_ports(params, lanes, dw):
    c = build("ccu_compare", **params)
    assert ports(c) == {**stream("i", 16 * lanes + 1, "in"), **stream("prev", 4 * lanes, "in"),
                        **stream("codes", 4 * lanes, "out"), **stream("delta", dw, "out")}
    assert fields(c, "i") == {"data": 16 * lanes, "last": 1}


@pytest.mark.parametrize("params, bw, tw, dw, af", [
    ({}, 6, 8, 21, 15),
    ({"blocks": 8, "timesteps": 30, "max_elements": 16, "alpha_frac": 10}, 3, 5, 7, 10),
])
def test_dtsm_ports(params, bw, tw, dw, af):
    c = build("dtsm", **params)
    request = {"delta": dw, "block": bw, "t": tw, "first": 1}
    decision = {"block": bw, "delta": dw, "theta": dw + 1, "theta_valid": 1, "skip": 1, "write_back": 1}
    assert fields(c, "i") == request
    assert fields(c, "o") == decision
    assert ports(c) == {**stream("i", sum(request.values()), "in"), **stream("o", sum(decision.values()), "out"),
                        "alpha__en": ("in", 1), "alpha__addr": ("in", tw), "alpha__data": ("in", af + 1)}


@pytest.mark.parametrize("params, lanes, bw, tw, dw", [
    ({}, 16, 6, 8, 21),
    ({"lanes": 8, "max_elements": 512, "blocks": 8, "timesteps": 32}, 8, 3, 6, 12),
])
def test_radit_detector_ports(params, lanes, bw, tw, dw):
    c = build("radit_detector", **params)
    beat = {"data": 16 * lanes, "last": 1, "first": 1, "block": bw, "t": tw}
    decision = {"block": bw, "delta": dw, "theta": dw + 1, "theta_valid": 1, "skip": 1, "write_back": 1}
    assert fields(c, "i") == beat
    assert fields(c, "o") == decision
    assert ports(c) == {**stream("i", sum(beat.values()), "in"), **stream("prev", 4 * lanes, "in"),
                        **stream("codes", 4 * lanes, "out"), **stream("o", sum(decision.values()), "out"),
                        "alpha__en": ("in", 1), "alpha__addr": ("in", tw), "alpha__data": ("in", 16)}


# ---------------------------------------------------------------------------- Ditto

@pytest.mark.parametrize("params, layer_bits", [({}, 9), ({"entries": 100}, 7)])
def test_defo_unit_ports(params, layer_bits):
    c = build("defo_unit", **params)
    assert fields(c, "i") == {"op": 1, "layer": layer_bits, "step": 2}
    assert fields(c, "o") == {"use_diff": 1, "decision": 1, "cycles_act": 16, "cycles_diff": 16}
    assert ports(c) == {"tick": ("in", 1), **stream("i", layer_bits + 3, "in"), **stream("o", 34, "out")}


def _lanes_beat(index_bits):
    # Four lanes of {nib 4, ext 1, index, valid 1}, the hi flags of lanes 0 and 2, last.
    return 4 * (4 + 1 + index_bits + 1) + 2 + 1


@pytest.mark.parametrize("params, pes, addr_bits, index_bits", [
    ({}, 16, 11, 11), ({"pes": 2, "max_row": 64}, 2, 6, 6)])
def test_ditto_compute_unit_ports(params, pes, addr_bits, index_bits):
    c = build("ditto_compute_unit", **params)
    assert fields(c, "w") == {"addr": addr_bits, "row": 8 * pes}
    assert fields(c, "i") == {"lanes": 4 * (6 + index_bits), "hi": 2, "last": 1}
    assert ports(c) == {**stream("w", addr_bits + 8 * pes, "in"), **stream("i", _lanes_beat(index_bits), "in"),
                        **stream("o", 32 * pes, "out")}


@pytest.mark.parametrize("params, lanes, offset_bits, index_bits", [
    ({}, 8, 9, 11), ({"in_lanes": 4, "max_row": 64, "queue_depth": 16, "max_offset": 8}, 4, 4, 6)])
def test_ditto_encoder_ports(params, lanes, offset_bits, index_bits):
    c = build("ditto_encoder", **params)
    assert fields(c, "i") == {"cur": 8 * lanes, "prev": 8 * lanes, "mode": 2, "last": 1, "layer_last": 1}
    assert fields(c, "o") == {"lanes": 4 * (6 + index_bits), "hi": 2, "last": 1}
    assert fields(c, "stats") == {"zero": 32, "low": 32, "full": 32, "cycles": 32}
    assert ports(c) == {**stream("i", 16 * lanes + 4, "in"), "spatial_offset": ("in", offset_bits),
                        **stream("o", _lanes_beat(index_bits), "out"), **stream("stats", 128, "out")}


def _adder_tree_pe(name, operand_bits):
    # No parameters: the defaults are the only set.
    c = build(name)
    assert fields(c, "i") == {"a": 4 * operand_bits, "w": 32, "hi": 2, "clear": 1, "last": 1}
    assert ports(c) == {**stream("i", 4 * operand_bits + 36, "in"), **stream("o", 32, "out")}


def test_ditto_pe_ports():
    _adder_tree_pe("ditto_pe", 5)


def test_itc_pe_ports():
    _adder_tree_pe("itc_pe", 8)


# ---------------------------------------------------------------------------- ORBIS

@pytest.mark.parametrize("params, lanes, cw, ww, dist", [
    ({}, 8, 4, 17, 30), ({"ch_lanes": 3, "code_width": 5, "weight_width": 10, "channels": 12}, 3, 5, 10, 24)])
def test_orbis_dau_ports(params, lanes, cw, ww, dist):
    c = build("orbis_dau", **params)
    assert fields(c, "i") == {"src": lanes * cw, "dst": lanes * cw, "weight": lanes * ww, "last": 1}
    assert ports(c) == {**stream("i", lanes * (2 * cw + ww) + 1, "in"), **stream("o", dist, "out")}


@pytest.mark.parametrize("params, d, w, iw", [({}, 16, 31, 4), ({"num_dst": 5, "dist_width": 9}, 5, 9, 3)])
def test_orbis_min_tree_ports(params, d, w, iw):
    c = build("orbis_min_tree", **params)
    assert fields(c, "o") == {"dist": w, "index": iw}
    assert ports(c) == {**stream("i", d * w, "in"), **stream("o", w + iw, "out")}


@pytest.mark.parametrize("params, size, lw, kw, iw", [
    ({}, 16, 16, 5, 4), ({"size": 4, "loss_width": 7, "register_every": 2}, 4, 7, 3, 2)])
def test_orbis_topk_ports(params, size, lw, kw, iw):
    c = build("orbis_topk", **params)
    assert fields(c, "i") == {"loss": size * lw, "valid": size, "k": kw}
    assert fields(c, "o") == {"loss": lw, "index": iw, "last": 1}
    assert ports(c) == {**stream("i", size * (lw + 1) + kw, "in"), **stream("o", lw + iw + 1, "out")}


@pytest.mark.parametrize("params, cmd, lanes, total, token_bits", [
    ({}, {"k": 7, "max_iter": 8, "eps": 17, "seed": 6}, 8, 37, 6),
    ({"num_tokens": 13, "channels": 10, "num_dst": 3, "ch_lanes": 4, "topk_register_every": 2},
     {"k": 4, "max_iter": 8, "eps": 17, "seed": 4}, 4, 33, 4),
])
def test_orbis_datm_ports(params, cmd, lanes, total, token_bits):
    c = build("orbis_datm", **params)
    assert fields(c, "cmd") == cmd
    assert fields(c, "losses") == {"total": total, "iteration": 8, "last": 1}
    assert fields(c, "pairs") == {"src": token_bits, "dst": token_bits, "last": 1}
    assert ports(c) == {**stream("cmd", sum(cmd.values()), "in"), **stream("scales", 13 * lanes, "in"),
                        **stream("tokens", 4 * lanes, "in"), **stream("losses", total + 9, "out"),
                        **stream("pairs", 2 * token_bits + 1, "out")}


@pytest.mark.parametrize("params, lanes, dw, sw", [
    ({}, 8, 8, 13), ({"num_tokens": 13, "channels": 10, "ch_lanes": 4, "data_width": 6, "scale_frac": 6}, 4, 6, 9)])
def test_orbis_qe_ports(params, lanes, dw, sw):
    c = build("orbis_qe", **params)
    assert ports(c) == {**stream("i", lanes * dw, "in"), **stream("scales", lanes * sw, "out"),
                        **stream("o", lanes * 4, "out")}


@pytest.mark.parametrize("params, lanes, sw", [({"dtype": "fp16"}, 8, 9), ({"ch_lanes": 4, "scale_frac": 6,
                                                                           "dtype": "fp16"}, 4, 7)])
def test_orbis_qe_fp16_ports(params, lanes, sw):
    # binary16 activations whatever data_width says; scales are F + 1 bits.
    c = build("orbis_qe", **params)
    assert ports(c) == {**stream("i", lanes * 16, "in"), **stream("scales", lanes * sw, "out"),
                        **stream("o", lanes * 4, "out"), "nonfinite": ("out", 1)}


# ---------------------------------------------------------------------------- Systolic

@pytest.mark.parametrize("params, iw, ww, aw", [({}, 8, 8, 32), ({"in_bits": 6, "w_bits": 5, "acc_bits": 24}, 6, 5, 24),
                                                ({"dtype": "fp16"}, 16, 16, 32)])
def test_systolic_pe_ports(params, iw, ww, aw):
    c = build("systolic_pe", **params)
    assert ports(c) == {"ce": ("in", 1), "a_in": ("in", iw), "f_in": ("in", 1), "e_in": ("in", 1),
                        "w_in": ("in", ww), "p_in": ("in", aw), "a_out": ("out", iw), "f_out": ("out", 1),
                        "e_out": ("out", 1), "w_out": ("out", ww), "p_out": ("out", aw)}


@pytest.mark.parametrize("params, iw, ww, aw", [({}, 8, 8, 32), ({"in_bits": 6, "w_bits": 5, "acc_bits": 24}, 6, 5, 24)])
def test_systolic_mac_ref_ports(params, iw, ww, aw):
    c = build("systolic_mac_ref", **params)
    assert ports(c) == {"a": ("in", iw), "b": ("in", ww), "clr": ("in", 1), "acc": ("out", aw)}


@pytest.mark.parametrize("params, rows, cols, iw, ww, aw", [
    ({}, 64, 64, 8, 8, 32),
    ({"rows": 4, "cols": 3, "in_bits": 6, "w_bits": 5, "acc_bits": 24}, 4, 3, 6, 5, 24),
    ({"rows": 4, "cols": 3, "dtype": "fp16"}, 4, 3, 16, 16, 32),
])
def test_systolic_array_ports(params, rows, cols, iw, ww, aw):
    c = build("systolic_array", **params)
    assert fields(c, "a") == {"data": rows * iw, "last": 1}
    assert fields(c, "o") == {"data": cols * aw, "last": 1}
    assert ports(c) == {**stream("w", cols * ww, "in"), **stream("a", rows * iw + 1, "in"),
                        **stream("o", cols * aw + 1, "out")}


# ---------------------------------------------------------------------------- FP units

@pytest.mark.parametrize("lanes", [1, 3])
def test_fp16_mul_ports(lanes):
    c = build("fp16_mul", lanes=lanes)
    assert fields(c, "i") == {"a": 16 * lanes, "b": 16 * lanes}
    assert ports(c) == {**stream("i", 32 * lanes, "in"), **stream("o", 32 * lanes, "out")}


@pytest.mark.parametrize("lanes", [1, 3])
def test_fp32_add_ports(lanes):
    c = build("fp32_add", lanes=lanes)
    assert fields(c, "i") == {"a": 32 * lanes, "b": 32 * lanes}
    assert ports(c) == {**stream("i", 64 * lanes, "in"), **stream("o", 32 * lanes, "out")}


@pytest.mark.parametrize("lanes", [1, 3])
def test_fp16_to_int8_ports(lanes):
    c = build("fp16_to_int8", lanes=lanes)
    assert fields(c, "i") == {"data": 16 * lanes, "scale": 16}
    assert ports(c) == {**stream("i", 16 * lanes + 16, "in"), **stream("o", 8 * lanes, "out")}


@pytest.mark.parametrize("lanes", [1, 3])
def test_int32_to_fp16_ports(lanes):
    c = build("int32_to_fp16", lanes=lanes)
    assert ports(c) == {**stream("i", 32 * lanes, "in"), **stream("o", 16 * lanes, "out")}


@pytest.mark.parametrize("lanes", [1, 3])
def test_fp32_to_fp16_ports(lanes):
    c = build("fp32_to_fp16", lanes=lanes)
    assert ports(c) == {**stream("i", 32 * lanes, "in"), **stream("o", 16 * lanes, "out")}


@pytest.mark.parametrize("lanes", [1, 3])
def test_fp16_to_fp32_ports(lanes):
    c = build("fp16_to_fp32", lanes=lanes)
    assert ports(c) == {**stream("i", 16 * lanes, "in"), **stream("o", 32 * lanes, "out")}


# ---------------------------------------------------------------------------- Tops

@pytest.mark.parametrize("params, data_bits", [({}, 32), ({"data_bytes": 8, "queue_depth": 6}, 64)])
def test_axi_shell_demo_ports(params, data_bits):
    c = build("axi_shell_demo", **params)
    assert ports(c) == {**axi_lite("s_axil", 12), **axi_stream("s_axis", data_bits, "in"),
                        **axi_stream("m_axis", data_bits, "out"), "irq": ("out", 1)}


@pytest.mark.parametrize("params, data_bits", [
    ({}, 128),
    ({"rows": 4, "cols": 8, "a_depth": 16, "w_depth": 32, "acc_depth": 8, "queue_depth": 4, "stream_bytes": 4}, 32),
    ({"rows": 4, "cols": 8, "stream_bytes": 4, "dtype": "fp16"}, 32),
])
def test_gemm_accelerator_ports(params, data_bits):
    c = build("gemm_accelerator", **params)
    assert ports(c) == {**axi_lite("s_axil", 12), **axi_stream("s_axis", data_bits, "in"),
                        **axi_stream("m_axis", data_bits, "out"), "irq": ("out", 1)}


@pytest.mark.parametrize("params, data_bits", [
    ({}, 128),
    ({"rows": 4, "cols": 4, "stream_bytes": 4}, 32),
])
def test_radit_accelerator_ports(params, data_bits):
    c = build("radit_accelerator", **params)
    assert ports(c) == {**axi_lite("s_axil", 12), **axi_stream("s_axis", data_bits, "in"),
                        **axi_stream("m_axis", data_bits, "out"), "irq": ("out", 1)}


@pytest.mark.parametrize("params, data_bits", [
    ({}, 64),
    ({"cus": 2, "pes": 4, "lanes": 8, "stream_bytes": 4}, 32),
])
def test_ditto_accelerator_ports(params, data_bits):
    c = build("ditto_accelerator", **params)
    assert ports(c) == {**axi_lite("s_axil", 12), **axi_stream("s_axis", data_bits, "in"),
                        **axi_stream("m_axis", data_bits, "out"), "irq": ("out", 1)}


@pytest.mark.parametrize("params, data_bits", [
    ({}, 128),
    ({"rows": 4, "cols": 4, "stream_bytes": 4, "tokens": 16, "channels": 8, "num_dst": 4}, 32),
])
def test_orbis_accelerator_ports(params, data_bits):
    c = build("orbis_accelerator", **params)
    assert ports(c) == {**axi_lite("s_axil", 12), **axi_stream("s_axis", data_bits, "in"),
                        **axi_stream("m_axis", data_bits, "out"), "irq": ("out", 1)}
