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

import torch
import torch.nn as nn
import torch.nn.functional as F

from ardm.core.config import ModelConfig


def rope_tables(head_dim: int, max_len: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.arange(max_len, dtype=torch.float32)[:, None] * inv_freq[None, :]  # [L, hd/2]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: [B, H, L, hd]; rotate (even, odd) pairs
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2).type_as(x)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of noise levels t in [0, 1] (scaled by 1000 as in DDPM/DiT). [..., dim]"""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = (t.float() * 1000.0)[..., None] * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.dropout = cfg.dropout

    def forward(self, x, cos, sin, attn_mask, is_causal):
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_head, D // self.n_head).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, L, D))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin, attn_mask, is_causal):
        x = x + self.drop(self.attn(self.ln1(x), cos, sin, attn_mask, is_causal))
        return x + self.drop(self.mlp(self.ln2(x)))


class TransformerDenoiser(nn.Module):
    """The pre-norm RoPE transformer of SPEC §1; implements the `ardm.core.denoiser.Denoiser` protocol."""

    rope_cos: torch.Tensor  # [max_len, head_dim / 2] buffers
    rope_sin: torch.Tensor

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size < 1:
            raise ValueError("ModelConfig.vocab_size must be set (>= 1) before building the model")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size + 1, cfg.d_model)  # + MASK
        if cfg.abs_pos:  # RoPE sees offsets only; a fixed 2-D layout (Sudoku rows/boxes) needs where
            self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        if cfg.time_conditioning == "per_token":
            self.time_mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.SiLU(),
                                          nn.Linear(cfg.d_model, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        cos, sin = rope_tables(cfg.d_model // cfg.n_head, cfg.max_len)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.attn_allow: torch.Tensor | None = None  # [L, L] bool: adaptation's annealed mask (§11.5)
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
                pad_mask: torch.Tensor | None = None,
                input_embeds: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [B, L] (MASK = V allowed); t [B, L] or [B] noise levels; pad_mask [B, L] bool.

        input_embeds [B, L, d] replaces the token embedding lookup (relaxed masks in gate training).
        Returns logits [B, L, V] (float32) and final hidden states [B, L, d].
        """
        B, L = tokens.shape
        if L > self.cfg.max_len:
            raise ValueError(f"sequence length {L} exceeds the model's max_len {self.cfg.max_len}")
        x = self.embed(tokens) if input_embeds is None else input_embeds
        if self.cfg.abs_pos:
            x = x + self.pos_emb.weight[:L]
        if self.cfg.time_conditioning == "per_token":
            if t is None:
                raise ValueError("this denoiser is time-conditioned: pass per-token noise levels t")
            t = t.to(x.device).float()
            t = t[:, None].expand(B, L) if t.dim() == 1 else t
            x = x + self.time_mlp(timestep_embedding(t, self.cfg.d_model)).to(x.dtype)
        causal = self.cfg.causal
        attn_mask = None if self.attn_allow is None else self.attn_allow[:L, :L]
        if pad_mask is not None:
            keys = pad_mask[:, None, None, :].to(torch.bool)  # [B, 1, 1, L] keys
            attn_mask = keys if attn_mask is None else keys & attn_mask
            if causal:
                attn_mask = attn_mask & torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        cos, sin = self.rope_cos[:L], self.rope_sin[:L]
        for block in self.blocks:
            x = block(x, cos, sin, attn_mask, causal and attn_mask is None)
        h = self.ln_f(x)
        if self.cfg.shift:  # logits of position i from state i - 1, as the AR model read them (§11.5)
            h = torch.cat([h[:, :1], h[:, :-1]], dim=1)
        return self.head(h).float(), h
