"""ReMDM: MDLM with remasking of committed tokens (SPEC §6.5; arXiv 2503.00307,
`kuleshov-group/remdm:diffusion.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ardm.errors import ArdmError
from ardm.generation.samplers.base import Sampler, StepState, WriteSet

STRATEGIES = ("cap", "rescale", "conf", "loop")


def remask_cap(a_t: float, a_s: float) -> float:
    """sigma_max = min(1, (1 - alpha_s)/alpha_t): the largest remask probability of a visible token
    that still leaves the step's posterior a distribution (1 while nothing is visible, alpha_t = 0)."""
    return 1.0 if a_t <= 0 else min(1.0, (1.0 - a_s) / a_t)


@dataclass
class ReMDMOptions:
    strategy: str = "cap"  # "cap" | "rescale" | "conf" | "loop"
    eta: float = 0.02  # remasking strength (reference default, scripts/remdm-loop.sh)
    t_on: float = 0.55  # loop: the remasking phase is t in (t_off, t_on]
    t_off: float = 0.05
    alpha_on: float = 0.9  # loop: alpha held here during the remasking phase

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ArdmError(f"remdm: strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if not 0.0 <= self.eta <= 1.0:
            raise ArdmError(f"remdm: eta must be in [0, 1], got {self.eta}")
        if not 0.0 < self.t_off < self.t_on < 1.0:
            raise ArdmError(f"remdm: need 0 < t_off < t_on < 1, got t_off={self.t_off}, t_on={self.t_on}")
        if not 0.0 < self.alpha_on < 1.0:
            raise ArdmError(f"remdm: alpha_on must be in (0, 1), got {self.alpha_on}")


class ReMDMSampler(Sampler):
    """Per step t -> s (t = 1 - (k-1)/K) with remask probability sigma:
        visible i: z_s = MASK w.p. sigma_i, else kept;
        masked i:  revealed w.p. (alpha_s - (1 - sigma) alpha_t)/(1 - alpha_t), value ~ q.
    sigma_max = min(1, (1 - alpha_s)/alpha_t);  cap: sigma = min(eta, sigma_max);
    rescale: eta sigma_max;  conf: sigma_i = sigma_max softmax_i(psi) over visible i, psi_i = -q(x_i)
    recorded when x_i was revealed;  loop: alpha(t) = (1 - t) alpha_on/(1 - t_on) for t > t_on,
    alpha_on on [t_off, t_on] with sigma = eta (capped at sigma_max), 1 - t(1 - alpha_on)/t_off below
    t_off; no remasking outside (t_off, t_on]. Reading: "masked i" uses the masked-token formula with
    the visible token's sigma replaced by the step's scalar sigma (conf: its mean over visible
    positions), which keeps the expected number of MASKs what the schedule says. Any K >= 1."""

    name = "remdm"
    Options = ReMDMOptions

    def alpha(self, t: float) -> float:
        o = self.options
        if o.strategy != "loop":
            return 1.0 - t
        if t > o.t_on:
            return (1.0 - t) * o.alpha_on / (1.0 - o.t_on)
        if t >= o.t_off:
            return o.alpha_on
        return 1.0 - t * (1.0 - o.alpha_on) / o.t_off

    def init(self, s: StepState) -> dict:
        return {"psi": torch.zeros(s.x.shape, dtype=torch.float64, device=s.x.device)}

    def levels(self, s: StepState) -> torch.Tensor:
        # feed the model the mask rate the schedule implies: t_model = 1 - alpha(t)
        return torch.full(s.x.shape, 1.0 - self.alpha(1.0 - (s.k - 1) / s.K), device=s.x.device)

    def sigma(self, s: StepState, t: float, a_t: float, a_s: float) -> torch.Tensor:
        """Remask probability of each visible position this step. [B, L] float64"""
        o = self.options
        sigma_max = remask_cap(a_t, a_s)
        shape, dev = s.x.shape, s.x.device
        if o.strategy == "cap":
            return torch.full(shape, min(o.eta, sigma_max), dtype=torch.float64, device=dev)
        if o.strategy == "rescale":
            return torch.full(shape, o.eta * sigma_max, dtype=torch.float64, device=dev)
        if o.strategy == "loop":
            on = o.t_off < t <= o.t_on
            return torch.full(shape, min(o.eta, sigma_max) if on else 0.0, dtype=torch.float64, device=dev)
        visible = s.committed & ~s.settled
        psi = torch.where(visible, s.aux["psi"], float("-inf"))
        w = torch.where(visible.any(1, keepdim=True), psi.softmax(1), 0.0).nan_to_num(0.0)
        return sigma_max * w

    def step(self, s: StepState) -> WriteSet:
        t, t_next = 1.0 - (s.k - 1) / s.K, 1.0 - s.k / s.K
        a_t, a_s = self.alpha(t), self.alpha(t_next)
        sigma = self.sigma(s, t, a_t, a_s)
        visible = s.committed & ~s.settled
        n_vis = visible.sum(1, keepdim=True).clamp_min(1)
        sigma_bar = torch.where(visible, sigma, 0.0).sum(1, keepdim=True) / n_vis  # [B, 1]
        if s.k == s.K or a_t >= 1.0:
            p_reveal = torch.ones_like(sigma_bar)
        else:
            p_reveal = ((a_s - (1.0 - sigma_bar) * a_t) / (1.0 - a_t)).clamp(0.0, 1.0)
        u = s.uniform()
        new = s.sample()
        reveal = s.masked & s.target & (u < p_reveal)
        remask = visible & (u < sigma)
        values = torch.where(remask, torch.full_like(new, s.mask_id), new)
        q_new = s.probs().gather(-1, new[..., None])[..., 0]
        psi = torch.where(reveal, -q_new, s.aux["psi"])  # conf: confidence of the revealed token
        return WriteSet(reveal | remask, values, aux={"psi": psi})
