"""A small class-conditional diffusion transformer (DiT) for 8x8 digits.

The architecture is DiT's (Peebles & Xie, "Scalable Diffusion Models with
Transformers", 2023) at a size that trains on two CPU cores in minutes:

* input: one-channel 8x8 images in [-1, 1] (sklearn's bundled digits);
* patch size 2 -> 16 tokens; hidden 128; 6 blocks; 4 heads of 32; MLP ratio 4
  with tanh-GELU; fixed 2-D sin-cos position embedding;
* adaLN-Zero: the sum of a timestep embedding (sinusoidal -> MLP) and a label
  embedding drives, per block, shift/scale/gate of the attention and of the
  MLP sub-block; the modulation and final layers start at zero;
* DDPM epsilon objective, T = 1000, linear beta schedule 1e-4 .. 0.02;
* sampling: deterministic DDIM (eta = 0) over ``steps`` evenly spaced
  timesteps (DDIM-50: 980, 960, ..., 0), x0 clipped to [-1, 1].

Every sub-block calls a :class:`Hooks` object, so the accelerator models
(``workloads.hooks``) can observe and replace what they would compute:

* ``hooks.attention(block, h, compute)`` / ``hooks.mlp(block, h, compute)``:
  the attention / MLP sub-block (RADiT's DNN operation blocks) on ``h``, the
  sub-block input after adaLN modulation; ``compute(h)`` runs it;
* ``hooks.linear(block, name, x, layer)``: every linear layer on token
  activations (``qkv``, ``proj``, ``fc1``, ``fc2``);
* ``hooks.sdpa(block, q, k, v)``: scaled dot-product attention;
* ``hooks.observe(block, name, x)``: ``attn_in``, ``mlp_in`` (after adaLN),
  ``sdpa`` (the SDPA output, heads concatenated, tokens x channels);
* ``hooks.begin_step(index, t)`` before every denoising step.

The plain :class:`Hooks` computes exactly what the model computes without
hooks; the conditioning path (timestep/label embeddings, adaLN linears) and the
patch embedding / final layer are not hooked (they act on one vector per image
or on raw pixels, not on the transformer's token activations).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ._torch import require_torch

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

__all__ = ["DiTConfig", "DiT", "Hooks", "Diffusion", "ddim_timesteps", "sample",
           "save_checkpoint", "load_checkpoint", "model_hash", "LINEARS"]

#: The hooked linear layers of every block, in execution order, with their
#: (input, output) feature counts as a function of the hidden size and MLP ratio.
LINEARS = ("qkv", "proj", "fc1", "fc2")


@dataclass(frozen=True)
class DiTConfig:
    """Hyper-parameters of the DiT (defaults: the digits DiT of the committed checkpoint)."""

    image_size: int = 8
    channels: int = 1
    patch: int = 2
    hidden: int = 128
    depth: int = 6
    heads: int = 4
    mlp_ratio: int = 4
    num_classes: int = 10
    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def __post_init__(self):
        for name in ("image_size", "channels", "patch", "hidden", "depth", "heads",
                     "mlp_ratio", "num_classes", "timesteps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.image_size % self.patch:
            raise ValueError(f"patch must divide image_size ({self.image_size}), not {self.patch!r}")
        if self.hidden % self.heads:
            raise ValueError(f"heads must divide hidden ({self.hidden}), not {self.heads!r}")

    @property
    def tokens(self) -> int:
        return (self.image_size // self.patch) ** 2

    @property
    def patch_dim(self) -> int:
        return self.channels * self.patch * self.patch

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each hooked linear layer."""
        c, m = self.hidden, self.hidden * self.mlp_ratio
        return {"qkv": (c, 3 * c), "proj": (c, c), "fc1": (c, m), "fc2": (m, c)}


