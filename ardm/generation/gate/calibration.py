"""Normalisation statistics of the gate's signals from a calibration run (SPEC §6.8).

A gate without trained statistics standardises its signals with these: `num` sequences of the gate
sampler with u = 0 (prior only). It runs the generation loop, so it lives beside the sampler rather
than in it (the loop imports the samplers).
"""

from __future__ import annotations

import math

import torch

from ardm.core.denoiser import Denoiser
from ardm.errors import ArdmError
from ardm.generation.gate.sampler import GateSampler
from ardm.generation.gate.scoring import SignalStats
from ardm.generation.loop import generate


def calibrate(model: Denoiser, *, length: int, steps: int, num: int = 256, batch: int = 32, seed: int = 0,
              prompt: torch.Tensor | None = None, given: torch.Tensor | None = None,
              clean_prompt: bool = False, **options) -> SignalStats:
    """Normalisation statistics from a calibration run (SPEC §6.8): `num` sequences of the gate
    sampler with u = 0 (prior only), mean and variance of the raw signals over eligible visible
    positions at every step. given: [num, L] fixed cells per sequence (e.g. Sudoku givens); prompt
    [P] or [num, P]; clean_prompt as in `generate`."""
    total, sq, count = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0.0
    sampler = GateSampler(**{**options, "gate": "none", "collect_stats": True})
    for start in range(0, num, batch):
        rows = min(batch, num - start)
        p = prompt[start:start + rows] if prompt is not None and prompt.dim() == 2 else prompt
        g = generate(model, sampler, length=length, steps=steps, batch=rows, prompt=p, seed=seed + start,
                     given=None if given is None else given[start:start + rows], clean_prompt=clean_prompt)
        total += g.aux["sig_sum"].sum(0)
        sq += g.aux["sig_sq"].sum(0)
        count += float(g.aux["sig_n"].sum())
    if count == 0:
        raise ArdmError("calibration saw no visible positions (is steps >= 2?)")
    mean = total / count
    var = (sq / count - mean ** 2).clamp_min(0.0)
    if math.isnan(float(var.sum())):
        raise ArdmError("calibration produced NaN statistics")
    return SignalStats(tuple(mean.tolist()), tuple(var.tolist()))
