"""Testbench of ``dtsm`` against ``golden.radit.dtsm``.

Requests are whole runs: every block of a run first gets a ``first`` request
(which clears its state), then its own random Δ sequence; the blocks'
sequences are interleaved at random (per-block order kept), so back-to-back
requests of one block and arbitrary block orders occur. Each block's decisions
are predicted by the golden model on its own sequence.

Arguments (``sim.env.args()``): ``sequences`` (minimum number of per-block Δ
sequences, default 2000), ``max_len`` (longest sequence, default 16),
``idle``, ``backpressure``, ``hand`` (also run the hand-built sequences).
"""

from collections import defaultdict

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from golden.radit import THETA_UNSET, alpha_table, dtsm
from sim import env
from sim.stream import TB, check_timing, reset_under_traffic

LATENCY = 2  # docstring: request accepted in cycle c, decision valid from c + 2


class Shapes:
    """Parameters of the run; Δ and α ranges from the port layouts."""

    def __init__(self, p, ports):
        self.blocks = p["BLOCKS"]
        self.T = p["TIMESTEPS"]
        self.frac = p["ALPHA_FRAC"]
        self.dbu = p["DECIDE_BEFORE_UPDATE"]
        self.reference = p["REFERENCE"]
        self.dmax = ports["i"].payload["delta"].max
        self.amax = ports["alpha"]["data"].shape.max


def _expected(s: Shapes, block, first_delta, deltas, alphas):
    """Decisions of one block's run: the ``first`` request, then one per Δ."""
    out = [{"block": block, "delta": first_delta, "theta": 0, "theta_valid": 0, "skip": 0, "write_back": 1}]
    if len(deltas):
        th, sk = dtsm(np.asarray(deltas, dtype=np.int64)[:, None], np.asarray(alphas, dtype=np.int64),
                      alpha_frac=s.frac, decide_before_update=s.dbu)
        for d, t, k in zip(deltas, th[:, 0], sk[:, 0]):
            valid = int(t != THETA_UNSET)
            out.append({"block": block, "delta": int(d), "theta": int(t) if valid else 0, "theta_valid": valid,
                        "skip": int(k), "write_back": 1 if s.reference == "previous" else int(not k)})
    return out


def _coverage(s: Shapes, deltas, alphas, cov):
    """Count the branches of docs/SPEC.md's update one block's sequence goes through."""
    theta = prev = dd_prev = None
    for d, a in zip(deltas, alphas):
        if theta is None:
            cov["initialise"] += 1
            new = d
            dd = None
        else:
            dd = d - prev
            if dd > 0 and dd_prev is not None and dd_prev < 0:
                cov["local minimum: update"] += 1
                new = prev + ((a * dd) >> s.frac)
                cov["update with α·dd not a multiple of 2^F (floor)"] += (a * dd) % (1 << s.frac) != 0
            else:
                new = theta
                cov["dd > 0, no minimum: keep"] += dd > 0
                cov["dd = 0: keep"] += dd == 0
                cov["dd < 0: keep"] += dd < 0
        used = theta if s.dbu else new
        if used is not None:
            cov["Δ = θ (no skip)"] += d == used
            cov["skip"] += d < used
            cov["Δ > θ (compute)"] += d > used
        cov["Δ = max"] += d == s.dmax
        theta, prev, dd_prev = new, d, dd


def _sequence(rng, s: Shapes, length):
    kind = int(rng.integers(4))
    if kind == 0:
        return rng.integers(0, s.dmax + 1, size=length)
    if kind == 1:  # few values: ties, plateaus, equality with θ
        return rng.integers(0, 6, size=length)
    if kind == 2:  # a random walk, full of local minima
        steps = rng.integers(-4, 5, size=length)
        start = int(rng.integers(0, s.dmax + 1))
        return np.clip(start + np.cumsum(steps), 0, s.dmax)
    near_max = s.dmax - rng.integers(0, 4, size=length)
    return np.where(rng.random(length) < 0.5, near_max, rng.integers(0, s.dmax + 1, size=length))


def _interleave(rng, lengths):
    """A random order of (block, index) that keeps each block's own order."""
    owners = np.repeat(np.arange(len(lengths)), lengths)
    rng.shuffle(owners)
    pos = [0] * len(lengths)
    order = []
    for b in owners:
        order.append((int(b), pos[b]))
        pos[b] += 1
    return order


