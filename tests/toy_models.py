"""Hand-made denoisers with predictable outputs, for sampler and loop tests (no training)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn as nn


class ToyModel(nn.Module):
    """A stand-in for `Denoiser`: forward(tokens, t) -> (logits [B, L, V], hidden [B, L, 4]).

    `fn(tokens, call)` gives the logits; every call is counted and its inputs kept, so tests can
    check NFE and the noise levels a sampler fed. Rows are computed independently (elementwise
    indexing only), so a batch gives bit-identical logits to single rows.
    """

    def __init__(self, fn, vocab: int = 5, max_len: int = 16, attention: str = "bidirectional"):
        super().__init__()
        self.cfg = SimpleNamespace(vocab_size=vocab, max_len=max_len, attention=attention,
                                   causal=attention == "causal", time_conditioning="per_token")
        self.fn = fn
        self.anchor = nn.Parameter(torch.zeros(1))  # gives generate() a device
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, tokens, t=None, pad_mask=None):
        self.calls.append((tokens.clone(), None if t is None else t.clone()))
        logits = self.fn(tokens, len(self.calls)).float()
        return logits, torch.zeros(*tokens.shape, 4)


def positional(vocab: int = 5, scale: float = 4.0, max_len: int = 16, attention: str = "bidirectional"):
    """Position i prefers token i % V by `scale` nats over the others (same at every step)."""
    def fn(tokens, call):
        B, L = tokens.shape
        logits = torch.zeros(B, L, vocab)
        logits[:, torch.arange(L), torch.arange(L) % vocab] = scale
        return logits
    return ToyModel(fn, vocab, max_len, attention)


def graded(vocab: int = 5, max_len: int = 16):
    """Position i prefers token 0 with a confidence that grows with i (later = more confident)."""
    def fn(tokens, call):
        B, L = tokens.shape
        logits = torch.zeros(B, L, vocab)
        logits[:, :, 0] = torch.arange(L, dtype=torch.float32) * 0.5
        return logits
    return ToyModel(fn, vocab, max_len)


def contextual(vocab: int = 5, max_len: int = 16, attention: str = "bidirectional", seed: int = 0):
    """Logits depend on the neighbouring tokens through fixed random tables (MASK included), so
    samplers' choices feed back into later steps, yet every row is computed on its own."""
    g = torch.Generator().manual_seed(seed)
    left = torch.randn(vocab + 1, vocab, generator=g) * 2
    right = torch.randn(vocab + 1, vocab, generator=g) * 2
    pos = torch.randn(max_len, vocab, generator=g)

    def fn(tokens, call):
        B, L = tokens.shape
        prev = torch.cat([torch.full((B, 1), vocab), tokens[:, :-1]], 1)
        nxt = torch.cat([tokens[:, 1:], torch.full((B, 1), vocab)], 1)
        if attention == "causal":  # logits at i may only see tokens <= i
            return left[tokens] + pos[:L]
        return left[prev] + right[nxt] + pos[:L]
    return ToyModel(fn, vocab, max_len, attention)


def switching(vocab: int = 5, first: int = 1, later: int = 2, scale: float = 6.0, max_len: int = 16):
    """Confidently prefers token `first` on the first call and token `later` afterwards."""
    def fn(tokens, call):
        B, L = tokens.shape
        logits = torch.zeros(B, L, vocab)
        logits[..., first if call == 1 else later] = scale
        return logits
    return ToyModel(fn, vocab, max_len)
