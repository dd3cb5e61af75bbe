"""Hyperschedules: the noise level of every position at every sampler step (SPEC §3).

A hyperschedule is a matrix T [K + 1, n] with T[0] = 1 (all noise), T[K] = 0 (clean) and columns
non-increasing in k. Sampler step k moves token i from T[k-1, i] to T[k, i]. All functions here
are pure; `TrainingLevels` draws per-token training noise levels from one family.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from ardm.core.registry import Registry

if TYPE_CHECKING:
    from ardm.core.config import ScheduleConfig


def flat(n: int, steps: int) -> torch.Tensor:
    """Standard diffusion, every position at the same level: T[k, i] = 1 - k/K (SPEC §3.1)."""
    k = torch.arange(steps + 1, dtype=torch.float64)[:, None]
    return (1.0 - k / steps).expand(steps + 1, n).clone()


def quenched_ar(n: int) -> torch.Tensor:
    """AR as a diffusion: K = n, T[k, i] = [i >= k]; token i is clean from step i + 1 (SPEC §3.2)."""
    k = torch.arange(n + 1)[:, None]
    i = torch.arange(n)[None, :]
    return (i >= k).double()


def ar_diffusion_level(n: int, tau: torch.Tensor, td: int) -> torch.Tensor:
    """AR-Diffusion token levels f(n, tau)/T_d for sentence times tau [M] -> [M, n] (SPEC §3.3).

    Start point (n_s, t_s) = (clip(N - tau, 0, N), clip(tau - N, 0, T_d)); anchor (n_e, t_e) = (2N, T_d);
    positions are 1..N. microsoft/ProphetNet AR-diffusion `XYUniformSampler` (end_point_scale = 2).
    """
    N = n
    tau = tau.double()[:, None]
    pos = torch.arange(1, N + 1, dtype=torch.float64)[None, :]
    n_s = (N - tau).clamp(0, N)
    t_s = (tau - N).clamp(0, td)
    n_e, t_e = 2.0 * N, float(td)
    f = ((t_e - t_s) / (n_e - n_s) * (pos - n_s) + t_s).clamp(0, td)
    return f / td


def ar_diffusion(n: int, steps: int, td: int | None = None) -> torch.Tensor:
    """AR-Diffusion schedule with skipping: row k = f(., tau_k)/T_d, tau_k = (N + T_d)(1 - k/K)."""
    td = td or n
    tau = (n + td) * (1.0 - torch.arange(steps + 1, dtype=torch.float64) / steps)
    return ar_diffusion_level(n, tau, td)


def block(n: int, width: int, steps_per_block: int) -> torch.Tensor:
    """Block diffusion (BD3-LM; SPEC §3.4): blocks of `width` denoised one after another, S steps each.

    T[k, i] = 0 if b(i) < c ; 1 - j/S if b(i) = c ; 1 if b(i) > c, with c = (k-1) // S, j = k - cS.
    """
    S = steps_per_block
    n_blocks = math.ceil(n / width)
    K = S * n_blocks
    out = torch.ones(K + 1, n, dtype=torch.float64)
    b = torch.arange(n) // width
    for k in range(1, K + 1):
        c, j = (k - 1) // S, k - ((k - 1) // S) * S
        out[k] = torch.where(b < c, 0.0, torch.where(b == c, 1.0 - j / S, 1.0))
    return out


def sliding_annealing(n: int, window: int, levels: int, eps: float = 1e-3) -> torch.Tensor:
    """HDLM sliding annealing (SPEC §3.5): a window of w active tokens slides right one per step.

    main[j] = round(j (L - 1)/(w - 1)); level[k, i] = 0 if i < k - w, main[i - k + w] inside the
    window, L if i >= k. Level 0 -> t = 0 (settled), L -> t = 1 (worthless), otherwise
    clip(level/(L - 1), eps, 1 - eps). Needs L >= w; K = n + w - 1 steps.
    """
    w, L = window, levels
    if L < w:
        raise ValueError(f"sliding annealing needs levels ({L}) >= window ({w})")
    main = [L - 1] if w == 1 else [round(j * (L - 1) / (w - 1)) for j in range(w)]
    K = n + w - 1
    lev = torch.full((K + 1, n), float(L), dtype=torch.float64)
    for k in range(K + 1):
        for i in range(n):
            if i < k - w:
                lev[k, i] = 0
            elif i <= k - 1:
                lev[k, i] = main[i - k + w]
    t = (lev / max(L - 1, 1)).clamp(eps, 1 - eps)
    t = torch.where(lev == 0, 0.0, torch.where(lev == L, 1.0, t))
    return t


# family name -> the training hyperschedule of a `schedule` config section for length n
SCHEDULES: Registry[Callable[[ScheduleConfig, int], torch.Tensor]] = Registry("schedule.family")
SCHEDULES.add("flat", lambda cfg, n: flat(n, cfg.steps))
SCHEDULES.add("ar_diffusion", lambda cfg, n: ar_diffusion(n, n + (cfg.ar_diffusion_td or n),
                                                          cfg.ar_diffusion_td or n))  # every tau, §3.3
SCHEDULES.add("block", lambda cfg, n: block(n, cfg.block_width, cfg.steps))
SCHEDULES.add("quenched_ar", lambda cfg, n: quenched_ar(n))
SCHEDULES.add("sliding", lambda cfg, n: sliding_annealing(n, cfg.window, cfg.levels))


def build(cfg: ScheduleConfig, n: int) -> torch.Tensor:
    """The hyperschedule matrix of a config's family for sequences of length n."""
    return SCHEDULES[cfg.family](cfg, n)


class TrainingLevels:
    """Draws per-token training noise levels t [B, n] from a hyperschedule (SPEC §3, training).

    Step k ~ U{1..K} is drawn with low-discrepancy (antithetic) uniforms u_b = (u + b)/B mod 1, and
    each token's level is interpolated between rows k and k-1 by v = 1 - frac(u_b K). For the flat
    family this is exactly MDLM's stratified t = 1 - u_b; settled positions (t = 0) stay clean.
    Continuous levels are then mapped to [t_min, 1] so no 1/t weight explodes.
    """

    def __init__(self, cfg: ScheduleConfig, n: int, t_min: float):
        self.table = build(cfg, n).float()  # [K + 1, n]
        self.steps = self.table.shape[0] - 1
        self.t_min = t_min

    def sample(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        u = (torch.rand(1, generator=generator) + torch.arange(batch) / batch) % 1.0
        uk = u * self.steps
        k = uk.floor().long().clamp(max=self.steps - 1) + 1  # 1..K
        v = (1.0 - (uk - uk.floor()))[:, None]
        t = self.table[k] + v * (self.table[k - 1] - self.table[k])
        return torch.where(t > 0, self.t_min + (1.0 - self.t_min) * t, torch.zeros_like(t))
