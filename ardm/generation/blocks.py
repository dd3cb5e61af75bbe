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
- a bidirectional model reads the whole sequence, later blocks still MASK (LLaDA's semi-AR reading).
  Its caches are approximate (Fast-dLLM, arXiv 2505.22618), asked for explicitly (`approximate`):
  the block's first pass runs in full and keeps every position's keys/values; later steps recompute
  the block and everything after it (`prefix`) or the block alone (`dual`), reusing the rest.
"""

from __future__ import annotations

import torch

from ardm.core.denoiser import Denoiser, DenoiserConfig
from ardm.core.kv_cache import KVCache
from ardm.errors import ArdmError
from ardm.generation.samplers.base import Sampler

__all__ = ["APPROXIMATE", "CACHES", "Passes", "block_steps", "block_windows", "resolve_block_size"]

APPROXIMATE = ("prefix", "dual")  # Fast-dLLM's caches of a bidirectional denoiser
CACHES = ("none", "exact", *APPROXIMATE)


def resolve_block_size(cfg, block_size: int, cache: str, approximate: bool = False) -> int:
    """The semi-AR block width of a run (0: one block, today's loop), checked against the model."""
    if cache not in CACHES:
        raise ArdmError(f"cache must be one of {CACHES}, got {cache!r}")
    if block_size < 0:
        raise ArdmError(f"block size must be >= 0 (0 = one block), got {block_size}")
    attention = cfg.attention
    if cache == "exact" and attention not in ("block_causal", "armd"):
        raise ArdmError(f"an exact KV cache needs a block_causal or armd model; this one is {attention}, "
                        "whose attention makes cached keys/values inexact (Fast-dLLM's approximate "
                        "cache: cache prefix or dual with --approximate)")
    if cache in APPROXIMATE:
        if attention != "bidirectional":
            raise ArdmError(f"cache {cache} is Fast-dLLM's approximate cache of a bidirectional "
                            f"denoiser; this model is {attention}"
                            + (" (use the exact cache)" if attention == "block_causal" else ""))
        if not approximate:
            raise ArdmError(f"cache {cache} is approximate for this bidirectional model (cached keys/values "
                            "do not see the current block's new tokens): ask for it with --approximate")
        if not block_size:
            raise ArdmError(f"cache {cache} refreshes when a block completes: give a block size")
    if attention == "block_causal":
        if block_size not in (0, cfg.block_size):
            raise ArdmError(f"this block_causal model was trained on blocks of {cfg.block_size}; "
                            f"sample with block size {cfg.block_size}, not {block_size}")
        return cfg.block_size
    if block_size and attention in ("causal", "armd"):
        raise ArdmError(f"a {attention} model decodes with its own sampler: blocks are for denoisers")
    return block_size


def block_windows(length: int, prompt_len: int, width: int) -> list[tuple[int, int]]:
    """The blocks [lo, hi) holding target positions, in order; [(0, length)] when width is 0."""
    if width == 0:
        return [(0, length)]
    if length % width:
        raise ArdmError(f"the block size {width} must divide the length {length} (prompt included)")
    return [(lo, lo + width) for lo in range(0, length, width) if lo + width > prompt_len]


def block_steps(cfg: DenoiserConfig, sampler: Sampler, length: int, prompt_len: int, steps: int,
                block_size: int = 0, cache: str = "none", approximate: bool = False
                ) -> tuple[list[tuple[int, int]], list[int]]:
    """The blocks of a run and each block's step budget, or one ArdmError naming what cannot be run.
    `generate` plans with it, and `ardm compare` calls it for every sampler and budget before it
    samples anything, so an impossible block size fails at once instead of after minutes of work."""
    windows = block_windows(length, prompt_len, resolve_block_size(cfg, block_size, cache, approximate))
    if steps % len(windows):
        raise ArdmError(f"steps ({steps}) must be a multiple of the number of blocks ({len(windows)})")
    return windows, [sampler.num_steps(hi - max(lo, prompt_len), steps // len(windows)) for lo, hi in windows]


class Passes:
    """The denoiser passes of one run. `begin(lo, hi, x)` starts block [lo, hi) of the sequence x
    [B, L]; `__call__(xb, tb)` on the block's tokens and levels [B, hi - lo] returns its logits,
    hidden states and the number of positions the pass recomputed. With `drift`, every cached step
    of an approximate cache also runs the full pass and records the mean KL(full || cached) over the
    block's positions (not counted as NFE)."""

    def __init__(self, model: Denoiser, cache: str, drift: bool = False):
        self.model, self.mode = model, cache
        self.cache = KVCache() if cache == "exact" else None
        self.block_causal = model.cfg.attention == "block_causal"
        self.armd = model.cfg.attention == "armd"
        self.in_cache = torch.zeros(0, dtype=torch.bool)  # armd: positions whose content is cached
        self.lo, self.hi, self.x = 0, 0, torch.zeros(0, 0, dtype=torch.long)
        self.kept: KVCache | None = None  # approximate cache: every position's keys/values
        self.drift: list[float] | None = [] if drift and cache in APPROXIMATE else None

    def begin(self, lo: int, hi: int, x: torch.Tensor) -> None:
        self.lo, self.hi, self.x, self.kept = lo, hi, x, None

    def __call__(self, xb: torch.Tensor, tb: torch.Tensor, queries: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, int]:
        lo, hi, W = self.lo, self.hi, xb.shape[1]
        m = self.model
        if self.cache is not None and self.armd:
            return self._armd(xb, tb, queries)
        if self.cache is not None:  # recompute [cached, hi) and settle the blocks before this one
            c = self.cache.length
            if c < lo:  # the first pass of a block: the block before it is settled, level 0
                tb = torch.cat([torch.zeros_like(self.x[:, c:lo], dtype=tb.dtype), tb], 1)
                xb = torch.cat([self.x[:, c:lo], xb], 1)
            logits, hidden = m.forward_cached(xb, tb, self.cache, commit=lo - c)  # type: ignore[attr-defined]
            return logits[:, -W:], hidden[:, -W:], hi - c
        if self.mode in APPROXIMATE and self.kept is not None:  # Fast-dLLM: reuse the block's refresh
            before, L = self.kept.span(0, lo), self.x.shape[1]
            if self.mode == "dual":
                logits, hidden = m.forward_reusing(xb, tb, before, self.kept.span(hi, L))  # type: ignore[attr-defined]
                done = hi - lo
            else:  # prefix: the block and everything after it are recomputed
                t = torch.cat([tb, tb.max().expand(*self.x[:, hi:].shape)], 1)
                logits, hidden = m.forward_reusing(torch.cat([xb, self.x[:, hi:]], 1), t, before)  # type: ignore[attr-defined]
                logits, hidden, done = logits[:, :W], hidden[:, :W], L - lo
            if self.drift is not None:
                full, _, _ = self._full(xb, tb)
                p, q = full.log_softmax(-1), logits.log_softmax(-1)
                self.drift.append(float((p.exp() * (p - q)).sum(-1).mean()))
            return logits, hidden, done
        return self._full(xb, tb)

    def _armd(self, xb: torch.Tensor, tb: torch.Tensor, queries: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """ARMD's exact cache: the content of tokens written since the last pass joins the cache;
        only the queries the sampler reads (`Sampler.queries`; default every MASK) are computed.
        Logits elsewhere are zero. Counts stream tokens (content + queries)."""
        assert self.cache is not None
        B, L = xb.shape
        mask_id = self.model.cfg.vocab_size
        if self.in_cache.numel() != L:
            self.in_cache = torch.zeros(L, dtype=torch.bool, device=xb.device)
        new = ((xb != mask_id).any(0) & ~self.in_cache).nonzero().flatten()
        ask = (xb == mask_id).any(0) if queries is None else queries.to(xb.device)
        q = ask.nonzero().flatten()
        logits_q, hidden_q = self.model.forward_armd_cached(  # type: ignore[attr-defined]
            xb[:, new], new, tb[:, new], q, tb[:, q], self.cache)
        self.in_cache[new] = True
        logits = logits_q.new_zeros(B, L, logits_q.shape[-1])
        hidden = hidden_q.new_zeros(B, L, hidden_q.shape[-1])
        logits[:, q], hidden[:, q] = logits_q, hidden_q
        return logits, hidden, new.numel() + q.numel()

    def _full(self, xb: torch.Tensor, tb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        # earlier blocks are settled: level 0 for a block_causal model (its clean copy in training),
        # the block's level for a bidirectional one (flat training: one level for every position);
        # a bidirectional model also reads the later blocks (MASK or givens, LLaDA's semi-AR reading)
        lo, hi = self.lo, self.hi
        tail = self.x[:, hi:] if not self.block_causal else self.x[:, :0]
        around = torch.zeros(()) if self.block_causal else tb.max()
        t = torch.cat([around.expand(xb.shape[0], lo), tb, around.expand(*tail.shape)], 1)
        x = torch.cat([self.x[:, :lo], xb, tail], 1)
        if self.mode in APPROXIMATE and self.kept is None:  # the block's first pass refreshes the cache
            logits, hidden, self.kept = self.model.forward_keeping(x, t)  # type: ignore[attr-defined]
        else:
            logits, hidden = self.model(x, t)
        return logits[:, lo:hi], hidden[:, lo:hi], t.shape[1] * (2 if self.armd else 1)  # armd: 2 streams
