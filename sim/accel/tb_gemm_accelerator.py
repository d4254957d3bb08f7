"""Testbench of ``gemm_accelerator`` against ``golden.accel`` through its real
host interface: AXI4-Lite (``sim.axi.Driver``) and AXI4-Stream
(cocotbext-axi source/sink).

A program is a list of ``golden.accel`` commands. The bench pushes them
(as many as the queue holds), queues every LOAD's bytes on ``s_axis`` first,
starts, awaits ``irq`` and reads the counters; meanwhile no Python runs per
cycle unless back-pressure or the protocol checker is switched on. Every
STORE / VECTOR-to-stream frame, the status and error code, and (with
``ideal`` streams) the CYCLES, GEMM_CYCLES, ARRAY_BUSY and STALL counters are
compared with the golden model, which runs the same program on its own memories.

The datapath type is the build's ``DTYPE`` (``"int8"`` default). With
``"fp16"`` every payload is bit patterns: binary16 A and W lanes, binary32
ACC lanes, drawn from mixtures that reach the corners (zeros of both signs,
subnormals, the largest finite values, infinities, NaNs, rounding ties); NaN
results compare as NaN because both sides give the canonical pattern.

Arguments (``sim.env.args()``): ``case`` options per testcase, see each one.
"""

import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from golden import accel as g
from golden import fp16 as fp
from golden.systolic import wrap
from hdl.accel.gemm_commands import COMMANDS, DTYPE_CODES, ERRORS, MEMORIES
from sim import env
from sim.accel.shell import ShellTB
from sim.axi import HandshakeChecker


def config():
    p = env.params()
    return g.Config(rows=p["ROWS"], cols=p["COLS"], a_depth=p["A_DEPTH"], w_depth=p["W_DEPTH"],
                    acc_depth=p["ACC_DEPTH"], stream_bytes=p["STREAM_BYTES"], dtype=p.get("DTYPE", "int8"))


def encode(cmd, fmt=COMMANDS) -> list[int]:
    """A golden command as the accelerator's six command words (``fmt``: the
    format of the build's datapath; the FP16 one also packs ``clip_fp16``)."""
    fp16_fields = {}
    if isinstance(cmd, g.Vector) and any(f.name == "clip_fp16" for f in fmt.fields):
        fp16_fields["clip_fp16"] = cmd.clip_fp16
    if isinstance(cmd, g.Load):
        return fmt.pack(opcode="LOAD", mem=MEMORIES[cmd.mem], m=cmd.rows, addr0=cmd.addr)
    if isinstance(cmd, g.Store):
        return fmt.pack(opcode="STORE", mem=MEMORIES[cmd.mem], m=cmd.rows, addr0=cmd.addr)
    if isinstance(cmd, g.Gemm):
        return fmt.pack(opcode="GEMM", m=cmd.m, k=cmd.k, n=cmd.n, addr0=cmd.a_addr, addr1=cmd.w_addr,
                        addr2=cmd.acc_addr, accumulate=int(cmd.accumulate))
    if isinstance(cmd, g.Vector):
        return fmt.pack(opcode="VECTOR", m=cmd.m, n=cmd.n, addr0=cmd.acc_addr, addr1=cmd.dst_addr,
                        addr2=cmd.bias_addr, addr3=cmd.res_addr, mult=cmd.mult, shift=cmd.shift,
                        bias=int(cmd.bias), residual=int(cmd.residual), relu=int(cmd.relu),
                        to_stream=int(cmd.to_stream), clip_lo=cmd.clip_lo & 0xFF, clip_hi=cmd.clip_hi & 0xFF,
                        **fp16_fields)
    if isinstance(cmd, g.Unknown):
        return fmt.pack(opcode=cmd.opcode)
    raise TypeError(cmd)


