"""Count-normalised absorbing weights: the same objective as MDLM's 1/t, with less variance."""

from __future__ import annotations

import torch

from ardm.core.config import NoiseConfig
from ardm.core.noise import AbsorbingNoise, CountNormalizedAbsorbing, make_noise


def _per_row_losses(noise, L=64, rows=4000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(rows, L, dtype=torch.long)
    t = ((torch.rand(1, generator=gen) + torch.arange(rows) / rows) % 1.0)[:, None].expand(rows, L)
    t = 1e-3 + (1 - 1e-3) * t
    c = noise.corrupt(x, t, gen)
    # a "model" whose CE at a masked position falls with the share of visible context
    visible = 1.0 - c.masked.float().mean(1, keepdim=True)
    ce = (2.0 - visible).expand(rows, L)
    return (noise.token_weights(c, t) * ce).sum(1) / L


def test_count_weights_estimate_the_same_objective_with_lower_variance():
    exact, count = _per_row_losses(AbsorbingNoise(5)), _per_row_losses(CountNormalizedAbsorbing(5))
    L = 64
    # same integral up to the factor L / (L + 1) (see ardm/loss_weights.py), within MC error
    se = (exact.var() / len(exact)).sqrt()
    assert abs(count.mean() * (L + 1) / L - exact.mean()) < 4 * se
    assert count.var() < 0.5 * exact.var()


def test_the_config_selects_the_weights():
    assert type(make_noise(NoiseConfig(kind="absorbing"), 5)) is AbsorbingNoise
    assert type(make_noise(NoiseConfig(kind="absorbing", mask_weight="count"), 5)) is CountNormalizedAbsorbing
