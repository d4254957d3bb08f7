"""Testbench of ``axi_shell_demo``: the host-interface kit driven the way
firmware drives a top, through cocotbext-axi (``sim.axi``).

Arguments (``sim.env.args()``): ``frames`` (stream frames), ``pause``
(back-pressure probability on every channel), ``transactions`` (random
register accesses), ``speed_cycles`` (length of the compute-speed probe).
"""

import time

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_steps, get_sim_time
from cocotbext.axi import AxiResp, AxiStreamFrame

from hdl.common.axi_demo import AXIShellDemo, DEMO_ID, ERR_OPCODE, ERR_OVERFLOW
from sim import env
from sim.axi import AxiError, BusReset, Driver, HandshakeChecker, axis_sink, axis_source, random_pauses, start_clock


def _top():
    p = env.params()
    return AXIShellDemo(data_bytes=p["DATA_BYTES"], queue_depth=p["QUEUE_DEPTH"])


async def _setup(dut, *, streams=False):
    top = _top()
    start_clock(dut)
    dut.rst.value = 1
    drv = Driver(dut, top.REGMAP, commands=top.COMMANDS)
    src = sink = None
    if streams:
        src = axis_source(dut, "s_axis", seed=env.seed())
        sink = axis_sink(dut, "m_axis", seed=env.seed() + 1)
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    return top, drv, src, sink


def _bus_pauses(drv: Driver, probability: float, seed: int):
    """Random stalls on every AXI4-Lite channel: AW/W/AR idle, B/R back-pressure."""
    chans = [drv.master.write_if.aw_channel, drv.master.write_if.w_channel, drv.master.write_if.b_channel,
             drv.master.read_if.ar_channel, drv.master.read_if.r_channel]
    for n, ch in enumerate(chans):
        if probability > 0:
            ch.set_pause_generator(random_pauses(probability, seed * 31 + n))
        else:
            ch.clear_pause_generator()
            ch.pause = False  # clearing the generator leaves its last value


