"""Each sampler against its SPEC §6 definition on tiny hand-made models; the gate's pure pieces."""

from __future__ import annotations

import math

import pytest
import torch

from ardm.core.schedules import ar_diffusion
from ardm.errors import ArdmError
from ardm.generation.gate.calibration import calibrate
from ardm.generation.gate.scoring import (
    SignalStats,
    combine,
    confidence_change,
    entropy,
    margin,
    maturity_prior,
    noisy_or,
    normalise,
    signals,
)
from ardm.generation.loop import generate
from ardm.generation.registry import SAMPLERS, make_sampler, parse_options
from ardm.generation.samplers.base import reveal_probability, top_n_mask
from tests.toy_models import contextual, graded, positional


def run(model, name, steps, length=12, prompt=(1, 2), batch=1, seed=0, **opts):
    return generate(model, make_sampler(name, **opts), length=length, steps=steps, batch=batch,
                    prompt=torch.tensor(prompt, dtype=torch.long), seed=seed, trace=True)


def positions(records, key, row=0):
    """Per step, the set of positions under `key` ('written', 'overwritten', 'remasked')."""
    return [{e[0] for e in r[key][row]} for r in records]


# ---- l2r / ar ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, attention", [("l2r", "bidirectional"), ("ar", "causal")])
def test_one_new_position_per_step_left_to_right(name, attention):
    model = contextual(attention=attention)
    g = run(model, name, steps=10, length=12)
    written = positions(g.trace["records"], "written")
    assert written == [{2 + k} for k in range(10)]  # step k writes target position k
    assert g.overwrites_selected == [0] and g.nfe == 10 == len(model.calls)


def test_l2r_feeds_quenched_ar_levels():
    model = positional()
    run(model, "l2r", steps=10, length=12)
    for k, (_, t) in enumerate(model.calls):  # written or prompt -> 0, MASK -> 1 (SPEC §3.2)
        assert torch.equal(t[0], (torch.arange(12) >= 2 + k).float())


# ---- fixed (AR-Diffusion) --------------------------------------------------------------------------


def test_fixed_never_rewrites_a_matured_position():
    n, K = 10, 6
    g = run(contextual(), "fixed", steps=K, length=12, eta=1.0, batch=4)
    table = ar_diffusion(n, K)
    for row in range(4):
        changed = positions(g.trace["records"], "overwritten", row)
        for k, step in enumerate(changed, start=1):
            matured_before = {2 + i for i in range(n) if table[k - 1, i] == 0}
            assert not step & matured_before
    assert sum(g.overwrites_selected) > 0  # eta = 1 does resample young tokens: the check has teeth


def test_fixed_reveals_what_the_schedule_says():
    n, K = 10, 5
    model = contextual()
    g = run(model, "fixed", steps=K, length=12)
    table = ar_diffusion(n, K)
    x = [c[0][0] for c in model.calls] + [g.tokens[0]]
    for k in range(1, K + 1):
        masked = x[k][2:] == model.cfg.vocab_size
        assert not masked[table[k] == 0].any()  # level reached 0: revealed
        assert masked[table[k] == 1].all()  # still at level 1: untouched
        assert torch.allclose(model.calls[k - 1][1][0, 2:], table[k - 1].float())  # per-token levels fed


def test_reveal_probability_matches_absorbing_formula():
    t, s = torch.tensor([1.0, 0.5, 0.5, 0.3]), torch.tensor([0.5, 0.5, 0.0, 0.1])
    assert torch.allclose(reveal_probability(t, s), torch.tensor([0.5, 0.0, 1.0, 2 / 3], dtype=torch.float64))


# ---- llada ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block, steps, counts", [(0, 4, [3, 3, 2, 2]), (5, 4, [3, 2, 3, 2]),
                                                  (0, 10, [1] * 10)])
def test_llada_commits_the_stated_number_per_step(block, steps, counts):
    g = run(contextual(), "llada", steps=steps, length=12, block_length=block, batch=2)
    for row in range(2):
        written = positions(g.trace["records"], "written", row)
        assert [len(w) for w in written] == counts
        if block:  # semi-AR: a block is finished before the next one starts
            for k, w in enumerate(written):
                b = k // (steps // 2)
                assert all(2 + b * block <= p < 2 + (b + 1) * block for p in w)
    assert g.overwrites_selected == [0, 0]


def test_llada_commits_the_most_confident_first():
    g = generate(graded(), make_sampler("llada"), length=12, steps=4, temperature=0, trace=True)
    written = positions(g.trace["records"], "written")
    assert written[0] == {9, 10, 11}  # confidence grows with the position


