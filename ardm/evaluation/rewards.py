"""Rewards of final samples for the gate's policy-gradient stage (ardm.generation.gate.policy).

Text: the AR reference's log-likelihood per token of each sample given the prompt (the quantity
generative perplexity averages, SPEC §8.2), optionally plus `entropy_weight` x the sample's unigram
entropy, so a gate cannot buy likelihood by collapsing diversity unnoticed (the entropy is always
reported beside it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ardm.core.checkpoint import load
from ardm.errors import ArdmError
from ardm.evaluation.metrics import generative_nll, unigram_entropy


def reference_reward(reference_dir: str, tokenizer, prompt: str, *, entropy_weight: float = 0.0,
                     device: str = "cpu") -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """tokens [B, P + n] (denoiser ids, prompt first) -> {"reward", "loglik_per_token", "entropy"} [B].
    `reference_dir`: a causal (AR) checkpoint; `tokenizer`: the denoiser's."""
    reference = load(reference_dir, device=device)
    if not reference.model.cfg.causal:
        raise ArdmError(f"--reference {reference_dir} is not a causal (AR) model; "
                        "train one with an `-ar` recipe")
    P = len(tokenizer.encode(prompt))

    def reward(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = [row[P:].tolist() for row in tokens.cpu()]
        texts = [tokenizer.decode(r) for r in rows]
        nll = generative_nll(reference.model, reference.tokenizer, texts, prompt, device=device)
        loglik = torch.tensor([-n / max(c, 1) for n, c in nll], dtype=torch.float64)
        entropy = torch.tensor([unigram_entropy(r) for r in rows], dtype=torch.float64)
        return {"reward": loglik + entropy_weight * entropy, "loglik_per_token": loglik, "entropy": entropy}

    return reward
