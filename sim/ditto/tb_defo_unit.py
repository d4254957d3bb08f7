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
from sim.stream import TB, Packer, Scoreboard, StreamSink, StreamSource


def _codec(entries):
    bits = max(1, (entries - 1).bit_length())
    return (Packer([("op", 1), ("layer", bits), ("step", 2)]),
            Packer([("use_diff", 1), ("decision", 1), ("cycles_act", 16), ("cycles_diff", 16)]))


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


@cocotb.test()
async def table_matches_golden(dut):
    p, a = env.params(), env.args()
    entries = p["ENTRIES"]
    rnd, rng = env.rngs()
    cmd_pk, rsp_pk = _codec(entries)
    tb = TB(dut)
    dut.tick.value = 0
    await tb.reset(idle=("i__valid", "o__ready"))
    ticker = Ticker(tb, rnd, a.get("tick", 0.7))
    sink = StreamSink(tb, "o", backpressure=a.get("backpressure", 0.0), rng=rnd, decode=rsp_pk.unpack)
    src = StreamSource(tb, "i", idle=a.get("idle", 0.0), rng=rnd)
    cmds = _schedule(rng, a.get("commands", 400), a.get("layers", 6), entries)
    sat_at = set(rng.choice(len(cmds), size=a.get("saturate", 0), replace=False).tolist())
    start = tb.cycle
    for n, (op, layer, step) in enumerate(cmds):
        if n in sat_at:  # > 0xFFFF ticks before this command
            await src.wait_drained()
            ticker.force = CYCLE_MAX + 50
            await tb.cycles(CYCLE_MAX + 60)
        src.send([cmd_pk.pack(op=op, layer=layer, step=step)])
    await src.wait_drained()
    await sink.wait_for(len(cmds), timeout=100 * len(cmds))
    await tb.cycles(10)
    # Golden replay: ticks between RECORD acceptances.
    table = DefoTable(entries)
    expected, last_record, saturated = [], start, 0
    for (op, layer, step), cyc in zip(cmds, src.accepted):
        if op == 1:
            ticks = sum(ticker.log.get(c, 0) for c in range(last_record + 1, cyc + 1))
            saturated += ticks > CYCLE_MAX
            table.record(layer, step, ticks)
            last_record = cyc
        expected.append({"use_diff": table.execution(layer, step), "decision": int(table.decision[layer]),
                         "cycles_act": int(table.act[layer]), "cycles_diff": int(table.diff[layer])})
        assert table.decision[layer] == defo(table.act[layer], table.diff[layer]) or step == 0 or \
            table.diff[layer] == 0
    Scoreboard("defo_unit.o", expected).check(sink.items)
    env.report(saturated_records=saturated, records=sum(c[0] for c in cmds))
    if sat_at:
        assert saturated >= 1, "no record saturated"
