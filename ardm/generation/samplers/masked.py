"""Absorbing-noise samplers that only reveal MASKs and never change a committed token:
MDLM ancestral sampling (SPEC §6.3) and LLaDA low-confidence remasking (SPEC §6.4)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ardm.errors import ArdmError
from ardm.generation.samplers.base import (
    Sampler,
    StepState,
    WriteSet,
    linear_times,
    reveal_fraction,
    top_n_mask,
)


@dataclass
class MDLMOptions:
    eps: float = 0.0  # final time t_K = eps; 0 reveals every MASK at the last step (no fill pass)

    def __post_init__(self) -> None:
        if not 0.0 <= self.eps < 1.0:
            raise ArdmError(f"mdlm: eps must be in [0, 1), got {self.eps}")


class MDLMSampler(Sampler):
    """MDLM ancestral sampling (arXiv 2406.07524; `kuleshov-group/remdm:diffusion.py`): on the grid
    t_j = 1 - j(1 - eps)/K each MASK moves t -> s and is revealed w.p. (t - s)/t with a draw from q;
    committed tokens are copied. Any K >= 1."""

    name = "mdlm"
    Options = MDLMOptions

    def levels(self, s: StepState) -> torch.Tensor:
        t, _ = linear_times(s.k, s.K, self.options.eps)
        return torch.full(s.x.shape, t, device=s.x.device)

    def step(self, s: StepState) -> WriteSet:
        t, t_next = linear_times(s.k, s.K, self.options.eps)
        reveal = s.masked & (s.uniform() < reveal_fraction(t, t_next))
        return WriteSet(reveal, s.sample(), settle=reveal)


REMASKING = ("low_confidence", "margin", "random")


def margin(probs: torch.Tensor) -> torch.Tensor:
    """Top-1 minus top-2 probability per position: the "top probability margin" order of Kim et al.
    (arXiv 2502.06768), which reveals first the positions whose answer is least contested."""
    top2 = probs.topk(2, dim=-1).values
    return top2[..., 0] - top2[..., 1]


@dataclass
class LLaDAOptions:
    block_length: int = 0  # semi-AR blocks over the target span; 0 = one block (plain LLaDA)
    remasking: str = "low_confidence"  # "low_confidence" | "margin" | "random"

    def __post_init__(self) -> None:
        if self.block_length < 0:
            raise ArdmError(f"llada: block_length must be >= 0 (0 = one block), got {self.block_length}")
        if self.remasking not in REMASKING:
            raise ArdmError(f"llada: remasking must be one of {REMASKING}, got {self.remasking!r}")


class LLaDASampler(Sampler):
    """LLaDA low-confidence remasking (arXiv 2502.09992; `ML-GSAI/LLaDA:generate.py`). The target is
    split in blocks; block b gets K_b = K/#blocks steps and, with M_b MASKs at its start, step j
    commits n_j = floor(M_b/K_b) + [j < M_b mod K_b] of its MASKs: those with the highest
    confidence q(x_hat) ("low_confidence"), the largest gap between q's two most likely tokens
    ("margin", Kim et al. 2025) or random priority ("random"), where x_hat is drawn
    with the run's temperature (0 = argmax). Committed tokens are never changed.
    Steps: K must be a multiple of #blocks and K_b at most the shortest block's length."""

    name = "llada"
    Options = LLaDAOptions

    def _block(self, n: int) -> int:
        return self.options.block_length or n

    def num_steps(self, n: int, steps: int) -> int:
        super().num_steps(n, steps)
        width = min(self._block(n), n)
        n_blocks = math.ceil(n / width)
        shortest = n - (n_blocks - 1) * width
        if steps % n_blocks:
            raise ArdmError(f"llada: steps ({steps}) must be a multiple of the number of blocks ({n_blocks})")
        if steps // n_blocks > shortest:
            raise ArdmError(f"llada: {steps // n_blocks} steps per block exceed the {shortest} positions of "
                            f"the shortest block (some steps would commit nothing); use steps <= "
                            f"{shortest * n_blocks}")
        return steps

    def init(self, s: StepState) -> dict:
        return {"counts": torch.zeros(s.x.shape[0], 0, dtype=torch.long)}

    def step(self, s: StepState) -> WriteSet:
        width = min(self._block(s.n), s.n)
        steps_per_block = s.K // math.ceil(s.n / width)
        b, j = (s.k - 1) // steps_per_block, (s.k - 1) % steps_per_block
        in_block = (s.position >= b * width) & (s.position < (b + 1) * width)  # [L]
        candidates = s.masked & in_block
        counts = s.aux["counts"]
        if j == 0:  # a new block: spread its MASKs over its steps, the remainder first
            m = candidates.sum(1)  # [B]
            counts = (m // steps_per_block)[:, None] + (torch.arange(steps_per_block, device=m.device)
                                                   < (m % steps_per_block)[:, None])
        x_hat = s.sample()
        if self.options.remasking == "random":
            conf = torch.where(candidates, s.uniform(), float("-inf"))
        else:  # q only where a reveal may happen
            q = s.probs(candidates)  # [N, V]
            conf = torch.full(candidates.shape, float("-inf"), dtype=torch.float64, device=q.device)
            low = self.options.remasking == "low_confidence"
            conf[candidates] = q.gather(-1, x_hat[candidates][:, None])[:, 0] if low else margin(q)
        reveal = top_n_mask(conf, counts[:, j])
        return WriteSet(reveal, x_hat, settle=reveal, aux={"counts": counts})
