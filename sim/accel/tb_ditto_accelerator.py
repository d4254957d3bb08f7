"""Testbench of ``ditto_accelerator`` against ``golden.ditto_accel`` through
its host interface: AXI4-Lite (``sim.axi.Driver``) and AXI4-Stream.

Every run's stream output, status, error code and counters are compared with
the golden accelerator; after each LAYER the DECISION, CYCLES_ACT /
CYCLES_DIFF, LAYER / COMPUTE / MEMORY_CYCLES and the class registers too.
LAYER cycles are checked on every run (a LAYER never touches a stream, so
back-pressure cannot change them or Defo's decisions); CYCLES on ideal streams.

Arguments (``sim.env.args()``): ``steps`` of the slice (default 3);
``layers`` -- a job of :mod:`reports.ditto_accelerator` (see ``layer_job``).
"""

import cocotb
from cocotb.task import bridge, resume
import numpy as np
from cocotb.triggers import ClockCycles

from golden import ditto_accel as gd
from hdl.accel.ditto_commands import COMMANDS, ERRORS, MEMORIES
from sim import env
from sim.accel.shell import ShellTB
from sim.axi import HandshakeChecker

LAYER_REGS = ("cycles_act", "cycles_diff", "layer_cycles", "compute_cycles", "memory_cycles", "zero", "low", "full")


def config(bw_log2=4, mem_enable=True):
    p = env.params()
    return gd.Config(cus=p["CUS"], pes=p["PES"], lanes=p["LANES"], a_depth=p["A_DEPTH"], w_depth=p["W_DEPTH"],
                     o_depth=p["O_DEPTH"], p_depth=p["P_DEPTH"], max_k=p["MAX_K"], defo_entries=p["DEFO_ENTRIES"],
                     stream_bytes=p["STREAM_BYTES"], bw_log2=bw_log2, mem_enable=mem_enable)


def encode(cmd) -> list[int]:
    if isinstance(cmd, gd.Load):
        return COMMANDS.pack(opcode="LOAD", mem=MEMORIES[cmd.mem], m=cmd.rows, addr0=cmd.addr)
    if isinstance(cmd, gd.Store):
        return COMMANDS.pack(opcode="STORE", mem=MEMORIES[cmd.mem], m=cmd.rows, addr0=cmd.addr)
    if isinstance(cmd, gd.Vector):
        return COMMANDS.pack(opcode="VECTOR", m=cmd.rows, addr0=cmd.addr, mult=cmd.mult, shift=cmd.shift,
                             relu=int(cmd.relu))
    if isinstance(cmd, gd.Layer):
        return COMMANDS.pack(opcode="LAYER", layer=cmd.layer, step=cmd.step, m=cmd.m, k=cmd.k, n=cmd.n,
                             addr0=cmd.a, addr1=cmd.w, addr2=cmd.o, addr3=cmd.p, spatial=int(cmd.spatial),
                             store=int(cmd.store))
    if isinstance(cmd, gd.Tadd):
        return COMMANDS.pack(opcode="TADD", m=cmd.m, n=cmd.n, addr0=cmd.r, addr2=cmd.o)
    return COMMANDS.pack(opcode=cmd.opcode)


def load_bytes(cmd) -> bytes:
    dtype = "<i4" if cmd.mem == "O" else "<i1"
    return np.asarray(cmd.data, dtype=np.int64).astype(dtype).tobytes()


