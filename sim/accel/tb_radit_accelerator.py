"""Testbench of ``radit_accelerator`` against ``golden.radit_accel`` through its
host interface: AXI4-Lite (``sim.axi.Driver``) and AXI4-Stream.

A block at a timestep is two runs, as a host without a decision oracle has
to do it: run 1 is BLOCK_BEGIN with the block's FP16 input queued on
``s_axis``; the host then reads DECISION / DELTA / THETA and, only when the
block is computed, queues the LOAD data of run 2 (the GEMM program and
BLOCK_END). Decisions, every output frame, status, error codes and the
counters are compared with the golden model; CYCLES too on ideal streams.

Arguments (``sim.env.args()``): ``slice`` -- blocks, steps, beats per block
input (default 2, 4, 16); ``dit`` -- the digits-DiT sampling job of
:mod:`reports.radit_accelerator` (see ``dit_sampling``).
"""

import cocotb
import numpy as np
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles

from golden import accel as g
from golden import radit_accel as gr
from golden.radit import alpha_table
from hdl.accel.radit_commands import COMMANDS, ERRORS
from sim import env
from sim.accel.tb_gemm_accelerator import encode as encode_gemm
from sim.accel.shell import ShellTB
from sim.axi import HandshakeChecker


def config():
    p = env.params()
    gemm = g.Config(rows=p["ROWS"], cols=p["COLS"], a_depth=p["A_DEPTH"], w_depth=p["W_DEPTH"],
                    acc_depth=p["ACC_DEPTH"], stream_bytes=p["STREAM_BYTES"])
    return gr.Config(gemm=gemm, blocks=p["BLOCKS"], timesteps=p["TIMESTEPS"], code_depth=p["CODE_DEPTH"],
                     reuse_depth=p["REUSE_DEPTH"], alpha_frac=p["ALPHA_FRAC"])


def encode(cmd) -> list[int]:
    if isinstance(cmd, gr.BlockBegin):
        return COMMANDS.pack(opcode="BLOCK_BEGIN", addr0=cmd.block, addr1=cmd.t, m=cmd.beats, n=cmd.out_beats,
                             addr2=cmd.code_addr, addr3=cmd.reuse_addr, accumulate=int(cmd.first))
    if isinstance(cmd, gr.BlockEnd):
        return COMMANDS.pack(opcode="BLOCK_END")
    if isinstance(cmd, gr.Output):
        words = encode_gemm(cmd.cmd)
        return [words[0] | (1 << COMMANDS.field("output").lsb)] + words[1:]
    return encode_gemm(cmd)   # the GEMM commands' words are the GEMM accelerator's


def fp16_bytes(data) -> bytes:
    return np.asarray(data, dtype=np.uint16).astype("<u2").tobytes()


