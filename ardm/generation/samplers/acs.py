"""HDLM Adaptive Correction Sampler (SPEC §6.6; `ServiceNow/hdlm:hdlm/epsilon_hybrid/sample.py`
`full_diff`, alg "acs") for hybrid-noise denoisers, whose outputs at visible positions are
calibrated posteriors that can correct committed tokens (SPEC §2.6)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ardm.errors import ArdmError
from ardm.generation.samplers.base import Sampler, StepState, WriteSet


@dataclass
class ACSOptions:
    eta: float = 0.015  # correction rate (hdlm sample.py default; its CLI default is 0.01)
    eps: float = 1e-5  # last time of the grid linspace(1, eps, K + 1)

    def __post_init__(self) -> None:
        if not 0.0 <= self.eta <= 1.0:
            raise ArdmError(f"acs: eta must be in [0, 1], got {self.eta}")
        if not 0.0 <= self.eps < 1.0:
            raise ArdmError(f"acs: eps must be in [0, 1), got {self.eps}")


class ACSSampler(Sampler):
    """Times t_j = linspace(1, eps, K + 1); step t -> s has p_transfer = 1 - s/t (1 at the last
    step). MASKs are revealed w.p. p_transfer with a draw from q; visible non-prompt tokens are
    resampled from q w.p. eta (1 - p_transfer) = eta s/t (a resample may pick the same token:
    selected, not effective). Needs an epsilon-hybrid or uniform-noise denoiser. Any K >= 1."""

    name = "acs"
    Options = ACSOptions
    noise_kinds = ("epsilon_hybrid", "uniform")

    def times(self, k: int, K: int) -> tuple[float, float]:
        eps = self.options.eps
        return 1.0 - (k - 1) * (1.0 - eps) / K, 1.0 - k * (1.0 - eps) / K

    def levels(self, s: StepState) -> torch.Tensor:
        return torch.full(s.x.shape, self.times(s.k, s.K)[0], device=s.x.device)

    def step(self, s: StepState) -> WriteSet:
        t, t_next = self.times(s.k, s.K)
        p_transfer = 1.0 if s.k == s.K else 1.0 - t_next / t
        u = s.uniform()
        reveal = s.masked & (u < p_transfer)
        correct = s.committed & (u < self.options.eta * (1.0 - p_transfer))
        return WriteSet(reveal | correct, s.sample())
