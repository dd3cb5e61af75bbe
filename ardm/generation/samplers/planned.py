"""Order-agnostic generation that follows a budget plan (Hoogeboom et al.; SPEC §4.3).

A random order per row; step k reveals the variables ranked t_{k-1}..t_k - 1 of that order, all
from the same context. The boundaries t_k come from the planner's dynamic program on loss
components measured by `ardm plan --save FILE` (`plan=FILE`), or are equal steps without one. This
is the generative twin of `ardm.generation.planner.planned_nll` and of `ardm compress --plan`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ardm.generation.planner import load_loss_components, step_boundaries
from ardm.generation.samplers.base import Sampler, StepState, WriteSet, top_n_mask


@dataclass
class PlannedOptions:
    plan: str = ""  # loss components from `ardm plan --save FILE`; "" = K equal steps


class PlannedSampler(Sampler):
    """Reveals MASKs in a random order, t_k - t_{k-1} of them at step k (the DP plan for this row's
    number of MASKs and K steps, or equal steps); revealed tokens are settled. Levels: the row's
    share of MASKs, as in training and in `ardm compress`. A row whose plan has fewer than K steps
    (K > its MASKs) finishes early."""

    name = "planned"
    Options = PlannedOptions

    def __init__(self, options: PlannedOptions | None = None, **kwargs):
        super().__init__(options, **kwargs)
        self.losses = load_loss_components(self.options.plan) if self.options.plan else None

    def init(self, s: StepState) -> dict:
        free = s.masked & s.target
        counts = torch.zeros(s.x.shape[0], s.K, dtype=torch.long)
        for b, m in enumerate(free.sum(1).tolist()):
            bounds = step_boundaries(m, s.K, self.losses) if m else [0]
            sizes = torch.tensor(bounds).diff()
            counts[b, : len(sizes)] = sizes
        return {"counts": counts, "priority": torch.where(free, s.uniform(), float("-inf"))}

    def levels(self, s: StepState) -> torch.Tensor:
        share = s.masked[:, s.prompt_len:].float().mean(1, keepdim=True)
        return share.expand(s.x.shape).contiguous()

    def step(self, s: StepState) -> WriteSet:
        priority = torch.where(s.masked, s.aux["priority"], float("-inf"))
        reveal = top_n_mask(priority, s.aux["counts"][:, s.k - 1])
        return WriteSet(reveal, s.sample(), settle=reveal, done=~(s.masked & ~reveal).any(1))
