"""Testbench of ``orbis_accelerator`` against ``golden.orbis_accel`` through its
host interface: AXI4-Lite (``sim.axi.Driver``) and AXI4-Stream.

A slice is one block over one FC and one RC step: in the FC step the
block's "SDPA output" (a VECTOR to the stream) is captured, MATCH starts the
QE and the DATM engine on it and the rest of the FC program runs on the
array meanwhile; in the RC step the block's input passes the reduce unit,
the attention GEMM runs on the reduced rows and its result passes the
restore unit. Outputs, status, error codes, counters and the pair memory
are compared with the golden model; CYCLES too on ideal streams.
"""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from golden import accel as g
from golden import orbis_accel as go
from hdl.accel.orbis_commands import COMMANDS, ERRORS
from sim import env
from sim.accel.tb_gemm_accelerator import encode as encode_gemm
from sim.accel.shell import ShellTB
from sim.axi import HandshakeChecker


def config(p=None):
    p = p or env.params()
    gemm = g.Config(rows=p["ROWS"], cols=p["COLS"], a_depth=p["A_DEPTH"], w_depth=p["W_DEPTH"],
                    acc_depth=p["ACC_DEPTH"], stream_bytes=p["STREAM_BYTES"])
    return go.Config(gemm=gemm, tokens=p["TOKENS"], channels=p["CHANNELS"], num_dst=p["NUM_DST"],
                     layers=p["LAYERS"], rc_steps=p["RC_STEPS"], scale_frac=p["SCALE_FRAC"],
                     topk_buffer=p["TOPK_BUFFER"])


def _flag(words, name, value=1):
    f = COMMANDS.field(name)
    return [words[0] | (int(value) << f.lsb)] + words[1:]


