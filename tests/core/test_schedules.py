"""ardm.core.schedules: hyperschedule matrices (SPEC §3) and training level draws."""

from __future__ import annotations

import math

import pytest
import torch

from ardm.core.config import ScheduleConfig
from ardm.core.schedules import (
    TrainingLevels,
    ar_diffusion,
    ar_diffusion_level,
    block,
    build,
    flat,
    quenched_ar,
    sliding_annealing,
)

CASES = [
    ("flat", lambda: flat(7, 5)),
    ("flat_1", lambda: flat(3, 1)),
    ("quenched_ar", lambda: quenched_ar(6)),
    ("ar_diff_n8_K12_td8", lambda: ar_diffusion(8, 12, 8)),
    ("ar_diff_n5_K3_td2", lambda: ar_diffusion(5, 3, 2)),
    ("ar_diff_n6_K20_td15", lambda: ar_diffusion(6, 20, 15)),
    ("ar_diff_n4_default_td", lambda: ar_diffusion(4, 8)),
    ("block_even", lambda: block(8, 4, 3)),
    ("block_ragged", lambda: block(10, 4, 2)),
    ("block_w1", lambda: block(5, 1, 1)),
    ("sliding_w3_L5", lambda: sliding_annealing(7, 3, 5)),
    ("sliding_w4_L4", lambda: sliding_annealing(6, 4, 4)),
    ("sliding_w1_L1", lambda: sliding_annealing(5, 1, 1)),
    ("sliding_w2_L9", lambda: sliding_annealing(4, 2, 9)),
]


@pytest.mark.parametrize("name, make", CASES, ids=[c[0] for c in CASES])
def test_hyperschedule_invariants(name, make):
    """Values in [0, 1]; row 0 all 1 (pure noise); last row all 0 (clean); columns
    non-increasing."""
    T = make()
    assert T.dim() == 2 and T.shape[0] >= 2
    assert torch.all((T >= 0) & (T <= 1))
    assert torch.all(T[0] == 1)
    assert torch.all(T[-1] == 0)
    assert torch.all(T[1:] <= T[:-1])


def test_flat_rows():
    """Flat: T[k, i] = 1 - k/K for every position."""
    T = flat(4, 8)
    assert T.shape == (9, 4)
    assert torch.allclose(T, (1 - torch.arange(9.0, dtype=torch.float64) / 8)[:, None].expand(9, 4))


def test_quenched_ar_is_indicator():
    """Quenched AR: K = n and T[k, i] = [i >= k]; token i becomes clean exactly at step i + 1."""
    n = 6
    T = quenched_ar(n)
    assert T.shape == (n + 1, n)
    for k in range(n + 1):
        for i in range(n):
            assert T[k, i] == (1.0 if i >= k else 0.0)


def test_ar_diffusion_boundaries():
    """f(., 0) = 0 and f(., N + T_d) = T_d for every position (SPEC §3.3)."""
    for N, td in [(8, 8), (5, 2), (6, 15), (1, 1), (16, 4)]:
        lv = ar_diffusion_level(N, torch.tensor([0.0, float(N + td)]), td)
        assert lv.shape == (2, N)
        assert torch.all(lv[0] == 0)
        assert torch.allclose(lv[1], torch.ones(N, dtype=torch.float64))


def test_ar_diffusion_early_positions_clean_and_left_to_right():
    """For tau <= N positions n <= N - tau are clean; levels never decrease with position."""
    for N, td in [(8, 8), (6, 3), (5, 12)]:
        taus = torch.arange(0, N + td + 1, dtype=torch.float64)
        lv = ar_diffusion_level(N, taus, td)
        for tau in range(N + 1):
            n_clean = N - tau  # positions 1..N - tau (0-indexed 0..N - tau - 1)
            assert torch.all(lv[tau, :n_clean] == 0)
            if tau > 0:
                assert lv[tau, n_clean] > 0  # the next one is already being noised
        assert torch.all(lv[:, 1:] >= lv[:, :-1])  # later tokens are always noisier
        assert torch.all(lv[1:] >= lv[:-1])  # larger tau is noisier everywhere


def test_ar_diffusion_matches_formula():
    """Rows follow the linear formula between start point and anchor (2N, T_d)."""
    N, td, tau = 6, 4, 8.0
    n_s, t_s = min(max(N - tau, 0), N), min(max(tau - N, 0), td)
    expect = [min(max((td - t_s) / (2 * N - n_s) * (n - n_s) + t_s, 0), td) / td
              for n in range(1, N + 1)]
    got = ar_diffusion_level(N, torch.tensor([tau]), td)[0]
    assert torch.allclose(got, torch.tensor(expect, dtype=torch.float64))


