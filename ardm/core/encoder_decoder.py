"""The encoder-decoder denoiser: AR-Diffusion's seq2seq setting (SPEC §11.7), beside the prefix denoiser.

The sequence is the prefix denoiser's, [source SEP | target] (ardm/data/parallel.py), and so is the
forward signature: f(z, t) -> (logits [B, L, V], hidden [B, L, d]); every sampler, the objective and
checkpoints work on it unchanged. Inside, the first P = cfg.encoder_len positions (source + SEP) go
through `encoder_layers` bidirectional blocks; the target positions through `n_layer` decoder layers
(self-attention over the target, cross-attention to the encoder's output, MLP). The source therefore
never sees the noisy target, so its encoding is a function of the source alone: in eval mode it is
computed once per source and reused by every denoising step (an exact cache; the prefix denoiser
re-encodes the source at every step). The logits of the P source positions are read from the
encoder's output (callers keep those positions clean; they are never sampled).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ardm.core.config import ModelConfig
from ardm.core.layers import Block, Linear, apply_rope
from ardm.core.model import TransformerDenoiser


class CrossAttention(nn.Module):
    """Pre-norm cross-attention of target states to the encoder's output, RoPE-rotated at their places
    in the one [source SEP | target] sequence: a target query sees its offset from each source key
    (from SEP, as the left-padded source ends there), so the decoder knows its absolute target
    position and the source's length, as the prefix denoiser does. Without the rotation (session 14's
    first model, docs/seq2seq.md) the all-MASK target of an early step had no position signal but
    its own self-attention, and decoding ended most targets after a word or two."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.ln = nn.LayerNorm(cfg.d_model)
        self.q = Linear(cfg.d_model, cfg.d_model, bias=False)
        self.kv = Linear(cfg.d_model, 2 * cfg.d_model, bias=False)
        self.proj = Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, key_mask: torch.Tensor | None,
                q_rope: torch.Tensor, k_rope: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        hd = D // self.n_head
        q = apply_rope(self.q(self.ln(x)).view(B, L, self.n_head, hd).transpose(1, 2), q_rope)
        k, v = self.kv(memory).view(B, -1, 2, self.n_head, hd).permute(2, 0, 3, 1, 4)
        k = apply_rope(k, k_rope)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
        return self.proj(y.transpose(1, 2).reshape(B, L, D))


class EncoderDecoderDenoiser(TransformerDenoiser):
    """TransformerDenoiser's embeddings, time conditioning, decoder blocks and head, plus an encoder
    and one cross-attention per decoder layer."""

    def __init__(self, cfg: ModelConfig):
        if cfg.encoder_layers < 1 or cfg.encoder_len < 1:
            raise ValueError("an encoder-decoder needs model.encoder_layers >= 1 and model.encoder_len >= 1")
        super().__init__(cfg)
        self.encoder = nn.ModuleList(Block(cfg) for _ in range(cfg.encoder_layers))
        self.ln_enc = nn.LayerNorm(cfg.d_model)
        self.cross = nn.ModuleList(CrossAttention(cfg) for _ in range(cfg.n_layer))
        depth = cfg.encoder_layers + cfg.n_layer
        for part in (self.encoder, self.cross):
            part.apply(self._init)
            for name, p in part.named_parameters():  # GPT-2 scaled init of residual projections
                if name.endswith("proj.weight"):
                    nn.init.normal_(p, std=0.02 / math.sqrt(2 * depth))
        self._memo: tuple[torch.Tensor, torch.Tensor] | None = None  # (encoder input, its output)

    def forward(self, tokens: torch.Tensor, t: torch.Tensor | None = None,
                pad_mask: torch.Tensor | None = None, input_embeds: torch.Tensor | None = None,
                clean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """As TransformerDenoiser.forward (no `clean` copy: that is for block_causal models)."""
        if clean is not None:
            raise ValueError("a clean copy is input only to block_causal models")
        B, L = tokens.shape
        P = self.cfg.encoder_len
        if not P < L <= self.cfg.max_len:
            raise ValueError(f"sequence length {L}: an encoder-decoder needs the {P} source positions "
                             f"and at least one target position, at most max_len {self.cfg.max_len}")
        pos = torch.arange(L, device=tokens.device)
        x = self._inputs(tokens, t, input_embeds, pos)
        enc_keys = dec_keys = None
        if pad_mask is not None:
            keys = pad_mask[:, None, None, :].to(torch.bool)
            enc_keys, dec_keys = keys[..., :P], keys[..., P:]
        memory = self.encode(x[:, :P], enc_keys)
        h = x[:, P:]
        rope, source_rope = self.rope[P:L], self.rope[:P]
        for block, cross in zip(self.blocks, self.cross):
            assert isinstance(block, Block)
            y, _ = block.attn(block.ln1(h), rope, dec_keys, False)
            h = h + block.drop(y)
            h = h + block.drop(cross(h, memory, enc_keys, rope, source_rope))
            h = h + block.drop(block.mlp(block.ln2(h)))
        h = torch.cat([memory, self.ln_f(h)], 1)
        return self._logits(h), h

    def encode(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        """The encoder's output for the embedded source x [B, P, d]. Outside training the last result
        is kept and reused while the input is bit-identical (the same sources at every step)."""
        keep = not (self.training or torch.is_grad_enabled()) and key_mask is None
        memo = self._memo
        if keep and memo is not None and memo[0].shape == x.shape and torch.equal(memo[0], x):
            return memo[1]
        h, rope = x, self.rope[: x.shape[1]]
        for block in self.encoder:
            h, _ = block(h, rope, key_mask, False)
        memory = self.ln_enc(h)
        self._memo = (x, memory) if keep else None
        return memory

    def _not_here(self, *args, **kwargs):
        raise ValueError("KV caches and ARMD passes are for single-stack models, not the encoder-decoder "
                         "(its source encoding is already computed once per source)")

    forward_cached = forward_keeping = forward_reusing = forward_armd_cached = _not_here


def build_model(cfg: ModelConfig) -> TransformerDenoiser:
    """The denoiser a model config describes: the encoder-decoder when it has encoder layers."""
    return EncoderDecoderDenoiser(cfg) if cfg.encoder_layers else TransformerDenoiser(cfg)