def encode(cmd, tokens) -> list[int]:
    if isinstance(cmd, go.Match):
        return COMMANDS.pack(opcode="MATCH", layer=cmd.layer, m=cmd.k, n=cmd.max_iter, mult=cmd.eps, addr0=cmd.seed)
    if isinstance(cmd, go.Step):
        return COMMANDS.pack(opcode="STEP", accumulate=int(cmd.first))
    if isinstance(cmd, go.Capture):
        return _flag(encode_gemm(cmd.cmd), "capture")
    if isinstance(cmd, go.Reduce):
        words = COMMANDS.pack(opcode="LOAD", mem=0, m=cmd.load.rows, addr0=cmd.load.addr,
                              k=cmd.load.rows // tokens, reduce=1, layer=cmd.layer)
        return words
    if isinstance(cmd, go.Restore):
        return _flag(_flag(encode_gemm(cmd.cmd), "restore"), "layer", cmd.layer)
    return encode_gemm(cmd)


class TB(ShellTB):
    def __init__(self, dut):
        super().__init__(dut)
        self.cfg = config(env.params())
        self.model = go.Machine(self.cfg)

    def _sends(self, chunk, want):
        bad = dict(want.errors)
        out = []
        for i, cmd in enumerate(chunk):
            if i in bad:
                continue
            if isinstance(cmd, g.Load):
                out.append(g.to_bytes(cmd.data, 1 if cmd.mem != "ACC" else 4))
            elif isinstance(cmd, go.Reduce):
                out.append(g.to_bytes(cmd.load.data, 1))
        return out

    async def push(self, chunk):
        want = self.model.run(chunk)
        for cmd in chunk:
            await self.host.push_command(encode(cmd, self.cfg.tokens))
        for data in self._sends(chunk, want):
            await self.src.send(data)
        return want

    async def run(self, chunk, *, src_pause=0.0, sink_pause=0.0, label=""):
        """One start of ``chunk``; every check against the model's run of it."""
        assert len(chunk) <= self.queue_depth
        ideal = src_pause == 0 and sink_pause == 0
        want = await self.push(chunk)
        status, got = await self.start_run(src_pause, sink_pause, 10 * 50 * (want.total_cycles + 1000))
        names = ("cycles", "stall", "commands", "array_busy", "datm_busy", "exposed", "matches", "dropped",
                 "late")
        counters = {name: await self.host.read_reg(name) for name in names}
        where = f"{label}: {[type(c).__name__ for c in chunk]}"
        assert status["busy"] == 0 and status["done"] == 1, f"{where}: status {status}"
        assert status["error"] == int(bool(want.errors)), f"{where}: status {status}, model {want.errors}"
        assert status["error_code"] == ERRORS[want.error_code], f"{where}: {status}, model {want.error_code}"
        assert counters["commands"] == len(chunk), f"{where}: {counters}"
        for name in ("array_busy", "datm_busy", "matches", "dropped"):
            assert counters[name] == want.counters[name], f"{where}: {name} {counters[name]}, model {want.counters}"
        assert got == want.outputs, f"{where}: {len(got)} frames {[f.hex() for f in got]}, " \
                                    f"model {[f.hex() for f in want.outputs]}"
        if ideal:
            assert (counters["cycles"], counters["exposed"], counters["late"]) == \
                (want.total_cycles, want.counters["exposed"], want.late), \
                f"{where}: {counters}, model {want.total_cycles} {want.counters} late {want.late} ({want.cycles})"
            assert counters["stall"] == 0, f"{where}: {counters}"
        for layer, res in want.matches:
            await self.check_pairs(layer, res.pairs, res.iterations, where)
        self.match_done = {}
        for layer, at in want.match_done.items():
            await self.host.write_reg("pair_sel", self.host.pack("pair_sel", layer=layer, index=0))
            got = await self.host.read_reg("match_done")
            if ideal:
                assert got == at, f"{where}: layer {layer} match done at {got}, model {at}"
            self.match_done[layer] = got
        self.last_counters = counters
        self.runs.append({"label": label, "cycles": counters["cycles"], "model_cycles": want.total_cycles,
                          "array_busy": counters["array_busy"], "datm_busy": counters["datm_busy"],
                          "exposed": counters["exposed"], "late": counters["late"]})
        return want

    async def read_pairs(self, layer):
        await self.host.write_reg("pair_sel", self.host.pack("pair_sel", layer=layer, index=0))
        info = self.host.unpack("pair_count", await self.host.read_reg("pair_count"))
        out = []
        for i in range(info["count"]):
            await self.host.write_reg("pair_sel", self.host.pack("pair_sel", layer=layer, index=i))
            pr = self.host.unpack("pair", await self.host.read_reg("pair"))
            out.append((pr["src"], pr["dst"]))
        return np.array(out, np.int64).reshape(-1, 2), info["iterations"]

    async def check_pairs(self, layer, pairs, iterations, where=""):
        got, it = await self.read_pairs(layer)
        assert np.array_equal(got, pairs) and it == iterations, \
            f"{where}: layer {layer} pairs {got.tolist()} ({it} it), model {pairs.tolist()} ({iterations} it)"
        valid = await self.host.read_reg("pairs_valid")
        assert valid >> layer & 1, f"{where}: pairs_valid {valid:#x}"


# --------------------------------------------------------------------------
# The slice: one block, one FC step and one RC step.

class Slice:
    """A block of TOKENS tokens and CHANNELS channels: the input x, an
    "attention" GEMM whose VECTOR result is the SDPA output, and a projection
    after it (the FC work the matching hides behind)."""

    def __init__(self, tb, k=6, layer=0):
        cfg = tb.cfg
        self.cfg, self.k, self.layer = cfg, k, layer
        n, c = cfg.tokens, cfg.channels
        rng = tb.rng
        r = cfg.gemm.rows
        self.kdim = 2 * r
        # Tokens come in a few clusters so that the matching has structure.
        centres = rng.integers(-100, 100, size=(4, self.kdim))
        self.x = np.clip(centres[rng.integers(0, 4, size=n)] + rng.integers(-6, 7, size=(n, self.kdim)), -128, 127)
        self.wv = rng.integers(-40, 40, size=(self.kdim, c))
        self.wo = rng.integers(-40, 40, size=(c, c))

    def _a(self, x):
        return g.layout_a(x, self.cfg.gemm.rows)

    def fc(self):
        """FC step: attention on all tokens, capture, MATCH, then the projection on the array."""
        cfg = self.cfg.gemm
        n, c = self.cfg.tokens, self.cfg.channels
        return [
            [go.Step(first=True),
             go.Reduce(g.Load("A", 0, self._a(self.x)), self.layer),      # FC: a plain LOAD
             g.Load("W", 0, g.layout_w(self.wv, cfg.rows, cfg.cols)),
             g.Gemm(n, self.kdim, c, 0, 0, 0),
             go.Capture(g.Vector(n, c, 0, mult=1, shift=6, to_stream=True)),
             go.Match(self.layer, self.k, max_iter=8, eps=655, seed=3),
             g.Load("W", 64 if cfg.w_depth >= 128 else 0, g.layout_w(self.wo, cfg.rows, cfg.cols)),
             g.Vector(n, c, 0, dst_addr=0, mult=1, shift=6)],
            [g.Gemm(n, c, c, 0, 64 if cfg.w_depth >= 128 else 0, 0),
             g.Vector(n, c, 0, mult=1, shift=7, to_stream=True)],
        ]

    def rc(self, keep):
        cfg = self.cfg.gemm
        c = self.cfg.channels
        x = np.clip(self.x + 1, -128, 127)
        return [[go.Step(),
                 go.Match(self.layer, self.k),                                # dropped in an RC step
                 go.Reduce(g.Load("A", 0, self._a(x)), self.layer),
                 g.Load("W", 0, g.layout_w(self.wv, cfg.rows, cfg.cols)),
                 g.Gemm(keep, self.kdim, c, 0, 0, 0),
                 go.Restore(g.Vector(keep, c, 0, mult=1, shift=6, to_stream=True), self.layer)]]


async def setup(dut):
    tb = TB(dut)
    await tb.reset()
    return tb


async def run_slice(tb, sl, **kw):
    for chunk in sl.fc():
        await tb.run(chunk, label="fc", **kw)
    keep = tb.cfg.tokens - len(tb.model.pairs[sl.layer])
    for chunk in sl.rc(keep):
        await tb.run(chunk, label="rc", **kw)


@cocotb.test()
async def slice_fc_rc(dut):
    """One block, one FC and one RC step on ideal streams: outputs, pairs and cycles equal the model's."""
    tb = await setup(dut)
    sl = Slice(tb)
    await run_slice(tb, sl)
    fc = tb.runs[0]
    # Matching and GEMM work in one run: both counted, and the engine overlapped the commands after MATCH
    # (it waited on the controller less than it was busy).
    assert fc["datm_busy"] > 0 and fc["array_busy"] > 0 and fc["exposed"] < fc["datm_busy"], fc
    env.report(runs=tb.runs, datm_busy=fc["datm_busy"], array_busy=fc["array_busy"], exposed=fc["exposed"],
               pairs=tb.model.pairs[sl.layer].tolist())


@cocotb.test()
async def backpressure_and_protocol(dut):
    """The slice with random gaps on s_axis and back-pressure on m_axis; m_axis keeps its beat while stalled."""
    tb = await setup(dut)
    checker = HandshakeChecker.axis(dut, "m_axis")
    await run_slice(tb, Slice(tb), src_pause=0.4, sink_pause=0.5)
    assert sum(r["cycles"] for r in tb.runs) > 0
    checker.check()
    assert checker.stalls > 0 and checker.beats > 0
    env.report(stalled_beats=checker.stalls)


@cocotb.test()
async def bad_commands(dut):
    """Each bad command sets its error code and changes nothing; the slice after them is exact."""
    tb = await setup(dut)
    cfg = tb.cfg
    n = cfg.tokens
    x = np.zeros((n * 2, cfg.gemm.rows), np.int64)
    cases = [
        ([g.Unknown(12)], "OPCODE"),
        ([go.Match(cfg.layers, 2)], "SHAPE"),
        ([go.Match(0, n + 1)], "SHAPE"),
        ([go.Match(0, 2, seed=n)], "SHAPE"),
        ([go.Capture(g.Vector(n, cfg.gemm.cols, 0))], "SHAPE"),   # capture of a VECTOR to A
        ([go.Step(first=True), go.Step(), go.Reduce(g.Load("A", 0, x), 1)], "SEQUENCE"),   # no pairs yet
        ([go.Restore(g.Vector(n, cfg.gemm.cols, 0, to_stream=True), 0)], "SEQUENCE"),
        ([go.Reduce(g.Load("A", 0, x[:n + 1]), 0)], "SHAPE"),
    ]
    for chunk, code in cases:
        want = await tb.run(chunk, label=f"bad {code}")
        assert want.error_code == code, (code, want.errors)
    await run_slice(tb, Slice(tb))
    for _ in range(tb.queue_depth + 1):
        await tb.host.push_command(encode(go.Step(), n))
    st = await tb.host.status()
    assert st["error"] == 1 and st["error_code"] == ERRORS["QUEUE_FULL"], st
    await tb.host.soft_reset()
    tb.model.soft_reset()
    env.report(runs=len(tb.runs))


@cocotb.test()
async def soft_reset_mid_traffic(dut):
    """A soft reset while the match engine runs and the array computes under back-pressure; afterwards
    pairs are invalid, and a fresh slice is exact and cycle-exact."""
    tb = await setup(dut)
    sl = Slice(tb)
    chunk = sl.fc()[0]
    tb.model = go.Machine(tb.cfg)      # the model of the interrupted run is thrown away
    await tb.push(chunk)
    tb.sink.pause(0.5)
    await tb.host.start()
    for _ in range(2000):
        await ClockCycles(tb.clk, 20)
        if (await tb.host.read_reg("ogm")) >> 9 & 1:
            break
    assert (await tb.host.status())["busy"] == 1
    await tb.soft_reset_to_idle()
    assert await tb.host.read_reg("pairs_valid") == 0
    tb.model = go.Machine(tb.cfg)
    await run_slice(tb, sl)
    env.report(runs=len(tb.runs))


# --------------------------------------------------------------------------
# The digits DiT slice of reports.orbis_accelerator.

@cocotb.test()
async def dit_replay(dut):
    """``args["replay"]``: a pickle of recorded timesteps (``sim.accel.orbis_dit.GoldenBackend``), each one
    run of the sampler's commands with their data; every step is one start on the RTL, checked against the
    golden accelerator (outputs, pairs, counters, cycles), its counters reported."""
    import pickle

    path = env.args().get("replay")
    if not path:
        return
    with open(path, "rb") as f:
        job = pickle.load(f)
    tb = TB(dut)
    await tb.reset()
    out = []
    for i, cmds in enumerate(job["steps"]):
        want = await tb.run(cmds, label=f"dit step {i}")
        r = dict(tb.runs[-1])
        r.update(pairs_equal_golden=True, matches=len(want.matches), model_exposed=want.counters["exposed"],
                 model_late=want.late, match_done={str(k): v for k, v in tb.match_done.items()})
        out.append(r)
    env.report(replay=out)
