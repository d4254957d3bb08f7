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
from sim.stream import ANY, TB, check_timing, reset_under_traffic

LATENCY = 3  # docstring: last beat accepted -> decision valid


class Shapes:
    def __init__(self, p, ports):
        self.lanes = ports["i"].payload["data"].length
        self.blocks = p["BLOCKS"]
        self.T = p["TIMESTEPS"]
        self.frac = p["ALPHA_FRAC"]
        self.dbu = p["DECIDE_BEFORE_UPDATE"]
        self.reference = p["REFERENCE"]
        self.max_elements = p["MAX_ELEMENTS"]
        self.limit = ports["o"].payload["delta"].max  # the saturating Δ counter's bound


class DetectorTB(TB):
    """``i`` (FP16 beats tagged block/t/first) and ``prev`` codes in; ``codes``
    and one decision per block on ``o`` out; ``alpha`` writes the DTSM's table.
    Like the DTSM's, the detector's state and α memories are not cleared by
    reset: a run after a reset starts with ``first`` blocks and a new table."""

    def __init__(self, dut, **kw):
        super().__init__(dut, **kw)
        self.s = Shapes(env.params(), self.ports)

    async def start(self, table):
        await self.reset()
        await self.write_alphas(table)

    async def write_alphas(self, table):
        for t, a in enumerate(table):
            self.dut.alpha__en.value = 1
            self.dut.alpha__addr.value = t
            self.dut.alpha__data.value = int(a)
            await RisingEdge(self.clk)
        self.dut.alpha__en.value = 0

    def send_block(self, inp16, prev_codes, *, block, t, first):
        beats = inp16.view(np.uint16).reshape(-1, self.s.lanes)
        n = len(beats)
        self.i.send({"data": b, "last": int(k == n - 1), "first": int(first), "block": block, "t": t}
                    for k, b in enumerate(beats))
        if not first:
            self.prev.send(prev_codes.reshape(-1, self.s.lanes))
        return compress_fp16(beats)


def _table(s, schedule, T):
    table = np.zeros(s.T + 1, dtype=np.int64)
    table[:T + 1] = alpha_table(T, schedule, s.frac)
    return table


@cocotb.test()
async def closed_loop_matches_golden_run(dut):
    """Algorithm 1 with the RTL deciding: skip map, Δ, θ and codes equal the golden run."""
    a = env.args()
    rnd, _ = env.rngs()
    h = DetectorTB(dut, idle=a.get("idle", 0.0), backpressure=a.get("backpressure", 0.0), rng=rnd)
    s = h.s
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
            assert len(h.o.items) == decisions, f"{len(h.o.items)} decisions for {decisions} blocks"
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
    # Every code beat and exactly one decision per (timestep, block), nothing extra.
    h.codes.expect(want_codes)
    h.o.expect(ANY for _ in range(T * N))
    await h.finish(timeout=1000)
    for name, got, want in (("delta", delta, gold.delta), ("theta", theta, gold.theta), ("skip", skip, gold.skip)):
        bad = np.argwhere(got != want)
        assert bad.size == 0, (f"{name} differs from the golden run at {len(bad)} (row, block) pairs, first "
                               f"{tuple(bad[0])}: got {got[tuple(bad[0])]}, want {want[tuple(bad[0])]}")
    err = float(np.linalg.norm(x - gold.reference) / np.linalg.norm(gold.reference))
    assert abs(err - gold.error) <= 1e-6 * max(1.0, gold.error)
    assert 0 < skip.sum() < skip.size, "the trajectory should both skip and compute"
    env.report(T=T, blocks=N, skipped=int(skip.sum()), saved=float(skip.mean()), error=err,
               beats=len(want_codes))


def _open_loop_expected(s, tr, table):
    """Golden codes and decisions of a trajectory ``tr`` [T, blocks, elements]
    streamed with reference = previous timestep (all computed)."""
    T = tr.shape[0]
    codes = compress_fp16(tr.view(np.uint16))
    deltas = np.array([[code_distance(codes[r - 1, n], codes[r, n], limit=s.limit) for n in range(s.blocks)]
                       for r in range(1, T)], dtype=np.int64).reshape(T - 1, s.blocks)
    th, sk = dtsm(deltas, table[T - 1:0:-1], alpha_frac=s.frac, decide_before_update=s.dbu)
    expected = []
    for row in range(T):
        for n in range(s.blocks):
            if row == 0:
                expected.append({"block": n, "delta": code_distance(0 * codes[0, n], codes[0, n], limit=s.limit),
                                 "theta": 0, "theta_valid": 0, "skip": 0, "write_back": 1})
            else:
                valid = int(th[row - 1, n] != THETA_UNSET)
                expected.append({"block": n, "delta": int(deltas[row - 1, n]),
                                 "theta": int(th[row - 1, n]) if valid else 0, "theta_valid": valid,
                                 "skip": int(sk[row - 1, n]), "write_back": 1})
    return codes, expected, sk


