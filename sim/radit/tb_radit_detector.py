"""Testbench of ``radit_detector`` against ``golden.radit.redundancy_aware_run``.

The closed-loop test runs Algorithm 1 on a seeded :class:`golden.radit.ToyDiT`
with the RTL in the loop: for every (timestep, block) the testbench computes
the block input, streams it (and the stored previous codes) through the
detector, keeps the returned codes as the next reference when the decision
says ``write_back``, and skips or computes the block as the RTL decides. The
RTL's skip map, Δ and θ must equal the golden run's exactly, and every code
beat must equal ``compress_fp16``.

Arguments (``sim.env.args()``): ``T``, ``tokens``, ``channels``, ``rank``,
``seed`` (model), ``schedule`` ("linear" | "cosine"), ``idle``, ``backpressure``.
"""

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from golden.radit import (THETA_UNSET, ToyDiT, alpha_table, code_distance, compress_fp16, dit_trajectory, dtsm,
                          redundancy_aware_run)
from sim import env
from sim.stream import TB, Packer, Scoreboard, StreamSink, StreamSource, lanes_pack, lanes_unpack


class Shapes:
    def __init__(self, p):
        self.lanes = p["LANES"]
        self.blocks = p["BLOCKS"]
        self.T = p["TIMESTEPS"]
        self.frac = p["ALPHA_FRAC"]
        self.dbu = p["DECIDE_BEFORE_UPDATE"]
        self.reference = p["REFERENCE"]
        self.max_elements = p["MAX_ELEMENTS"]
        self.dw = (4 * p["MAX_ELEMENTS"]).bit_length()
        self.bw = max(1, (self.blocks - 1).bit_length())
        self.tw = max(1, self.T.bit_length())
        self.inp = Packer([("data", 16, False, self.lanes), ("last", 1), ("first", 1),
                           ("block", self.bw), ("t", self.tw)])
        self.dec = Packer([("block", self.bw), ("delta", self.dw), ("theta", self.dw + 1),
                           ("theta_valid", 1), ("skip", 1), ("write_back", 1)])


class Harness:
    def __init__(self, dut, s, idle, bp, rnd):
        self.dut, self.s = dut, s
        self.tb = TB(dut)
        self.idle, self.bp, self.rnd = idle, bp, rnd

    async def start(self, table):
        await self.tb.reset(idle=("i__valid", "prev__valid", "codes__ready", "o__ready", "alpha__en"))
        for t, a in enumerate(table):
            self.dut.alpha__en.value = 1
            self.dut.alpha__addr.value = t
            self.dut.alpha__data.value = int(a)
            await RisingEdge(self.tb.clk)
        self.dut.alpha__en.value = 0
        lanes = self.s.lanes
        self.codes = StreamSink(self.tb, "codes", backpressure=self.bp, rng=self.rnd,
                                decode=lambda w: lanes_unpack(w, 4, lanes))
        self.o = StreamSink(self.tb, "o", backpressure=self.bp, rng=self.rnd, decode=self.s.dec.unpack)
        self.src = StreamSource(self.tb, "i", idle=self.idle, rng=self.rnd)
        self.prev = StreamSource(self.tb, "prev", idle=self.idle, rng=self.rnd)

    def send_block(self, inp16, prev_codes, *, block, t, first):
        beats = inp16.view(np.uint16).reshape(-1, self.s.lanes)
        n = len(beats)
        self.src.send(self.s.inp.pack(data=b, last=int(k == n - 1), first=int(first), block=block, t=t)
                      for k, b in enumerate(beats))
        if not first:
            self.prev.send(lanes_pack(c, 4) for c in prev_codes.reshape(-1, self.s.lanes))
        return compress_fp16(beats)


def _table(s, schedule, T):
    table = np.zeros(s.T + 1, dtype=np.int64)
    table[:T + 1] = alpha_table(T, schedule, s.frac)
    return table


