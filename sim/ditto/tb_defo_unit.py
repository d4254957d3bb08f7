"""Testbench of ``defo_unit`` against ``golden.ditto.DefoTable`` / ``defo``.

A random schedule of runs (step 0 records, step 1 records, later steps)
over random layers with queries in between; ``tick`` is random each cycle,
with long runs of ticks that saturate the 16-bit counter. The expected cycles
of a RECORD are the ticks since the previous RECORD was accepted, up to and
including its own cycle, saturated at 0xFFFF.

Arguments: ``commands``, ``layers`` (distinct layers used), ``idle``,
``backpressure``, ``saturate`` (number of commands preceded by > 65,535 ticks).
"""

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from golden.ditto import CYCLE_MAX, DefoTable, defo
from sim import env
from sim.stream import TB, check_timing

LATENCY = 2  # docstring: the answer leaves 2 cycles after the command


class Ticker:
    """Drives ``tick`` each cycle from a schedule and logs it by cycle index."""

    def __init__(self, tb, rnd, prob):
        self.tb, self.rnd, self.prob = tb, rnd, prob
        self.log = {}
        self.force = 0
        cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self.tb.clk)
            if self.tb.in_reset:  # every input idle during reset
                self.tb.dut.tick.value = 0
                self.log[self.tb.cycle] = 0
                continue
            if self.force:  # a long run of ticks, driven once (cheap to simulate)
                n, self.force = self.force, 0
                first = self.tb.cycle
                self.tb.dut.tick.value = 1
                await ClockCycles(self.tb.clk, n - 1)
                self.log.update((c, 1) for c in range(first, first + n))
                continue
            t = int(self.rnd.random() < self.prob)
            self.tb.dut.tick.value = t
            await ReadOnly()
            self.log[self.tb.cycle] = t


def _schedule(rng, n, layers, entries):
    pool = rng.choice(entries, size=layers, replace=False)
    pool[0], pool[-1] = 0, entries - 1
    cmds = []
    while len(cmds) < n:
        run = rng.permutation(pool)[: rng.integers(1, layers + 1)]
        for step in (0, 1, 2, 2):
            for layer in run:
                cmds.append((1, int(layer), step))
                if rng.random() < 0.4:
                    cmds.append((0, int(rng.choice(pool)), int(rng.integers(0, 3))))
    return cmds[:n]


def _replay(cmds, accepted, ticks, start):
    """Golden answers: ticks between RECORD acceptances (from ``start``)."""
    table = DefoTable(env.params()["ENTRIES"])
    expected, last_record, saturated = [], start, 0
    for (op, layer, step), cyc in zip(cmds, accepted):
        if op == 1:
            n = sum(ticks.get(c, 0) for c in range(last_record + 1, cyc + 1))
            saturated += n > CYCLE_MAX
            table.record(layer, step, n)
            last_record = cyc
        expected.append({"use_diff": table.execution(layer, step), "decision": int(table.decision[layer]),
                         "cycles_act": int(table.act[layer]), "cycles_diff": int(table.diff[layer])})
        assert table.decision[layer] == defo(table.act[layer], table.diff[layer]) or step == 0 or \
            table.diff[layer] == 0
    return expected, saturated


def _send(tb, cmds):
    tb.i.send({"op": op, "layer": layer, "step": step} for op, layer, step in cmds)


@cocotb.test()
async def table_matches_golden(dut):
    p, a = env.params(), env.args()
    entries = p["ENTRIES"]
    rnd, rng = env.rngs()
    tb = TB(dut, idle=a.get("idle", 0.0), backpressure=a.get("backpressure", 0.0), rng=rnd)
    await tb.reset()
    ticker = Ticker(tb, rnd, a.get("tick", 0.7))
    cmds = _schedule(rng, a.get("commands", 400), a.get("layers", 6), entries)
    sat_at = set(rng.choice(len(cmds), size=a.get("saturate", 0), replace=False).tolist())
    start = tb.cycle
    for n, cmd in enumerate(cmds):
        if n in sat_at:  # > 0xFFFF ticks before this command
            await tb.i.wait_drained()
            ticker.force = CYCLE_MAX + 50
            await tb.cycles(CYCLE_MAX + 60)
        _send(tb, [cmd])
    await tb.i.wait_drained()
    expected, saturated = _replay(cmds, tb.i.accepted, ticker.log, start)
    tb.o.expect(expected)
    await tb.finish(timeout=100 * len(cmds))
    env.report(saturated_records=saturated, records=sum(c[0] for c in cmds))
    if sat_at:
        assert saturated >= 1, "no record saturated"


@cocotb.test()
async def latency_and_ii(dut):
    """Always-valid commands (back-to-back ones on one layer included), ready
    sink: a command every cycle, its answer 2 cycles later (documented)."""
    rnd, rng = env.rngs(1)
    tb = TB(dut, rng=rnd)
    await tb.reset()
    ticker = Ticker(tb, rnd, 0.5)
    cmds = _schedule(rng, 120, 3, env.params()["ENTRIES"])
    start = tb.cycle
    _send(tb, cmds)
    await tb.i.wait_drained()
    tb.o.expect(_replay(cmds, tb.i.accepted, ticker.log, start)[0])
    await tb.finish(timeout=1000)
    check_timing("defo_unit", tb.i.accepted, tb.o.cycles, latency=LATENCY, input_ii=1, output_ii=1)


@cocotb.test()
async def reset_mid_schedule(dut):
    """Reset with commands in flight, then a schedule that must pass. The
    counter restarts from 0 at reset; the table memory is not cleared by
    reset (docstring: a step-0 RECORD starts an entry over), so the schedule
    after it begins every layer with step 0."""
    rnd, rng = env.rngs(2)
    tb = TB(dut, idle=0.2, backpressure=0.3, rng=rnd)
    await tb.reset()
    ticker = Ticker(tb, rnd, 0.7)
    cmds, seen = [], set()
    for op, layer, step in _schedule(rng, 80, 4, env.params()["ENTRIES"]):
        if op == 1 or layer in seen:  # never query an entry this schedule has not started
            cmds.append((op, layer, step))
            seen.add(layer) if op == 1 and step == 0 else None
    _send(tb, cmds)
    await tb.cycles(len(cmds) // 2)
    assert 0 < len(tb.i.accepted) < len(cmds)
    start = tb.cycle
    await tb.reset()
    _send(tb, cmds)
    await tb.i.wait_drained()
    tb.o.expect(_replay(cmds, tb.i.accepted, ticker.log, start)[0])
    await tb.finish(timeout=2000)