async def _open_loop(h, tr, table):
    """Stream ``tr`` back to back (prev codes known in advance); returns the
    index of every block's last beat and the golden skip map."""
    s = h.s
    codes, expected, sk = _open_loop_expected(s, tr, table)
    T = tr.shape[0]
    last_index = []
    for row, t in enumerate(range(T, 0, -1)):
        for n in range(s.blocks):
            h.send_block(tr[row, n], codes[row - 1, n] if row else None, block=n, t=t, first=row == 0)
            last_index.append(h.i.sent - 1)
    h.o.expect(expected)
    h.codes.expect(codes.reshape(-1, s.lanes))
    return last_index, sk


@cocotb.test()
async def open_loop_full_rate(dut):
    """The all-compute trajectory streamed back to back (reference = previous
    timestep, so the prev codes are known in advance) with ready sinks: one
    beat per cycle, decisions 3 cycles after each last beat, values equal the
    golden ``dtsm`` of the golden Δs."""
    a = env.args()
    rnd, _ = env.rngs(1)
    h = DetectorTB(dut, rng=rnd)
    s = h.s
    if s.reference != "previous":
        return  # the previous codes then depend on the decisions: closed loop only
    T = a.get("T", 24)
    tr = dit_trajectory(T=T, blocks=s.blocks, tokens=a.get("tokens", 16), channels=a.get("channels", 32),
                        seed=a.get("seed", 0) + 7, rank=a.get("rank", 16))
    table = _table(s, a.get("schedule", "linear"), T)
    await h.start(table)
    last_index, sk = await _open_loop(h, tr, table)
    await h.finish(timeout=4 * h.i.sent + 100)
    acc = h.i.accepted
    check_timing("radit_detector.i", acc, acc, input_ii=1)
    check_timing("radit_detector.o", [acc[i] for i in last_index], h.o.cycles, latency=LATENCY)
    env.report(open_loop_beats=h.i.sent, cycles=h.o.cycles[-1] - acc[0] + 1, skipped=int(sk.sum()))


def _short_blocks(rng, T, blocks, beats, lanes):
    """A trajectory of ``beats``-beat blocks that change a little between
    timesteps (so some blocks skip, some compute)."""
    tr = np.empty((T, blocks, beats * lanes), dtype=np.float16)
    tr[0] = (rng.standard_normal((blocks, beats * lanes)) * 2).astype(np.float16)
    for r in range(1, T):
        tr[r] = tr[r - 1]
        change = rng.random(tr[r].shape) < rng.choice([0.05, 0.3, 0.8])
        tr[r][change] = (rng.standard_normal(int(change.sum())) * 2).astype(np.float16)
    return tr


@cocotb.test()
async def blocks_in_flight_under_backpressure(dut):
    """One- and two-beat blocks streamed back to back with gaps and heavy
    back-pressure on both outputs, so several blocks' Δs and decisions are in
    flight at once (a later block's tag must not overwrite a pending one's):
    every decision, every code beat and the exact number of each equal the golden."""
    rnd, rng = env.rngs(2)
    h = DetectorTB(dut, idle=0.1, backpressure=0.6, rng=rnd)
    s = h.s
    if s.reference != "previous":
        return
    T = min(s.T, 10)
    table = _table(s, "linear", T)
    await h.start(table)
    for beats in (1, 2):
        tr = _short_blocks(rng, T, s.blocks, beats, s.lanes)
        await _open_loop(h, tr, table)
    stalls = h.checkers["o"].stalls
    await h.finish(timeout=50 * h.i.sent + 500)
    assert len(h.o.items) == 2 * T * s.blocks and len(h.codes.items) == 3 * T * s.blocks
    assert stalls or h.checkers["o"].stalls, "no decision ever waited: back-pressure not exercised"


@cocotb.test()
async def reset_mid_run(dut):
    """Reset with blocks in flight, then a complete open-loop run that must pass."""
    rnd, rng = env.rngs(3)
    h = DetectorTB(dut, idle=0.1, backpressure=0.3, rng=rnd)
    s = h.s
    if s.reference != "previous":
        return
    T = min(s.T, 6)
    table = _table(s, "cosine", T)
    tr = _short_blocks(rng, T, s.blocks, 2, s.lanes)
    await h.start(table)

    async def transaction(tb):
        await tb.write_alphas(table)
        await _open_loop(tb, tr, table)

    await reset_under_traffic(h, transaction)
