"""Training objectives: diffusion (a noise process x a hyperschedule family) and causal AR.

Each objective knows how long its training examples are (`example_len`) and returns the mean
per-token loss in nats plus a few statistics for the log.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import RunConfig
from .noise import make_noise
from .schedules import TrainingLevels


def token_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log q(target) per position, in fp32. logits [B, L, V], target [B, L] -> [B, L]"""
    return F.cross_entropy(logits.float().transpose(1, 2), target, reduction="none")


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
        loss = self.noise.token_loss(logits, x, c, t).sum() / (B * L)
        with torch.no_grad():
            nll = token_nll(logits, x)
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
