"""ardm.generation.gate.probability: sampling and gate training compute the overwrite probability
with the same function, so a gate is trained on exactly the p it is deployed with."""

from __future__ import annotations

import dataclasses

import torch

from ardm.generation.gate.objective import GateStep, gate_probabilities
from ardm.generation.gate.options import GateOptions
from ardm.generation.gate.sampler import GateSampler
from ardm.generation.gate.scoring import MLPGate, SignalStats
from ardm.generation.samplers.base import StepState


def test_training_and_sampling_see_the_same_probability():
    torch.manual_seed(0)
    B, L, V, d, K, k = 2, 7, 5, 8, 8, 3
    x = torch.randint(0, V, (B, L))
    x[:, 4] = V  # a MASK
    logits, prev, hidden = torch.randn(B, L, V), torch.randn(B, L, V), torch.randn(B, L, d)
    scorer, stats = MLPGate(d_model=d), SignalStats((0.5, 1.0, 0.0), (2.0, 1.0, 3.0))
    opts = GateOptions(alpha=2.0, delta=0.3)
    sampler = GateSampler(opts, scorer=scorer, stats=stats)
    s = StepState.begin(x, k=k, K=K, mask_id=V, generators=[torch.Generator()] * B)
    s = dataclasses.replace(s, logits=logits, prev_logits=prev, hidden=hidden)
    deployed = sampler.probability(s).p
    step = GateStep(x, logits, hidden, prev, torch.full((B,), k))
    trained, prior, _ = gate_probabilities(scorer, stats, step, K, V, opts)
    assert torch.allclose(trained, deployed.clamp(1e-6, 1 - 1e-6))
    assert prior.shape == (B, L) and 0 < float(prior.min()) < float(prior.max()) < 1