def _run(rng, s: Shapes, table, seqs, cov):
    """Requests and expected decisions of one run over blocks given by ``seqs``
    ({block: (Δ list, t list)}): first requests in a random block order, then
    the Δs interleaved at random."""
    requests, expected = [], []
    per_block = {}
    for b, (deltas, ts) in seqs.items():
        alphas = [int(table[t]) for t in ts]
        fd = int(rng.integers(0, s.dmax + 1))
        per_block[b] = _expected(s, b, fd, deltas, alphas)
        _coverage(s, [int(d) for d in deltas], alphas, cov)
    blocks = list(seqs)
    rng.shuffle(blocks)
    lengths = [len(seqs[b][0]) + 1 for b in blocks]
    for k, idx in _interleave(rng, lengths):
        b = blocks[k]
        if idx == 0:
            requests.append({"delta": per_block[b][0]["delta"], "block": b, "t": int(rng.integers(0, s.T + 1)),
                             "first": 1})
        else:
            requests.append({"delta": int(seqs[b][0][idx - 1]), "block": b, "t": int(seqs[b][1][idx - 1]),
                             "first": 0})
        expected.append(per_block[b][idx])
    return requests, expected


def _table(rng, s: Shapes, kind):
    if kind in ("linear", "cosine"):
        return alpha_table(s.T, kind, s.frac)
    tab = rng.integers(0, s.amax + 1, size=s.T + 1)
    tab[rng.integers(0, s.T + 1, size=4)] = s.amax
    tab[rng.integers(0, s.T + 1, size=4)] = 0
    return tab


class DtsmTB(TB):
    """``i`` requests → ``o`` decisions, and the ``alpha`` table write port.

    The state memory is not cleared by reset (docstring: every block's first
    request of a run carries ``first`` instead), nor is the α table: after a
    reset a run starts with ``first`` requests and a freshly written table."""

    def __init__(self, dut, **kw):
        super().__init__(dut, **kw)
        self.s = Shapes(env.params(), self.ports)

    async def write_alphas(self, table):
        """Write the α table (with the pipeline idle: writes during requests are undefined)."""
        await self.drain(timeout=100 * len(self.o.expected) + 1000)
        dut = self.dut
        for t, a in enumerate(table):
            dut.alpha__en.value = 1
            dut.alpha__addr.value = t
            dut.alpha__data.value = int(a)
            await RisingEdge(self.clk)
        dut.alpha__en.value = 0

    async def batch(self, table, runs):
        """Write the α table, then stream ``runs`` [(requests, expected decisions)]."""
        await self.write_alphas(table)
        for req, exp in runs:
            self.i.send(req)
            self.o.expect(exp)