class TB(ShellTB):
    def __init__(self, dut):
        super().__init__(dut)
        self.cfg = config()
        self.model = gr.Machine(self.cfg)
        self.no_skip = False
        self.decisions = []

    async def load_alphas(self, table):
        for t, value in enumerate(table):
            await self.host.write_reg("alpha", self.host.pack("alpha", t=t, value=int(value)))
            self.model.set_alpha(t, int(value))

    async def start(self):
        await self.host.write_reg("control", self.host.pack("control", start=1, no_skip=int(self.no_skip)))

    async def run(self, chunk, *, src_pause=0.0, sink_pause=0.0, label=""):
        """One start of ``chunk``; streams as the decisions the host has read allow."""
        assert len(chunk) <= self.queue_depth
        ideal = src_pause == 0 and sink_pause == 0
        cfg = self.cfg
        skipping_before = self.model.skip and self.model.in_block
        want = gr.run(chunk, cfg, self.model, no_skip=self.no_skip)
        for cmd in chunk:
            await self.host.push_command(encode(cmd))
        # The host knows the open block's decision (read after BLOCK_BEGIN), so it sends LOAD data only
        # for a computed block; BLOCK_BEGIN's input always.
        bad = dict(want.errors)
        skipping = skipping_before
        sent = []
        for i, cmd in enumerate(chunk):
            if isinstance(cmd, gr.BlockBegin) and i not in bad:
                sent.append(fp16_bytes(cmd.data))
            elif isinstance(cmd, g.Load) and i not in bad and not skipping:
                sent.append(g.to_bytes(cmd.data, 1 if cmd.mem != "ACC" else 4))
        for frame in sent:
            await self.src.send(frame)
        status, got = await self.start_run(src_pause, sink_pause, 10 * 200 * (sum(want.cycles) + 1000),
                                           start=self.start)
        names = ("cycles", "stall", "commands", "array_busy", "blocks_done", "blocks_skipped", "dropped",
                 "a_rows_skipped", "w_rows_skipped")
        counters = {name: await self.host.read_reg(name) for name in names}
        where = f"{label}: {[type(c).__name__ for c in chunk]}"
        assert status["busy"] == 0 and status["done"] == 1, f"{where}: status {status}"
        assert status["error"] == int(bool(want.errors)), f"{where}: status {status}, model {want.errors}"
        assert status["error_code"] == ERRORS[want.error_code], f"{where}: {status}, model {want.error_code}"
        assert counters["commands"] == len(chunk), f"{where}: {counters}"
        for name in ("array_busy", "blocks_done", "blocks_skipped", "dropped", "a_rows_skipped", "w_rows_skipped"):
            assert counters[name] == want.counters[name], f"{where}: {name} {counters[name]}, model {want.counters}"
        assert got == want.outputs, f"{where}: {len(got)} frames {[f.hex() for f in got]}, " \
                                    f"model {[f.hex() for f in want.outputs]}"
        self.last_outputs, self.last_counters = got, counters
        if want.decisions:
            d = self.host.unpack("decision", await self.host.read_reg("decision"))
            w = want.decisions[-1]
            rtl = (d["valid"], d["block"], d["skip"], d["dtsm_skip"], d["theta_valid"],
                   await self.host.read_reg("delta"), await self.host.read_reg("theta"))
            model = (1, w.block, int(w.skip), int(w.dtsm_skip), int(w.theta_valid), w.delta, w.theta)
            assert rtl == model, f"{where}: decision {rtl}, model {model}"
            self.last_decision = {"delta": rtl[5], "theta": rtl[6] if rtl[4] else -1, "skip": bool(rtl[2]),
                                  "dtsm_skip": bool(rtl[3])}
            self.decisions.append({"block": w.block, "delta": w.delta, "theta": w.theta, "skip": w.skip})
        if ideal:
            assert counters["cycles"] == want.total_cycles, \
                f"{where}: {counters['cycles']} cycles, model {want.total_cycles} ({want.cycles})"
            assert counters["stall"] == 0, f"{where}: {counters}"
        self.runs.append({"label": label, "cycles": counters["cycles"], "model_cycles": want.total_cycles,
                          "stall": counters["stall"], "skipped": counters["blocks_skipped"],
                          "dropped": counters["dropped"], "bytes_in": sum(map(len, sent)),
                          "bytes_out": sum(map(len, got))})
        return want

    async def block(self, begin, program, **kw):
        """A block at one timestep: BLOCK_BEGIN, then its program and BLOCK_END."""
        label = kw.pop("label", "")
        want = await self.run([begin], **kw, label=f"{label} begin {begin.block}/{begin.t}")
        program = list(program) + [gr.BlockEnd()]
        for start in range(0, len(program), self.queue_depth):
            await self.run(program[start:start + self.queue_depth], **kw, label=f"{label} program {begin.block}")
        return want.decisions[0] if want.decisions else None


# --------------------------------------------------------------------------
# The slice: a few blocks, each a small GEMM program, over a few timesteps.