def test_ar_diffusion_rows_use_tau_grid():
    """Row k of ar_diffusion is f(., tau_k)/T_d with tau_k = (N + T_d)(1 - k/K)."""
    N, K, td = 5, 7, 3
    tau = (N + td) * (1 - torch.arange(K + 1, dtype=torch.float64) / K)
    assert torch.allclose(ar_diffusion(N, K, td), ar_diffusion_level(N, tau, td))
    assert torch.equal(ar_diffusion(N, K), ar_diffusion(N, K, N))  # T_d defaults to N


@pytest.mark.parametrize("n, width, S", [(8, 4, 3), (10, 4, 2), (5, 1, 1), (7, 3, 4), (4, 8, 2)])
def test_block_one_block_active_per_step(n, width, S):
    """Block: K = S ceil(n/w); each step changes exactly the tokens of one block, left to right;
    earlier blocks are clean (0), later blocks pure noise (1)."""
    T = block(n, width, S)
    n_blocks = math.ceil(n / width)
    assert T.shape == (S * n_blocks + 1, n)
    b = torch.arange(n) // width
    for k in range(1, T.shape[0]):
        c = (k - 1) // S
        changed = T[k] != T[k - 1]
        assert torch.equal(changed, b == c), k
        assert torch.all(T[k][b < c] == 0) and torch.all(T[k][b > c] == 1)
        j = k - c * S
        assert torch.allclose(T[k][b == c], torch.full_like(T[k][b == c], 1 - j / S))


@pytest.mark.parametrize("n, w, L", [(7, 3, 5), (6, 4, 4), (5, 1, 1), (4, 2, 9), (3, 5, 6)])
def test_sliding_total_steps_and_window(n, w, L):
    """Sliding annealing: K = n + w - 1 steps; token i changes level in exactly the w consecutive
    steps i+1 .. i+w; at most w tokens are in the window per row; noise grows left to right."""
    T = sliding_annealing(n, w, L)
    assert T.shape == (n + w - 1 + 1, n)
    changed = T[1:] != T[:-1]  # [K, n]: step k (1-based) changes token i
    for i in range(n):
        steps = (torch.nonzero(changed[:, i]).flatten() + 1).tolist()
        assert steps == list(range(i + 1, i + w + 1)), (i, steps)
    active = (T > 0) & (T < 1)
    assert int(active.sum(1).max()) <= w
    assert torch.all(T[:, 1:] >= T[:, :-1])


def test_sliding_levels_formula():
    """Inside the window t = clip(main[i - k + w]/(L - 1), eps, 1 - eps) with
    main[j] = round(j (L - 1)/(w - 1)); settled 0, worthless 1."""
    n, w, L, eps = 6, 3, 5, 1e-3
    T = sliding_annealing(n, w, L, eps=eps)
    main = [round(j * (L - 1) / (w - 1)) for j in range(w)]
    for k in range(T.shape[0]):
        for i in range(n):
            if i < k - w:
                want = 0.0
            elif i <= k - 1:
                lev = main[i - k + w]
                want = 0.0 if lev == 0 else min(max(lev / (L - 1), eps), 1 - eps)
            else:
                want = 1.0
            assert T[k, i].item() == pytest.approx(want), (k, i)


def test_sliding_w1_L1_is_quenched_ar():
    """w = L = 1 recovers quenched AR (SPEC §3.5)."""
    assert torch.equal(sliding_annealing(6, 1, 1), quenched_ar(6))


def test_sliding_needs_levels_at_least_window():
    """levels < window is rejected."""
    with pytest.raises(ValueError, match="levels"):
        sliding_annealing(8, 4, 3)


def test_build_dispatch():
    """build() returns the matrix of the configured family."""
    n = 6
    assert torch.equal(build(ScheduleConfig(family="flat", steps=4), n), flat(n, 4))
    assert torch.equal(build(ScheduleConfig(family="quenched_ar"), n), quenched_ar(n))
    assert torch.equal(build(ScheduleConfig(family="block", block_width=2, steps=3), n),
                       block(n, 2, 3))
    assert torch.equal(build(ScheduleConfig(family="sliding", window=2, levels=3), n),
                       sliding_annealing(n, 2, 3))
    ar = build(ScheduleConfig(family="ar_diffusion", ar_diffusion_td=3), n)
    assert torch.equal(ar, ar_diffusion(n, n + 3, 3))  # every integer tau
    assert build(ScheduleConfig(family="ar_diffusion"), n).shape == (2 * n + 1, n)


