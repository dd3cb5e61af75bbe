"""ardm.generation.gate.sampler: the entropy-preserving remask mode (mode="remdm", SPEC §11.2) keeps
the mask count on the schedule and spends ReMDM's remask budget where the gate points."""

from __future__ import annotations

import torch

from ardm.generation.gate.sampler import GateSampler
from ardm.generation.loop import generate
from ardm.generation.samplers.base import StepState, TokenSampling
from tests.toy_models import ToyModel, contextual

L, K = 12, 6


class MaskCounter(GateSampler):
    """Records, at the start of every step, how many target positions of each row are MASK."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.counts: list[list[int]] = []

    def levels(self, s: StepState) -> torch.Tensor:
        self.counts.append(s.masked[:, s.prompt_len:].sum(1).tolist())
        return super().levels(s)


def test_remdm_mode_keeps_the_mask_count_on_the_flat_schedule():
    sampler = MaskCounter(mode="remdm", eta=0.5, reveal="random")
    model = contextual(vocab=5, max_len=L)
    g = generate(model, sampler, length=L, steps=K, batch=4, prompt=torch.tensor([1]))
    n = L - 1
    for k, counts in enumerate(sampler.counts, start=1):  # before step k: round(n (1 - (k-1)/K)) MASKs
        assert counts == [round(n * (1 - (k - 1) / K))] * 4
    assert bool((g.tokens != 5).all())  # nothing left masked at the end
    assert sum(g.remasks) > 0  # and it did revise: remasked tokens were revealed again


def test_remdm_mode_spends_the_budget_where_the_gate_points():
    sampler = GateSampler(mode="remdm", eta=0.1)
    x = torch.tensor([[1, 2, 3, 4, 5, 5]])  # 4 visible tokens, 2 MASKs (mask_id 5)
    s = StepState.begin(x, k=4, K=6, mask_id=5, generators=[torch.Generator()])
    visible = x != 5
    sigma_max = min(1.0, (1 - 4 / 6) / (3 / 6))  # (1 - alpha_s)/alpha_t
    uniform = sampler.remask_probability(s.k, s.K, torch.zeros(1, 6, dtype=torch.float64), visible)
    assert torch.allclose(uniform, torch.tensor([[0.1] * 4 + [0.0] * 2], dtype=torch.float64))  # ReMDM-cap
    p = torch.tensor([[0.9, 0.1, 0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)  # MASKs' p is ignored
    pointed = sampler.remask_probability(s.k, s.K, p, visible)
    assert abs(float(pointed.sum()) - 0.1 * 4) < 1e-12  # the same expected number of remasks ...
    assert abs(float(pointed[0, 0]) - 9 * float(pointed[0, 1])) < 1e-12  # ... where p points
    assert float(pointed[0, 2]) == 0.0
    one_hot = torch.tensor([[1.0, 0, 0, 0, 0, 0]], dtype=torch.float64)
    heavy = sampler.remask_probability(s.k, s.K, one_hot, visible)
    assert float(heavy[0, 0]) == min(0.4, sigma_max)  # no token above sigma_max


def test_remdm_mode_never_remasks_at_the_last_step_and_reveals_everything():
    sampler = GateSampler(mode="remdm", eta=1.0)
    x = torch.tensor([[1, 5, 3, 5]])
    s = StepState.begin(x, k=6, K=6, mask_id=5, generators=[torch.Generator()])
    pi = sampler.remask_probability(s.k, s.K, torch.ones(1, 4, dtype=torch.float64), x != 5)
    assert float(pi.max()) == 0.0  # sigma_max = (1 - alpha_s)/alpha_t = 0 when alpha_s = 1


def run_reveals(reveal: str, temperature: float) -> torch.Tensor:
    """Tokens of a remdm-mode gate run with these reveals on the contextual toy model (seed 3)."""
    sampler = GateSampler(mode="remdm", eta=0.2, reveal=reveal)
    return generate(contextual(vocab=5, max_len=L), sampler, length=L, steps=K, batch=8,
                    prompt=torch.tensor([1]), seed=3, temperature=temperature).tokens


def test_sampled_reveals_are_confidence_order_at_temperature_zero_and_drawn_above_it():
    assert torch.equal(run_reveals("sampled", 0.0), run_reveals("confidence", 0.0))
    hot = run_reveals("sampled", 1.0)
    assert not torch.equal(hot, run_reveals("confidence", 1.0))
    assert not torch.equal(hot, run_reveals("random", 1.0))


def test_joint_reveals_are_random_order_at_temperature_one_and_confidence_order_when_cold():
    # at T = 1 every position's Z_i = sum_v q_i(v) is 1: the Gumbel draw alone orders them, and it is
    # a monotone map of the same uniforms `random` ranks, so the samples are the same
    assert torch.equal(run_reveals("joint", 1.0), run_reveals("random", 1.0))
    assert torch.equal(run_reveals("joint", 0.0), run_reveals("confidence", 0.0))  # T = 0: argmax moves only
    hot = run_reveals("joint", 0.5)
    assert not torch.equal(hot, run_reveals("random", 0.5))


def test_joint_reveal_prefers_peaked_positions_below_temperature_one_and_flat_ones_above():
    # two MASKs, one reveal: position 0 peaked (q = .9, .025 x 4), position 1 flat (uniform); mask_id 5
    peaked = torch.tensor([0.9, 0.025, 0.025, 0.025, 0.025]).log()
    logits = torch.stack([peaked, torch.zeros(5)])[None].expand(2000, 2, 5)
    x = torch.full((2000, 2), 5)

    def peaked_first(temperature: float) -> float:
        generators = [torch.Generator().manual_seed(b) for b in range(2000)]
        s = StepState.begin(x, k=1, K=2, mask_id=5, generators=generators,
                            sampling=TokenSampling(temperature=temperature))
        s.logits = logits
        new = s.sample()
        chosen = GateSampler(reveal="joint")._reveal(s, s.masked, new, torch.ones(2000, dtype=torch.long))
        assert bool((chosen.sum(1) == 1).all())
        return float(chosen[:, 0].double().mean())

    # P(peaked first) = Z_0 / (Z_0 + Z_1), Z_i = sum_v q_i(v)^(1/T): 1/2 at T = 1
    def z(q: list[float], T: float) -> float:
        return sum(v ** (1 / T) for v in q)

    for T in (0.5, 1.0, 2.0):
        want = z([0.9] + [0.025] * 4, T) / (z([0.9] + [0.025] * 4, T) + z([0.2] * 5, T))
        assert abs(peaked_first(T) - want) < 0.04, T
    assert peaked_first(0.5) > 0.75 and peaked_first(2.0) < 0.45  # confidence-like cold, anti hot


def test_margin_reveals_the_least_contested_mask_first_where_confidence_picks_another():
    # position 1: q = (.5, .5, 0, ...) - confident .5, margin 0; position 2: q = (.45, .1375 x 4) -
    # confident .45, margin .31. The second pass prefers other tokens, so which position kept its
    # first-step value tells which was revealed first (no overwrites: gate none, no prior).
    def fn(tokens, call):
        first = torch.tensor([[0.2, 0.2, 0.2, 0.2, 0.2], [0.5, 0.5, 1e-9, 1e-9, 1e-9],
                              [0.45, 0.1375, 0.1375, 0.1375, 0.1375]]).log()
        later = torch.full((3, 5), -9.0)
        later[1, 2], later[2, 3] = 0.0, 0.0
        return (first if call == 1 else later).expand(tokens.shape[0], 3, 5)

    def run(reveal: str) -> list[int]:
        sampler = GateSampler(gate="none", prior=False, reveal=reveal)
        g = generate(ToyModel(fn, vocab=5, max_len=3), sampler, length=3, steps=2, batch=1,
                     prompt=torch.tensor([4]), temperature=0.0)
        return g.tokens[0, 1:].tolist()

    assert run("confidence") == [0, 3]  # position 1 first (its token from pass 1), then 2
    assert run("margin") == [2, 0]  # position 2 first
