"""ardm.generation.samplers.masked: mdlm's scalar reveal probability and llada's candidate-only confidence
(the session-15 speed-ups) compute what the plain formulas compute."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ardm.generation.registry import make_sampler
from ardm.generation.samplers.base import (
    StepState,
    TokenSampling,
    linear_times,
    reveal_fraction,
    reveal_probability,
    top_n_mask,
)
from ardm.generation.samplers.masked import margin


def test_reveal_fraction_is_reveal_probability_in_floats():
    """mdlm's scalar form gives the very same double for every step of a K-step grid (and the edges)."""
    pairs = [linear_times(k, K, eps) for K in (1, 3, 7, 64) for k in range(1, K + 1) for eps in (0.0, 0.01)]
    for t, s in pairs + [(0.0, 0.0), (0.5, 0.5), (0.3, 0.7)]:
        assert reveal_fraction(t, s) == reveal_probability(t, s).item()


@pytest.mark.parametrize("remasking", ["low_confidence", "margin"])
def test_llada_confidence_on_candidates_only_equals_the_full_softmax(remasking):
    """llada computes q in float64 only where it may reveal; its choice is the one a float64 softmax
    over every position gives (random logits, a partly revealed block, argmax and sampled x_hat)."""
    torch.manual_seed(0)
    B, L, V = 3, 10, 7
    x = torch.full((B, L), V)
    x[:, :2] = 1
    x[0, 5] = x[2, 3] = 4  # some already revealed
    logits = torch.randn(B, L, V) * 3
    for temperature in (0.0, 0.8):
        sampler = make_sampler("llada", remasking=remasking)
        gens = [torch.Generator().manual_seed(b) for b in range(B)]
        s = StepState.begin(x, k=1, K=4, mask_id=V, generators=gens, prompt_len=2,
                            sampling=TokenSampling(temperature))
        s = replace(s, aux=sampler.init(s), logits=logits)
        got = sampler.step(s)
        q = logits.double().softmax(-1)  # x_hat is what it wrote: got.values
        conf = q.gather(-1, got.values[..., None])[..., 0] if remasking == "low_confidence" else margin(q)
        candidates = x == V
        m = candidates.sum(1)
        want = top_n_mask(torch.where(candidates, conf, float("-inf")), m // 4 + (m % 4 > 0))
        assert torch.equal(got.positions, want)