class TB(ShellTB):
    def __init__(self, dut, bw_log2=4):
        super().__init__(dut)
        self.cfg = config(bw_log2)
        self.model = gd.Machine(self.cfg)
        self.records = []

    async def reset(self):
        await super().reset()
        await self.set_memory(self.cfg.bw_log2, self.cfg.mem_enable)

    async def set_memory(self, bw_log2, enable=True):
        await self.host.write_reg("memory", self.host.pack("memory", bw_log2=bw_log2, enable=int(enable)))
        from dataclasses import replace
        self.cfg = replace(self.cfg, bw_log2=bw_log2, mem_enable=bool(enable))
        self.model.cfg = self.cfg

    async def push(self, chunk, bad=()):
        for cmd in chunk:
            await self.host.push_command(encode(cmd))
        for i, cmd in enumerate(chunk):
            if isinstance(cmd, gd.Load) and i not in bad:
                await self.src.send(load_bytes(cmd))

    async def run(self, chunk, *, src_pause=0.0, sink_pause=0.0, label=""):
        """One start of ``chunk`` (at most one LAYER, so its registers can be checked)."""
        assert len(chunk) <= self.queue_depth
        ideal = src_pause == 0 and sink_pause == 0
        want = gd.run(chunk, self.cfg, self.model)
        await self.push(chunk, dict(want.errors))
        status, got = await self.start_run(src_pause, sink_pause, 10 * 200 * (want.total_cycles + 1000))
        counters = {n: await self.host.read_reg(n) for n in ("cycles", "stall", "commands", "layers", "busy_cycles")}
        where = f"{label}: {[type(c).__name__ for c in chunk]}"
        assert status["busy"] == 0 and status["done"] == 1, f"{where}: status {status}"
        assert status["error"] == int(bool(want.errors)), f"{where}: status {status}, model {want.errors}"
        assert status["error_code"] == ERRORS[want.error_code], f"{where}: {status}, model {want.error_code}"
        assert counters["commands"] == len(chunk), f"{where}: {counters}"
        assert counters["layers"] == len(want.layers), f"{where}: {counters}"
        assert counters["busy_cycles"] == want.busy_cycles, f"{where}: {counters}, model {want.busy_cycles}"
        assert got == want.outputs, f"{where}: {len(got)} frames {[f.hex() for f in got]}, " \
                                    f"model {[f.hex() for f in want.outputs]}"
        if want.layers:
            r = want.layers[-1]
            d = self.host.unpack("decision", await self.host.read_reg("decision"))
            rtl = {"decision": (d["valid"], d["layer"], d["step"], d["use_diff"], d["decision"])}
            model = {"decision": (1, r.layer, r.step, int(r.use_diff), int(r.decision))}
            for n in LAYER_REGS:
                rtl[n] = await self.host.read_reg(n)
            model.update(cycles_act=r.cycles_act, cycles_diff=r.cycles_diff, layer_cycles=r.cycles,
                         compute_cycles=r.compute, memory_cycles=r.memory, zero=int(r.counts[0]),
                         low=int(r.counts[1]), full=int(r.counts[2]))
            assert rtl == model, f"{where}: layer registers {rtl}, model {model}"
            self.records.append(r)
        if ideal:
            assert counters["cycles"] == want.total_cycles, \
                f"{where}: {counters['cycles']} cycles, model {want.total_cycles} ({want.cycles})"
            assert counters["stall"] == 0, f"{where}: {counters}"
        self.runs.append({"label": label, "cycles": counters["cycles"], "model_cycles": want.total_cycles,
                          "stall": counters["stall"]})
        self.last_outputs = got
        return want


# --------------------------------------------------------------------------
# The slice: four layers over a few timesteps, one of each Defo outcome.