class Slice:
    """Blocks x steps of FP16 inputs whose change per step follows ``NOISE``
    (so that the DTSM skips in a few places), and per block fixed weights."""

    NOISE = ((None, 0.6, 0.02, 0.9), (None, 0.04, 0.8, 0.01))

    def __init__(self, tb, blocks=2, steps=4, beats=16):
        cfg = tb.cfg
        r, c = cfg.gemm.rows, cfg.gemm.cols
        self.tb, self.blocks, self.steps, self.beats = tb, blocks, steps, beats
        self.m, self.k, self.n = r, 2 * r, 2 * c
        self.out_beats = self.m * (self.n // c) * c // cfg.gemm.stream_bytes
        rng = tb.rng
        self.weights = [rng.integers(-128, 128, size=(self.k, self.n)) for _ in range(blocks)]
        self.x = [rng.normal(0, 2, size=(beats, cfg.lanes)) for _ in range(blocks)]
        self.rng = rng

    def begin(self, n, s, first=None):
        noise = self.NOISE[n % len(self.NOISE)][s % 4]
        if noise is not None:
            self.x[n] = self.x[n] + noise * self.rng.normal(0, 1, size=self.x[n].shape)
        data = self.x[n].astype(np.float16).view(np.uint16)
        t = self.steps - 1 - s
        return gr.BlockBegin(n, t, data, self.out_beats, code_addr=n * self.beats, reuse_addr=n * self.out_beats,
                             first=(s == 0) if first is None else first)

    def program(self, n):
        cfg = self.tb.cfg.gemm
        a = np.clip(np.round(self.x[n].reshape(-1)[: self.m * self.k].reshape(self.m, self.k) * 20), -128, 127)
        return [g.Load("A", 0, g.layout_a(a.astype(np.int64), cfg.rows)),
                g.Load("W", 0, g.layout_w(self.weights[n], cfg.rows, cfg.cols)),
                g.Gemm(self.m, self.k, self.n, 0, 0, 0),
                g.Store("ACC", 0, 2),   # an intermediate result for the host: not kept, not replayed
                gr.Output(g.Vector(self.m, self.n, 0, mult=3, shift=6, to_stream=True))]


def linear_layers(workload, n):
    """The linears of sub-block n = 2·block + (0 attention, 1 MLP) of a ``golden.system.Workload``."""
    sub = "attn" if n % 2 == 0 else "mlp"
    return [lay for lay in workload.block_layers(n // 2) if lay.sub == sub and lay.kind == "linear"]


async def setup(dut, steps=4):
    tb = TB(dut)
    await tb.reset()
    await tb.load_alphas(alpha_table(steps, "linear", tb.cfg.alpha_frac)[: tb.cfg.timesteps + 1])
    return tb


async def run_slice(tb, sl, *, first_step=0, **kw):
    skips = []
    for s in range(first_step, sl.steps):
        row = []
        for n in range(sl.blocks):
            d = await tb.block(sl.begin(n, s, first=(s == first_step)), sl.program(n), **kw)
            row.append(d.skip)
        skips.append(row)
    return skips


@cocotb.test()
async def slice_skip_and_compute(dut):
    """2 blocks x 4 steps on ideal streams: decisions, outputs and cycles
    equal the model's; both blocks compute and skip somewhere; then the same
    slice with no_skip computes everything and costs more cycles."""
    tb = await setup(dut)
    blocks, steps, beats = env.args().get("slice", (2, 4, 16))
    sl = Slice(tb, blocks, steps, beats)
    skips = await run_slice(tb, sl)
    flat = [s for row in skips for s in row]
    assert any(flat) and not all(flat), skips
    assert all(any(row[n] for row in skips) for n in range(blocks)), f"every block skips once: {skips}"
    skip_cycles = sum(r["cycles"] for r in tb.runs)
    n_runs = len(tb.runs)
    tb.no_skip = True
    tb.model = gr.Machine(tb.cfg)
    await tb.load_alphas(alpha_table(steps, "linear", tb.cfg.alpha_frac)[: tb.cfg.timesteps + 1])
    sl2 = Slice.__new__(Slice)
    sl2.__dict__.update(sl.__dict__)
    sl2.rng = np.random.default_rng(1)
    tb.rng = sl2.rng
    again = await run_slice(tb, sl2)
    assert not any(s for row in again for s in row)
    noskip_cycles = sum(r["cycles"] for r in tb.runs[n_runs:])
    env.report(skips=skips, cycles=skip_cycles, cycles_noskip=noskip_cycles, runs=tb.runs)


@cocotb.test()
async def backpressure_and_protocol(dut):
    """The slice with random gaps on s_axis and back-pressure on m_axis:
    decisions and outputs still exact; m_axis keeps tvalid and payload while stalled."""
    tb = await setup(dut)
    checker = HandshakeChecker.axis(dut, "m_axis")
    sl = Slice(tb)
    skips = []
    for s in range(sl.steps):
        for n in range(sl.blocks):
            d = await tb.block(sl.begin(n, s), sl.program(n), src_pause=0.4, sink_pause=0.5)
            skips.append(d.skip)
    assert any(skips)
    assert sum(r["stall"] for r in tb.runs) > 0
    checker.check()
    assert checker.stalls > 0 and checker.beats > 0
    env.report(stalled_beats=checker.stalls, skips=skips)


@cocotb.test()
async def bad_commands(dut):
    """Each bad command is flagged with its code and changes nothing: the
    slice after them decides and computes as the model does."""
    tb = await setup(dut)
    sl = Slice(tb)
    beg = sl.begin(0, 0)
    cfg = tb.cfg
    cases = [
        ([gr.BlockEnd()], "SEQUENCE"),
        ([g.Store("A", 0, 1)], "SEQUENCE"),
        ([g.Unknown(7)], "OPCODE"),
        ([gr.BlockBegin(cfg.blocks, 0, beg.data, 4)], "SHAPE"),
        ([gr.BlockBegin(0, cfg.timesteps + 1, beg.data, 4)], "SHAPE"),
        ([gr.BlockBegin(0, 0, beg.data, 4, code_addr=cfg.code_depth - 1)], "ADDRESS"),
        ([gr.BlockBegin(0, 0, beg.data, cfg.reuse_depth, reuse_addr=1)], "ADDRESS"),
    ]
    for chunk, code in cases:
        want = await tb.run(chunk, label=f"bad {code}")
        assert want.error_code == code, (code, want.errors)
    # Inside a block: BEGIN again, and a GEMM the core rejects; the block still closes cleanly.
    await tb.run([beg], label="begin")
    prog = sl.program(0)
    want = await tb.run([sl.begin(1, 0), g.Gemm(4, 3, 4, 0, 0, 0)] + prog[:3] + prog[4:] + [gr.BlockEnd()],
                        label="bad inside")
    assert [c for _, c in want.errors] == ["SEQUENCE", "SHAPE"], want.errors
    await run_slice(tb, sl, first_step=1)
    # Queue overflow.
    for _ in range(tb.queue_depth + 1):
        await tb.host.push_command(encode(gr.BlockEnd()))
    st = await tb.host.status()
    assert st["error"] == 1 and st["error_code"] == ERRORS["QUEUE_FULL"], st
    await tb.host.soft_reset()
    env.report(runs=len(tb.runs))


@cocotb.test()
async def soft_reset_mid_traffic(dut):
    """A soft reset while a block's input streams in and while its GEMM
    program runs under back-pressure; afterwards a fresh slice (every block's
    first step again) is exact and cycle-exact."""
    tb = await setup(dut)
    sl = Slice(tb)
    for where, delay in (("begin", 8), ("program", 60)):
        begin = sl.begin(0, 0)
        if where == "program":
            await tb.run([begin], label="begin before reset")
            chunk = sl.program(0) + [gr.BlockEnd()]
            for cmd in chunk:
                await tb.host.push_command(encode(cmd))
            for cmd in chunk:
                if isinstance(cmd, g.Load):
                    await tb.src.send(g.to_bytes(cmd.data, 1))
        else:
            await tb.host.push_command(encode(begin))
            await tb.src.send(fp16_bytes(begin.data))
            tb.src.pause(0.7)
        tb.sink.pause(0.5)
        await tb.start()
        await ClockCycles(tb.clk, delay)
        assert (await tb.host.status())["busy"] == 1
        await tb.soft_reset_to_idle()
        assert await tb.host.read_reg("cycles") == 0
        tb.model.soft_reset()
        await run_slice(tb, sl)
    env.report(runs=len(tb.runs))


@cocotb.test()
async def system_model(dut):
    """A DiT-shaped slice (``args["system"]``: the fields of a
    ``golden.system.Workload``) in the host runs of the bench's sampler
    hooks (:mod:`sim.accel.radit_dit`), on ideal streams: BLOCK_BEGIN alone;
    computed, a run per linear (``golden.radit_accel.linear_program``) and
    BLOCK_END alone; skipped, the program without data and BLOCK_END in runs
    of the queue depth. Reports every run's CYCLES and bytes in and out, and
    the skip matrix, for the system model's validation
    (tests/test_accel_radit.py, docs/SPEC.md "System model")."""
    from golden.system import Workload

    job = env.args().get("system")
    if not job:
        return
    w = Workload("radit slice", **job)
    tb = await setup(dut, w.steps)
    c = tb.cfg.gemm
    subs = 2 * w.depth
    sl = Slice(tb, subs, w.steps, w.tokens * w.hidden // tb.cfg.lanes)
    weights = {(n, lay.name): tb.rng.integers(-128, 128, size=(lay.k, lay.n))
               for n in range(subs) for lay in linear_layers(w, n)}
    first_run = len(tb.runs)
    skips = []
    for s in range(w.steps):
        row = []
        for n in range(subs):
            layers = linear_layers(w, n)
            last = layers[-1]
            sl.out_beats = last.m * (last.n // c.cols) * c.beats_per_row("ACC")
            d = (await tb.run([sl.begin(n, s)], label=f"system begin {n}/{s}")).decisions[0]
            row.append(bool(d.skip))
            progs = [gr.linear_program(tb.rng.integers(-128, 128, size=(lay.m, lay.k)), weights[(n, lay.name)], c,
                                       keep=lay is last) for lay in layers]
            if d.skip:
                flat = [cmd for p in progs for cmd in p] + [gr.BlockEnd()]
                for i in range(0, len(flat), tb.queue_depth):
                    await tb.run(flat[i:i + tb.queue_depth], label=f"system skipped {n}/{s}")
            else:
                for p in progs:
                    await tb.run(p, label=f"system linear {n}/{s}")
                await tb.run([gr.BlockEnd()], label=f"system end {n}/{s}")
        skips.append(row)
    runs = tb.runs[first_run:]
    env.report(system={"skip": skips, "cycles": sum(r["cycles"] for r in runs),
                       "bytes_in": sum(r["bytes_in"] for r in runs), "bytes_out": sum(r["bytes_out"] for r in runs),
                       "runs": len(runs)})


# --------------------------------------------------------------------------
# The digits DiT through the accelerator (reports.radit_accelerator).

class RtlBackend:
    """:class:`sim.accel.radit_dit.AccelHooks` backend on the RTL: called from
    the sampler's thread, each call runs the testbench until the run is done."""

    COUNTERS = ("dropped", "a_rows_skipped", "w_rows_skipped", "blocks_skipped")

    def __init__(self, tb):
        self.tb = tb
        self.cycles = 0
        self.counters = dict.fromkeys(self.COUNTERS, 0)
        self._begin = resume(self._begin_async)
        self._run = resume(self._run_async)

    def _count(self):
        c = self.tb.last_counters
        self.cycles += c["cycles"]
        for k in self.COUNTERS:
            self.counters[k] += c[k]

    async def _begin_async(self, cmd):
        await self.tb.run([cmd], label="dit")
        self._count()
        return dict(self.tb.last_decision)

    async def _run_async(self, cmds):
        out = []
        for i in range(0, len(cmds), self.tb.queue_depth):
            await self.tb.run(cmds[i:i + self.tb.queue_depth], label="dit")
            self._count()
            out += self.tb.last_outputs
        return out

    def begin(self, cmd):
        return self._begin(cmd)

    def run(self, cmds):
        return self._run(cmds)


@cocotb.test()
async def dit_sampling(dut):
    """``args["dit"]``: {"steps", "label", "seed", "runs": [{"schedule", "no_skip"}]}: DDIM sampling of
    the digits DiT with every sub-block's GEMMs and decisions on the RTL (each run also checked
    against the golden accelerator in lockstep, cycles included)."""
    import time

    import torch

    from sim.accel.radit_dit import AccelHooks
    from workloads.dit import sample
    from workloads.traces import calibrate, get_model

    job = env.args().get("dit")
    if not job:
        return
    torch.set_num_threads(1)
    tb = TB(dut)
    await tb.reset()
    model, _, _ = get_model()
    scales = calibrate(model, samples=job.get("calib_samples", 20), steps=job["steps"])
    out = []
    for r in job["runs"]:
        tb.no_skip = r["no_skip"]
        await tb.load_alphas(alpha_table(job["steps"], r["schedule"], tb.cfg.alpha_frac))
        backend = RtlBackend(tb)
        hooks = AccelHooks(model, scales, backend, job["steps"], tb.cfg)
        wall = time.perf_counter()
        x = await bridge(sample)(model, [job.get("label", 3)], seed=job.get("seed", 0), steps=job["steps"],
                                 hooks=hooks)
        rec = hooks.records()
        out.append({**r, "cycles": backend.cycles, "counters": backend.counters,
                    "wall_s": time.perf_counter() - wall, "sample": x.numpy().ravel().tolist(),
                    "delta": rec["delta"].tolist(), "theta": rec["theta"].tolist(),
                    "skip": rec["skip"].astype(int).tolist()})
    env.report(dit=out)
