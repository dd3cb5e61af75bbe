"""Training objectives: diffusion (a noise process x a hyperschedule family) and causal AR.

Each objective knows how long its training examples are (`example_len`) and returns the mean
per-token loss in nats plus a few statistics for the log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ardm.core.noise import make_noise, token_nll
from ardm.core.registry import Registry
from ardm.core.schedules import TrainingLevels

if TYPE_CHECKING:
    from ardm.core.config import RunConfig

__all__ = ["OBJECTIVES", "ArmdObjective", "CausalObjective", "DiffusionObjective", "armd_blocks", "denoise",
           "make_objective", "strided_blocks", "token_nll"]

OBJECTIVES: Registry[type] = Registry("train.objective")


def denoise(model, z: torch.Tensor, t: torch.Tensor, x: torch.Tensor):
    """The denoiser's (logits, hidden) for noisy z of clean x: a block_causal model reads BD3-LM's
    two-copy input [z ; x] (every block from clean earlier blocks, one pass); any other model z alone."""
    cfg = getattr(getattr(model, "module", model), "cfg", None)  # DDP wraps the model
    if getattr(cfg, "attention", None) == "block_causal":
        return model(z, t, clean=x)
    return model(z, t)


@OBJECTIVES.register("diffusion")
class DiffusionObjective:
    """sum_i w_i(t_i, z) * -log q_theta(x_i | z, t) / (B L), t per token from the schedule family."""

    def __init__(self, cfg: RunConfig):
        self.noise = make_noise(cfg.noise, cfg.model.vocab_size)
        # seq2seq (SPEC §11.7): the hyperschedule runs over the target only; the prefix is clean
        self.prefix = cfg.data.prefix_len
        self.levels = TrainingLevels(cfg.schedule, cfg.data.seq_len - self.prefix, cfg.noise.t_min)
        self.example_len = cfg.data.seq_len
        self.clean_range = (cfg.data.clean_min, cfg.data.clean_max)
        self.t_min = cfg.noise.t_min

    def clean_positions(self, B: int, L: int, generator: torch.Generator | None,
                        given: torch.Tensor | None = None) -> torch.Tensor | None:
        """[B, L] bool: per example U{min..max} random positions kept clean (None when max = 0 and no
        `given` mask). `given` [B, L] (the data's own clean positions, e.g. a unique puzzle's givens)
        is always clean; the count is then drawn from U{max(min, g)..max(max, g)}, g its size."""
        lo, hi = self.clean_range
        if given is None and hi == 0:
            return None
        if given is None:
            counts = torch.randint(lo, hi + 1, (B, 1), generator=generator)
            ranks = torch.rand(B, L, generator=generator)
        else:
            given = given.cpu()
            g = given.sum(1, keepdim=True)
            low, high = g.clamp_min(lo), g.clamp_min(hi)
            counts = low + (torch.rand(B, 1, generator=generator) * (high - low + 1)).long()
            ranks = torch.where(given, -1.0, torch.rand(B, L, generator=generator))  # givens rank first
        return ranks.argsort(1).argsort(1) < counts  # a random order per row

    def loss(self, model, x: torch.Tensor, generator: torch.Generator | None = None,
             given: torch.Tensor | None = None):
        B, L = x.shape
        t = self.levels.sample(B, generator).to(x.device)  # [B, L - prefix]
        t = torch.cat([torch.zeros(B, self.prefix, device=x.device), t], 1) if self.prefix else t
        clean = self.clean_positions(B, L, generator, given)
        if clean is not None:  # conditioning positions: level 0, never corrupted, no loss
            clean = clean.to(x.device)
            t = torch.where(clean, 0.0, t)
        c = self.noise.corrupt(x, t, generator)
        if clean is not None:
            c.z, c.masked, c.replaced = torch.where(clean, x, c.z), c.masked & ~clean, c.replaced & ~clean
        logits, _ = denoise(model, c.z, t, x)
        nll = token_nll(logits, x)  # once per step: the loss and the logged statistics share it
        if clean is None:
            loss = self.noise.token_loss(logits, x, c, t, nll=nll).sum() / (B * L)
        else:  # loss weights at a finite level (a level-0 weight may be inf: inf * 0 = NaN gradients)
            per_token = self.noise.token_loss(logits, x, c, t.clamp_min(self.t_min), nll=nll)
            loss = torch.where(clean, 0.0, per_token).sum() / (~clean).sum().clamp_min(1)
        with torch.no_grad():
            nll = nll.detach()
            masked = c.masked.float().sum().clamp_min(1)
            stats = {"masked_frac": float(c.masked.float().mean()),
                     "masked_nll": float((nll * c.masked).sum() / masked)}
        return loss, stats


@OBJECTIVES.register("causal")
class CausalObjective:
    """Next-token cross-entropy of the causal reference model; windows of seq_len + 1 tokens. With a
    `given` mask (a seq2seq prefix LM, SPEC §11.7) only the tokens after it are scored."""

    def __init__(self, cfg: RunConfig):
        self.example_len = cfg.data.seq_len + 1

    def loss(self, model, x: torch.Tensor, generator: torch.Generator | None = None,
             given: torch.Tensor | None = None):
        logits, _ = model(x[:, :-1])
        nll = token_nll(logits, x[:, 1:])
        if given is None:  # a causal model conditions on everything to its left anyway
            return nll.mean(), {}
        scored = ~given[:, 1:].to(x.device)
        return (nll * scored).sum() / scored.sum().clamp_min(1), {}


STREAMS = (2, 4, 8, 16)  # strided orders in the ARMD training mix: S parallel streams


def strided_blocks(L: int, streams: int) -> torch.Tensor:
    """ARMD block ids of strided generation (SPEC §5.3): stream s owns [s m, (s + 1) m), m = L / S;
    step j reveals {s m + j - 1}: beta(i) = i mod m + 1. streams = 1 is the identity order (AR). [L]"""
    return torch.arange(L) % (L // streams) + 1


def armd_blocks(B: int, L: int, generator: torch.Generator | None, rho: float = 0.5) -> torch.Tensor:
    """Per row, the block ids of one training order (SPEC §5.3 Reading): identity (AR, K = L) w.p.
    1 - rho, a uniformly random permutation (K = L) w.p. rho / 2, a strided order with S streams (S
    drawn from STREAMS dividing L) w.p. rho / 2. [B, L] float"""
    kinds = torch.rand(B, generator=generator)
    streams = [s for s in STREAMS if L % s == 0] or [1]
    rows = []
    for u in kinds.tolist():
        if u < 1.0 - rho:
            rows.append(strided_blocks(L, 1))
        elif u < 1.0 - rho / 2:
            perm = torch.randperm(L, generator=generator)
            rows.append(torch.empty(L, dtype=torch.long).index_put_((perm,), torch.arange(1, L + 1)))
        else:
            pick = int(torch.randint(len(streams), (1,), generator=generator))
            rows.append(strided_blocks(L, streams[pick]))
    return torch.stack(rows).float()


@OBJECTIVES.register("armd")
class ArmdObjective:
    """ARMD (SPEC §5.3): sum_i -log p(x_i | x_{beta < beta_i}) / (B L) in one pass, the exact NLL of
    the K-step parallel model of each row's order (armd_blocks). rho, the share of non-identity
    orders, is 0.5, or with train.armd_rho_ramp = f ramps linearly 0 -> 0.5 over the first f of
    training (the SPEC's progressive schedule: f = 0.5), read from `progress`, which the training
    loop sets (the learning rate's clock: steps, or wall time under a time budget); in eval mode
    (validation) rho is 0.5."""

    progress = 1.0  # share of training done, in [0, 1]

    def __init__(self, cfg: RunConfig):
        self.example_len = cfg.data.seq_len
        self.ramp = cfg.train.armd_rho_ramp

    @property
    def rho(self) -> float:
        return 0.5 * min(1.0, self.progress / self.ramp) if self.ramp else 0.5

    def loss(self, model, x: torch.Tensor, generator: torch.Generator | None = None,
             given: torch.Tensor | None = None):
        rho = self.rho if model.training else 0.5  # validation scores the final mix at every step
        beta = armd_blocks(x.shape[0], x.shape[1], generator, rho).to(x.device)
        logits, _ = model(x, beta)
        return token_nll(logits, x).mean(), {}


def make_objective(cfg: RunConfig) -> DiffusionObjective | CausalObjective | ArmdObjective:
    """The objective named by cfg.train.objective (OBJECTIVES)."""
    return OBJECTIVES[cfg.train.objective](cfg)