@cocotb.test()
async def random_sequences_match_golden(dut):
    """Random Δ sequences (uniform, tiny range, random walks, near the counter's
    maximum) under random α tables and both schedules, random block
    interleaving, gaps and back-pressure: every decision equals the golden."""
    a = env.args()
    rnd, rng = env.rngs()
    h = DtsmTB(dut, idle=a.get("idle", 0.0), backpressure=a.get("backpressure", 0.0), rng=rnd)
    s = h.s
    await h.reset()
    want = a.get("sequences", 2000)
    max_len = a.get("max_len", 16)
    cov = {k: 0 for k in ("initialise", "local minimum: update", "update with α·dd not a multiple of 2^F (floor)",
                          "dd > 0, no minimum: keep", "dd = 0: keep", "dd < 0: keep", "Δ = θ (no skip)",
                          "skip", "Δ > θ (compute)", "Δ = max")}
    done = 0
    kinds = ["linear", "cosine", "random", "random"]
    k = 0
    while done < want:
        table = _table(rng, s, kinds[k % len(kinds)])
        k += 1
        runs = []
        for _ in range(max(1, want // (8 * s.blocks))):
            nblocks = int(rng.integers(1, s.blocks + 1))
            chosen = rng.choice(s.blocks, size=nblocks, replace=False)
            seqs = {}
            for b in chosen:
                length = int(rng.integers(1, max_len + 1))
                start = int(rng.integers(0, s.T + 1))
                ts = [(start - j) % (s.T + 1) for j in range(length)]  # t falls, as in a run
                seqs[int(b)] = (_sequence(rng, s, length), ts)
            runs.append(_run(rng, s, table, seqs, cov))
            done += nblocks
        await h.batch(table, runs)
    await h.finish(timeout=100 * len(h.o.expected) + 100)
    if s.frac == 0:  # α is then a whole number: every product is a multiple of 2^F
        cov.pop("update with α·dd not a multiple of 2^F (floor)")
    missing = [k for k, v in cov.items() if v == 0]
    assert not missing, f"branches never exercised: {missing}"
    env.report(sequences=done, requests=len(h.o.expected), coverage=cov)


HAND = [
    # (Δ sequence, α per step as a fraction of 1, what it exercises)
    ([100, 80, 60, 90, 70, 50], 0.5, "fall, local minimum at 60, update to 75, skip below"),
    ([10, 9, 8, 12, 10, 9], 0.5, "update to 10, then Δ = θ (no skip) and Δ < θ"),
    ([50, 60, 70], 1.0, "rise right after initialisation: no update"),
    ([50, 40, 40, 45], 1.0, "plateau: dd_prev = 0 is no minimum"),
    ([50, 40, 45, 30, 60], 0.5, "two minima, floor of 42.5"),
    ([7], 0.0, "single measured timestep"),
    ([0, 0, 0], 1.0, "Δ = 0 throughout: never skip"),
    ([None, 3, 1, None, 5], 0.75, "max Δ, a minimum, then the maximum again"),
]


@cocotb.test()
async def hand_built_sequences(dut):
    """The hand-computed sequences of the golden tests, with α from the linear
    and cosine tables and constant α, one block each, all in flight together."""
    rnd, rng = env.rngs(2)
    h = DtsmTB(dut, idle=0.1, backpressure=0.2, rng=rnd)
    s = h.s
    await h.reset()
    cov = defaultdict(int)
    one = 1 << s.frac
    for kind in ("const", "linear", "cosine"):
        if kind == "const":
            # Entry t holds the constant α of the sequence that uses t.
            table = np.zeros(s.T + 1, dtype=np.int64)
            for n, (_, alpha, _) in enumerate(HAND):
                table[n] = int(alpha * one)
        else:
            table = alpha_table(s.T, kind, s.frac)
        seqs = {}
        for n, (deltas, _, _) in enumerate(HAND):
            deltas = [s.dmax if d is None else d for d in deltas]
            if kind == "const":
                ts = [n] * len(deltas)
            else:
                ts = [s.T - 1 - j for j in range(len(deltas))]
            seqs[n % s.blocks] = (deltas, ts)
            if len(seqs) == s.blocks or n == len(HAND) - 1:
                await h.batch(table, [_run(rng, s, table, seqs, cov)])
                seqs = {}
    await h.finish(timeout=100 * len(h.o.expected) + 100)


@cocotb.test()
async def initiation_interval_one(dut):
    """Always-valid requests (three blocks interleaved, so often back to back)
    and an always-ready sink: one request per cycle, latency 2 cycles."""
    rnd, rng = env.rngs(3)
    h = DtsmTB(dut, rng=rnd)
    s = h.s
    await h.reset()
    table = _table(rng, s, "random")
    seqs = {b: (_sequence(rng, s, 30), [(s.T - j) % (s.T + 1) for j in range(30)]) for b in range(min(3, s.blocks))}
    req, exp = _run(rng, s, table, seqs, defaultdict(int))
    await h.batch(table, [(req, exp)])
    await h.finish(timeout=100 * len(h.o.expected) + 100)
    check_timing("dtsm", h.i.accepted, h.o.cycles, latency=LATENCY, input_ii=1, output_ii=1)
    blocks = [w["block"] for w in req]
    assert sum(x == y for x, y in zip(blocks, blocks[1:])) > 10, "too few back-to-back repeats"


@cocotb.test()
async def reset_mid_run(dut):
    """Reset with requests of several blocks in flight, then a complete run
    that must pass. Documented: the state memory and the α table are not
    cleared by reset, so the run after it starts every block with ``first``
    and writes the table again."""
    rnd, rng = env.rngs(4)
    h = DtsmTB(dut, idle=0.2, backpressure=0.3, rng=rnd)
    s = h.s
    await h.reset()
    table = _table(rng, s, "random")
    seqs = {b: (_sequence(rng, s, 12), [(s.T - j) % (s.T + 1) for j in range(12)]) for b in range(min(4, s.blocks))}
    run = _run(rng, s, table, seqs, defaultdict(int))

    async def transaction(tb):
        await tb.batch(table, [run])

    await reset_under_traffic(h, transaction)
