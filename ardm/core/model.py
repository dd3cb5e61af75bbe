"""The denoiser: a pre-norm transformer with RoPE and per-token time conditioning (SPEC §1).

f(z, t_vec) -> (logits [B, L, V], hidden [B, L, d]).

- Per-token time: each position carries its own noise level t_i in [0, 1]; a sinusoidal embedding
  of t_i goes through a small MLP and is added to that position's token embedding, as AR-Diffusion
  does. `time_conditioning="none"` ignores t (time-agnostic absorbing denoisers, MDLM/RADD).
- The input vocabulary is V + 1 (MASK = V); the output has V logits only, i.e. the MASK logit is
  -inf by construction ("zero masking probability", MDLM SUBS).
- attention="causal" gives the autoregressive reference model; "bidirectional" the denoiser.
- `pad_mask` [B, L] (True = real token) keeps padded keys out of attention.
- AR-to-diffusion adaptation (ardm/training/adaptation.py, SPEC §11.5): `cfg.shift` reads position
  i's logits at hidden state i - 1 (position 0 at its own); `attn_allow` [L, L] (set by the training
  loop while it anneals causal -> bidirectional attention, else None) restricts attention.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ardm.core.config import ModelConfig
from ardm.core.kv_cache import KVCache
from ardm.core.layers import Block, BlockWeights, Linear, block_forward, rope_tables, timestep_embedding


def peer_mask(n_head: int, peer_heads: int, length: int = 82, units: bool = False) -> torch.Tensor:
    """[n_head, L, L] bool: the first peer_heads heads let cell i see cell j only if they share a row,
    column or box (SPEC §8.1; position 0, the newline, sees and is seen by all); others see all.
    units=True: each peer head sees ONE unit, cycling row, column, box, all peers (hidden singles)."""
    pos = torch.arange(length)
    cell, off_grid = pos - 1, pos == 0
    row, col = cell // 9, cell % 9
    box = (row // 3) * 3 + col // 3
    same = [(a[:, None] == a[None]) | off_grid[:, None] | off_grid[None] for a in (row, col, box)]
    peer = same[0] | same[1] | same[2]
    heads = torch.ones(n_head, length, length, dtype=torch.bool)
    for h in range(peer_heads):
        heads[h] = (same + [peer])[h % 4] if units else peer
    return heads


class KeptWeights(NamedTuple):
    """A no-autograd snapshot of the weights a pass reads, laid out for small-batch products, and the
    parameter versions it was taken at (TransformerDenoiser.kept_weights)."""

    versions: tuple[int, ...]
    blocks: list[BlockWeights]
    time: tuple[torch.Tensor, ...] | None  # the time MLP: W1 [in, out], b1, W2 [in, out], b2
    head: torch.Tensor  # [d, V]


class TransformerDenoiser(nn.Module):
    """The pre-norm RoPE transformer of SPEC §1; implements the `ardm.core.denoiser.Denoiser` protocol."""

    rope: torch.Tensor  # [max_len, head_dim / 2, 2] buffer (rope_tables)
    peer_mask: torch.Tensor | None

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size < 1:
            raise ValueError("ModelConfig.vocab_size must be set (>= 1) before building the model")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size + 1, cfg.d_model)  # + MASK
        if cfg.abs_pos:  # RoPE sees offsets only; a fixed 2-D layout (Sudoku rows/boxes) needs where
            self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        if cfg.time_conditioning == "per_token":
            self.time_mlp = nn.Sequential(Linear(cfg.d_model, cfg.d_model), nn.SiLU(),
                                          Linear(cfg.d_model, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.register_buffer("rope", rope_tables(cfg.d_model // cfg.n_head, cfg.max_len), persistent=False)
        peers = (peer_mask(cfg.n_head, cfg.peer_heads, cfg.max_len, cfg.peer_units)[None]
                 if cfg.peer_heads else None)
        self.register_buffer("peer_mask", peers, persistent=False)  # [1, H, L, L] (model.peer_heads)
        self.attn_allow: torch.Tensor | None = None  # [L, L] bool: adaptation's annealed mask (§11.5)
        self._kept: KeptWeights | None = None
        self._kept_params: list[torch.Tensor] = []
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
            if name.endswith("proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))
        if cfg.time_conditioning == "per_token":
            out = self.time_mlp[-1]
            assert isinstance(out, nn.Linear)
            nn.init.zeros_(out.weight)  # start time-agnostic, learn to use t
            nn.init.zeros_(out.bias)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        emb = self.tok_emb.weight.numel() + self.head.weight.numel()
        emb += self.pos_emb.weight.numel() if self.cfg.abs_pos else 0
        return n - (emb if non_embedding else 0)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.tok_emb(tokens)

    def forward(self, tokens: torch.Tensor, t: torch.Tensor | None = None,
                pad_mask: torch.Tensor | None = None, input_embeds: torch.Tensor | None = None,
                clean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [B, L] (MASK = V allowed); t [B, L] or [B] noise levels; pad_mask [B, L] bool.

        input_embeds [B, L, d] replaces the token embedding lookup (relaxed masks in gate training).
        clean [B, L] (block_causal models only): the clean sequence beside the noisy `tokens`, BD3-LM's
        vectorised two-copy input, so that every block is denoised from clean earlier blocks in one
        pass (training and likelihood); without it the model reads `tokens` alone, block-causally
        (sampling: earlier blocks are already clean there).
        Returns logits [B, L, V] (float32) and final hidden states [B, L, d].
        """
        B, L = tokens.shape
        if L > self.cfg.max_len:
            raise ValueError(f"sequence length {L} exceeds the model's max_len {self.cfg.max_len}")
        if self.cfg.attention == "armd":
            return self._two_stream(tokens, t)
        pos = torch.arange(L, device=tokens.device)
        if clean is not None:
            if self.cfg.attention != "block_causal":
                raise ValueError("a clean copy is input only to block_causal models (it would leak)")
            t = _per_token(t, B, L) if t is not None else torch.ones(B, L, device=tokens.device)
            x = self._inputs(torch.cat([tokens, clean], 1), torch.cat([t, torch.zeros_like(t)], 1),
                             None, torch.cat([pos, pos]))
            h, _ = self._trunk(x, torch.cat([pos, pos]), self.two_copy_mask(L), False)
            h = h[:, :L]
            return self._logits(h), h
        x = self._inputs(tokens, t, input_embeds, pos)
        causal = self.cfg.causal
        attn_mask = None if self.attn_allow is None else self.attn_allow[:L, :L]
        if self.cfg.attention == "block_causal":
            attn_mask = self.block_mask(pos, pos)
        if self.peer_mask is not None:
            peers = self.peer_mask[..., :L, :L]
            attn_mask = peers if attn_mask is None else peers & attn_mask
        if pad_mask is not None:
            keys = pad_mask[:, None, None, :].to(torch.bool)  # [B, 1, 1, L] keys
            attn_mask = keys if attn_mask is None else keys & attn_mask
            if causal:
                attn_mask = attn_mask & torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        h, _ = self._trunk(x, pos, attn_mask, causal and attn_mask is None)
        if self.cfg.shift:  # logits of position i from state i - 1, as the AR model read them (§11.5)
            h = torch.cat([h[:, :1], h[:, :-1]], dim=1)
        return self._logits(h), h

    def forward_cached(self, tokens: torch.Tensor, t: torch.Tensor | None, cache: KVCache,
                       commit: int = 0, last_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact KV cache (SPEC §11.6) of a block_causal model, or of a causal one (blocks of one
        token): tokens [B, W] sit at positions cache.length .. cache.length + W - 1, which must start a
        block; they attend to every cached position (all in earlier blocks) and block-causally to each
        other, so the logits equal those of a full forward pass over the cached tokens followed by
        these. The keys/values of the first `commit` positions (whole blocks, now settled) are
        appended to `cache`."""
        causal = self.cfg.causal
        if self.cfg.attention != "block_causal" and not causal:
            raise ValueError("forward_cached is exact only for block_causal and causal models")
        B, W = tokens.shape
        start, bs = cache.length, 1 if causal else self.cfg.block_size
        if start % bs or commit % bs or commit > W or start + W > self.cfg.max_len:
            raise ValueError(f"cached window [{start}, {start + W}) commit {commit}: not on block "
                             f"boundaries of {bs} or beyond max_len {self.cfg.max_len}")
        pos = torch.arange(start, start + W, device=tokens.device)
        x = self._inputs(tokens, t, None, pos)
        mask = None  # one block: it sees every cached position and itself (SDPA's fast path)
        if W > bs:
            seen = torch.ones(W, start, dtype=torch.bool, device=x.device)  # every cached position
            own = (pos[None, :] <= pos[:, None]) if causal else self.block_mask(pos, pos)
            mask = torch.cat([seen, own], 1)
        h, _ = self._trunk(x, pos, mask, False, cache.slots(self.cfg.n_layer))
        cache.commit(commit)  # the first `commit` keys/values were written in place
        h = h[:, -1:] if last_only else h
        return self._logits(h), h

    def forward_keeping(self, tokens: torch.Tensor, t: torch.Tensor | None
                        ) -> tuple[torch.Tensor, torch.Tensor, KVCache]:
        """A bidirectional pass that also returns every position's keys/values (the refresh of the
        approximate cache below)."""
        if self.peer_mask is not None:
            raise ValueError("the approximate cache reads every position: not for peer-attention models")
        L = tokens.shape[1]
        pos = torch.arange(L, device=tokens.device)
        h, kvs = self._trunk(self._inputs(tokens, t, None, pos), pos, None, False)
        return self._logits(h), h, KVCache(kvs)

    def forward_reusing(self, tokens: torch.Tensor, t: torch.Tensor | None, before: KVCache,
                        after: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Fast-dLLM's approximate cache (arXiv 2505.22618) for a bidirectional denoiser: tokens
        [B, W] at positions before.length .. + W - 1 attend, unmasked, to themselves, to the cached
        keys/values of the positions before them and (dual cache) of `after`, the positions after
        them. Only these W positions are recomputed; the cached entries, computed when the block
        began, do not see this step's tokens: approximate, by design (SPEC §11.6)."""
        if self.cfg.attention != "bidirectional":
            raise ValueError("forward_reusing is Fast-dLLM's cache of a bidirectional denoiser")
        start, W = before.length, tokens.shape[1]
        pos = torch.arange(start, start + W, device=tokens.device)
        h, _ = self._trunk(self._inputs(tokens, t, None, pos), pos, None, False,
                           before.layers if start else None, None if after is None else after.layers)
        return self._logits(h), h

    def _two_stream(self, tokens: torch.Tensor, beta: torch.Tensor | None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ARMD (SPEC §5.3): `beta` [B, L] (in place of t) is each position's block id, the denoising
        step that reveals it. Input [query stream: MASK at position i ; content stream: x_i at i];
        content i sees content j iff beta_j <= beta_i, query i sees content j iff beta_j < beta_i and
        itself. Logits come from the query stream: position i's given the blocks before its own, for
        every i in ONE pass. Only positions enter RoPE, so permuting (x, positions, beta) together
        permutes the outputs."""
        if beta is None:
            raise ValueError("an armd model needs each position's block id (passed as t)")
        B, L = tokens.shape
        beta = _per_token(beta.to(tokens.device), B, L)
        pos = torch.arange(L, device=tokens.device)
        query = self.tok_emb.weight[self.cfg.mask_id].expand(B, L, -1)
        x = torch.cat([query, self.embed(tokens)], 1)
        if self.cfg.abs_pos:
            x = x + self.pos_emb.weight[torch.cat([pos, pos])]
        bi, bj = beta[:, :, None], beta[:, None, :]
        itself = torch.eye(L, dtype=torch.bool, device=x.device).expand(B, L, L)
        top = torch.cat([itself, bj < bi], 2)
        bottom = torch.cat([torch.zeros_like(itself), bj <= bi], 2)
        h, _ = self._trunk(x, torch.cat([pos, pos]), torch.cat([top, bottom], 1)[:, None], False)
        h = h[:, :L]
        return self._logits(h), h

    def forward_armd_cached(self, content: torch.Tensor, content_pos: torch.Tensor,
                            content_beta: torch.Tensor, query_pos: torch.Tensor,
                            query_beta: torch.Tensor, cache: KVCache
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """ARMD with a cache of content keys/values (SPEC §5.3: with the cache a strided step
        processes S content + S query tokens): new content tokens [B, N] at content_pos [N] attend to
        cached and new content of block ids <= theirs; queries at query_pos [Q] (block ids
        query_beta [B, Q]) to content of smaller ids and to themselves. The new content joins the
        cache (cache.beta keeps the ids). Returns the queries' logits [B, Q, V] and hidden states:
        those of the full two-stream pass over the same tokens and ids."""
        B, N = content.shape
        Q = query_pos.numel()
        x = torch.cat([self.embed(content), self.tok_emb.weight[self.cfg.mask_id].expand(B, Q, -1)], 1)
        pos = torch.cat([content_pos, query_pos])
        if self.cfg.abs_pos:
            x = x + self.pos_emb.weight[pos]
        keys = content_beta if cache.beta is None else torch.cat([cache.beta, content_beta], 1)
        rows_c = torch.cat([keys[:, None, :] <= content_beta[:, :, None],
                            torch.zeros(B, N, Q, dtype=torch.bool, device=x.device)], 2)
        rows_q = torch.cat([keys[:, None, :] < query_beta[:, :, None],
                            torch.eye(Q, dtype=torch.bool, device=x.device).expand(B, Q, Q)], 2)
        h, _ = self._trunk(x, pos, torch.cat([rows_c, rows_q], 1)[:, None], False,
                           cache.slots(self.cfg.n_layer))
        if N:
            cache.commit(N)  # the new content's keys/values come first: written in place
            cache.beta = keys
        h = h[:, N:]
        return self._logits(h), h

    def block_mask(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """[Lq, Lk] bool: query i sees key j iff block(j) <= block(i) (BD3-LM's single-copy mask)."""
        bs = self.cfg.block_size
        return (k_pos[None, :] // bs) <= (q_pos[:, None] // bs)

    def two_copy_mask(self, L: int) -> torch.Tensor:
        """[2L, 2L] bool over [noisy ; clean] (BD3-LM, arXiv 2503.09573): noisy block b sees itself
        and clean blocks < b; clean block b sees clean blocks <= b; nothing sees the noisy copy else."""
        blk = torch.arange(L, device=self.rope.device) // self.cfg.block_size
        same, before = blk[:, None] == blk[None, :], blk[None, :] < blk[:, None]
        top = torch.cat([same, before], 1)
        bottom = torch.cat([torch.zeros_like(same), same | before], 1)
        return torch.cat([top, bottom], 0)

    def kept_weights(self) -> KeptWeights | None:
        """Outside autograd, the blocks', time MLP's and head's weights for the functional pass, taken
        once and kept while no parameter changes: in-place updates (optimizer steps, load_state_dict,
        EMA copies) bump a parameter's version, and .to() / .half(), which do not, go through `_apply`,
        which drops them. Taking them afresh cost ~0.1 ms of a 1.5 ms cached batch-1 pass
        (docs/speed.md). None with autograd on (the modules' own parameters are used)."""
        if torch.is_grad_enabled():
            return None
        if not self._kept_params:
            timing = list(self.time_mlp.parameters()) if self.cfg.time_conditioning == "per_token" else []
            self._kept_params = [*self.blocks.parameters(), *timing, self.head.weight]
        versions = tuple(p._version for p in self._kept_params)
        if self._kept is None or self._kept.versions != versions:
            time: tuple[torch.Tensor, ...] | None = None
            if self.cfg.time_conditioning == "per_token":
                first, _, second = self.time_mlp
                assert isinstance(first, Linear) and isinstance(second, Linear)
                time = (first.in_out(), first.bias, second.in_out(), second.bias)
            self._kept = KeptWeights(versions, self._block_weights(), time, self.head.in_out())
        return self._kept

    def _block_weights(self) -> list[BlockWeights]:
        return [b.weights() for b in self.blocks if isinstance(b, Block)]

    def _apply(self, fn, recurse=True):
        self._kept, self._kept_params = None, []  # .to() / .half() move parameters, versions unchanged
        return super()._apply(fn, recurse)

    def _inputs(self, tokens: torch.Tensor, t: torch.Tensor | None, input_embeds: torch.Tensor | None,
                pos: torch.Tensor) -> torch.Tensor:
        """Token (or given) embeddings + absolute positions + the per-token time embedding."""
        B, L = tokens.shape
        x = self.embed(tokens) if input_embeds is None else input_embeds
        if self.cfg.abs_pos:
            x = x + self.pos_emb.weight[pos]
        if self.cfg.time_conditioning == "per_token":
            if t is None:
                raise ValueError("this denoiser is time-conditioned: pass per-token noise levels t")
            e = timestep_embedding(_per_token(t.to(x.device), B, L), self.cfg.d_model)
            kept = self.kept_weights()
            if kept is None or kept.time is None:
                x = x + self.time_mlp(e).to(x.dtype)
            else:  # the time MLP's inference arithmetic without its three module calls
                w1, b1, w2, b2 = kept.time
                x = x + (F.silu(e @ w1 + b1) @ w2 + b2).to(x.dtype)
        return x

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        """The head's logits [.., V] in float32."""
        kept = self.kept_weights()
        return (self.head(h) if kept is None else h @ kept.head).float()

    def _trunk(self, x: torch.Tensor, pos: torch.Tensor, attn_mask: torch.Tensor | None, is_causal: bool,
               past: list | None = None, after: list | None = None) -> tuple[torch.Tensor, list]:
        first, last = (int(pos[0]), int(pos[-1])) if pos.numel() else (0, -1)
        if last - first == pos.numel() - 1:  # contiguous positions: a view, no copy
            rope = self.rope[first: last + 1]
        else:
            rope = self.rope[pos]
        kept = self.kept_weights()
        weights = kept.blocks if kept else self._block_weights()
        dropout = self.cfg.dropout if self.training else 0.0
        kvs = []
        for j, w in enumerate(weights):  # block_forward, not block(): per-call overhead (layers.py)
            x, kv = block_forward(x, w, self.cfg.n_head, rope, attn_mask, is_causal, None if past is None
                                  else past[j], None if after is None else after[j], dropout)
            kvs.append(kv)
        return self.ln_f(x), kvs


def _per_token(t: torch.Tensor, B: int, L: int) -> torch.Tensor:
    t = t.float()
    return t[:, None].expand(B, L) if t.dim() == 1 else t