class TB(ShellTB):
    def __init__(self, dut):
        super().__init__(dut)
        self.cfg = config()
        self.model = g.Accelerator(self.cfg)

    async def reset(self):
        await super().reset()
        self.model = g.Accelerator(self.cfg)

    def encode(self, cmd):
        return encode(cmd, self.commands)

    def random_rows(self, mem, rows, extremes=0.25):
        if self.cfg.fp16:
            return fp16_rows(self.rng, (rows, self.cfg.lanes(mem)), wide=mem == "ACC", corners=extremes / 4)
        lanes = self.cfg.lanes(mem)
        bits = 32 if mem == "ACC" else 8
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        x = self.rng.integers(lo, hi + 1, size=(rows, lanes), dtype=np.int64)
        return np.where(self.rng.random(x.shape) < extremes, self.rng.choice([lo, hi], size=x.shape), x)

    async def run(self, program, *, src_pause=0.0, sink_pause=0.0, ideal=None, label=""):
        """Run ``program`` in queue-sized runs; check outputs, status and (ideal) counters."""
        ideal = (src_pause == 0 and sink_pause == 0) if ideal is None else ideal
        program = list(program)
        for start in range(0, len(program), self.queue_depth):
            await self._run_chunk(program[start:start + self.queue_depth], src_pause, sink_pause, ideal, label)

    async def _run_chunk(self, chunk, src_pause, sink_pause, ideal, label):
        cfg = self.cfg
        want = g.run(chunk, cfg, self.model)
        for cmd in chunk:
            await self.host.push_command(self.encode(cmd))
        assert await self.host.read_field("queue", "fill") == len(chunk)
        # LOAD data goes on the bus before the start, so an ideal run never waits for it.
        bytes_in = 0
        for cmd, code in zip(chunk, _codes(chunk, want)):
            if isinstance(cmd, g.Load) and code == "NONE":
                beats = g.to_bytes(cmd.data, cfg.lane_bytes(cmd.mem))
                bytes_in += len(beats)
                await self.src.send(beats)
        wall = time.perf_counter()
        cpu = time.process_time()
        status, got = await self.start_run(src_pause, sink_pause, 10 * 200 * (sum(want.cycles) + 1000))
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        counters = {name: await self.host.read_reg(name)
                    for name in ("cycles", "array_busy", "stall", "gemm_cycles", "commands")}
        where = f"{label}: program {[type(c).__name__ for c in chunk]}"
        assert status["busy"] == 0 and status["done"] == 1, f"{where}: status {status}"
        assert status["error"] == int(bool(want.errors)), f"{where}: status {status}, model errors {want.errors}"
        assert status["error_code"] == ERRORS[want.error_code], \
            f"{where}: error code {status['error_code']}, model {want.error_code}"
        assert counters["commands"] == len(chunk), f"{where}: {counters}"
        assert len(got) == len(want.outputs), f"{where}: {len(got)} frames, model {len(want.outputs)}"
        for i, (a, b) in enumerate(zip(got, want.outputs)):
            if a != b:
                n = min(len(a), len(b))
                diff = [j for j in range(n) if a[j] != b[j]]
                first = diff[0] if diff else n
                raise AssertionError(f"{where}: output frame {i} differs from the model ({len(a)} vs {len(b)} "
                                     f"bytes; {len(diff)} differ, first at byte {first}: "
                                     f"{a[first:first + 8].hex()} vs {b[first:first + 8].hex()})")
        if ideal:
            assert counters["cycles"] == want.total_cycles, \
                f"{where}: {counters['cycles']} cycles, model {want.total_cycles} ({want.cycles})"
            assert counters["array_busy"] == want.array_busy, f"{where}: {counters}, model {want.array_busy}"
            assert counters["stall"] == 0, f"{where}: {counters}"
            if want.gemm_cycles:
                assert counters["gemm_cycles"] == want.gemm_cycles[-1], \
                    f"{where}: gemm {counters['gemm_cycles']}, model {want.gemm_cycles[-1]}"
        self.runs.append({"label": label, "commands": len(chunk), "cycles": counters["cycles"],
                          "model_cycles": want.total_cycles, "gemm_cycles": counters["gemm_cycles"],
                          "stall": counters["stall"], "wall_s": wall, "cpu_s": cpu,
                          "bytes_in": bytes_in, "bytes_out": sum(len(x) for x in got)})
        return counters

    async def fill_memories(self, label=""):
        """LOAD random rows into every memory: reset leaves the memories as
        they were, so a test that compares whole memories first makes the
        hardware and the model agree."""
        for mem in ("A", "W", "ACC"):
            await self.run([g.Load(mem, 0, self.random_rows(mem, self.cfg.depth(mem)))], label=f"{label} fill {mem}")

    async def check_memories(self, label=""):
        """STORE every row of A and ACC and compare with the model's memories."""
        cfg = self.cfg
        prog = []
        for mem in ("A", "ACC"):
            depth = cfg.depth(mem)
            for base in range(0, depth, 4096):
                prog.append(g.Store(mem, base, min(4096, depth - base)))
        await self.run(prog, label=f"{label} memory check")


