"""Training objectives: diffusion (a noise process x a hyperschedule family) and causal AR.

Each objective knows how long its training examples are (`example_len`) and returns the mean
per-token loss in nats plus a few statistics for the log.
"""

from __future__ import annotations

import torch

from .config import RunConfig
from .noise import make_noise, token_nll
from .schedules import TrainingLevels

__all__ = ["CausalObjective", "DiffusionObjective", "make_objective", "token_nll"]


class DiffusionObjective:
    """sum_i w_i(t_i, z) * -log q_theta(x_i | z, t) / (B L), t per token from the schedule family."""

    def __init__(self, cfg: RunConfig):
        self.noise = make_noise(cfg.noise, cfg.model.vocab_size)
        self.levels = TrainingLevels(cfg.schedule, cfg.data.seq_len, cfg.noise.t_min)
        self.example_len = cfg.data.seq_len

    def loss(self, model, x: torch.Tensor, generator: torch.Generator | None = None):
        B, L = x.shape
        t = self.levels.sample(B, generator).to(x.device)  # [B, L]
        c = self.noise.corrupt(x, t, generator)
        logits, _ = model(c.z, t)
        nll = token_nll(logits, x)  # once per step: the loss and the logged statistics share it
        loss = self.noise.token_loss(logits, x, c, t, nll=nll).sum() / (B * L)
        with torch.no_grad():
            nll = nll.detach()
            masked = c.masked.float().sum().clamp_min(1)
            stats = {"masked_frac": float(c.masked.float().mean()),
                     "masked_nll": float((nll * c.masked).sum() / masked)}
        return loss, stats


class CausalObjective:
    """Next-token cross-entropy of the causal reference model; windows of seq_len + 1 tokens."""

    def __init__(self, cfg: RunConfig):
        self.example_len = cfg.data.seq_len + 1

    def loss(self, model, x: torch.Tensor, generator: torch.Generator | None = None):
        logits, _ = model(x[:, :-1])
        return token_nll(logits, x[:, 1:]).mean(), {}


def make_objective(cfg: RunConfig):
    return CausalObjective(cfg) if cfg.train.objective == "causal" else DiffusionObjective(cfg)
