"""Testbench of ``orbis_datm`` against ``golden.orbis.datm`` (quantized) and
its cycle model ``golden.orbis.datm_cycles``.

Arguments: ``runs`` (random runs after the corner ones), ``idle``,
``backpressure``.
"""

import cocotb
import numpy as np

from golden.orbis import datm, datm_cycles
from sim import env
from sim.stream import TB, reset_under_traffic


def _codes(rng, kind, n, c):
    if kind == "clustered":
        k = int(rng.integers(2, 6))
        centers = rng.integers(-8, 8, size=(k, c))
        x = centers[rng.integers(0, k, n)] + rng.integers(-1, 2, size=(n, c))
        return np.clip(x, -8, 7)
    if kind == "equal":
        return np.tile(rng.integers(-8, 8, size=c), (n, 1))
    if kind == "duplicates":
        base = rng.integers(-8, 8, size=(3, c))
        return base[rng.integers(0, 3, n)]
    if kind == "zero_channels":
        x = rng.integers(-8, 8, size=(n, c))
        x[:, ::2] = 0
        return x
    return rng.integers(-8, 8, size=(n, c))


def _scales(rng, kind, c, p):
    top = (1 << p["SCALE_WIDTH"]) - 1
    if kind == "zero_channels":
        s = rng.integers(1, top + 1, size=c)
        s[1::4] = 0                                    # zero scale: a channel that never counts
        return s
    if kind == "max_scales":
        return np.full(c, top)
    return rng.integers(1 << p["SCALE_FRAC"], top + 1, size=c)


