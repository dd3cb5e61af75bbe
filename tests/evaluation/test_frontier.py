"""The quality-diversity frontier on synthetic curves: interpolation at an entropy, its bootstrap
interval, 'not reached' with its side, the needed-NFE read-out and the ranking."""

from __future__ import annotations

import math

import pytest

from ardm.evaluation.frontier import (
    REPEATS,
    build_frontier,
    frontier_lines,
    needed_nfe,
    ranking,
    read_at,
    read_curve,
    read_ratio,
)


def test_read_at_interpolates_on_the_first_bracketing_segment():
    assert read_at([1.0, 2.0, 3.0], [10.0, 20.0, 40.0], 2.5) == (30.0, None)
    assert read_at([1.0, 2.0], [10.0, 20.0], 1.0) == (10.0, None)  # an end point is reached
    # sweep order, not entropy order: the polyline 1 -> 3 -> 2 crosses 2.5 first on 1 -> 3
    assert read_at([1.0, 3.0, 2.0], [0.0, 20.0, 0.0], 2.5) == (15.0, None)
    assert read_at([1.0, 2.0], [5.0, 6.0], 2.5) == (None, "below")  # too sharp even at the top
    assert read_at([3.0, 4.0], [5.0, 6.0], 2.5) == (None, "above")
    assert read_at([2.5], [7.0], 2.5) == (7.0, None) and read_at([], [], 1.0) == (None, "gap")


def run(label, K, T, entropies, nll_per_token, tokens=10, sampler="fixed", noise=0.0):
    """A compare run whose samples have these entropies and a per-token NLL of nll_per_token +- noise
    (alternating, so its gen-PPL is exp(nll_per_token) exactly for an even number of samples)."""
    samples = [{"entropy": h, "gen_nll": (nll_per_token + noise * (-1) ** j) * tokens, "gen_tokens": tokens}
               for j, h in enumerate(entropies)]
    h = sum(entropies) / len(entropies)
    return {"label": label, "sampler": sampler, "nfe_budget": K, "temperature": T, "samples": samples,
            "entropy": h, "entropy_ci": [h - 0.05, h + 0.05], "gen_ppl": math.exp(nll_per_token),
            "gen_ppl_ci": [math.exp(nll_per_token) * 0.9, math.exp(nll_per_token) * 1.1]}


def spread(h, n=40, width=0.1):
    return [h - width + 2 * width * j / (n - 1) for j in range(n)]


def test_read_curve_interpolates_log_ppl_in_entropy_with_an_interval_around_it():
    runs = [run("a", 8, 0.8, spread(2.0), math.log(10)), run("a", 8, 1.0, spread(3.0), math.log(40))]
    r = read_curve(runs, 2.5)
    assert r["reached"] and r["gen_ppl"] == pytest.approx(20.0)  # geometric midpoint of 10 and 40
    lo, hi = r["gen_ppl_ci"]
    assert lo < 20.0 < hi and hi / lo < 1.5 and r["reached_share"] == 1.0
    assert read_curve(runs, 3.5) == {"entropy": 3.5, "reached": False, "side": "below"}


def curve(label, K, q, h=3.0, noise=0.0):
    """A curve whose quality at the data's entropy h is q (two points around h)."""
    lo, hi = math.log(q) - 0.1, math.log(q) + 0.1
    return [run(label, K, 0.8, spread(h - 0.1, width=0.01), lo, noise=noise),
            run(label, K, 1.2, spread(h + 0.1, width=0.01), hi, noise=noise)]


def frontier(runs, target=None):
    return build_frontier({"runs": runs}, 3.0, "held-out data", "temperature", target)


def test_needed_nfe_is_the_first_budget_at_or_below_the_target_with_a_log_log_estimate():
    runs = curve("a", 8, 20.0) + curve("a", 16, 10.0) + curve("a", 32, 5.0) + curve("b", 8, 6.0)
    f = frontier(runs)
    assert f["quality_target"] == pytest.approx(6.0)  # best at the smallest budget: b at NFE 8
    need = {r["label"]: r for r in f["needed_nfe"]}
    assert need["b"]["nfe"] == 8 and need["a"]["nfe"] == 32
    # between 16 (10.0) and 32 (5.0), log-linear: 6.0 is reached at 2^(4 + log(10/6)/log 2)
    assert need["a"]["nfe_estimate"] == pytest.approx(2 ** (4 + math.log(10 / 6) / math.log(2)))
    rows = {r["label"]: r for r in needed_nfe(f["curves"], 4.0)}
    assert rows["a"]["nfe"] is None and rows["a"]["budgets_read"] == [8, 16, 32]