@cocotb.test()
async def closed_loop_matches_golden_run(dut):
    """Algorithm 1 with the RTL deciding: skip map, Δ, θ and codes equal the golden run."""
    p, a = env.params(), env.args()
    s = Shapes(p)
    rnd, _ = env.rngs()
    T = a.get("T", 24)
    schedule = a.get("schedule", "linear")
    assert T <= s.T and s.blocks >= 1
    model = ToyDiT(blocks=s.blocks, tokens=a.get("tokens", 16), channels=a.get("channels", 32),
                   rank=a.get("rank", 16), seed=a.get("seed", 0))
    assert model.tokens * model.channels <= s.max_elements
    assert (model.tokens * model.channels) % s.lanes == 0
    x = model.latent(a.get("seed", 0) + 1)
    gold = redundancy_aware_run(x, model, T=T, schedule=schedule, alpha_frac=s.frac,
                                decide_before_update=s.dbu, reference=s.reference, max_elements=s.max_elements)
    h = Harness(dut, s, a.get("idle", 0.0), a.get("backpressure", 0.0), rnd)
    await h.start(_table(s, schedule, T))

    N = s.blocks
    skip = np.zeros((T, N), dtype=bool)
    delta = np.full((T, N), -1, dtype=np.int64)
    theta = np.full((T, N), THETA_UNSET, dtype=np.int64)
    stored = [None] * N  # the code memory ("DRAM") the control unit keeps
    cached = [None] * N
    want_codes = []
    decisions = 0
    for row, t in enumerate(range(T, 0, -1)):
        temb = model.temb(t, T)
        hres = model.embed(x)
        for n in range(N):
            inp = model.block_input(n, hres, temb)
            codes = h.send_block(inp, stored[n], block=n, t=t, first=row == 0)
            want_codes.extend(codes)
            decisions += 1
            await h.o.wait_for(decisions, timeout=40 * len(codes) + 200)
            await h.codes.wait_for(len(want_codes), timeout=200)
            d = h.o.items[-1]
            assert d["block"] == n, f"decision for block {d['block']}, expected {n}"
            if row > 0:
                delta[row, n] = d["delta"]
                theta[row, n] = d["theta"] if d["theta_valid"] else THETA_UNSET
                skip[row, n] = bool(d["skip"])
            else:
                assert not d["skip"] and not d["theta_valid"], f"first timestep decision {d}"
            if d["write_back"]:
                stored[n] = np.stack(h.codes.items[-len(codes):])
            if skip[row, n]:
                out = cached[n]
            else:
                out = cached[n] = model.block(n, inp)
            hres = hres + out
        x = model.step(x, model.head(hres), t, T)
    await h.tb.cycles(10)
    Scoreboard("radit_detector.codes", want_codes).check(h.codes.items)
    for name, got, want in (("delta", delta, gold.delta), ("theta", theta, gold.theta), ("skip", skip, gold.skip)):
        bad = np.argwhere(got != want)
        assert bad.size == 0, (f"{name} differs from the golden run at {len(bad)} (row, block) pairs, first "
                               f"{tuple(bad[0])}: got {got[tuple(bad[0])]}, want {want[tuple(bad[0])]}")
    err = float(np.linalg.norm(x - gold.reference) / np.linalg.norm(gold.reference))
    assert abs(err - gold.error) <= 1e-6 * max(1.0, gold.error)
    assert 0 < skip.sum() < skip.size, "the trajectory should both skip and compute"
    env.report(T=T, blocks=N, skipped=int(skip.sum()), saved=float(skip.mean()), error=err,
               beats=len(want_codes))


@cocotb.test()
async def open_loop_full_rate(dut):
    """The all-compute trajectory streamed back to back (reference = previous
    timestep, so the prev codes are known in advance) with ready sinks: one
    beat per cycle, decisions 3 cycles after each last beat, values equal the
    golden ``dtsm`` of the golden Δs."""
    p, a = env.params(), env.args()
    s = Shapes(p)
    if s.reference != "previous":
        return  # the previous codes then depend on the decisions: closed loop only
    rnd, _ = env.rngs(1)
    T = a.get("T", 24)
    schedule = a.get("schedule", "linear")
    tr = dit_trajectory(T=T, blocks=s.blocks, tokens=a.get("tokens", 16), channels=a.get("channels", 32),
                        seed=a.get("seed", 0) + 7, rank=a.get("rank", 16))
    codes = compress_fp16(tr.view(np.uint16))
    deltas = np.array([[code_distance(codes[r - 1, n], codes[r, n]) for n in range(s.blocks)]
                       for r in range(1, T)], dtype=np.int64)
    table = _table(s, schedule, T)
    th, sk = dtsm(deltas, table[T - 1:0:-1], alpha_frac=s.frac, decide_before_update=s.dbu)
    h = Harness(dut, s, 0.0, 0.0, rnd)
    await h.start(table)
    expected, last_index, total = [], [], 0
    for row, t in enumerate(range(T, 0, -1)):
        for n in range(s.blocks):
            h.send_block(tr[row, n], codes[row - 1, n] if row else None, block=n, t=t, first=row == 0)
            total += tr[row, n].size // s.lanes
            last_index.append(total - 1)
            if row == 0:
                expected.append({"block": n, "delta": code_distance(0 * codes[0, n], codes[0, n]), "theta": 0,
                                 "theta_valid": 0, "skip": 0, "write_back": 1})
            else:
                valid = int(th[row - 1, n] != THETA_UNSET)
                expected.append({"block": n, "delta": int(deltas[row - 1, n]),
                                 "theta": int(th[row - 1, n]) if valid else 0, "theta_valid": valid,
                                 "skip": int(sk[row - 1, n]), "write_back": 1})
    await h.o.wait_for(len(expected), timeout=4 * total + 100)
    await h.codes.wait_for(total, timeout=100)
    Scoreboard("radit_detector.o", expected).check(h.o.items)
    Scoreboard("radit_detector.codes", list(codes.reshape(-1, s.lanes))).check(h.codes.items)
    acc = h.src.accepted
    assert np.all(np.diff(acc) == 1), "the detector stalled its input with ready sinks"
    lat = [h.o.cycles[k] - acc[i] for k, i in enumerate(last_index)]
    assert all(v == 3 for v in lat), f"decision latency {sorted(set(lat))}, documented 3"
    env.report(open_loop_beats=total, cycles=h.o.cycles[-1] - acc[0] + 1, skipped=int(sk.sum()))