def make_runs(rng, p, count):
    n, d = p["NUM_TOKENS"], p["NUM_DST"]
    seed_max = env.ports()["cmd"].payload["seed"].max
    emax = 1 << p["EPS_FRAC"]
    runs = [
        dict(kind="clustered", scales="random", k=n // 2, max_iter=16, eps=emax // 100, seed=1),
        dict(kind="equal", scales="random", k=n, max_iter=8, eps=emax // 100, seed=0),       # k = max
        dict(kind="random", scales="max_scales", k=0, max_iter=5, eps=0, seed=seed_max),  # k = 0
        dict(kind="duplicates", scales="random", k=n - d, max_iter=6, eps=emax // 50, seed=2),
        dict(kind="zero_channels", scales="zero_channels", k=3, max_iter=1, eps=emax, seed=3),
        dict(kind="random", scales="random", k=1, max_iter=3, eps=0, seed=0),                 # iteration cap
    ]
    for _ in range(count):
        runs.append(dict(kind=str(rng.choice(["clustered", "random", "duplicates"])), scales="random",
                         k=int(rng.integers(0, n + 1)), max_iter=int(rng.integers(1, 12)),
                         eps=int(rng.integers(0, emax // 10)), seed=int(rng.integers(0, seed_max + 1))))
    for r in runs:
        r["codes"] = _codes(rng, r["kind"], n, p["CHANNELS"])
        r["s"] = _scales(rng, r["scales"], p["CHANNELS"], p)
    return runs


def golden_run(r, p):
    return datm(r["codes"], r["s"], p["NUM_DST"], r["k"], r["eps"] / (1 << p["EPS_FRAC"]),
                max(1, r["max_iter"]), r["seed"], quantized=True, scale_frac=p["SCALE_FRAC"],
                eps_frac=p["EPS_FRAC"], fixed=True)


def _beats(r, p, rng, ports):
    """Scale and token beats; lanes past CHANNELS carry garbage the engine must ignore."""
    n, c, lanes = p["NUM_TOKENS"], p["CHANNELS"], ports["tokens"].payload.length
    cb = -(-c // lanes)
    se, te = ports["scales"].payload.elem, ports["tokens"].payload.elem
    s = rng.integers(0, se.max + 1, size=cb * lanes)
    s[:c] = r["s"]
    q = rng.integers(te.min, te.max + 1, size=(n, cb * lanes))
    q[:, :c] = r["codes"]
    return s.reshape(cb, lanes), q.reshape(n * cb, lanes)


def _queue(tb, runs, rng):
    """Queue runs (command, scales, tokens) and their golden losses and pairs."""
    p = env.params()
    results = []
    for r in runs:
        g = golden_run(r, p)
        results.append(g)
        tb.losses.expect({"total": tot, "iteration": i + 1, "last": int(i == len(g.totals) - 1)}
                         for i, tot in enumerate(g.totals))
        tb.pairs.expect({"src": int(s), "dst": int(d), "last": int(i == len(g.pairs) - 1)}
                        for i, (s, d) in enumerate(g.pairs))
        sb, tk = _beats(r, p, rng, tb.ports)
        tb.cmd.send([{"k": r["k"], "max_iter": r["max_iter"], "eps": r["eps"], "seed": r["seed"]}])
        tb.scales.send(sb)
        tb.tokens.send(tk)
    return results


def _budget(runs, results, idle, bp):
    p = env.params()
    budget = sum(datm_cycles(p["NUM_TOKENS"], p["CHANNELS"], p["NUM_DST"], p["CH_LANES"], g.iterations,
                             r["k"], topk_register_every=p["TOPK_REGISTER_EVERY"],
                            topk_buffer=p.get("TOPK_BUFFER", 0)) for r, g in zip(runs, results))
    return int(budget / max(0.05, (1 - idle) * (1 - bp)) * 3) + 2000


async def _drive(dut, runs, idle, bp, rnd, rng):
    tb = TB(dut, idle=idle, backpressure=bp, rng=rnd)
    await tb.reset()
    results = _queue(tb, runs, rng)
    await tb.finish(timeout=_budget(runs, results, idle, bp), quiet=50)
    return tb.cmd, tb.losses, tb.pairs, results


@cocotb.test()
async def matches_golden(dut):
    """Corner and random runs back to back: per-iteration losses, iteration count
    (the ``last`` loss beat) and pairs equal the golden model, under random
    gaps on all inputs and back-pressure on both outputs."""
    p, a = env.params(), env.args()
    rnd, rng = env.rngs()
    runs = make_runs(rng, p, a.get("runs", 4))
    _, _, _, results = await _drive(dut, runs, a.get("idle", 0.2), a.get("backpressure", 0.3), rnd, rng)
    env.report(iterations=[g.iterations for g in results])


@cocotb.test()
async def cycle_model(dut):
    """Ideal streams: every run takes exactly ``datm_cycles`` cycles from its
    ``cmd`` beat to its last output beat."""
    p, a = env.params(), env.args()
    rnd, rng = env.rngs(1)
    runs = make_runs(rng, p, 1)
    if a.get("bench"):
        runs = [runs[0]]
    cmd, lsink, psink, results = await _drive(dut, runs, 0.0, 0.0, rnd, rng)
    lpos = ppos = 0
    measured = []
    for r, g, start in zip(runs, results, cmd.accepted):
        lpos += g.iterations
        end = lsink.cycles[lpos - 1]
        if len(g.pairs):
            ppos += len(g.pairs)
            end = max(end, psink.cycles[ppos - 1])
        model = datm_cycles(p["NUM_TOKENS"], p["CHANNELS"], p["NUM_DST"], p["CH_LANES"], g.iterations, r["k"],
                            topk_register_every=p["TOPK_REGISTER_EVERY"],
                            topk_buffer=p.get("TOPK_BUFFER", 0))
        measured.append({"cycles": end - start, "model": model, "iterations": g.iterations,
                         "k": r["k"], "pairs": len(g.pairs)})
    env.report(runs=measured)
    bad = [x for x in measured if x["cycles"] != x["model"]]
    assert not bad, f"cycle count differs from the model: {bad}"


@cocotb.test()
async def reset_mid_run(dut):
    """Reset while a run loads and iterates, then runs that must pass. The
    token, assignment and group memories are not cleared by reset (not
    documented to be): every run loads its own scales and tokens again."""
    p = env.params()
    rnd, rng = env.rngs(2)
    tb = TB(dut, idle=0.1, backpressure=0.2, rng=rnd)
    await tb.reset()
    runs = make_runs(rng, p, 0)[:2]

    async def transaction(tb):
        _queue(tb, runs, rng)

    await reset_under_traffic(tb, transaction, fraction=0.6, timeout=_budget(runs, [golden_run(r, p) for r in runs],
                                                                          0.1, 0.2))