def test_llada_margin_reveals_the_least_contested_first():
    from tests.toy_models import ToyModel

    contested = torch.tensor([0.6, 0.4, 1e-9, 1e-9, 1e-9]).log()  # confidence 0.6, margin 0.2
    clear = torch.tensor([0.5, 0.125, 0.125, 0.125, 0.125]).log()  # confidence 0.5, margin 0.375

    def fn(tokens, call):  # positions 9-11 are clear, the others contested
        B, L = tokens.shape
        logits = contested.repeat(B, L, 1)
        logits[:, 9:] = clear
        return logits

    def first(remasking):
        g = generate(ToyModel(fn), make_sampler("llada", remasking=remasking), length=12, steps=4,
                     temperature=0, trace=True)
        return positions(g.trace["records"], "written")[0]

    assert first("margin") == {9, 10, 11}
    assert not first("low_confidence") & {9, 10, 11}  # confidence prefers the contested ones


# ---- planned (order-agnostic, SPEC §4.3) ---------------------------------------------------------------


def test_planned_equal_steps_reveal_every_mask_once_in_random_order():
    g = run(contextual(), "planned", steps=4, length=12, batch=2, seed=3)
    for row in range(2):
        written = positions(g.trace["records"], "written", row)
        assert [len(w) for w in written] == [2, 3, 3, 2]  # equal boundaries 0, 2, 5, 8, 10
        assert set().union(*written) == set(range(2, 12))
    first = [positions(g.trace["records"], "written", row)[0] for row in range(2)]
    assert first[0] != first[1]  # each row has its own order


def test_planned_follows_the_dp_plan_of_its_loss_components(tmp_path):
    from ardm.generation.planner import plan_budget, save_loss_components

    losses = [3.0 * 0.6**t for t in range(10)]  # early variables are costly: the plan starts small
    path = tmp_path / "plan.json"
    save_loss_components(path, losses)
    model = contextual()
    g = run(model, "planned", steps=3, length=12, plan=str(path))
    sizes = [len(w) for w in positions(g.trace["records"], "written")]
    assert sizes == [n for n in plan_budget(losses, 3).step_sizes if n] and sizes[0] < sizes[-1]
    # levels: the share of the 10 target positions still MASKed, as in training and compression
    left = [10 - sum(sizes[:k]) for k in range(len(sizes))]
    assert [round(float(t[0, 5]), 4) for _, t in model.calls] == [m / 10 for m in left]
    with pytest.raises(ArdmError, match="plan file not found"):
        make_sampler("planned", plan=str(tmp_path / "missing.json"))


def test_planned_with_more_steps_than_masks_finishes_early():
    g = run(contextual(), "planned", steps=20, length=8)
    assert g.nfe_per_sample == [6] and (g.tokens[0, 2:] != 5).all()


def test_top_n_mask_picks_highest_finite_scores_per_row():
    scores = torch.tensor([[0.1, 0.9, -math.inf, 0.5], [1.0, 2.0, 3.0, 4.0]])
    m = top_n_mask(scores, torch.tensor([5, 2]))
    assert m.tolist() == [[True, True, False, True], [False, False, True, True]]


# ---- remdm -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["cap", "rescale", "conf", "loop"])
def test_remdm_only_remasks_committed_positions(strategy):
    g = run(contextual(), "remdm", steps=16, length=12, strategy=strategy, eta=0.5, batch=4)
    recs = g.trace["records"]
    for row in range(4):
        assert not any(r["overwritten"][row] for r in recs)  # never token -> other token
        committed: set[int] = set()
        for r in recs:
            remasked = {e[0] for e in r["remasked"][row]}
            assert remasked <= committed and all(p >= 2 for p in remasked)
            committed = (committed - remasked) | {e[0] for e in r["written"][row]}
    assert sum(g.remasks) > 0 and (g.tokens[:, 2:] < 5).all()


def test_remdm_loop_remasks_only_inside_the_loop_phase():
    K = 20
    g = run(contextual(), "remdm", steps=K, length=12, strategy="loop", eta=0.5, t_on=0.6, t_off=0.2, batch=4)
    for r in g.trace["records"]:
        t = 1 - (r["k"] - 1) / K
        if any(r["remasked"][b] for b in range(4)):
            assert 0.2 < t <= 0.6


# ---- acs ---------------------------------------------------------------------------------------------


def test_acs_corrects_visible_tokens_at_rate_eta_s_over_t():
    g = run(contextual(), "acs", steps=4, length=12, eta=1.0, eps=0.0, batch=64)
    recs = g.trace["records"]
    assert all(s == 0 for s in recs[-1]["selected"])  # p_transfer = 1 at the last step: no corrections
    # step 2 (t = 3/4 -> s = 1/2): each visible token is resampled w.p. eta s/t = 2/3
    visible_after_1 = sum(len(w) for w in recs[0]["written"])
    rate = sum(recs[1]["selected"]) / visible_after_1
    assert abs(rate - 2 / 3) < 0.08, rate


