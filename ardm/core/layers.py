"""The transformer's layers (SPEC §1): RoPE, the time embedding, attention, MLP and the pre-norm block.

Each layer's arithmetic is one function over plain tensors (`attention`, `mlp`, `block_forward`); the
modules hold the parameters and call those functions. A denoiser's trunk calls `block_forward`
directly, with `Block.weights()` or, outside autograd, the model's kept snapshot of them: at the
16-32 rows of a cached or batch-1 sampling step a pass is mostly per-call overhead, and the nine
module calls per block (block, attention, MLP, two norms, four linears) were a good part of it
(the cached batch-1 step went from 2.1-2.4 to 1.8-1.9 ms without them; docs/speed.md, session 15).
Training runs the same functions on the parameters themselves, so both paths compute the same numbers.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ardm.core.config import ModelConfig


class Linear(nn.Linear):
    """nn.Linear (same parameters and state dict) whose inference passes multiply by a cached
    contiguous transpose of the weight: MKL's x @ W^T with W as stored runs about 1.6-2.7x slower
    at the 1-32 rows of a cached or batch-1 step than x @ W_t with W_t laid out [in, out]
    (docs/speed.md). The copy is remade whenever the weight changes (in-place updates bump its
    version; .to() / .half() replace it); with autograd on, the transposed view of the weight is used."""

    _t_key: tuple | None = None
    _t_weight: torch.Tensor | None = None

    def in_out(self) -> torch.Tensor:
        """The weight laid out [in, out], so that x @ in_out() is this layer without its bias."""
        w = self.weight
        if torch.is_grad_enabled():
            return w.t()
        key = (w.data_ptr(), w._version, w.dtype, w.device)
        if self._t_key != key or self._t_weight is None:
            self._t_weight, self._t_key = w.detach().t().contiguous(), key
        return self._t_weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return F.linear(x, self.weight, self.bias)
        y = x @ self.in_out()
        return y if self.bias is None else y + self.bias


def rope_tables(head_dim: int, max_len: int, base: float = 10000.0) -> torch.Tensor:
    """[max_len, head_dim / 2, 2]: (cos, sin) of every position's angle per frequency (real, so that
    module dtype casts cannot drop half of it as they would a complex buffer)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.arange(max_len, dtype=torch.float32)[:, None] * inv_freq[None, :]  # [L, hd/2]
    return torch.stack((angles.cos(), angles.sin()), dim=-1)


def apply_rope(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """Rotate x [..., L, hd]'s (even, odd) pairs by rope [L, hd/2, 2] as one complex product
    (x1 cos - x2 sin, x1 sin + x2 cos): one kernel where the strided real form took eight (q and k of
    256 positions x 16 rows, one thread: 6-8 ms -> 0.6 ms; docs/speed.md)."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], x.shape[-1] // 2, 2))
    return torch.view_as_real(pairs * torch.view_as_complex(rope.float())).flatten(-2).type_as(x)


@functools.lru_cache(maxsize=16)
def _frequencies(half: int, max_period: float, device: torch.device) -> torch.Tensor:
    return torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=device) / half)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of noise levels t in [0, 1] (scaled by 1000 as in DDPM/DiT). [..., dim]"""
    args = (t.float() * 1000.0)[..., None] * _frequencies(dim // 2, max_period, t.device)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def attention(h: torch.Tensor, qkv_w: torch.Tensor, proj_w: torch.Tensor, n_head: int, rope: torch.Tensor,
              attn_mask: torch.Tensor | None, is_causal: bool, past=None, after=None, dropout: float = 0.0
              ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Self-attention of the normed input h [B, L, D] (weights [in, out]). past / after: (keys, values)
    [B, H, Lc, hd] of cached positions before / after these that every query may attend to (columns
    in that order in attn_mask); `past` may instead be a KVCache slot, which writes this input's
    keys/values after its entries and returns the whole (no copy of the cache). Returns the output
    and this input's own (keys, values)."""
    B, L, D = h.shape
    qkv = (h @ qkv_w).view(B, L, 3, n_head, D // n_head).permute(2, 0, 3, 1, 4)
    q, k = apply_rope(qkv[:2], rope).unbind(0)  # q and k in one call (fewer small ops)
    v = qkv[2]
    if past is None:
        keys, values = k, v
    elif callable(past):  # a KVCache slot
        keys, values = past(k, v)
    else:
        keys, values = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
    if after is not None:
        keys, values = torch.cat([keys, after[0]], 2), torch.cat([values, after[1]], 2)
    y = F.scaled_dot_product_attention(q, keys, values, attn_mask=attn_mask, is_causal=is_causal,
                                       dropout_p=dropout)
    return y.transpose(1, 2).reshape(B, L, D) @ proj_w, (k, v)


def mlp(h: torch.Tensor, fc_w: torch.Tensor, proj_w: torch.Tensor) -> torch.Tensor:
    return F.gelu(h @ fc_w) @ proj_w


class BlockWeights(NamedTuple):
    """One block's parameters as plain tensors: layer norms (weight, bias), linear weights [in, out]."""

    ln1: tuple[torch.Tensor, torch.Tensor]
    qkv: torch.Tensor
    proj: torch.Tensor
    ln2: tuple[torch.Tensor, torch.Tensor]
    fc: torch.Tensor
    fc_proj: torch.Tensor


def block_forward(x: torch.Tensor, w: BlockWeights, n_head: int, rope: torch.Tensor,
                  attn_mask: torch.Tensor | None, is_causal: bool, past=None, after=None,
                  dropout: float = 0.0) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """The pre-norm block x + attn(ln1 x), then + mlp(ln2 x); dropout (training only) on the attention
    weights and on both branches. Returns the output and the input's own (keys, values)."""
    shape = x.shape[-1:]
    y, kv = attention(F.layer_norm(x, shape, *w.ln1), w.qkv, w.proj, n_head, rope, attn_mask, is_causal,
                      past, after, dropout)
    x = x + (F.dropout(y, dropout) if dropout else y)
    y = mlp(F.layer_norm(x, shape, *w.ln2), w.fc, w.fc_proj)
    return x + (F.dropout(y, dropout) if dropout else y), kv


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = Linear(cfg.d_model, cfg.d_model, bias=False)
        self.dropout = cfg.dropout

    def forward(self, h, rope, attn_mask, is_causal, past=None, after=None):
        """`attention` with this module's weights (see there)."""
        return attention(h, self.qkv.in_out(), self.proj.in_out(), self.n_head, rope, attn_mask, is_causal,
                         past, after, self.dropout if self.training else 0.0)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=False)
        self.proj = Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=False)

    def forward(self, h):
        return mlp(h, self.fc.in_out(), self.proj.in_out())


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def weights(self) -> BlockWeights:
        """This block's parameters for `block_forward` (cached transposes when autograd is off)."""
        return BlockWeights((self.ln1.weight, self.ln1.bias), self.attn.qkv.in_out(), self.attn.proj.in_out(),
                            (self.ln2.weight, self.ln2.bias), self.mlp.fc.in_out(), self.mlp.proj.in_out())

    def forward(self, x, rope, attn_mask, is_causal, past=None, after=None):
        return block_forward(x, self.weights(), self.attn.n_head, rope, attn_mask, is_causal, past, after,
                             self.drop.p if self.training else 0.0)
