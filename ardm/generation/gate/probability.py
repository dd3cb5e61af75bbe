"""The gate's overwrite probability, in ONE function that sampling and gate training both call.

    raw = (H, M, Dl)(logits, prev_logits, x)          signals, SPEC §6.8
    u   = scorer([h ; normalise(raw) ; i/n ; k/K ; r])  uncertainty gate (linear or learned)
    r   = maturity_prior(i, k)                          positional prior ([S0] §2.3; 0 with prior=False)
    p   = combine(u, r)                                 noisy-OR by default

Rows may sit at different steps k (gate training draws a k per row); sampling passes one k for all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ardm.generation.gate.options import GateOptions
from ardm.generation.gate.scoring import (
    GateInputs,
    GateScorer,
    SignalStats,
    combine,
    maturity_prior,
    normalise,
    signals,
)


@dataclass
class GateProbability:
    p: torch.Tensor  # [B, L] combine(u, r): not yet zeroed at the prompt nor set at MASKs
    prior: torch.Tensor  # [B, L] r (0 on the prompt)
    raw: torch.Tensor  # [B, L, 3] the raw signals, before normalisation


def overwrite_probability(scorer: GateScorer, stats: SignalStats, o: GateOptions, *, x: torch.Tensor,
                          logits: torch.Tensor, prev_logits: torch.Tensor | None, hidden: torch.Tensor,
                          k: torch.Tensor, K: int, mask_id: int, prompt_len: int = 0) -> GateProbability:
    """p for every position of x [B, L] at steps k [B] (1..K) of K; gradients flow into `scorer`."""
    raw = signals(logits, prev_logits, x, mask_id, o.y_tilde, o.margin)  # [B, L, 3]
    B, L = x.shape
    n = L - prompt_len
    r = torch.zeros(B, L, device=x.device)
    if o.prior:
        steps = k.tolist()
        rows = {kb: maturity_prior(n, int(kb), K, o.alpha, o.delta) for kb in set(steps)}
        r[:, prompt_len:] = torch.stack([rows[kb] for kb in steps]).to(x.device)
    rel = (torch.arange(L, device=x.device) - prompt_len).float() / n
    progress = (k.float() / K)[:, None].to(x.device)  # [B, 1]
    u = scorer(GateInputs(normalise(raw, stats), hidden, rel, progress, r))
    return GateProbability(combine(u, r, o.combine), r, raw)
