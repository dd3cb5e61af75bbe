"""Semi-autoregressive blocks and the KV cache of settled blocks (SPEC §11.6) for the one loop.

`generate(..., block_size=W)` splits the sequence into blocks of W positions (absolute positions, the
prompt included) and runs the sampler block by block: inside block b the sampler sees the sequence
up to the block's end, with everything before the block as its prompt, and gets K / #blocks steps.
Every policy (mdlm, llada, remdm, edit, gate, ...) thus runs inside the current block unchanged.

A `Passes` object makes the denoiser calls of one run:
- a block_causal model (BD3-LM) reads only the sequence up to the block's end (later blocks cannot
  affect it); `cache="exact"` computes each settled block's keys/values once (folded into the first
  pass of the next block) and recomputes only the current block: same logits to fp32 rounding;
- a bidirectional model reads the whole sequence, later blocks still MASK (LLaDA's semi-AR reading);
  a cache of it would be approximate, and is refused here.
Logits before the current block are zero in every mode: those positions are settled and no sampler
reads them, and the samplers then see the same input with and without the cache.
"""

from __future__ import annotations

import torch

from ardm.core.denoiser import Denoiser
from ardm.core.model import KVCache
from ardm.errors import ArdmError

__all__ = ["CACHES", "Passes", "block_windows", "resolve_block_size"]

CACHES = ("none", "exact")


def resolve_block_size(cfg, block_size: int, cache: str) -> int:
    """The semi-AR block width of a run (0: one block, today's loop), checked against the model."""
    if cache not in CACHES:
        raise ArdmError(f"cache must be one of {CACHES}, got {cache!r}")
    if block_size < 0:
        raise ArdmError(f"block size must be >= 0 (0 = one block), got {block_size}")
    attention = cfg.attention
    if cache == "exact" and attention != "block_causal":
        raise ArdmError(f"an exact KV cache needs a block_causal model; this one is {attention}, whose "
                        "attention makes cached keys/values inexact (no approximate cache is built yet: "
                        "use cache none)")
    if attention == "block_causal":
        if block_size not in (0, cfg.block_size):
            raise ArdmError(f"this block_causal model was trained on blocks of {cfg.block_size}; "
                            f"sample with block size {cfg.block_size}, not {block_size}")
        return cfg.block_size
    if block_size and attention == "causal":
        raise ArdmError("a causal model decodes token by token: blocks are for denoisers")
    return block_size


def block_windows(length: int, prompt_len: int, width: int) -> list[tuple[int, int]]:
    """The blocks [lo, hi) holding target positions, in order; [(0, length)] when width is 0."""
    if width == 0:
        return [(0, length)]
    if length % width:
        raise ArdmError(f"the block size {width} must divide the length {length} (prompt included)")
    return [(lo, lo + width) for lo in range(0, length, width) if lo + width > prompt_len]


class Passes:
    """The denoiser passes of one run: `__call__(x, t)` on the sequence up to the current block's end
    [B, hi] returns (logits, hidden) for those positions and the positions it recomputed."""

    def __init__(self, model: Denoiser, cache: str):
        self.model = model
        self.cache = KVCache() if cache == "exact" else None
        self.block_causal = model.cfg.attention == "block_causal"
        self.lo = 0
        self.x_full = torch.zeros(0, 0)

    def begin(self, lo: int, x_full: torch.Tensor) -> None:
        """Start the block that begins at lo; x_full [B, L] is the whole sequence now (a bidirectional
        model reads its later blocks: MASK, or givens)."""
        self.lo, self.x_full = lo, x_full

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        B, hi = x.shape
        if self.cache is not None:  # recompute [cached, hi); settle whole blocks before the current one
            c = self.cache.length
            part, hidden_part = self.model.forward_cached(x[:, c:], t[:, c:], self.cache,  # type: ignore[attr-defined]
                                                          commit=self.lo - c)
            logits = part.new_zeros(B, hi, part.shape[-1])
            hidden = hidden_part.new_zeros(B, hi, hidden_part.shape[-1])
            logits[:, c:], hidden[:, c:] = part, hidden_part
            done = hi - c
        elif self.block_causal or hi == self.x_full.shape[1]:
            logits, hidden = self.model(x, t)
            done = hi
        else:  # a bidirectional model sees the later blocks too (still MASK, level 1)
            tail = self.x_full[:, hi:]
            full_t = torch.cat([t, torch.ones(tail.shape, device=t.device, dtype=t.dtype)], 1)
            logits, hidden = self.model(torch.cat([x, tail], 1), full_t)
            logits, hidden, done = logits[:, :hi], hidden[:, :hi], self.x_full.shape[1]
        if self.lo:
            logits, hidden = logits.clone(), hidden.clone()
            logits[:, : self.lo], hidden[:, : self.lo] = 0.0, 0.0
        return logits, hidden, done
