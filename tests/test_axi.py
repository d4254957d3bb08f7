"""The host-interface kit: register-map validation and exports, the
``ditgen header`` command, and the AXI4-Lite / AXI4-Stream RTL co-simulated
with cocotbext-axi through ``sim.axi`` (docs/SPEC.md, "Host interface")."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from ditgen import cli
from hdl.common.axi_demo import AXIShellDemo
from hdl.common.regmap import CommandFormat, Field, Register, RegisterMap, c_header, json_description


def _map(**kw):
    return RegisterMap("m", [
        Register("id", 0, 32, "ro", reset=7),
        Register("ctrl", 4, [Field("go", 0, 1), Field("mode", 4, 3, reset=5)], "wo"),
        Register("cfg", 8, [Field("a", 0, 8, reset=1), Field("b", 8, 8)], "rw"),
        Register("irq", 12, [Field("done", 0, 1)], "w1c"),
    ], **kw)


# -- validation -------------------------------------------------------------

@pytest.mark.parametrize("make, error, words", [
    (lambda: Field("x", -1, 1), ValueError, "lsb"),
    (lambda: Field("x", 0, 0), ValueError, "width"),
    (lambda: Field("x", "0", 1), TypeError, "lsb"),
    (lambda: Field("x", 0, 2, reset=4), ValueError, "reset"),
    (lambda: Field("1x", 0, 1), ValueError, "field name"),
    (lambda: Field(3, 0, 1), TypeError, "field name"),
    (lambda: Field("x", 0, 1, access="rx"), ValueError, "access"),
    (lambda: Register("r", 2, 8), ValueError, "word-aligned"),
    (lambda: Register("r", 0, 33), ValueError, "width"),
    (lambda: Register("r", 0, 8, "rwx"), ValueError, "access"),
    (lambda: Register("r", 0, 8, reset=256), ValueError, "reset"),
    (lambda: Register("r", 0, "8"), TypeError, "fields"),
    (lambda: Register("r", 0, []), ValueError, "at least one field"),
    (lambda: Register("r", 0, [Field("a", 0, 4), Field("b", 3, 2)]), ValueError, "overlap"),
    (lambda: Register("r", 0, [Field("a", 0, 4), Field("A", 4, 2)]), ValueError, "used twice"),
    (lambda: Register("r", 0, [Field("a", 30, 4)]), ValueError, "does not fit"),
    (lambda: Register("r", 0, [Field("a", 0, 4, access="ro")], "rw"), ValueError, "one access type"),
    (lambda: Register("r", 0, [Field("a", 0, 4)], reset=1), ValueError, "reset comes from the fields"),
    (lambda: Register("r", 0, [3]), TypeError, "Field objects"),
    (lambda: RegisterMap("m", []), ValueError, "at least one register"),
    (lambda: RegisterMap("m", [Register("a", 0, 8), Register("b", 0, 8)]), ValueError, "overlap at offset 0x0"),
    (lambda: RegisterMap("m", [Register("a", 0, 8), Register("A", 4, 8)]), ValueError, "used twice"),
    (lambda: RegisterMap("m", [Register("a", 0x100, 8)], addr_width=8), ValueError, "outside"),
    (lambda: RegisterMap("m", [Register("a", 0, 8)], version=1 << 32), ValueError, "version"),
    (lambda: RegisterMap("m", [Register("a", 0, [Field("b", 0, 1)]), Register("a_b", 4, 8)]),
     ValueError, "M_A_B_WIDTH"),
    (lambda: RegisterMap("m", "ab"), TypeError, "registers"),
    (lambda: CommandFormat("c", 2, [Field("a", 28, 8)]), ValueError, "straddles"),
    (lambda: CommandFormat("c", 1, [Field("a", 32, 8)]), ValueError, "does not fit"),
    (lambda: CommandFormat("c", 1, [Field("op", 0, 2)], {"x": 4}, opcode_field="op"), ValueError, "opcode 'x'"),
    (lambda: CommandFormat("c", 1, [Field("op", 0, 2)], {"x": 1, "y": 1}, opcode_field="op"),
     ValueError, "share value 1"),
    (lambda: CommandFormat("c", 1, [Field("a", 0, 2)], {"x": 1}), ValueError, "opcode_field 'opcode'"),
    (lambda: CommandFormat("c", 0, [Field("a", 0, 2)]), ValueError, "words"),
])
def test_validation_errors_name_the_culprit(make, error, words):
    with pytest.raises(error, match=re.escape(words)):
        make()


def test_numpy_integers_are_accepted_and_maps_are_queried_by_name():
    m = RegisterMap("n", [Register("r", np.int64(8), [Field("f", np.uint8(2), np.int32(3), reset=np.int16(5))])],
                    version=np.uint32(3))
    r = m["R"]
    assert (r.offset, r.width, r.reset, r.mask) == (8, 5, 5 << 2, 0b11100)
    assert m.at(8) is r and m.at(4) is None and "r" in m and len(m) == 1
    assert r.field("f").mask == 0b11100
    with pytest.raises(KeyError, match="no register 'q'"):
        m["q"]


def test_command_pack_unpack_round_trip_and_range_checks():
    fmt = CommandFormat("c", 3, [Field("opcode", 0, 4), Field("n", 8, 16, reset=3), Field("addr", 32, 32),
                                 Field("len", 64, 12)], {"load": 1, "store": 2})
    words = fmt.pack(opcode="store", addr=0xDEADBEEF, len=4095)
    assert words == [2 | 3 << 8, 0xDEADBEEF, 4095]
    assert fmt.unpack(words) == {"opcode": 2, "n": 3, "addr": 0xDEADBEEF, "len": 4095}
    with pytest.raises(ValueError, match="'len'"):
        fmt.pack(len=4096)
    with pytest.raises(KeyError, match="no field 'bogus'"):
        fmt.pack(bogus=1)
    with pytest.raises(KeyError, match="no opcode 'jump'"):
        fmt.pack(opcode="jump")
    with pytest.raises(ValueError, match="3 words"):
        fmt.unpack([0, 0])
    assert fmt.layout().size == 4 + 16 + 32 + 12


# -- exports ----------------------------------------------------------------

_DEFINE = re.compile(r"^#define (\w+) (0x[0-9A-F]+|\d+)u$", re.M)


def _defines(text):
    return {name: int(value, 0) for name, value in _DEFINE.findall(text)}


def _expected_defines(doc):
    """Every macro the header must carry, derived from the JSON alone."""
    rm, cmd = doc["regmap"], doc["commands"]
    p = rm["name"].upper()
    want = {f"{p}_VERSION": rm["version"], f"{p}_ADDR_WIDTH": rm["addr_width"]}
    for r in rm["registers"]:
        rp = f"{p}_{r['name'].upper()}"
        want.update({f"{rp}_OFFSET": r["offset"], f"{rp}_WIDTH": r["width"], f"{rp}_MASK": r["mask"],
                     f"{rp}_RESET": r["reset"]})
        for f in r["fields"]:
            fp = f"{rp}_{f['name'].upper()}"
            want.update({f"{fp}_SHIFT": f["lsb"], f"{fp}_WIDTH": f["width"], f"{fp}_MASK": f["mask"]})
            assert f["mask"] == ((1 << f["width"]) - 1) << f["lsb"]
    if cmd:
        cp = cmd["name"].upper()
        want[f"{cp}_WORDS"] = cmd["words"]
        want.update({f"{cp}_OP_{k.upper()}": v for k, v in cmd["opcodes"].items()})
        for f in cmd["fields"]:
            fp = f"{cp}_{f['name'].upper()}"
            want.update({f"{fp}_WORD": f["word"], f"{fp}_SHIFT": f["lsb"], f"{fp}_WIDTH": f["width"],
                         f"{fp}_MASK": f["mask"]})
    return want


def test_c_header_matches_json_exactly():
    top = AXIShellDemo()
    header = c_header("axi_shell_demo", top.REGMAP, top.COMMANDS)
    doc = json.loads(json_description("axi_shell_demo", top.REGMAP, top.COMMANDS))
    assert _defines(header) == _expected_defines(doc)
    assert "#ifndef AXI_SHELL_DEMO_H" in header and "#include <stdint.h>" in header
    assert "/* status (ro): state */" in header
    # The JSON carries what firmware needs beyond the macros.
    reg = {r["name"]: r for r in doc["regmap"]["registers"]}
    assert reg["irq_status"]["access"] == "w1c" and reg["scratch"]["reset"] == 0x5A5A5A5A
    assert reg["params"]["fields"][0]["doc"] == "AXI4-Stream tdata bytes"


def test_standalone_exports_agree_with_the_combined_ones():
    m = _map()
    assert json.loads(m.to_json()) == json.loads(json_description("m", m))["regmap"]
    assert _defines(m.to_c_header()) == _defines(c_header("m", m))
    assert m.to_dict()["registers"][1]["reset"] == 5 << 4


def _compile(tmp_path, header, body):
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    (tmp_path / "regs.h").write_text(header)
    src = tmp_path / "use.c"
    src.write_text('#include "regs.h"\n#include "regs.h"\n' + body)
    return subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-c", str(src), "-o", str(tmp_path / "use.o")],
                          capture_output=True, text=True)


def test_c_header_compiles_and_its_values_hold_in_c(tmp_path):
    top = AXIShellDemo()
    header = c_header("axi_shell_demo", top.REGMAP, top.COMMANDS)
    checks = "\n".join(f"_Static_assert({name} == {value}u, \"{name}\");"
                       for name, value in _defines(header).items())
    out = _compile(tmp_path, header, "#include <assert.h>\n" + checks + "\nuint32_t f(void) { return "
                   "AXI_SHELL_DEMO_STATUS_BUSY_MASK | AXI_SHELL_DEMO_CMD_OFFSET; }\n")
    assert out.returncode == 0, out.stderr
    # The check can fail: a wrong value does not compile.
    bad = _compile(tmp_path, header, "_Static_assert(AXI_SHELL_DEMO_CMD_OFFSET == 0u, \"x\");\n")
    assert bad.returncode != 0


# -- ditgen header ------------------------------------------------------------

def test_ditgen_header_writes_header_and_json(tmp_path, capsys):
    assert cli.main(["header", "axi_shell_demo", "QUEUE_DEPTH=9", "--out", str(tmp_path)]) == 0
    header = (tmp_path / "axi_shell_demo.h").read_text()
    doc = json.loads((tmp_path / "axi_shell_demo.json").read_text())
    assert doc["unit"] == "axi_shell_demo" and doc["commands"]["name"] == "axi_shell_demo_cmd"
    assert _defines(header) == _expected_defines(doc)
    assert _defines(header)["AXI_SHELL_DEMO_PARAMS_RESET"] == 9 << 8 | 4  # the parameters reach the map


@pytest.mark.parametrize("argv, words", [
    (["header", "nosuch"], "unknown unit"),
    (["header", "ccu_compress"], "no register map"),
    (["header", "axi_shell_demo", "BOGUS=1"], "no parameter"),
])
def test_ditgen_header_errors_are_one_line_exit_2(argv, words, capsys, tmp_path):
    assert cli.main(argv + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err


# -- RTL: elaboration-level checks ---------------------------------------------

def test_slave_ports_follow_the_access_types():
    from hdl.common.axi import AXI4LiteRegisters

    regs = AXI4LiteRegisters(_map())
    members = dict(regs.signature.members)
    assert members["id"].flow.name == "In" and members["cfg"].flow.name == "Out"
    assert members["ctrl"].flow.name == "Out" and members["ctrl_wstb"].flow.name == "Out"
    assert members["irq"].flow.name == "Out" and members["irq_set"].flow.name == "In"
    assert "cfg_wstb" not in members
    assert {n for n in members["s_axil"].signature.members} == {
        "awaddr", "awvalid", "awready", "awprot", "wdata", "wstrb", "wvalid", "wready", "bresp", "bvalid",
        "bready", "araddr", "arvalid", "arready", "arprot", "rdata", "rresp", "rvalid", "rready"}
    assert regs.cfg.a.shape().width == 8  # fields are views
    with pytest.raises(TypeError, match="RegisterMap"):
        AXI4LiteRegisters("m")


@pytest.mark.parametrize("kw, error", [
    ({"data_bytes": 0}, ValueError), ({"data_bytes": 2.5}, TypeError), ({"last": 1}, TypeError),
    ({"registered": "yes"}, TypeError), ({"user": -1}, ValueError),
])
def test_stream_adapter_parameters_are_validated(kw, error):
    from hdl.common.axi import AXIStreamToStream, StreamToAXIStream

    for cls in (AXIStreamToStream, StreamToAXIStream):
        with pytest.raises(error):
            cls(**kw)


@pytest.mark.parametrize("kw, error", [({"data_bytes": 0}, ValueError), ({"queue_depth": 256}, ValueError),
                                       ({"queue_depth": "4"}, TypeError)])
def test_demo_parameters_are_validated(kw, error):
    with pytest.raises(error):
        AXIShellDemo(**kw)


# -- co-simulation ---------------------------------------------------------------

@pytest.mark.cosim
def test_shell_demo_cosim(cosim):
    """Register access, random pipelined traffic, reset mid-traffic, the stream
    path and the command queue, in one simulator run (one start-up)."""
    cosim("axi_shell_demo", {}, testcase=["register_access", "random_register_traffic", "reset_during_traffic",
                                          "stream_path", "commands_and_irq"],
          args={"transactions": 400, "frames": 60, "pause": 0.3})


@pytest.mark.cosim
def test_shell_demo_other_widths(cosim):
    """One byte lane and a queue of one: every path at its narrowest."""
    cosim("axi_shell_demo", {"DATA_BYTES": 1, "QUEUE_DEPTH": 1},
          testcase=["register_access", "stream_path", "commands_and_irq"], args={"frames": 30, "pause": 0.4})


@pytest.mark.cosim
@pytest.mark.slow
def test_shell_demo_compute_speed(cosim):
    """Measures (does not assert) cycles/s while the top computes with the VIP attached."""
    r = cosim("axi_shell_demo", {}, testcase="compute_speed", args={"speed_cycles": 2_000_000})
    print("cycles per second:", r["result"]["cycles_per_second"])


def test_formal_harnesses_are_well_formed():
    """Every harness elaborates to RTLIL with assertions in it (the formal
    runner proves them; docs/SPEC.md "Host interface" lists which close)."""
    from amaranth.back import rtlil

    from hdl.common.axi_formal import HARNESSES

    assert set(HARNESSES) == {"axil_slave", "axis_wires", "axis_registered_handshake", "axis_registered_order"}
    for name, (factory, depth, mode) in HARNESSES.items():
        assert mode in ("prove", "bmc") and isinstance(depth, int) and depth > 0, name
        text = rtlil.convert(factory(), name="top")
        assert "assert" in text, name


def test_command_queue_decodes_counts_and_overflows():
    """Amaranth simulation of CommandQueue: words assemble into decoded
    commands (on o two cycles after the last push), level counts them, a
    command into a full queue is dropped with overflow, clear empties it."""
    from amaranth.sim import Simulator

    from hdl.common.axi import CommandQueue
    from hdl.common.axi_demo import COMMANDS

    q = CommandQueue(COMMANDS, depth=2)
    sim = Simulator(q)
    sim.add_clock(1e-6)
    seen = {}

    async def push(ctx, **fields):
        for w in COMMANDS.pack(**fields):
            ctx.set(q.push, 1)
            ctx.set(q.word, w)
            await ctx.tick()
        ctx.set(q.push, 0)

    async def bench(ctx):
        await push(ctx, opcode="delay", tag=7, count=0xFFFFFFFF)
        assert not ctx.get(q.o.valid)
        await ctx.tick()
        assert ctx.get(q.o.valid) and ctx.get(q.level) == 1
        assert (ctx.get(q.o.payload.opcode), ctx.get(q.o.payload.tag), ctx.get(q.o.payload.count)) == (1, 7, 0xFFFFFFFF)
        await push(ctx, opcode="nop", tag=8)
        overflow = False
        for w in COMMANDS.pack(opcode="nop", tag=9):
            ctx.set(q.push, 1)
            ctx.set(q.word, w)
            await ctx.tick()
        ctx.set(q.push, 0)
        overflow = ctx.get(q.overflow)
        seen["overflow"] = overflow
        await ctx.tick()
        assert ctx.get(q.level) == 2
        ctx.set(q.o.ready, 1)
        tags = []
        for _ in range(4):
            if ctx.get(q.o.valid):
                tags.append(ctx.get(q.o.payload.tag))
            await ctx.tick()
        ctx.set(q.o.ready, 0)
        seen["tags"] = tags
        await push(ctx, opcode="nop", tag=1)
        ctx.set(q.push, 1)  # half a command, then clear
        await ctx.tick()
        ctx.set(q.push, 0)
        ctx.set(q.clear, 1)
        await ctx.tick()
        ctx.set(q.clear, 0)
        await ctx.tick()
        assert ctx.get(q.level) == 0 and ctx.get(q.pending) == 0 and not ctx.get(q.o.valid)

    sim.add_testbench(bench)
    sim.run()
    assert seen == {"overflow": 1, "tags": [7, 8]}
