"""ardm.core.noise: forward corruption matches the closed-form marginals, and loss weights (SPEC §2)."""

from __future__ import annotations

import pytest
import torch

from ardm.core.config import NoiseConfig
from ardm.core.noise import (
    MIN_VISIBLE_FRACTION,
    AbsorbingNoise,
    Corruption,
    EpsilonHybridNoise,
    UniformNoise,
    make_noise,
)

V = 4
EPS = 0.3
T_VALUES = (0.0, 0.05, 0.3, 0.7, 1.0)


def _processes():
    return [AbsorbingNoise(V), UniformNoise(V), EpsilonHybridNoise(V, EPS, lam=0.7)]


@pytest.fixture(scope="module")
def samples():
    """200k positions; every token gets its own t drawn from T_VALUES (mixed within each row)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, V, (4, 50_000), generator=g)
    t = torch.tensor(T_VALUES)[torch.randint(0, len(T_VALUES), x.shape, generator=g)]
    out = {}
    for proc in _processes():
        out[proc.name] = (proc, x, t, proc.corrupt(x, t, torch.Generator().manual_seed(1)))
    return out


@pytest.mark.parametrize("name", ["absorbing", "uniform", "epsilon_hybrid"])
def test_empirical_frequencies_match_marginal(samples, name):
    """P(z = b | x = a, t) estimated from 200k positions equals marginal() within 5 SE."""
    proc, x, t, c = samples[name]
    for tv in T_VALUES:
        for a in range(V):
            sel = (t == tv) & (x == a)
            n = int(sel.sum())
            assert n > 5000
            counts = torch.bincount(c.z[sel], minlength=V + 1).double()
            freq = counts / n
            p = proc.marginal(torch.tensor([a]), torch.tensor([tv]))[0].double()
            se = (p * (1 - p) / n).sqrt()
            assert torch.all((freq - p).abs() <= 5 * se + 1e-12), (name, tv, a, freq, p)


@pytest.mark.parametrize("name", ["absorbing", "uniform", "epsilon_hybrid"])
def test_t_zero_never_corrupted_and_weight_zero(samples, name):
    """Settled positions (t = 0) are never changed, flagged, or scored."""
    proc, x, t, c = samples[name]
    settled = t == 0
    assert torch.equal(c.z[settled], x[settled])
    assert not c.masked[settled].any() and not c.replaced[settled].any()
    assert torch.all(proc.token_weights(c, t)[settled] == 0)


@pytest.mark.parametrize("name", ["absorbing", "uniform", "epsilon_hybrid"])
def test_corruption_flags_are_consistent(samples, name):
    """masked <=> z is MASK; a visible token that differs from x must be flagged replaced."""
    proc, x, _t, c = samples[name]
    assert torch.equal(c.masked, c.z == proc.mask_id)
    assert not (c.masked & c.replaced).any()
    changed_visible = (c.z != x) & ~c.masked
    assert not (changed_visible & ~c.replaced).any()
    assert c.z.min() >= 0 and c.z.max() <= proc.mask_id
    assert c.z.shape == x.shape and c.z.dtype == x.dtype


def test_replacement_rate_of_epsilon_hybrid(samples):
    """Among positions at level t, P(replaced) = (1 - t) eps (replacement may redraw x itself)."""
    _, _x, t, c = samples["epsilon_hybrid"]
    for tv in T_VALUES:
        sel = t == tv
        n = int(sel.sum())
        p = (1 - tv) * EPS if tv > 0 else 0.0
        se = (p * (1 - p) / n) ** 0.5
        assert abs(c.replaced[sel].double().mean().item() - p) <= 5 * se + 1e-12


def test_uniform_never_masks_and_absorbing_never_replaces(samples):
    """Uniform noise stays in V (no MASK); absorbing noise only masks, never substitutes."""
    _, x, _, cu = samples["uniform"]
    assert not cu.masked.any() and cu.z.max() < V
    _, x, _, ca = samples["absorbing"]
    assert not ca.replaced.any()
    assert torch.equal(ca.z[~ca.masked], x[~ca.masked])


def test_t_one_absorbing_masks_everything():
    """At t = 1 every absorbing position is MASK (q_1 = delta_MASK)."""
    x = torch.randint(0, V, (3, 1000), generator=torch.Generator().manual_seed(0))
    c = AbsorbingNoise(V).corrupt(x, torch.ones(3, 1000), torch.Generator().manual_seed(0))
    assert c.masked.all() and torch.all(c.z == V)


def test_corrupt_is_reproducible_with_generator():
    """The same generator seed gives the same corruption."""
    x = torch.randint(0, V, (2, 64), generator=torch.Generator().manual_seed(0))
    t = torch.full((2, 64), 0.5)
    for proc in _processes():
        a = proc.corrupt(x, t, torch.Generator().manual_seed(5))
        b = proc.corrupt(x, t, torch.Generator().manual_seed(5))
        assert torch.equal(a.z, b.z) and torch.equal(a.replaced, b.replaced)


@pytest.mark.parametrize("proc", _processes(), ids=lambda p: p.name)
def test_marginals_are_distributions_and_mask_is_last(proc):
    """marginal() rows are probability vectors over V + 1 symbols; MASK id is vocab_size."""
    assert proc.mask_id == V == proc.vocab_size
    x = torch.arange(V).repeat(5)
    t = torch.linspace(0, 1, 5).repeat_interleave(V)
    m = proc.marginal(x, t)
    assert m.shape == (V * 5, V + 1)
    assert torch.all(m >= 0)
    assert torch.allclose(m.sum(-1), torch.ones(V * 5))
    # t = 0 (settled) is the identity, as in corrupt(); for eps-hybrid the epsilon corruption
    # does not vanish as t -> 0 (SPEC §2.3), only at t = 0 exactly
    m0 = proc.marginal(torch.arange(V), torch.zeros(V))
    assert torch.equal(m0, torch.nn.functional.one_hot(torch.arange(V), V + 1).float())
    p_keep = proc.marginal(torch.tensor([0]), torch.tensor([1e-6]))[0, 0].item()
    expect = 1 - EPS + EPS / V if proc.name == "epsilon_hybrid" else 1.0
    assert p_keep == pytest.approx(expect, abs=1e-5)


def test_marginal_closed_forms():
    """marginal() equals the SPEC §2.1-2.3 formulas at t = 0.4 for x = 1."""
    t, x = 0.4, 1
    onehot = torch.eye(V + 1)[x]
    mask = torch.eye(V + 1)[V]
    unif = torch.tensor([1 / V] * V + [0.0])
    expect = {
        "absorbing": (1 - t) * onehot + t * mask,
        "uniform": (1 - t) * onehot + t * unif,
        "epsilon_hybrid": t * mask + (1 - t) * ((1 - EPS) * onehot + EPS * unif),
    }
    for proc in _processes():
        got = proc.marginal(torch.tensor([x]), torch.tensor([t]))[0]
        assert torch.allclose(got, expect[proc.name]), proc.name


def test_absorbing_weights():
    """Absorbing: w = 1/t on masked positions and 0 on visible ones (MDLM linear schedule)."""
    proc = AbsorbingNoise(V)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, V, (8, 100), generator=g)
    t = torch.rand(8, 100, generator=g) * 0.98 + 0.01
    c = proc.corrupt(x, t, g)
    w = proc.token_weights(c, t)
    assert c.masked.any() and (~c.masked).any()
    assert torch.allclose(w[c.masked], 1 / t[c.masked])
    assert torch.all(w[~c.masked] == 0)


def test_epsilon_hybrid_weights():
    """eps-hybrid: 1/t masked, lam (1-eps)/(1-t) replaced, lam eps/(1-t) kept (SPEC §2.3)."""
    lam = 0.7
    proc = EpsilonHybridNoise(V, EPS, lam=lam)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, V, (8, 200), generator=g)
    t = torch.rand(8, 200, generator=g) * 0.89 + 0.01  # 1 - t >= 0.1: the floor is not hit
    c = proc.corrupt(x, t, g)
    w = proc.token_weights(c, t)
    kept = ~c.masked & ~c.replaced
    assert c.masked.any() and c.replaced.any() and kept.any()
    assert torch.allclose(w[c.masked], 1 / t[c.masked])
    assert torch.allclose(w[c.replaced], lam * (1 - EPS) / (1 - t[c.replaced]))
    assert torch.allclose(w[kept], lam * EPS / (1 - t[kept]))


def test_epsilon_hybrid_visible_weight_floor():
    """Near t = 1 the 1/(1 - t) factor is floored so visible weights stay bounded."""
    proc = EpsilonHybridNoise(V, EPS, lam=1.0)
    x = torch.zeros(1, 2, dtype=torch.long)
    t = torch.full((1, 2), 0.9999)
    c = Corruption(x.clone(), torch.zeros(1, 2, dtype=torch.bool), torch.tensor([[True, False]]))
    w = proc.token_weights(c, t)
    assert torch.allclose(w, torch.tensor([[1 - EPS, EPS]]) / MIN_VISIBLE_FRACTION)


def test_uniform_weights_score_every_active_position():
    """Uniform surrogate: weight 1 wherever t > 0, whether or not the token was replaced."""
    proc = UniformNoise(V)
    x = torch.zeros(1, 4, dtype=torch.long)
    t = torch.tensor([[0.0, 0.2, 0.9, 1.0]])
    c = proc.corrupt(x, t, torch.Generator().manual_seed(0))
    assert torch.equal(proc.token_weights(c, t), torch.tensor([[0.0, 1.0, 1.0, 1.0]]))


def test_make_noise_from_config():
    """make_noise builds the configured process with its parameters."""
    assert isinstance(make_noise(NoiseConfig(kind="absorbing"), 7), AbsorbingNoise)
    assert isinstance(make_noise(NoiseConfig(kind="uniform"), 7), UniformNoise)
    p = make_noise(NoiseConfig(kind="epsilon_hybrid", epsilon=0.2, hybrid_lambda=0.5), 7)
    assert isinstance(p, EpsilonHybridNoise)
    assert (p.epsilon, p.lam, p.mask_id) == (0.2, 0.5, 7)