def test_acs_needs_a_hybrid_denoiser():
    with pytest.raises(ArdmError, match="epsilon_hybrid"):
        make_sampler("acs").check_model("bidirectional", "absorbing")
    make_sampler("acs").check_model("bidirectional", "epsilon_hybrid")


# ---- gate: pure pieces ----------------------------------------------------------------------------------


def test_noisy_or_and_combinations_match_their_formulas():
    u = torch.tensor([0.0, 0.2, 0.5, 1.0, 0.3])
    r = torch.tensor([0.0, 0.5, 0.5, 0.1, 1.0])
    p = noisy_or(u, r)
    assert torch.allclose(p, 1 - (1 - u) * (1 - r))
    assert torch.allclose(p, torch.tensor([0.0, 0.6, 0.75, 1.0, 1.0]))
    assert (p >= torch.maximum(u, r)).all() and (p <= 1).all()  # SPEC §6.8: p in [max(u, r), 1]
    assert torch.equal(combine(u, r, "max"), torch.maximum(u, r))
    assert torch.equal(combine(u, r, "product"), u * r)


def test_maturity_prior_matches_its_formula():
    n, K, alpha, delta = 8, 16, 1.5, 0.5
    for k in (1, 5, 16):
        r = maturity_prior(n, k, K, alpha, delta)
        expected = [1 / (1 + math.exp(-alpha * ((K / n) * (i + delta) - k))) for i in range(n)]
        assert torch.allclose(r, torch.tensor(expected), atol=1e-6)
    assert torch.allclose(maturity_prior(4, 2, 4, 1.0, 0.0)[2], torch.tensor(0.5))  # r = 0.5 at k = tau(i)
    r1, r2 = maturity_prior(n, 3, K), maturity_prior(n, 9, K)
    assert (r2 <= r1).all() and (r1[1:] >= r1[:-1]).all()  # decays in k; right positions mature later


def test_signals_entropy_margin_confidence_change():
    V = 4
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [3.0, 1.0, 0.0, 0.0]]])
    assert torch.allclose(entropy(logits)[0, 0], torch.tensor(math.log(V)))
    assert torch.allclose(margin(logits)[0], torch.tensor([0.0, 2.0]))
    prev = torch.zeros_like(logits)
    y = torch.tensor([[1, 0]])
    dl = confidence_change(logits, prev, y)
    assert torch.allclose(dl[0, 1], logits[0, 1].log_softmax(-1)[0] - math.log(1 / V))
    x = torch.tensor([[V, 0]])  # position 0 is MASK
    sig = signals(logits, prev, x, V)
    assert sig[0, 0, 2] == 0 and torch.allclose(sig[0, 1, 2], dl[0, 1])
    assert (signals(logits, None, x, V)[..., 2] == 0).all()  # k = 1: no previous step


def test_normalise_uses_frozen_statistics():
    sig = torch.tensor([[[1.0, 2.0, 3.0]]])
    stats = SignalStats(mean=(1.0, 0.0, 1.0), var=(4.0, 1.0, 0.25))
    expected = torch.tensor([0.0, 2.0, 2.0]) / torch.sqrt(torch.tensor([4.0, 1.0, 0.25]) + 1e-6)
    assert torch.allclose(normalise(sig, stats)[0, 0], expected)
    assert torch.allclose(normalise(sig, SignalStats()), sig / math.sqrt(1 + 1e-6))


# ---- gate: sampler -------------------------------------------------------------------------------------


def test_gate_with_u0_and_r0_never_overwrites():
    g = run(contextual(), "gate", steps=8, length=12, gate="none", prior=False, batch=3, fill="all")
    assert g.overwrites_selected == [0, 0, 0]
    assert [len(w) for w in g.trace["records"][0]["written"]] == [10, 10, 10]  # the full draft at k = 1


def test_gate_with_p1_rewrites_every_eligible_position():
    g = run(contextual(), "gate", steps=6, length=12, b0=100.0, batch=2, fill="all")
    for r in g.trace["records"][1:]:
        assert r["selected"] == [10, 10]  # every target position, never the prompt
    assert g.overwrites_selected == [50, 50] and (g.tokens[:, :2] == torch.tensor([1, 2])).all()
    assert all(p == 1.0 for r in g.trace["records"] for row in r["gate"] for p in row)