T_MIN = 1e-3


def _unmap(t: torch.Tensor) -> torch.Tensor:
    """Undo the t -> t_min + (1 - t_min) t map of active positions (settled stay 0)."""
    return torch.where(t > 0, (t - T_MIN) / (1 - T_MIN), torch.zeros_like(t))


@pytest.mark.parametrize("B", [1, 7, 64])
def test_flat_training_levels_are_stratified(B):
    """Flat family: one level per sequence and the B levels of a batch are stratified: after
    undoing the t_min map, sorted B(1 - t) equals c + (0, 1, ..., B-1) for one offset c in
    [0, 1)."""
    lv = TrainingLevels(ScheduleConfig(family="flat", steps=100), 5, T_MIN)
    g = torch.Generator().manual_seed(B)
    for _ in range(20):
        t = lv.sample(B, g)
        assert t.shape == (B, 5)
        assert torch.all(t == t[:, :1])  # same level at every position
        assert torch.all((t >= T_MIN) & (t <= 1))
        s = torch.sort(B * (1 - _unmap(t[:, 0]).double())).values
        d = s - torch.arange(B, dtype=torch.float64)
        assert d.max() - d.min() < 1e-4
        assert -1e-4 <= d.min() and d.max() < 1 + 1e-4
        # hence exactly one level per interval (b/B, (b+1)/B]
        strata = torch.ceil(B * _unmap(t[:, 0]).double() - 1e-6).long() - 1
        assert sorted(strata.tolist()) == list(range(B))


def test_flat_training_levels_are_uniform():
    """Pooled over many batches, flat levels are uniform: mean 1/2 and quartiles at 1/4, 3/4."""
    lv = TrainingLevels(ScheduleConfig(family="flat", steps=256), 4, T_MIN)
    g = torch.Generator().manual_seed(0)
    t = torch.cat([_unmap(lv.sample(3, g)[:, 0]) for _ in range(2000)])
    assert abs(t.mean().item() - 0.5) < 0.02
    assert abs(t.quantile(0.25).item() - 0.25) < 0.02 and abs(t.quantile(0.75).item() - 0.75) < 0.02


@pytest.mark.parametrize("cfg", [
    ScheduleConfig(family="flat", steps=16),
    ScheduleConfig(family="quenched_ar"),
    ScheduleConfig(family="ar_diffusion"),
    ScheduleConfig(family="ar_diffusion", ar_diffusion_td=3),
    ScheduleConfig(family="block", block_width=3, steps=4),
    ScheduleConfig(family="sliding", window=3, levels=4),
], ids=lambda c: c.family)
def test_training_levels_lie_between_schedule_rows(cfg):
    """Every drawn level vector lies between two consecutive rows k-1, k of the table; positions
    clean in both rows are settled with t exactly 0; all other levels are >= t_min."""
    n = 9
    lv = TrainingLevels(cfg, n, T_MIN)
    table = lv.table.double()
    t = lv.sample(256, torch.Generator().manual_seed(1))
    assert t.shape == (256, n)
    raw = _unmap(t).double()
    tol = 1e-5
    for row_t, row_raw in zip(t, raw):
        ok = [k for k in range(1, table.shape[0])
              if torch.all(row_raw >= table[k] - tol) and torch.all(row_raw <= table[k - 1] + tol)]
        assert ok, row_raw
        settled = (table[ok[0]] == 0) & (table[ok[0] - 1] == 0)
        assert torch.all(row_t[settled] == 0)
        assert torch.all(row_t[~settled] >= T_MIN - 1e-7)


def test_quenched_ar_training_levels():
    """Quenched AR training: tokens before the active one are settled (0), after it worthless
    (1), and the active token gets a level in (0, 1]."""
    n = 8
    lv = TrainingLevels(ScheduleConfig(family="quenched_ar"), n, T_MIN)
    t = lv.sample(200, torch.Generator().manual_seed(2))
    for row in t:
        active = torch.nonzero((row > 0) & (row < 1)).flatten()
        assert len(active) <= 1
        first_nonzero = int(torch.nonzero(row > 0).flatten()[0])
        assert torch.all(row[:first_nonzero] == 0)
        assert torch.all(row[first_nonzero + 1:] == 1)