def fp16_values(rng, shape, corners=0.05, exp=(10, 20)):
    """binary16 patterns: random sign and fraction, exponent fields in ``exp``
    (values 2^-5 .. 2^6 by default, so that sums of products stay finite),
    and a share ``corners`` of :func:`golden.fp16.corners16` (both zeros,
    subnormals, the largest finite, infinities, NaNs)."""
    x = ((rng.integers(0, 2, shape) << 15) | (rng.integers(exp[0], exp[1] + 1, shape) << 10)
         | rng.integers(0, 1 << 10, shape))
    return np.where(rng.random(shape) < corners, rng.choice(fp.corners16().astype(np.int64), shape), x)


def fp32_values(rng, shape, corners=0.1):
    """binary32 patterns: half with exponents around the binary16 range (so
    the conversion to binary16 rounds, overflows and goes subnormal), a
    quarter anywhere, and a share ``corners`` of :func:`golden.fp16.corners32`
    (rounding ties to binary16 and the binary16 boundaries among them)."""
    x = rng.integers(0, 1 << 32, shape, dtype=np.uint64).astype(np.int64)
    near = rng.random(shape) < 0.6
    x = np.where(near, (x & 0x807FFFFF) | (rng.integers(98, 145, shape) << 23), x)
    return np.where(rng.random(shape) < corners, rng.choice(fp.corners32().astype(np.int64), shape), x)


def fp16_rows(rng, shape, *, wide=False, corners=0.05):
    """Random memory rows of the FP16 datapath: binary16 (A, W) or binary32 (ACC) patterns."""
    return fp32_values(rng, shape, corners=2 * corners) if wide else fp16_values(rng, shape, corners)


def operands(tb, m, k, n, values="random"):
    """A (m x k) and W (k x n) of the build's datapath: INT8 integers or binary16 patterns."""
    if tb.cfg.fp16:
        if values == "min_min":   # the largest magnitudes: products 2^32 - 2^22, sums still finite
            return np.full((m, k), 0xFBFF), np.full((k, n), 0xFBFF)
        if values == "min_max":
            return np.full((m, k), 0xFBFF), np.full((k, n), 0x7BFF)
        return fp16_values(tb.rng, (m, k)), fp16_values(tb.rng, (k, n))
    lo, hi = -128, 127
    if values == "min_min":
        return np.full((m, k), lo), np.full((k, n), lo)
    if values == "min_max":
        return np.full((m, k), lo), np.full((k, n), hi)
    a = tb.rng.integers(lo, hi + 1, size=(m, k))
    w = tb.rng.integers(lo, hi + 1, size=(k, n))
    a = np.where(tb.rng.random(a.shape) < 0.2, tb.rng.choice([lo, hi], size=a.shape), a)
    w = np.where(tb.rng.random(w.shape) < 0.2, tb.rng.choice([lo, hi], size=w.shape), w)
    return a, w