class Slice:
    """Layers (name, M, K, N, spatial, kind) with per-step inputs of a kind:
    ``drift`` (small temporal changes), ``noise`` (fresh every step),
    ``rows`` (rows alike, fresh every step: Ditto+ territory)."""

    LAYERS = (("drift", 8, 32, 8, False, "drift"),      # differences win on compute and memory
              ("noise", 4, 16, 8, False, "noise"),      # differences save nothing: activations
              ("wide", 2, 8, 32, False, "drift"),       # differences save compute but lose on memory
              ("spatial", 8, 16, 8, True, "rows"))      # Ditto+ row differences

    def __init__(self, tb):
        self.tb, self.rng, cfg = tb, tb.rng, tb.cfg
        self.specs = []
        a = w = o = 0
        for idx, (name, m, k, n, spatial, kind) in enumerate(self.LAYERS):
            rows = m * k // cfg.lanes
            self.specs.append(dict(name=name, idx=idx, m=m, k=k, n=n, spatial=spatial, kind=kind, a=a, w=w, o=o,
                                   weights=self.rng.integers(-128, 128, size=(k, n))))
            a, w, o = a + rows, w + k * (n // cfg.cols), o + m * (n // cfg.cols)
        self.x = {s["name"]: self.rng.integers(-60, 61, size=(s["m"], s["k"])) for s in self.specs}

    def weight_loads(self):
        cols = self.tb.cfg.cols
        out = []
        for s in self.specs:
            w = s["weights"]
            rows = np.concatenate([w[:, t * cols:(t + 1) * cols] for t in range(s["n"] // cols)])
            out.append(gd.Load("W", s["w"], rows))
        return out

    def step_input(self, s, step):
        rng, x = self.rng, self.x[s["name"]]
        if s["kind"] == "noise":
            x = rng.integers(-128, 128, size=x.shape)
        elif s["kind"] == "drift" and step:
            x = np.clip(x + rng.choice([0, 0, 0, 0, 0, 1, -1, 2, -3], size=x.shape), -128, 127)
        elif s["kind"] == "rows":
            base = rng.integers(-100, 101, size=(1, x.shape[1]))
            x = np.clip(base + rng.choice([0, 0, 0, 1, -1], size=x.shape), -128, 127)
        self.x[s["name"]] = x
        return x

    def program(self, s, step):
        cfg = self.tb.cfg
        x = self.step_input(s, step)
        layer = gd.Layer(s["idx"], min(step, 2), s["m"], s["k"], s["n"], a=s["a"], w=s["w"], o=s["o"],
                         p=s["a"], spatial=s["spatial"])
        rows = s["m"] * (s["n"] // cfg.cols)
        out = gd.Store("O", s["o"], rows) if s["idx"] % 2 == 0 else gd.Vector(s["o"], rows, mult=5, shift=9)
        return [gd.Load("A", s["a"], x.reshape(-1, cfg.lanes)), layer, out], x


def plain(s, x):
    """The plain INT8 product the difference path must equal."""
    return np.asarray(x, np.int64) @ np.asarray(s["weights"], np.int64)


def o_rows(prod, cols):
    m, n = prod.shape
    return np.concatenate([prod[:, t * cols:(t + 1) * cols] for t in range(n // cols)])


async def run_slice(tb, sl, steps, **kw):
    await tb.run(sl.weight_loads(), **kw, label="weights")
    decisions = {}
    for step in range(steps):
        for s in sl.specs:
            prog, x = sl.program(s, step)
            want = await tb.run(prog, **kw, label=f"{s['name']} step {step}")
            if isinstance(prog[2], gd.Store):   # the INT32 outputs are the plain product, bit for bit
                got = np.frombuffer(tb.last_outputs[0], "<i4").reshape(-1, tb.cfg.cols)
                assert np.array_equal(got, o_rows(plain(s, x), tb.cfg.cols)), f"{s['name']} step {step}"
            decisions[(s["name"], step)] = want.layers[0]
    return decisions


async def setup(dut, bw_log2=4):
    tb = TB(dut, bw_log2)
    await tb.reset()
    return tb


def check_decisions(dec, steps):
    later = {name: dec[(name, 2)] for name in ("drift", "noise", "wide", "spatial")} if steps > 2 else {}
    for name, r in later.items():
        first, second = dec[(name, 0)], dec[(name, 1)]
        assert r.decision == (second.cycles < first.cycles), (name, first.cycles, second.cycles)
        assert r.use_diff == r.decision
    if later:
        assert later["drift"].use_diff and later["spatial"].use_diff and later["spatial"].mode == "spatial"
        assert not later["noise"].use_diff and not later["wide"].use_diff
        wide = (dec[("wide", 0)], dec[("wide", 1)])
        assert wide[1].compute < wide[0].compute and wide[1].memory > wide[0].cycles, \
            "the wide layer saves compute but loses on memory"
    return {f"{n}/{s}": {"mode": r.mode, "cycles": r.cycles, "compute": r.compute, "memory": r.memory,
                         "decision": r.decision} for (n, s), r in dec.items()}


@cocotb.test()
async def slice_defo_decisions(dut):
    """Four layers x three timesteps on ideal streams: outputs equal the plain
    INT8 products, every register and the cycle count equal the model's, and
    Defo sends one layer to differences on compute, one to activations on
    compute, one to activations on memory and one to Ditto+ spatial differences."""
    tb = await setup(dut)
    steps = env.args().get("steps", 3)
    sl = Slice(tb)
    dec = await run_slice(tb, sl, steps)
    env.report(layers=check_decisions(dec, steps), runs=len(tb.runs))


@cocotb.test()
async def backpressure_and_protocol(dut):
    """The slice with random gaps on s_axis and back-pressure on m_axis:
    outputs, Defo cycles and decisions still exact; m_axis holds while stalled."""
    tb = await setup(dut)
    checker = HandshakeChecker.axis(dut, "m_axis")
    sl = Slice(tb)
    dec = await run_slice(tb, sl, 3, src_pause=0.4, sink_pause=0.5)
    check_decisions(dec, 3)
    assert sum(r["stall"] for r in tb.runs) > 0
    checker.check()
    assert checker.stalls > 0 and checker.beats > 0
    env.report(stalled_beats=checker.stalls)


@cocotb.test()
async def bad_commands(dut):
    """Each bad command is flagged with its code and changes nothing; the slice
    after them is exact; a queue overflow sets QUEUE_FULL."""
    tb = await setup(dut)
    cfg = tb.cfg
    good = dict(layer=0, step=0, m=2, k=cfg.lanes, n=cfg.cols)
    cases = [
        (gd.Unknown(7), "OPCODE"),
        (gd.Unknown(0), "OPCODE"),
        (gd.Layer(**{**good, "k": cfg.lanes + 1}), "SHAPE"),
        (gd.Layer(**{**good, "k": cfg.max_k + cfg.lanes}), "SHAPE"),
        (gd.Layer(**{**good, "n": cfg.cols + 1}), "SHAPE"),
        (gd.Layer(**{**good, "layer": cfg.defo_entries}), "SHAPE"),
        (gd.Layer(**{**good, "step": 3}), "SHAPE"),
        (gd.Layer(**{**good, "m": 0}), "SHAPE"),
        (gd.Layer(**good, a=cfg.a_depth - 1), "ADDRESS"),
        (gd.Layer(**good, w=cfg.w_depth - 1), "ADDRESS"),
        (gd.Layer(**good, o=cfg.o_depth - 1), "ADDRESS"),
        (gd.Layer(**good, p=cfg.p_depth - 1), "ADDRESS"),
        (gd.Store("W", 0, 1), "SHAPE"),
        (gd.Store("A", cfg.a_depth - 1, 2), "ADDRESS"),
        (gd.Vector(cfg.o_depth, 1), "ADDRESS"),
        (gd.Tadd(cfg.cols + 1, cfg.cols, 0, 0), "SHAPE"),
        (gd.Tadd(cfg.cols, cfg.cols, cfg.o_depth - 1, 0), "ADDRESS"),
        (gd.Load("P", cfg.p_depth - 1, np.zeros((2, cfg.lanes), np.int64)), "ADDRESS"),
    ]
    # Memories keep what earlier tests left: give the row the probe STORE reads a known value.
    await tb.run([gd.Load("A", 0, tb.rng.integers(-128, 128, size=(1, cfg.lanes)))], label="probe row")
    for cmd, code in cases:
        want = await tb.run([cmd, gd.Store("A", 0, 1)], label=f"bad {code}")
        assert want.error_code == code, (code, want.errors)
    sl = Slice(tb)
    check_decisions(await run_slice(tb, sl, 3), 3)
    for _ in range(tb.queue_depth + 1):
        await tb.host.push_command(encode(gd.Store("A", 0, 1)))
    st = await tb.host.status()
    assert st["error"] == 1 and st["error_code"] == ERRORS["QUEUE_FULL"], st
    await tb.host.soft_reset()
    env.report(cases=len(cases))


@cocotb.test()
async def soft_reset_mid_traffic(dut):
    """A soft reset while a LOAD streams in under gaps and while a LAYER
    computes; afterwards the slice from its first timestep is exact and
    cycle-exact (memories and the Defo table were left alone; step 0 starts
    every layer's entry over)."""
    tb = await setup(dut)
    sl = Slice(tb)
    for delay in (6, 120):
        await tb.run(sl.weight_loads(), label="weights")
        prog, _ = sl.program(sl.specs[0], 0)
        await tb.push(prog)
        tb.src.pause(0.7 if delay < 10 else 0.0)
        tb.sink.pause(0.5)
        await tb.host.start()
        await ClockCycles(tb.clk, delay)
        assert (await tb.host.status())["busy"] == 1
        await tb.soft_reset_to_idle()
        assert await tb.host.read_reg("cycles") == 0
        sl = Slice(tb)
        check_decisions(await run_slice(tb, sl, 3), 3)
    env.report(runs=len(tb.runs))


def attention_program(tb, q, k, step):
    """One head's Q·Kᵀ in difference form (``sim.accel.ditto_dit.attention_cmds``), regions from 0."""
    from sim.accel.ditto_dit import attention_regions

    cfg = tb.cfg
    t, d = q.shape
    r = attention_regions(cfg, t, d, t, e=4, w=0, o=0, p=0, wa=cfg.w_depth // 2)
    from sim.accel.ditto_dit import attention_cmds

    return attention_cmds(cfg, q, k, step, r)


@cocotb.test()
async def attention_differences(dut):
    """One head's Q·Kᵀ over four timesteps in difference form (two difference products, the
    second added transposed): bit-identical to the plain INT8 product every step, cycle-exact."""
    tb = await setup(dut)
    cfg = tb.cfg
    t, d = cfg.cols, 2 * cfg.lanes
    q = tb.rng.integers(-100, 101, size=(t, d))
    k = tb.rng.integers(-100, 101, size=(t, d))
    steps = []
    for step in range(4):
        if step:
            q = np.clip(q + tb.rng.choice([0, 0, 0, 1, -1, 3], size=q.shape), -128, 127)
            k = np.clip(k + tb.rng.choice([0, 0, 0, 1, -2], size=k.shape), -128, 127)
        want = await tb.run(attention_program(tb, q, k, step), label=f"attention step {step}")
        got = np.frombuffer(tb.last_outputs[0], "<i4").astype(np.int64).reshape(-1, cfg.cols)
        assert np.array_equal(got, o_rows(q @ k.T, cfg.cols)), f"attention step {step}"
        steps.append([r.mode for r in want.layers])
    assert steps[1] == ["temporal", "temporal"], steps
    env.report(attention=steps)


# --------------------------------------------------------------------------
# The digits DiT through the accelerator (reports.ditto_accelerator).

class RtlBackend:
    """:class:`sim.accel.ditto_dit.DittoAccelHooks` backend on the RTL, called from the
    sampler's thread; every run is also checked against the golden accelerator in lockstep."""

    def __init__(self, tb):
        self.tb = tb
        self.cycles = 0
        self._run = resume(self._run_async)

    async def _run_async(self, cmds):
        outs, layers, cycles = [], [], 0
        for i in range(0, len(cmds), self.tb.queue_depth):
            want = await self.tb.run(cmds[i:i + self.tb.queue_depth], label="dit")
            cycles += self.tb.runs[-1]["cycles"]
            outs += self.tb.last_outputs
            layers += want.layers
        self.cycles += cycles
        return outs, layers, cycles

    def run(self, cmds, key=None):
        return self._run(cmds)


@cocotb.test()
async def dit_slice(dut):
    """``args["dit"]``: {"steps", "stop_after", "label", "seed", "calib_samples"}: the first
    ``stop_after`` steps of DDIM-``steps`` sampling of the digits DiT with every linear layer on
    the RTL (bit-, register- and cycle-exact against the golden accelerator in lockstep)."""
    import time

    import torch

    from sim.accel.ditto_dit import DittoAccelHooks, StopSampling
    from workloads.dit import sample
    from workloads.traces import calibrate, get_model

    job = env.args().get("dit")
    if not job:
        return
    torch.set_num_threads(1)
    tb = TB(dut, job.get("bw_log2", 4))
    await tb.reset()
    model, _, _ = get_model()
    scales = calibrate(model, samples=job.get("calib_samples", 20), steps=job["steps"])
    backend = RtlBackend(tb)
    hooks = DittoAccelHooks(model, scales, backend, tb.cfg, stop_after=job["stop_after"])
    wall = time.perf_counter()

    def go():
        try:
            sample(model, [job.get("label", 3)], seed=job.get("seed", 0), steps=job["steps"], hooks=hooks)
        except StopSampling:
            pass

    await bridge(go)()
    env.report(dit={"cycles": backend.cycles, "bit_exact": hooks.bit_exact, "layers": hooks.layers,
                    "attn": hooks.attn,
                    "wall_s": time.perf_counter() - wall, "runs": len(tb.runs)})
