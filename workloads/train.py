"""Train the digits DiT and write its FP16 checkpoint.

The committed checkpoint ``workloads/checkpoints/dit_digits.npz`` was made by::

    .venv/bin/python -m workloads.train --out workloads/checkpoints/dit_digits.npz --threads 1

(defaults: 1,600 steps of batch 128, AdamW lr 1e-3 with 100 warm-up steps and
a cosine decay to 1e-4, gradient clipping at 1.0, weight EMA 0.999 (the EMA
weights are saved), seed 0). It reached a loss of 0.080 in 36 minutes on one
thread of a CPU shared with other builds; on two idle cores
(``--threads 2``, the default) it takes about 7 minutes. On busy cores
prefer one thread: two OpenMP threads that wait for each other ran 20 times
slower.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from dataclasses import asdict

import numpy as np

from ._torch import require_torch, set_threads

__all__ = ["train", "main"]


def train(cfg=None, *, steps: int = 1600, batch: int = 128, lr: float = 1e-3, warmup: int = 100,
          lr_min: float = 1e-4, ema: float = 0.999, seed: int = 0, log_every: int = 100,
          log=print):
    """Train a :class:`~workloads.dit.DiT` on the digits; returns (ema_model, history).

    ``history`` is a list of (step, mean loss over the last ``log_every`` steps).
    """
    torch = require_torch()
    from .data import digits
    from .dit import DiT, DiTConfig, Diffusion

    cfg = cfg or DiTConfig()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_all, y_all = digits()
    x_all = torch.from_numpy(x_all)
    y_all = torch.from_numpy(y_all)
    model = DiT(cfg)
    ema_model = copy.deepcopy(model)
    for p in ema_model.parameters():
        p.requires_grad_(False)
    diff = Diffusion.of(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    history, running, t0 = [], [], time.time()
    for step in range(1, steps + 1):
        if step <= warmup:
            cur = lr * step / max(warmup, 1)
        else:
            frac = (step - warmup) / max(steps - warmup, 1)
            cur = lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = cur
        idx = torch.from_numpy(rng.integers(0, len(x_all), size=batch))
        x0, y = x_all[idx], y_all[idx]
        t = torch.from_numpy(rng.integers(0, cfg.timesteps, size=batch))
        noise = torch.randn_like(x0)
        loss = torch.nn.functional.mse_loss(model(diff.q_sample(x0, t, noise), t, y), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        decay = min(ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema_model.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm, alpha=1 - decay)
        running.append(loss.item())
        if step % log_every == 0 or step == steps:
            history.append((step, float(np.mean(running))))
            log(f"step {step:5d}  loss {history[-1][1]:.4f}  lr {cur:.2e}  {time.time() - t0:6.1f} s")
            running = []
    ema_model.eval()
    return ema_model, history


def main(argv=None) -> int:
    from .dit import DiTConfig, save_checkpoint

    p = argparse.ArgumentParser(prog="python -m workloads.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="checkpoint path (.npz, FP16 weights)")
    p.add_argument("--steps", type=int, default=1600)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--depth", type=int, default=DiTConfig.depth)
    p.add_argument("--hidden", type=int, default=DiTConfig.hidden)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    set_threads(a.threads)
    cfg = DiTConfig(depth=a.depth, hidden=a.hidden)
    t0 = time.time()
    model, history = train(cfg, steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed)
    command = "python -m workloads.train " + " ".join(sys.argv[1:] if argv is None else argv)
    digest = save_checkpoint(model, a.out, meta={
        "command": command.strip(), "steps": a.steps, "batch": a.batch, "lr": a.lr, "seed": a.seed,
        "final_loss": history[-1][1], "history": history, "train_seconds": round(time.time() - t0, 1),
        "threads": a.threads, "config": asdict(cfg)})
    print(f"wrote {a.out} (model hash {digest[:16]}, final loss {history[-1][1]:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