class Hooks:
    """The plain model: every hook computes exactly what the model would."""

    def begin_step(self, index: int, t: int) -> None:
        pass

    def observe(self, block: int, name: str, x) -> None:
        pass

    def attention(self, block: int, h, compute):
        return compute(h)

    def mlp(self, block: int, h, compute):
        return compute(h)

    def linear(self, block: int, name: str, x, layer):
        return layer(x)

    def sdpa(self, block: int, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


PLAIN = Hooks()


def _sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def pos_embed_2d(dim: int, grid: int) -> np.ndarray:
    """DiT's fixed 2-D sin-cos position embedding, (grid*grid, dim)."""
    gh, gw = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="xy")
    return np.concatenate([_sincos_1d(dim // 2, gw), _sincos_1d(dim // 2, gh)], axis=1)


def timestep_embedding(t, dim: int, max_period: int = 10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)

    def forward(self, h, block: int, hooks: Hooks):
        b, n, c = h.shape
        qkv = hooks.linear(block, "qkv", h, self.qkv)
        q, k, v = qkv.reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        o = hooks.sdpa(block, q, k, v)
        o = o.transpose(1, 2).reshape(b, n, c)
        hooks.observe(block, "sdpa", o)
        return hooks.linear(block, "proj", o, self.proj)


class Mlp(nn.Module):
    def __init__(self, hidden: int, ratio: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden, hidden * ratio)
        self.fc2 = nn.Linear(hidden * ratio, hidden)

    def forward(self, h, block: int, hooks: Hooks):
        a = F.gelu(hooks.linear(block, "fc1", h, self.fc1), approximate="tanh")
        return hooks.linear(block, "fc2", a, self.fc2)


class DiTBlock(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        c = cfg.hidden
        self.norm1 = nn.LayerNorm(c, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(c, cfg.heads)
        self.norm2 = nn.LayerNorm(c, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(c, cfg.mlp_ratio)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(c, 6 * c))

    def forward(self, x, cond, block: int, hooks: Hooks):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN(cond)[:, None, :].chunk(6, dim=-1)
        h = modulate(self.norm1(x), shift1, scale1)
        hooks.observe(block, "attn_in", h)
        x = x + gate1 * hooks.attention(block, h, lambda hh: self.attn(hh, block, hooks))
        h = modulate(self.norm2(x), shift2, scale2)
        hooks.observe(block, "mlp_in", h)
        return x + gate2 * hooks.mlp(block, h, lambda hh: self.mlp(hh, block, hooks))


class DiT(nn.Module):
    """Class-conditional DiT with adaLN-Zero; ``forward(x, t, y, hooks)`` predicts epsilon."""

    def __init__(self, cfg: DiTConfig = DiTConfig()):
        super().__init__()
        self.cfg = cfg
        c = cfg.hidden
        self.patch_embed = nn.Linear(cfg.patch_dim, c)
        grid = cfg.image_size // cfg.patch
        self.register_buffer("pos", torch.from_numpy(pos_embed_2d(c, grid)).float()[None], persistent=False)
        self.t_mlp = nn.Sequential(nn.Linear(c, c), nn.SiLU(), nn.Linear(c, c))
        self.y_embed = nn.Embedding(cfg.num_classes, c)
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.norm_f = nn.LayerNorm(c, elementwise_affine=False, eps=1e-6)
        self.adaLN_f = nn.Sequential(nn.SiLU(), nn.Linear(c, 2 * c))
        self.out = nn.Linear(c, cfg.patch_dim)
        self._init()

    def _init(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.y_embed.weight, std=0.02)
        for lin in (self.t_mlp[0], self.t_mlp[2]):
            nn.init.normal_(lin.weight, std=0.02)
        for blk in self.blocks:  # adaLN-Zero: every residual branch starts closed
            nn.init.zeros_(blk.adaLN[-1].weight)
            nn.init.zeros_(blk.adaLN[-1].bias)
        for lin in (self.adaLN_f[-1], self.out):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def patchify(self, x):
        b, ch, s, _ = x.shape
        p, g = self.cfg.patch, s // self.cfg.patch
        return x.reshape(b, ch, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(b, g * g, p * p * ch)

    def unpatchify(self, tok):
        b = tok.shape[0]
        p, ch = self.cfg.patch, self.cfg.channels
        g = self.cfg.image_size // p
        return tok.reshape(b, g, g, p, p, ch).permute(0, 5, 1, 3, 2, 4).reshape(b, ch, g * p, g * p)

    def forward(self, x, t, y, hooks: Hooks | None = None):
        hooks = PLAIN if hooks is None else hooks
        tok = self.patch_embed(self.patchify(x)) + self.pos
        cond = self.t_mlp(timestep_embedding(t, self.cfg.hidden)) + self.y_embed(y)
        for i, blk in enumerate(self.blocks):
            tok = blk(tok, cond, i, hooks)
        shift, scale = self.adaLN_f(cond)[:, None, :].chunk(2, dim=-1)
        return self.unpatchify(self.out(modulate(self.norm_f(tok), shift, scale)))


class Diffusion:
    """DDPM forward process (linear betas) and its deterministic DDIM sampler."""

    def __init__(self, timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        self.T = timesteps
        betas = np.linspace(beta_start, beta_end, timesteps, dtype=np.float64)
        self.alpha_bar = np.cumprod(1.0 - betas)

    @classmethod
    def of(cls, cfg: DiTConfig) -> "Diffusion":
        return cls(cfg.timesteps, cfg.beta_start, cfg.beta_end)

    def q_sample(self, x0, t, noise):
        ab = torch.from_numpy(self.alpha_bar).float()[t][:, None, None, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def ddim_timesteps(T: int, steps: int) -> np.ndarray:
    """The DDIM timesteps in execution order: T/steps spacing ending at 0."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in 1..{T}, not {steps!r}")
    return np.arange(0, T, T // steps)[:steps][::-1].copy()


def sample(model: DiT, labels, *, seed: int = 0, steps: int = 50, hooks: Hooks | None = None,
           return_trajectory: bool = False):
    """DDIM (eta = 0) samples for ``labels``; deterministic for ``seed``.

    The initial noise comes from a ``torch.Generator`` seeded with ``seed``
    (one (1, 8, 8) draw per label, in order), so the same seed gives the same
    images whatever the hooks do. Returns a float32 tensor (B, 1, 8, 8) in
    [-1, 1] (and the list of x_t per step with ``return_trajectory``).
    """
    cfg = model.cfg
    diff = Diffusion.of(cfg)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn((len(y), cfg.channels, cfg.image_size, cfg.image_size), generator=gen)
    ts = ddim_timesteps(cfg.timesteps, steps)
    traj = []
    hooks = PLAIN if hooks is None else hooks
    model.eval()
    with torch.no_grad():
        for i, t in enumerate(ts):
            hooks.begin_step(i, int(t))
            ab = float(diff.alpha_bar[t])
            ab_prev = float(diff.alpha_bar[ts[i + 1]]) if i + 1 < len(ts) else 1.0
            eps = model(x, torch.full((len(y),), int(t), dtype=torch.long), y, hooks)
            x0 = ((x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)).clamp(-1, 1)
            x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
            if return_trajectory:
                traj.append(x.clone())
    return (x, traj) if return_trajectory else x


# --------------------------------------------------------------------------- checkpoints

def _state_arrays(model: DiT) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def save_checkpoint(model: DiT, path, meta: dict | None = None) -> str:
    """Write the weights as FP16 into an ``.npz`` (no pickle) with the config and ``meta``.

    Returns the model hash (:func:`model_hash`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"w/{k}": v.astype(np.float16) for k, v in _state_arrays(model).items()}
    info = {"config": asdict(model.cfg), "meta": meta or {}}
    arrays["info"] = np.frombuffer(json.dumps(info, sort_keys=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return model_hash(load_checkpoint(path)[0])


def load_checkpoint(path) -> tuple[DiT, dict]:
    """The model (float32 compute, FP16-rounded weights) and the checkpoint's info."""
    with np.load(Path(path)) as z:
        info = json.loads(bytes(z["info"]).decode())
        state = {k[2:]: torch.from_numpy(z[k].astype(np.float32)) for k in z.files if k.startswith("w/")}
    model = DiT(DiTConfig(**info["config"]))
    model.load_state_dict(state)
    model.eval()
    return model, info


def model_hash(model: DiT) -> str:
    """SHA-256 over the config and the weights (names, shapes, float32 bytes)."""
    h = hashlib.sha256(json.dumps(asdict(model.cfg), sort_keys=True).encode())
    for k, v in sorted(_state_arrays(model).items()):
        h.update(k.encode())
        h.update(str(v.shape).encode())
        h.update(np.ascontiguousarray(v, dtype=np.float32).tobytes())
    return h.hexdigest()
