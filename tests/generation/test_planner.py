"""The budget planner's DP (SPEC §4.3) against brute force, its stated checks, and the estimator."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from ardm.errors import ArdmError
from ardm.generation.planner import (
    equal_boundaries,
    estimate_loss_components,
    load_loss_components,
    monotone_components,
    plan_budget,
    resample_components,
    save_loss_components,
    step_boundaries,
)


def brute_force(losses, K):
    """Minimum over every boundary sequence 0 = t_0 <= ... <= t_K = D of sum (t_k - t_{k-1}) l_{t_{k-1}}."""
    D = len(losses)
    best = math.inf
    for inner in itertools.combinations_with_replacement(range(D + 1), K - 1):
        b = (0, *inner, D)
        best = min(best, sum((b[i + 1] - b[i]) * losses[b[i]] for i in range(K) if b[i + 1] > b[i]))
    return best


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("D,K", [(1, 1), (3, 2), (5, 2), (5, 3), (6, 4), (7, 7), (4, 6)])
def test_dp_matches_brute_force(seed, D, K):
    rng = np.random.default_rng(seed)
    losses = np.sort(rng.uniform(0.1, 3.0, D))[::-1]  # losses usually fall as context grows
    if seed % 2:
        losses = rng.uniform(0.1, 3.0, D)  # and the DP must also be right when they do not
    plan = plan_budget(losses, K)
    assert plan.expected_nll == pytest.approx(brute_force(losses, K))
    b = plan.boundaries
    assert b[0] == 0 and b[-1] == D and len(b) == K + 1 and all(x <= y for x, y in zip(b, b[1:]))
    realised = sum(n * losses[s] for s, n in zip(b, plan.step_sizes) if n)
    assert realised == pytest.approx(plan.expected_nll)  # the returned policy achieves its cost


def test_one_step_per_token_costs_the_sum_and_constant_losses_make_every_policy_equal():
    losses = np.array([2.0, 1.5, 1.2, 1.0, 0.9])
    assert plan_budget(losses, 5).expected_nll == pytest.approx(losses.sum())
    assert plan_budget(losses, 5).step_sizes == [1] * 5
    flat = np.full(6, 0.7)
    assert {round(plan_budget(flat, k).expected_nll, 9) for k in range(1, 7)} == {round(6 * 0.7, 9)}


def test_cost_is_non_increasing_in_the_budget():
    losses = np.linspace(3.0, 0.5, 40)
    costs = [plan_budget(losses, k).expected_nll for k in range(1, 41)]
    assert all(a >= b - 1e-12 for a, b in zip(costs, costs[1:]))
    assert costs[0] == pytest.approx(40 * 3.0)  # one step: everything from no context


def test_bad_inputs():
    with pytest.raises(ArdmError, match="budget"):
        plan_budget([1.0, 2.0], 0)
    with pytest.raises(ArdmError, match="finite"):
        plan_budget([1.0, float("nan")], 2)
    with pytest.raises(ArdmError, match="at least one"):
        plan_budget([], 2)


def test_step_boundaries_equal_or_planned_rise_from_zero_to_n():
    assert equal_boundaries(10, 4) == [0, 2, 5, 8, 10]
    assert equal_boundaries(3, 8) == [0, 1, 2, 3]  # never more steps than variables
    losses = np.linspace(4.0, 1.0, 32)
    for n, K in [(32, 5), (32, 32), (7, 3), (50, 6), (1, 4)]:
        b = step_boundaries(n, K, losses)
        assert b[0] == 0 and b[-1] == n and all(x < y for x, y in zip(b, b[1:])) and len(b) - 1 <= K
    # at the training length the DP plan itself (its empty steps dropped)
    plan = plan_budget(losses, 5)
    assert step_boundaries(32, 5, losses) == sorted(set(plan.boundaries))


def test_monotone_fit_is_non_increasing_keeps_the_mean_and_leaves_monotone_input_alone():
    rng = np.random.default_rng(0)
    noisy = np.linspace(3.0, 1.0, 64) + rng.normal(0, 0.3, 64)
    fit = monotone_components(noisy)
    assert len(fit) == 64 and np.all(np.diff(fit) <= 1e-12)
    assert math.isclose(fit.mean(), noisy.mean(), rel_tol=1e-9)  # PAV preserves block sums
    clean = np.linspace(3.0, 1.0, 8)
    assert np.array_equal(monotone_components(clean), clean)
    assert monotone_components([1.0, 2.0]).tolist() == [1.5, 1.5]


def test_plateaus_do_not_leave_budget_unused():
    flat = [2.0] * 8 + [1.0] * 8  # ties everywhere within a plateau
    for K in (4, 8, 16):
        plan = plan_budget(flat, K)
        assert sum(1 for n in plan.step_sizes if n) == K
        assert math.isclose(plan.expected_nll, sum(n * 2.0 if b < 8 else n * 1.0 for b, n in
                                                      zip(plan.boundaries, plan.step_sizes)))


def test_resampled_components_keep_their_shape():
    losses = np.linspace(4.0, 1.0, 32)
    assert np.array_equal(resample_components(losses, 32), losses)
    short = resample_components(losses, 8)
    assert len(short) == 8 and short[0] == 4.0 and np.all(np.diff(short) < 0)


def test_loss_component_files_round_trip_and_bad_files_are_named(tmp_path):
    save_loss_components(tmp_path / "p.json", [1.5, 1.0], checkpoint="x")
    assert load_loss_components(tmp_path / "p.json").tolist() == [1.5, 1.0]
    (tmp_path / "bad.json").write_text('{"plans": []}')
    with pytest.raises(ArdmError, match="not a loss-component file"):
        load_loss_components(tmp_path / "bad.json")
    (tmp_path / "nan.json").write_text('{"loss_components_nats": [1.0, NaN]}')
    with pytest.raises(ArdmError, match="finite"):
        load_loss_components(tmp_path / "nan.json")
    with pytest.raises(ArdmError, match="not found"):
        load_loss_components(tmp_path / "none.json")


class KnownConditionals(torch.nn.Module):
    """Predicts p(x_i) = softmax(theta) at every MASK, and knows visible tokens exactly."""

    def __init__(self, V, theta):
        super().__init__()
        from ardm.core.config import ModelConfig

        self.cfg = ModelConfig(vocab_size=V, n_layer=1, n_head=1, d_model=8, max_len=64)
        self.theta = torch.nn.Parameter(theta)

    def forward(self, tokens, t=None, pad_mask=None):
        B, L = tokens.shape
        return self.theta.expand(B, L, -1).clone(), torch.zeros(B, L, 1)


def test_estimated_components_of_an_iid_model_equal_the_cross_entropy():
    V, D = 4, 6
    theta = torch.tensor([1.0, 0.0, -1.0, 0.5])
    model = KnownConditionals(V, theta)
    logp = theta.log_softmax(0)
    windows = torch.randint(0, V, (30, D), generator=torch.Generator().manual_seed(0))
    losses = estimate_loss_components(model, windows, repeats=2, batch_size=50)
    # i.i.d. model: every position costs -log p(x_i) whatever is known, so l_t is the average over
    # the unknown positions; with random orders it is the window-average cross-entropy in expectation
    want = float(-logp[windows].mean())
    assert losses.shape == (D,)
    assert np.allclose(losses, want, atol=0.25)
    assert losses[0] == pytest.approx(want, abs=1e-6)  # t = 0: every position unknown, exact


def test_cli_plan_prints_one_line_per_budget_and_refuses_bad_budgets(tmp_path, capsys):
    from ardm.cli import main
    from ardm.training.loop import train
    from tests.conftest import tiny_config

    train(tiny_config(steps=4), tmp_path / "r", progress=False)
    code = main(["plan", "--checkpoint", str(tmp_path / "r"), "--budget", "1,4,16", "--windows", "2"])
    out = capsys.readouterr().out
    assert code == 0
    lines = [ln for ln in out.splitlines() if ln.startswith("K = ")]
    assert [int(ln.split()[2][:-1]) for ln in lines] == [1, 4, 16]
    bits = [float(ln.split("predicted ")[1].split()[0]) for ln in lines]
    assert bits[0] >= bits[1] >= bits[2]  # more steps never cost more (same l_t)
    assert main(["plan", "--checkpoint", str(tmp_path / "r"), "--budget", "99"]) == 2
    assert "exceeds the 16 tokens" in capsys.readouterr().err
    assert main(["plan", "--checkpoint", str(tmp_path / "r"), "--budget", "x"]) == 2


def test_planned_nll_one_step_per_token_is_the_exact_order_nll_and_expectation_matches_plan():
    """With D one-token steps the plan's NLL is the exact NLL of a random order (SPEC §4.2); with
    any plan, its expectation over orders is what the planner's C[K, D] predicts from the l_t."""
    from ardm.generation.planner import planned_nll
    from tests.toy_models import contextual

    torch.manual_seed(0)
    model = contextual(vocab=5, max_len=6)
    windows = torch.randint(0, 5, (1, 6)).repeat(400, 1)  # one window, 400 random orders
    losses = estimate_loss_components(model, windows[:1], repeats=400, seed=1)
    for boundaries in ([0, 6], [0, 2, 6], [0, 1, 2, 3, 4, 5, 6]):
        realised = planned_nll(model, windows, boundaries, seed=2).mean().item()
        predicted = sum((b - a) * losses[a] for a, b in zip(boundaries, boundaries[1:]))
        assert realised == pytest.approx(predicted, rel=0.05)
    with pytest.raises(ArdmError, match="rise from 0"):
        planned_nll(model, windows, [0, 3], seed=0)


def test_cli_plan_evaluate_reports_realised_bits(tmp_path, capsys):
    from ardm.cli import main
    from ardm.training.loop import train
    from tests.conftest import tiny_config

    train(tiny_config(steps=4), tmp_path / "r", progress=False)
    code = main(["plan", "--checkpoint", str(tmp_path / "r"), "--budget", "2,16", "--windows", "2",
                 "--evaluate", "3", "--json", "--plot", str(tmp_path / "curve.png")])
    assert code == 0
    import json

    plans = json.loads(capsys.readouterr().out)["plans"]
    assert all(p["evaluated_windows"] == 3 and p["realised_bits_per_token"] > 0 for p in plans)
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
