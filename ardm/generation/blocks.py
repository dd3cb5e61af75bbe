"""Semi-autoregressive blocks and the KV cache of settled blocks (SPEC §11.6) for the one loop.

`generate(..., block_size=W)` splits the sequence into blocks of W positions (absolute positions, the
prompt included) and runs the sampler block by block: inside block b the sampler sees the sequence
up to the block's end, with everything before the block as its prompt, and gets K / #blocks steps.
Every policy (mdlm, llada, remdm, edit, gate, ...) thus runs inside the current block unchanged.
The sampler's state is the block alone (its cost does not grow with the settled prefix); the
block's prompt is the part of the prompt inside it.

A `Passes` object makes the denoiser calls of one run:
- a block_causal model (BD3-LM) reads only the sequence up to the block's end (later blocks
  cannot affect it; earlier ones at level 0); `cache="exact"` computes each settled block's
  keys/values once (folded into the first pass of the next block) and recomputes only the current
  block: the same logits to fp32 rounding;
- a bidirectional model reads the whole sequence, later blocks still MASK (LLaDA's semi-AR reading);
  a cache of it would be approximate, and is refused here.
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
    """The denoiser passes of one run. `begin(lo, hi, x)` starts block [lo, hi) of the sequence x
    [B, L]; `__call__(xb, tb)` on the block's tokens and levels [B, hi - lo] returns its logits,
    hidden states and the number of positions the pass recomputed."""

    def __init__(self, model: Denoiser, cache: str):
        self.model = model
        self.cache = KVCache() if cache == "exact" else None
        self.block_causal = model.cfg.attention == "block_causal"
        self.lo, self.hi, self.x = 0, 0, torch.zeros(0, 0, dtype=torch.long)

    def begin(self, lo: int, hi: int, x: torch.Tensor) -> None:
        self.lo, self.hi, self.x = lo, hi, x

    def __call__(self, xb: torch.Tensor, tb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        lo, hi, W = self.lo, self.hi, xb.shape[1]
        if self.cache is not None:  # recompute [cached, hi) and settle the blocks before this one
            c = self.cache.length
            t = torch.cat([torch.zeros_like(self.x[:, c:lo], dtype=tb.dtype), tb], 1)
            logits, hidden = self.model.forward_cached(  # type: ignore[attr-defined]
                torch.cat([self.x[:, c:lo], xb], 1), t, self.cache, commit=lo - c)
            return logits[:, -W:], hidden[:, -W:], hi - c
        # earlier blocks are settled: level 0 for a block_causal model (its clean copy in training),
        # the block's level for a bidirectional one (flat training: one level for every position);
        # a bidirectional model also reads the later blocks (MASK or givens, LLaDA's semi-AR reading)
        tail = self.x[:, hi:] if not self.block_causal else self.x[:, :0]
        around = torch.zeros(()) if self.block_causal else tb.max()
        t = torch.cat([around.expand(xb.shape[0], lo), tb, around.expand(*tail.shape)], 1)
        logits, hidden = self.model(torch.cat([self.x[:, :lo], xb, tail], 1), t)
        return logits[:, lo:hi], hidden[:, lo:hi], t.shape[1]
