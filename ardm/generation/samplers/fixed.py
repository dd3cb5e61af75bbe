"""Fixed schedule: AR-Diffusion position-only schedule with skipping (SPEC §6.2 with §3.3)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ardm.core.schedules import ar_diffusion
from ardm.errors import ArdmError
from ardm.generation.samplers.base import Sampler, StepState, WriteSet, reveal_probability


@dataclass
class FixedOptions:
    td: int = 0  # AR-Diffusion T_d (0: the target length n, as in training with ar_diffusion_td = 0)
    eta: float = 0.0  # hybrid models: resample a visible, not yet matured token w.p. eta * s/t

    def __post_init__(self) -> None:
        if self.td < 0:
            raise ArdmError(f"fixed: td must be >= 0 (0 = target length), got {self.td}")
        if not 0.0 <= self.eta <= 1.0:
            raise ArdmError(f"fixed: eta must be in [0, 1], got {self.eta}")


class FixedScheduleSampler(Sampler):
    """Row k of the AR-Diffusion hyperschedule T = ar_diffusion(n, K, T_d) gives every target position
    its own level; step k moves position i from t = T[k-1, i] to s = T[k, i]. A MASK is revealed
    w.p. (t - s)/t (1 if s = 0) with a draw from q. A position whose level reaches 0 is matured:
    settled, never rewritten. Reading (SPEC §6.2 MAY): with eta > 0, visible tokens whose own level
    is still > 0 are resampled ACS-style w.p. eta s/t. Any K >= 1 (tau is continuous, so skipping
    to any K works; left positions mature first)."""

    name = "fixed"
    Options = FixedOptions

    def init(self, s: StepState) -> dict:
        table = ar_diffusion(s.n, s.K, self.options.td or s.n).float().to(s.x.device)  # [K + 1, n]
        return {"table": table}

    def _row(self, s: StepState, k: int) -> torch.Tensor:
        t = torch.zeros(s.x.shape, device=s.x.device)
        t[:, s.prompt_len:] = s.aux["table"][k]
        return t

    def levels(self, s: StepState) -> torch.Tensor:
        return self._row(s, s.k - 1)

    def step(self, s: StepState) -> WriteSet:
        t, t_next = self._row(s, s.k - 1), self._row(s, s.k)
        u = s.uniform()
        new = s.sample()
        reveal = s.masked & (u < reveal_probability(t, t_next))
        resample = torch.zeros_like(reveal)
        if self.options.eta > 0:
            p = self.options.eta * t_next.double() / t.double().clamp_min(1e-12)
            resample = s.committed & (t_next > 0) & (u < p)
        matured = s.target & (t_next <= 0)
        return WriteSet(reveal | resample, new, settle=matured)