def product(tb, a, w):
    """What the accumulator holds after a GEMM of ``a @ w`` (without accumulate)."""
    return g.gemm_fp16(a, w, tb.cfg.rows) if tb.cfg.fp16 else g.matmul(a, w)


def _codes(chunk, want):
    bad = dict(want.errors)
    return [bad.get(i, "NONE") for i in range(len(chunk))]


def gemm_program(tb, m, k, n, *, a_addr=0, w_addr=0, acc_addr=0, values="random", accumulate=False):
    """LOAD A and W, GEMM, STORE the accumulator region."""
    cfg = tb.cfg
    a, w = operands(tb, m, k, n, values)
    nt = n // cfg.cols
    return [g.Load("A", a_addr, g.layout_a(a, cfg.rows)), g.Load("W", w_addr, g.layout_w(w, cfg.rows, cfg.cols)),
            g.Gemm(m, k, n, a_addr, w_addr, acc_addr, accumulate), g.Store("ACC", acc_addr, m * nt)], a, w


@cocotb.test()
async def gemm_end_to_end(dut):
    """LOAD, GEMM, STORE for several shapes (K and N over several tiles, M not
    a multiple of ROWS, M < ROWS, extremes), bit- and cycle-exact."""
    tb = TB(dut)
    await tb.reset()
    r, c = tb.cfg.rows, tb.cfg.cols
    shapes = env.args().get("shapes") or [
        (r + 1, r, c, "random"), (2 * r + 3, 3 * r, 2 * c, "random"), (max(1, r // 2), 2 * r, 3 * c, "random"),
        (1, r, c, "random"), (r, 2 * r, c, "min_min"), (r + 2, r, 2 * c, "min_max"), (3 * r - 1, 4 * r, c, "random"),
    ]
    gemms = []
    for m, k, n, values in shapes:
        prog, a, w = gemm_program(tb, m, k, n, a_addr=3, w_addr=5, acc_addr=7, values=values)
        await tb.run(prog, label=f"gemm {m}x{k}x{n} {values}")
        # The model's own check of the product against matmul, for the record.
        got = g.unlayout_acc(tb.model.mem["ACC"][7:7 + m * (n // c)], m, n, c)
        assert np.array_equal(got, product(tb, a, w))
        run = tb.runs[-1]
        # What the system model is validated on: one layer's counter and host bytes.
        gemms.append({"m": m, "k": k, "n": n, "gemm_cycles": run["gemm_cycles"], "bytes_in": run["bytes_in"],
                      "bytes_out": run["bytes_out"]})
    env.report(runs=tb.runs, gemms=gemms)


@cocotb.test()
async def accumulate_and_wrap(dut):
    """GEMM with accumulate onto a loaded accumulator near INT32 limits wraps
    like two's complement; a K split over two commands equals the whole product."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    r, c = cfg.rows, cfg.cols
    m, k, n = r + 1, 2 * r, c
    near = np.full((m, c), (1 << 31) - 5, dtype=np.int64)
    near[::2] = -(1 << 31) + 3
    prog, a, w = gemm_program(tb, m, k, n, values="min_min")
    prog = prog[:2] + [g.Load("ACC", 0, near), g.Gemm(m, k, n, 0, 0, 0, accumulate=True), g.Store("ACC", 0, m)]
    await tb.run(prog, label="accumulate wrap")
    assert np.array_equal(tb.model.mem["ACC"][:m], wrap(near + g.matmul(a, w)))
    # K split: first half stores, second half accumulates.
    a = tb.rng.integers(-128, 128, size=(m, k))
    w = tb.rng.integers(-128, 128, size=(k, n))
    half = k // 2
    prog = [g.Load("A", 0, g.layout_a(a[:, :half], r)), g.Load("A", 100, g.layout_a(a[:, half:], r)),
            g.Load("W", 0, g.layout_w(w[:half], r, c)), g.Load("W", 64, g.layout_w(w[half:], r, c)),
            g.Gemm(m, half, n, 0, 0, 10), g.Gemm(m, half, n, 100, 64, 10, accumulate=True), g.Store("ACC", 10, m)]
    await tb.run(prog, label="K split")
    assert np.array_equal(tb.model.mem["ACC"][10:10 + m], g.matmul(a, w))
    env.report(runs=tb.runs)


@cocotb.test()
async def vector_ops(dut):
    """Each vector op alone and together, to the stream and to the scratchpad
    (then STOREd), including round-half-even ties and saturation."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    r, c = cfg.rows, cfg.cols
    m, n = r + 3, 2 * c
    rows = m * (n // c)
    acc = tb.rng.integers(-(1 << 20), 1 << 20, size=(rows, c))
    acc[0, :] = [(2 * j + 1) << 3 for j in range(c)]              # exact ties at shift 4
    acc[1, :] = [-((2 * j + 1) << 3) for j in range(c)]
    acc[2, :] = [(1 << 31) - 1 if j % 2 else -(1 << 31) for j in range(c)]
    bias = tb.random_rows("ACC", n // c, extremes=0.1) >> 8
    res = tb.random_rows("A", rows)
    setup = [g.Load("ACC", 0, acc), g.Load("ACC", 200, bias), g.Load("A", 40, res)]
    ops = [
        dict(mult=1, shift=0), dict(mult=1, shift=4), dict(mult=0xFFFF, shift=63), dict(mult=37, shift=9),
        dict(mult=300, shift=12, bias=True, bias_addr=200),
        dict(mult=77, shift=14, residual=True, res_addr=40),
        dict(mult=77, shift=14, relu=True),
        dict(mult=77, shift=14, clip_lo=-20, clip_hi=45),
        dict(mult=1234, shift=17, bias=True, bias_addr=200, residual=True, res_addr=40, relu=True, clip_lo=3,
             clip_hi=100),
    ]
    prog = list(setup)
    for op in ops:
        prog.append(g.Vector(m, n, 0, to_stream=True, **op))
    if r == c:
        prog += [g.Vector(m, n, 0, dst_addr=80, **ops[-1]), g.Store("A", 80, rows)]
    await tb.run(prog, label="vector ops")
    env.report(runs=tb.runs)


@cocotb.test()
async def fp16_accumulate_and_vector(dut):
    """FP16 datapath only (``DTYPE="fp16"``; returns at once on INT8): GEMM
    with accumulate onto binary32 corners (largest finite, infinities, NaNs,
    zeros of both signs, subnormals), a K split over two commands (the same
    tile order as the whole product), and the vector ops (bias and residual
    in binary32, the one rounding to binary16 with its ties, overflow and
    subnormals, ReLU, clip and saturation) to the stream and to the
    scratchpad, bit- and cycle-exact."""
    tb = TB(dut)
    if not tb.cfg.fp16:
        dut._log.info("fp16_accumulate_and_vector: an INT8 build, nothing to do")
        return
    await tb.reset()
    cfg = tb.cfg
    r, c = cfg.rows, cfg.cols
    m, k, n = r + 1, 2 * r, 2 * c
    nt = n // c
    acc0 = fp32_values(tb.rng, (m * nt, c), corners=0.3)
    a, w = operands(tb, m, k, n)
    prog = [g.Load("A", 0, g.layout_a(a, r)), g.Load("W", 0, g.layout_w(w, r, c)), g.Load("ACC", 0, acc0),
            g.Gemm(m, k, n, 0, 0, 0, accumulate=True), g.Store("ACC", 0, m * nt)]
    await tb.run(prog, label="fp16 accumulate onto corners")
    want = g.gemm_fp16(a, w, r, g.unlayout_acc(acc0, m, n, c))
    assert np.array_equal(g.unlayout_acc(tb.model.mem["ACC"][:m * nt], m, n, c), want)
    # K split: the first half stores, the second adds its tile: the whole product's order.
    a, w = operands(tb, m, k, n)
    half = k // 2
    prog = [g.Load("A", 0, g.layout_a(a[:, :half], r)), g.Load("A", 100, g.layout_a(a[:, half:], r)),
            g.Load("W", 0, g.layout_w(w[:half], r, c)), g.Load("W", 64, g.layout_w(w[half:], r, c)),
            g.Gemm(m, half, n, 0, 0, 10), g.Gemm(m, half, n, 100, 64, 10, accumulate=True),
            g.Store("ACC", 10, m * nt)]
    await tb.run(prog, label="fp16 K split")
    assert np.array_equal(g.unlayout_acc(tb.model.mem["ACC"][10:10 + m * nt], m, n, c), g.gemm_fp16(a, w, r))
    # Vector ops on binary32 rows around the binary16 range, with every corner.
    m = r + 3
    rows = m * nt
    acc = fp32_values(tb.rng, (rows, c), corners=0.2)
    corners = fp.corners32().astype(np.int64)
    flat = acc.reshape(-1)   # every binary32 corner in the first rows
    flat[:min(corners.size, flat.size)] = corners[:flat.size]
    bias = fp32_values(tb.rng, (nt, c), corners=0.2)
    res = fp16_values(tb.rng, (rows, c), corners=0.2, exp=(0, 30))
    setup = [g.Load("ACC", 0, acc), g.Load("ACC", 200, bias), g.Load("A", 40, res)]
    ops = [
        dict(), dict(bias=True, bias_addr=200), dict(residual=True, res_addr=40), dict(relu=True),
        dict(clip_fp16=0x7BFF),                       # saturate at 65504: no infinities out
        dict(relu=True, clip_fp16=0x4600),            # ReLU6
        dict(bias=True, bias_addr=200, residual=True, res_addr=40, relu=True, clip_fp16=0xC400),  # sign ignored
        dict(mult=77, shift=14, clip_lo=-3, clip_hi=5),  # INT8 fields: ignored
    ]
    prog = list(setup) + [g.Vector(m, n, 0, to_stream=True, **op) for op in ops]
    if r == c:
        prog += [g.Vector(m, n, 0, dst_addr=80, **ops[-2]), g.Store("A", 80, rows)]
    await tb.run(prog, label="fp16 vector ops")
    env.report(runs=tb.runs)


@cocotb.test()
async def bad_commands(dut):
    """Every error code; the bad command is dropped, memories stay as they
    were, and a good command after it still works."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    r, c = cfg.rows, cfg.cols
    await tb.fill_memories("bad commands")
    prog, _, _ = gemm_program(tb, r + 1, 2 * r, 2 * c)
    await tb.run(prog, label="setup")
    A, W, ACC = cfg.a_depth, cfg.w_depth, cfg.acc_depth
    bad = [
        (g.Unknown(0), "OPCODE"), (g.Unknown(7), "OPCODE"), (g.Unknown(15), "OPCODE"),
        (g.Load("A", A - 2, tb.random_rows("A", 3)), "ADDRESS"),
        (g.Load("ACC", ACC - 1, tb.random_rows("ACC", 2)), "ADDRESS"),
        (g.Store("W", 0, 1), "SHAPE"),
        (g.Store("ACC", ACC - 1, 2), "ADDRESS"),
        (g.Gemm(r, r + 1, c, 0, 0, 0), "SHAPE"), (g.Gemm(r, r, c + 1, 0, 0, 0), "SHAPE"),
        (g.Gemm(0, r, c, 0, 0, 0), "SHAPE"),
        (g.Gemm(r, r, c, A - r + 1, 0, 0), "ADDRESS"), (g.Gemm(r, r, c, 0, W - r + 1, 0), "ADDRESS"),
        (g.Gemm(r, r, 2 * c, 0, 0, ACC - 2 * r + 1), "ADDRESS"),
        (g.Vector(r, c + 1, 0, to_stream=True), "SHAPE"),
        (g.Vector(r, c, ACC - r + 1, to_stream=True), "ADDRESS"),
        (g.Vector(r, c, 0, to_stream=True, bias=True, bias_addr=ACC), "ADDRESS"),
    ]
    if r == c:
        bad += [(g.Vector(r, c, 0, dst_addr=A - r + 1), "ADDRESS"),
                (g.Vector(r, c, 0, to_stream=True, residual=True, res_addr=A - 1), "ADDRESS")]
    else:
        bad += [(g.Vector(r, c, 0, dst_addr=0), "SHAPE")]
    for cmd, code in bad:
        assert tb.model.check(cmd) == code, (cmd, code)
        good = g.Store("ACC", 0, 2)
        await tb.run([cmd, good], label=f"bad {code}")
    # Queue overflow: one command more than the queue holds (after a clean run,
    # so that the code is the first error since the last start).
    await tb.run([g.Store("A", 0, 1)], label="clean")
    before = await tb.host.read_reg("status")
    for _ in range(tb.queue_depth + 1):
        await tb.host.push_command(tb.encode(g.Store("A", 0, 1)))
    st = await tb.host.status()
    assert st["error"] == 1 and st["error_code"] == ERRORS["QUEUE_FULL"], (before, st)
    assert await tb.host.read_field("queue", "fill") == tb.queue_depth
    await tb.host.start()
    await tb.wait_done(timeout_ns=10 * 100 * tb.queue_depth * 64)
    frames = 0
    while not tb.sink.empty():
        tb.sink.recv_nowait()
        frames += 1
    assert frames == tb.queue_depth
    st = await tb.host.status()
    assert st["error"] == 0, st   # start cleared it; the run itself was clean
    await tb.check_memories("after bad commands")
    env.report(runs=tb.runs)


@cocotb.test()
async def backpressure_and_protocol(dut):
    """Random gaps on s_axis and back-pressure on m_axis (seeded); m_axis keeps
    tvalid and its payload while stalled; results still exact."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    r, c = cfg.rows, cfg.cols
    checker = HandshakeChecker.axis(dut, "m_axis")
    for src, sink in ((0.3, 0.5), (0.6, 0.2), (0.0, 0.8)):
        prog, _, _ = gemm_program(tb, 2 * r + 1, 2 * r, 2 * c)
        prog.append(g.Vector(2 * r + 1, 2 * c, 0, mult=99, shift=11, to_stream=True))
        await tb.run(prog, src_pause=src, sink_pause=sink, label=f"pauses {src}/{sink}")
        assert tb.runs[-1]["stall"] > 0
    checker.check()
    assert checker.stalls > 0 and checker.beats > 0
    env.report(runs=tb.runs, stalled_beats=checker.stalls)


@cocotb.test()
async def soft_reset_mid_traffic(dut):
    """A soft reset during a GEMM and during a STORE under back-pressure stops
    everything; the next complete run is exact and cycle-exact."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    r, c = cfg.rows, cfg.cols
    for delay in (60, 200):
        prog, _, _ = gemm_program(tb, 4 * r, 4 * r, 2 * c)
        for cmd in prog:
            await tb.host.push_command(tb.encode(cmd))
        for cmd in prog:
            if isinstance(cmd, g.Load):
                await tb.src.send(g.to_bytes(cmd.data, cfg.lane_bytes(cmd.mem)))
        tb.sink.pause(0.5)
        await tb.host.start()
        await ClockCycles(tb.clk, delay)
        await tb.soft_reset_to_idle()
        assert await tb.host.read_reg("cycles") == 0
        # Memories are not reset; the aborted run changed them part way.
        tb.model = g.Accelerator(cfg)
        await tb.fill_memories("after soft reset")
        prog, _, _ = gemm_program(tb, 2 * r + 1, 3 * r, 2 * c, a_addr=1, w_addr=2, acc_addr=3)
        await tb.run(prog, label=f"after soft reset at {delay}")
    env.report(runs=tb.runs)


@cocotb.test()
async def registers(dut):
    """ID, version and parameter registers read back the configuration; an
    unknown address and a write to a read-only register answer SLVERR."""
    from cocotbext.axi import AxiResp

    tb = TB(dut)
    await tb.reset()
    p = env.params()
    assert await tb.host.read_reg("id") == 0x47454D4D
    assert tb.host.unpack("array", await tb.host.read_reg("array")) == {"rows": p["ROWS"], "cols": p["COLS"]}
    assert await tb.host.read_reg("a_depth") == p["A_DEPTH"]
    assert await tb.host.read_reg("w_depth") == p["W_DEPTH"]
    assert await tb.host.read_reg("acc_depth") == p["ACC_DEPTH"]
    cfgw = tb.host.unpack("config", await tb.host.read_reg("config"))
    assert cfgw == {"stream_bytes": p["STREAM_BYTES"], "queue_depth": p["QUEUE_DEPTH"], "cmd_words": COMMANDS.words}
    assert await tb.host.read_reg("datapath") == DTYPE_CODES[tb.cfg.dtype]
    assert await tb.host.write_reg("status", 0, check=False) == AxiResp.SLVERR
    _, resp = await tb.host.read(0xFFC, check=False)
    assert resp == AxiResp.SLVERR
    # A run with nothing queued finishes at once: done, irq.
    await tb.host.start()
    st = await tb.wait_done(timeout_ns=1000)
    assert st["done"] == 1 and int(dut.irq.value) == 1
    assert await tb.host.read_reg("cycles") == 1


@cocotb.test()
async def layers(dut):
    """Benchmark programs (``args["layers"]``: name, m, k, n, optional
    ``n_chunk``): LOAD A once, then per N chunk LOAD W, GEMM (a run of its
    own, so that its wall time is compute only) and a VECTOR to the stream,
    checked against the model like every run; reports RTL and model GEMM
    cycles and the simulation speed of the GEMM runs."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    out = []
    for layer in env.args().get("layers", []):
        m, k, n = layer["m"], layer["k"], layer["n"]
        chunk = layer.get("n_chunk") or n
        chunks = layer.get("chunks") or -(-n // chunk)
        a = tb.rng.integers(-128, 128, size=(m, k))
        w = tb.rng.integers(-128, 128, size=(k, n))
        await tb.run([g.Load("A", 0, g.layout_a(a, cfg.rows))], label=f"{layer['name']} load A")
        rtl = model = cycles = 0
        wall = cpu = 0.0
        for n0 in range(0, chunks * chunk, chunk):
            part = w[:, n0:n0 + chunk]
            await tb.run([g.Load("W", 0, g.layout_w(part, cfg.rows, cfg.cols))], label=f"{layer['name']} load W")
            gemm = g.Gemm(m, k, part.shape[1], 0, 0, 0)
            await tb.run([gemm], label=f"{layer['name']} gemm")
            run = tb.runs[-1]
            rtl += run["gemm_cycles"]
            model += g.command_cycles(gemm, cfg) - 2
            cycles += run["cycles"]
            wall += run["wall_s"]
            cpu += run["cpu_s"]
            await tb.run([g.Vector(m, part.shape[1], 0, mult=1, shift=12, to_stream=True)],
                         label=f"{layer['name']} vector")
        done_n = min(n, chunks * chunk)
        out.append({"name": layer["name"], "m": m, "k": k, "n": n, "n_chunk": chunk, "chunks": chunks,
                    "n_run": done_n, "rtl_cycles": rtl, "model_cycles": model,
                    "utilisation": m * k * done_n / (cfg.rows * cfg.cols * rtl),
                    "gemm_run_cycles": cycles, "gemm_run_wall_s": wall, "gemm_run_cpu_s": cpu})
    env.report(layers=out, runs=tb.runs)