async def _expect_error(coro, what):
    try:
        await coro
    except AxiError as exc:
        assert exc.resp == AxiResp.SLVERR, f"{what}: {exc}"
        return
    raise AssertionError(f"{what}: expected SLVERR")


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def register_access(dut):
    """Every access type, wstrb, SLVERR with no change, unknown addresses."""
    top, drv, _, _ = await _setup(dut)
    checkers = HandshakeChecker.axil(dut)
    regs = top.REGMAP
    p = env.params()
    assert await drv.read_reg("id") == DEMO_ID
    assert await drv.read_reg("version") == regs.version
    assert drv.unpack("params", await drv.read_reg("params")) == {
        "data_bytes": p["DATA_BYTES"], "queue_depth": p["QUEUE_DEPTH"]}
    assert await drv.read_reg("scratch") == regs["scratch"].reset

    # rw: whole word, then each byte lane alone (wstrb), then an unaligned byte write.
    await drv.write_reg("scratch", 0x01234567)
    assert await drv.read_reg("scratch") == 0x01234567
    for lane in range(4):
        await drv.write(regs["scratch"].offset, 0xAA << (8 * lane), strb=1 << lane)
    assert await drv.read_reg("scratch") == 0xAAAAAAAA
    await drv.write(regs["scratch"].offset, 0x00BBCC00, strb=0b0110)
    assert await drv.read_reg("scratch") == 0xAABBCCAA
    await drv.master.write(regs["scratch"].offset + 3, b"\x11")
    assert await drv.read_reg("scratch") == 0x11BBCCAA
    sub = await drv.master.read(regs["scratch"].offset + 2, 1)
    assert sub.data == b"\xbb" and sub.resp == AxiResp.OKAY
    # rw narrower than 32 bits: the missing bits read 0 and ignore writes.
    await drv.write_reg("addend", 0xFFFFFFFF)
    assert await drv.read_reg("addend") == 0xFF

    # ro: SLVERR, nothing changes.
    await _expect_error(drv.write_reg("id", 0), "write to ro id")
    await _expect_error(drv.write_reg("status", 0xFFFFFFFF), "write to ro status")
    assert await drv.read_reg("id") == DEMO_ID

    # Unknown addresses: SLVERR and 0 for reads, SLVERR and no effect for writes.
    known = {r.offset for r in regs}
    unknown = [a for a in (0x28, 0x2C, 0x3C, 0x100, (1 << regs.addr_width) - 4) if a not in known]
    for addr in unknown:
        value, resp = await drv.read(addr, check=False)
        assert resp == AxiResp.SLVERR and value == 0, (hex(addr), value, resp)
        assert await drv.write(addr, 0xFFFFFFFF, check=False) == AxiResp.SLVERR
    assert await drv.read_reg("scratch") == 0x11BBCCAA and await drv.read_reg("addend") == 0xFF

    # wo: reads 0 with OKAY; a push is a strobe (the queue level shows it).
    value, resp = await drv.read(regs["cmd"].offset, check=False)
    assert value == 0 and resp == AxiResp.OKAY
    await drv.command(opcode="nop", tag=1)
    assert (await drv.status())["queue_level"] == 1
    assert await drv.read_reg("control") == 0

    # w1c: set by hardware, a 0 leaves it, a 1 clears it.
    await drv.start()
    await ClockCycles(dut.clk, 10)
    assert await drv.read_field("irq_status", "done") == 1
    await drv.write_reg("irq_status", 0)
    assert await drv.read_field("irq_status", "done") == 1
    await drv.write_reg("irq_status", drv.pack("irq_status", done=1))
    assert await drv.read_reg("irq_status") == 0
    for c in checkers:
        c.check()


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def random_register_traffic(dut):
    """Pipelined random reads and writes under random stalls on all five
    channels, checked against a model of the map; B and R hold their beats."""
    top, drv, _, _ = await _setup(dut)
    a = env.args()
    rnd, _ = env.rngs()
    regs = top.REGMAP
    _bus_pauses(drv, a.get("pause", 0.3), env.seed())
    checkers = HandshakeChecker.axil(dut)
    model = {r.name: r.reset for r in regs if r.access == "rw"}
    fixed = {"id": DEMO_ID, "version": regs.version, "params": regs["params"].reset, "cmd": 0, "control": 0}
    writable = [regs[n] for n in model]
    readable = [regs[n] for n in list(model) + list(fixed)]
    known = {r.offset for r in regs}
    holes = [o for o in range(0, 0x80, 4) if o not in known]
    for _round in range(max(1, a.get("transactions", 400) // 40)):
        # A burst of writes in flight together: AW/W/B overlap back to back.
        writes = []
        for _ in range(20):
            kind = rnd.random()
            if kind < 0.7:
                r = rnd.choice(writable)
                strb = rnd.choice([0xF, 0x1, 0x2, 0x4, 0x8, 0x3, 0x6, 0xC, 0x7, 0xE])
                value = rnd.getrandbits(32)
                byte_mask = sum(0xFF << (8 * b) for b in range(4) if strb >> b & 1)
                model[r.name] = (model[r.name] & ~(byte_mask & r.mask)) | (value & byte_mask & r.mask)
                writes.append((drv.write(r.offset, value, strb=strb, check=False), AxiResp.OKAY))
            elif kind < 0.85:
                r = regs[rnd.choice(["id", "version", "params", "status", "cycles"])]
                writes.append((drv.write(r.offset, rnd.getrandbits(32), check=False), AxiResp.SLVERR))
            else:
                writes.append((drv.write(rnd.choice(holes), rnd.getrandbits(32), check=False), AxiResp.SLVERR))
        tasks = [cocotb.start_soon(w) for w, _ in writes]
        for t, (_, want) in zip(tasks, writes):
            assert await t == want
        # A burst of reads in flight together.
        reads = []
        for _ in range(20):
            if rnd.random() < 0.8:
                r = rnd.choice(readable)
                want = (model.get(r.name, fixed.get(r.name)), AxiResp.OKAY)
                reads.append((r.offset, want))
            else:
                reads.append((rnd.choice(holes), (0, AxiResp.SLVERR)))
        tasks = [cocotb.start_soon(drv.read(addr, check=False)) for addr, _ in reads]
        for t, (addr, want) in zip(tasks, reads):
            got = await t
            assert got == want, f"read {addr:#x}: got {got}, expected {want}"
    _bus_pauses(drv, 0, 0)
    for c in checkers:
        c.check()
    assert sum(c.stalls for c in checkers) > 0, "the B/R back-pressure never stalled a response"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def reset_during_traffic(dut):
    """A reset in the middle of pipelined accesses returns every register to
    its reset value and leaves the bus usable."""
    top, drv, _, _ = await _setup(dut)
    regs = top.REGMAP
    _bus_pauses(drv, 0.2, env.seed())
    await drv.write_reg("scratch", 0x12345678)
    await drv.write_reg("irq_enable", 3)

    async def tolerant(coro):
        try:
            return await coro
        except BusReset:
            return None

    drv.master.write_if.log.setLevel("ERROR")  # the flushed accesses are expected here
    drv.master.read_if.log.setLevel("ERROR")
    tasks = [cocotb.start_soon(tolerant(drv.write_reg("scratch", n))) for n in range(8)]
    tasks += [cocotb.start_soon(tolerant(drv.read_reg("scratch"))) for _ in range(8)]
    await ClockCycles(dut.clk, 7)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    flushed = [await t for t in tasks].count(None)
    assert flushed > 0, "the reset came after the traffic; move it earlier"
    _bus_pauses(drv, 0, 0)
    await RisingEdge(dut.clk)
    for name in ("scratch", "irq_enable", "addend", "irq_status"):
        assert await drv.read_reg(name) == regs[name].reset, name
    await drv.write_reg("scratch", 0xCAFEF00D)
    assert await drv.read_reg("scratch") == 0xCAFEF00D


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def stream_path(dut):
    """Frames through s_axis -> m_axis under random pauses on both sides:
    every byte (plus ADDEND) and every tlast in order, handshakes held."""
    top, drv, src, sink = await _setup(dut, streams=True)
    a = env.args()
    rnd, _ = env.rngs()
    nbytes = env.params()["DATA_BYTES"]
    addend = rnd.randrange(256)
    await drv.write_reg("addend", addend)
    checker = HandshakeChecker.axis(dut, "m_axis")
    frames = [bytes(rnd.randrange(256) for _ in range(nbytes * rnd.randint(1, 12)))
              for _ in range(a.get("frames", 60))]
    pause = a.get("pause", 0.3)
    with src.backpressure(pause), sink.backpressure(pause):
        for f in frames:
            await src.send(AxiStreamFrame(f))
        got = [await sink.recv() for _ in frames]
    for n, (f, g) in enumerate(zip(frames, got)):
        want = bytes((b + addend) & 0xFF for b in f)
        assert bytes(g.tdata) == want, f"frame {n}: got {bytes(g.tdata).hex()}, expected {want.hex()}"
    await ClockCycles(dut.clk, 10)
    assert sink.empty(), "extra frames arrived"
    checker.check()
    assert checker.beats == sum(len(f) for f in frames) // nbytes
    assert await drv.read_reg("stall_cycles") == checker.stalls

    # II = 1: without pauses one frame of 64 beats leaves in 64 consecutive cycles.
    frame = bytes(rnd.randrange(256) for _ in range(64 * nbytes))
    await src.send(AxiStreamFrame(frame))
    g = await sink.recv()
    assert bytes(g.tdata) == bytes((b + addend) & 0xFF for b in frame)
    period = get_sim_steps(10, "ns")
    span = g.sim_time_end - g.sim_time_start
    assert span == 63 * period, f"64 beats took {span / period + 1} cycles"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def commands_and_irq(dut):
    """Queued DELAYs run after start; done raises irq; bad commands set error
    codes and are dropped; soft reset clears the state."""
    top, drv, _, _ = await _setup(dut)
    rnd, _ = env.rngs()
    depth = env.params()["QUEUE_DEPTH"]
    await drv.write_reg("irq_enable", drv.pack("irq_enable", done=1))
    counts = [rnd.randint(1, 300) for _ in range(depth)]
    for n, c in enumerate(counts):
        await drv.command(opcode="delay", tag=10 + n, count=c)
    assert (await drv.status())["busy"] == 0  # nothing runs before start
    t0 = get_sim_time("ns")
    await drv.start()
    st = await drv.wait_done(timeout_ns=10 * (sum(counts) + 1000))
    elapsed = (get_sim_time("ns") - t0) / 10
    assert st["done"] == 1 and st["error"] == 0 and st["busy"] == 0
    assert st["last_tag"] == 10 + depth - 1
    assert await drv.read_reg("busy_cycles") == sum(counts)
    cycles = await drv.read_reg("cycles")
    assert sum(counts) <= cycles <= sum(counts) + 4 * depth + 4, (cycles, sum(counts))
    assert elapsed >= cycles
    assert int(dut.irq.value) == 0, "irq still high after wait_done cleared irq_status"

    # Unknown opcode: error code 1, the command is dropped, the rest runs.
    await drv.push_command(top.COMMANDS.pack(opcode=0xF, tag=99))
    await drv.start()
    st = await drv.wait_done(timeout_ns=100_000)
    assert st["error"] == 1 and st["error_code"] == ERR_OPCODE
    assert await drv.read_field("irq_status", "error") == 1
    await drv.command(opcode="nop", tag=42)
    await drv.start()
    st = await drv.wait_done(timeout_ns=100_000, stop_on_error=False)
    assert st["done"] == 1 and st["last_tag"] == 42 and st["queue_level"] == 0

    # Soft reset clears error, counters and queue.
    await drv.command(opcode="delay", count=5)
    await drv.soft_reset()
    st = await drv.status()
    assert st == {"busy": 0, "done": 0, "error": 0, "error_code": 0, "queue_level": 0, "last_tag": 0}
    assert await drv.read_reg("busy_cycles") == 0

    # Overflow: one command more than the queue holds.
    for _ in range(depth + 1):
        await drv.command(opcode="nop")
    st = await drv.status()
    assert st["error"] == 1 and st["error_code"] == ERR_OVERFLOW and st["queue_level"] == depth
    # The poll fallback (no irq port given) sees done too.
    await drv.soft_reset()
    await drv.command(opcode="delay", count=50)
    await drv.start()
    drv.names["irq"] = "no_such_port"
    st = await drv.wait_done(timeout_ns=100_000, poll_ns=200)
    assert st["done"] == 1


@cocotb.test(timeout_time=600, timeout_unit="sec")
async def compute_speed(dut):
    """Cycles per second of wall time while the top computes, with the VIP
    attached but quiet, then with pause generators left running."""
    top, drv, src, sink = await _setup(dut, streams=True)
    n = env.args().get("speed_cycles", 200_000)
    await drv.write_reg("irq_enable", drv.pack("irq_enable", done=1))
    results = {}
    for label, noisy in (("quiet", False), ("pause_generators_running", True)):
        cycles = n if not noisy else max(n // 20, 1000)
        if noisy:
            src.pause(0.5)
            sink.pause(0.5)
        await drv.command(opcode="delay", count=cycles)
        t0 = time.perf_counter()
        await drv.start()
        await drv.wait_done(timeout_ns=10 * (cycles + 10_000))
        wall = time.perf_counter() - t0
        results[label] = round(cycles / wall)
        src.quiet()
        sink.quiet()
    env.report(cycles_per_second=results, cycles=n)
    dut._log.info("compute speed (cycles/s): %s", results)
