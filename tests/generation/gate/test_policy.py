"""The gate's long-horizon stage (ardm.generation.gate.policy): the recorded decisions' log-probability
is the one the sampler's coins used, the leave-one-out baseline, and a policy gradient that moves
the gate in the rewarded direction."""

from __future__ import annotations

import pytest
import torch

from ardm.errors import ArdmError
from ardm.generation.gate.policy import (
    PolicyConfig,
    RecordingGate,
    decision_log_prob,
    rloo_advantage,
    train_policy,
)
from ardm.generation.gate.scoring import LinearGate, NoGate
from ardm.generation.loop import generate
from tests.toy_models import contextual

PROMPT = torch.tensor([1, 2])


def brute_force_log_prob(decisions) -> torch.Tensor:
    """log P of the recorded coins from the probabilities the sampler compared them with."""
    total = torch.zeros(decisions[0].visible.shape[0], dtype=torch.float64)
    for d in decisions:
        q = d.used.double().clamp(1e-6, 1 - 1e-6)
        total += torch.where(d.visible, torch.where(d.picked, q.log(), torch.log1p(-q)), 0.0).sum(1)
    return total


@pytest.mark.parametrize("opts", [{"mode": "remdm", "eta": 0.3}, {"b0": -1.0}])
def test_decision_log_prob_is_the_log_prob_of_the_sampled_coins_with_gradients(opts):
    sampler = RecordingGate(scorer=LinearGate(b0=opts.pop("b0", -4.0)), prior=False, **opts)
    model = contextual(max_len=14)
    g = generate(model, sampler, length=14, steps=8, batch=3, prompt=PROMPT, seed=4)
    assert len(sampler.decisions) == 8 and sum(int(d.picked.sum()) for d in sampler.decisions) > 0
    assert sum(g.overwrites_selected) == sum(int(d.picked.sum()) for d in sampler.decisions)
    logp = decision_log_prob(sampler, sampler.decisions)
    assert torch.allclose(logp, brute_force_log_prob(sampler.decisions), rtol=1e-4, atol=1e-3)
    logp.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in sampler.scorer.parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in sampler.scorer.parameters())


def test_rloo_advantage_subtracts_the_other_rows_mean():
    r = torch.tensor([1.0, 2.0, 6.0], dtype=torch.float64)
    assert torch.allclose(rloo_advantage(r), torch.tensor([-3.0, -1.5, 4.5], dtype=torch.float64))
    assert abs(float(rloo_advantage(torch.randn(7, dtype=torch.float64)).sum())) < 1e-12
    with pytest.raises(ArdmError, match="at least 2"):
        rloo_advantage(torch.ones(1))


def test_rloo_advantage_by_group_compares_rollouts_of_the_same_prompt_only():
    r = torch.tensor([1.0, 3.0, 10.0, 10.0], dtype=torch.float64)
    assert torch.equal(rloo_advantage(r, group=2), torch.tensor([-2.0, 2.0, 0.0, 0.0], dtype=torch.float64))
    with pytest.raises(ArdmError, match="divide the batch"):
        rloo_advantage(r, group=3)
    with pytest.raises(ArdmError, match="group must be"):
        PolicyConfig(batch_size=8, group=3)


def test_the_policy_gradient_moves_the_gate_toward_the_reward():
    """Reward = -(overwrites of the row): REINFORCE must learn to overwrite less."""
    sampler = RecordingGate(scorer=LinearGate(b0=-1.0), prior=False)

    def fewer_overwrites(tokens):
        picked = sum(d.picked.sum(1).double() for d in sampler.decisions) if sampler.decisions else 0
        return {"reward": -torch.as_tensor(picked, dtype=torch.float64) * torch.ones(tokens.shape[0])}

    cfg = PolicyConfig(steps=25, batch_size=8, length=10, sampler_steps=6, lr=0.1, eval_interval=25,
                       val_batch=16)
    b0 = sampler.scorer.b0.item()
    out = train_policy(contextual(max_len=12), sampler, fewer_overwrites, cfg, PROMPT, progress=False)
    assert out["final"]["decisions_picked_per_sample"] < 0.5 * out["initial"]["decisions_picked_per_sample"]
    assert sampler.scorer.b0.item() < b0


def test_the_stage_refuses_decisions_it_cannot_differentiate():
    with pytest.raises(ArdmError, match="Bernoulli decisions"):
        train_policy(contextual(max_len=12), RecordingGate(mask="threshold"), lambda t: {}, PolicyConfig(),
                     PROMPT, progress=False)
    with pytest.raises(ArdmError, match="no parameters"):
        train_policy(contextual(max_len=12), RecordingGate(scorer=NoGate()), lambda t: {}, PolicyConfig(),
                     PROMPT, progress=False)
    with pytest.raises(ArdmError, match="batch-size must be >= 2"):
        PolicyConfig(batch_size=1)