def test_ranking_orders_by_quality_at_the_data_entropy_and_says_who_never_gets_there():
    sharp = [run("sharp", 8, t, spread(2.5, width=0.01), 1.0) for t in (0.8, 1.2)]  # entropy below 3.0
    f = frontier(curve("a", 8, 20.0) + curve("b", 8, 6.0) + sharp)
    (r,) = f["ranking"]
    assert r["order"] == ["b", "a"] and r["first_dominates"]  # intervals of 6 and 20 far apart
    assert r["not_reached"] == {"sharp": "below"}
    close = ranking(frontier(curve("a", 8, 6.2, noise=1.0) + curve("b", 8, 6.0, noise=1.0))["curves"])
    assert close[0]["order"] == ["b", "a"] and not close[0]["first_dominates"]


def test_frontier_reads_below_the_data_entropy_and_renders():
    f = frontier(curve("a", 8, 20.0, h=2.8) + curve("b", 8, 6.0))
    reads = {c["label"]: {r["offset"]: r for r in c["reads"]} for c in f["curves"]}
    assert reads["a"][-0.2]["reached"] and reads["a"][-0.2]["gen_ppl"] == pytest.approx(20.0, rel=1e-6)
    assert reads["a"][0.0] == {"offset": 0.0, "entropy": 3.0, "reached": False, "side": "below"}
    text = "\n".join(frontier_lines({"frontier": f}))
    assert "| 8 | a | 2.700 -> 2.900 |" in text and "| below |" in text
    assert "- NFE 8, gen-PPL at the data's entropy: b 6.00." in text
    assert "a: entropy below it at every point of the sweep" in text


def test_reads_carry_self_bleu_and_mark_a_quality_bought_with_repetition():
    """With Self-BLEU on every run, each read gets it interpolated like gen-PPL; a read above the
    held-out windows' interval is marked, the others are not."""
    copying, fresh = curve("copying", 8, 3.0), curve("fresh", 8, 9.0)
    for r, v in zip(copying + fresh, (40.0, 50.0, 10.0, 12.0), strict=True):
        r["self_bleu"], r["self_bleu_ci"] = v, [v - 1, v + 1]
    results = {"runs": copying + fresh, "data": {"self_bleu": 12.5, "self_bleu_ci": [11.4, 13.8]}}
    results["frontier"] = build_frontier(results, 3.0, "held-out data", "temperature")
    curves = results["frontier"]["curves"]
    at_h = {c["label"]: next(a for a in c["reads"] if a["offset"] == 0.0) for c in curves}
    assert at_h["copying"]["self_bleu"] == pytest.approx(45.0)
    assert at_h["fresh"]["self_bleu"] == pytest.approx(11.0)
    text = "\n".join(frontier_lines(results))
    row = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| 8 |")}
    assert f"{REPEATS} Self-BLEU 45" in row["copying"] and REPEATS not in row["fresh"]
    assert "held-out windows' 12.5 [11.4, 13.8]" in text


def seeded(runs, seeds):
    for r in runs:
        for s, seed in zip(r["samples"], seeds, strict=False):
            s["seed"] = seed
    return runs


def test_a_small_steady_gap_on_shared_seeds_is_separated_by_the_paired_read_not_by_two_intervals():
    # both curves carry the same per-seed noise (+-0.4 nats/token), b 5% worse at every seed
    a = seeded(curve("a", 8, 10.0, noise=0.4), range(40))
    b = seeded(curve("b", 8, 10.5, noise=0.4), range(40))
    ra, rb = read_curve(a, 3.0), read_curve(b, 3.0)
    assert ra["gen_ppl_ci"][1] > rb["gen_ppl_ci"][0]  # the two intervals overlap ...
    r = read_ratio(a, b, 3.0)
    assert r is not None and r["ratio"] == pytest.approx(10.0 / 10.5)
    assert r["ratio_ci"][1] < 1.0 and r["reached_share"] == 1.0  # ... the paired one excludes 1
    shifted = seeded(curve("b", 8, 10.5, noise=0.4), range(1, 41))
    assert read_ratio(a, shifted, 3.0) is None  # other seeds: nothing to pair


def test_the_frontier_pairs_the_lowest_curve_with_every_other_at_each_read():
    f = frontier(curve("a", 8, 10.0) + curve("b", 8, 12.0) + curve("c", 8, 15.0))
    at_h = [p for p in f["paired"] if p["offset"] == 0.0]
    assert {(p["best"], p["other"]) for p in at_h} == {("a", "b"), ("a", "c")}
    ratios = {p["other"]: round(p["ratio"], 3) for p in at_h}
    assert ratios == {"b": round(10 / 12, 3), "c": round(10 / 15, 3)}
    assert any("Paired reads" in line for line in frontier_lines({"frontier": f, "data": {}}))