def test_gate_prior_only_follows_the_maturity_prior():
    # alpha large: r is a step at tau(i) = (K/n)(i + delta); with u = 0 a position is rewritten at
    # step k exactly while k < tau(i)
    n, K, delta = 10, 10, 1.0
    g = run(contextual(), "gate", steps=K, length=12, gate="none", alpha=50.0, delta=delta, mask="threshold",
            fill="all")
    for r in g.trace["records"][1:]:
        k = r["k"]
        assert r["selected"][0] == sum(1 for i in range(n) if (K / n) * (i + delta) > k)


def test_gate_budget_and_cap_bound_overwrites_per_step():
    g = run(contextual(), "gate", steps=6, length=12, mask="budget", budget=3, prior=False, fill="all")
    assert all(r["selected"] == [3] for r in g.trace["records"][1:])
    g = run(contextual(), "gate", steps=6, length=12, b0=100.0, cap=2, fill="all")
    assert all(r["selected"] == [2] for r in g.trace["records"][1:])


def test_default_gate_reveals_by_count_and_overwrites_in_place():
    """The default gate (fill="schedule", replace mode; docs/gate.md): the count rule reveals
    ceil(#MASK / (K - k + 1)) MASKs per step and the gate's overwrites replace tokens, never remask."""
    K, model = 8, contextual()
    g = run(model, "gate", steps=K, length=12, b0=1.0, prior=False, batch=2)
    assert sum(g.remasks) == 0 and sum(g.overwrites_selected) > 0 and (g.tokens < 5).all()
    for k, r in enumerate(g.trace["records"][:K], start=1):
        n_mask = (model.calls[k - 1][0] == 5).sum(1)
        assert [len(w) for w in r["written"]] == [math.ceil(m / (K - k + 1)) for m in n_mask.tolist()]


def test_gate_remask_mode_with_schedule_fill():
    K, model = 8, contextual()
    g = run(model, "gate", steps=K, length=12, mode="remask", fill="schedule", b0=1.0, prior=False, batch=2)
    recs = g.trace["records"]
    assert not any(r["overwritten"][b] for r in recs for b in range(2))  # T2M only
    assert sum(g.remasks) > 0 and (g.tokens < 5).all()
    for k, r in enumerate(recs[:K], start=1):  # the count rule: ceil(#MASK / (K - k + 1)) reveals
        n_mask = (model.calls[k - 1][0] == 5).sum(1)
        assert [len(w) for w in r["written"]] == [math.ceil(m / (K - k + 1)) for m in n_mask.tolist()]


def test_gate_scorer_hook_and_calibration():
    class Half:
        def __call__(self, inputs):
            assert inputs.signals.shape[-1] == 3 and inputs.hidden.shape[-1] == 4
            return torch.full(inputs.signals.shape[:-1], 0.5)

    from ardm.generation.gate.sampler import GateSampler

    sampler = GateSampler(scorer=Half(), prior=False, mask="threshold", theta=0.4, fill="all")
    g = generate(contextual(), sampler, length=12, steps=4, trace=True)
    assert all(r["selected"] == [12] for r in g.trace["records"][1:])  # p = 0.5 > theta everywhere
    stats = calibrate(contextual(), length=12, steps=4, num=4, batch=2)
    assert all(math.isfinite(m) for m in stats.mean) and stats.var[0] > 0


# ---- options -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, opts, needle", [
    ("nope", {}, "known samplers"),
    ("gate", {"mask": "coin"}, "mask must be one of"),
    ("gate", {"delta": 2.0}, "delta must be in [0, 1]"),
    ("gate", {"b_h": -1.0}, "must be >= 0"),
    ("remdm", {"strategy": "wild"}, "strategy must be one of"),
    ("remdm", {"t_on": 0.01}, "t_off < t_on"),
    ("llada", {"remasking": "x"}, "remasking"),
    ("acs", {"eta": 2.0}, "eta must be in [0, 1]"),
    ("mdlm", {"speed": 1}, "has no option speed"),
])
def test_bad_sampler_options_raise_clear_errors(name, opts, needle):
    with pytest.raises(ArdmError) as e:
        make_sampler(name, **opts)
    assert needle in str(e.value)


def test_parse_options_types_values_from_strings():
    assert parse_options("gate", ["alpha=2", "prior=false", "mask=threshold", "cap=3"]) == \
        {"alpha": 2.0, "prior": False, "mask": "threshold", "cap": 3}
    with pytest.raises(ArdmError, match="not a valid float"):
        parse_options("gate", ["alpha=fast"])
    with pytest.raises(ArdmError, match="KEY=VALUE"):
        parse_options("gate", ["alpha"])


def test_every_sampler_is_registered_with_typed_options():
    assert set(SAMPLERS) == {"l2r", "ar", "fixed", "mdlm", "llada", "remdm", "acs", "edit", "gate", "planned",
                             "strided"}
    for cls in SAMPLERS.values():
        cls()  # defaults are valid
