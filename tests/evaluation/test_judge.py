"""The third-party judge's plumbing with fake scorers (the real models are an optional extra)."""

from __future__ import annotations

import math

import pytest

from ardm.cli import main
from ardm.errors import ArdmError
from ardm.evaluation.frontier import build_frontier
from ardm.evaluation.judge import add_self_bleu, bits_per_char, judge_lines, judge_results, package_dir
from tests.evaluation.test_frontier import run, spread


def fake_nll(texts, context):
    """2 bits per character for texts of 'a', 4 for anything else."""
    return [(len(t) * math.log(2) * (2.0 if set(t) <= {"a"} else 4.0), len(t)) for t in texts]


def sweep_results():
    runs = [run("x", 8, 0.8, spread(2.9, width=0.01), 1.0), run("x", 8, 1.2, spread(3.1, width=0.01), 2.0)]
    for r in runs:  # low temperature: 'aaaa' (2 bits/char); high: 'abcd' (4 bits/char)
        for s in r["samples"]:
            s["text"] = "aaaa" if r["temperature"] < 1 else "abcd"
    results = {"config": {"prompt": "\n", "seed": 0}, "runs": runs}
    results["frontier"] = build_frontier(results, 3.0, "held-out data", "temperature")
    return results


def test_bits_per_char_is_token_free():
    assert bits_per_char([(4 * math.log(2), 2), (2 * math.log(2), 1)]) == pytest.approx(2.0)


def test_judge_scores_runs_and_reads_the_curve_at_the_data_entropy():
    results = sweep_results()
    out = judge_results(results, ["aaaa", "aaaa"], fake_nll, lambda texts: [[len(t)] for t in texts],
                        lambda p, q, seed: 0.25)
    assert out["data"]["bits_per_char"] == pytest.approx(2.0) and out["data"]["windows"] == 2
    by_t = {r["temperature"]: r for r in out["runs"]}
    assert by_t[0.8]["bits_per_char"] == pytest.approx(2.0)
    assert by_t[1.2]["bits_per_char"] == pytest.approx(4.0)
    assert by_t[0.8]["mauve"] == 0.25
    assert results["runs"][0]["samples"][0]["chars"] == 4  # per-sample judge NLL kept for re-reading
    (curve,) = out["frontier"]
    at_h = next(a for a in curve["reads"] if a["offset"] == 0.0)
    assert at_h["reached"] and at_h["bits_per_char"] == pytest.approx(3.0, rel=1e-4)  # halfway in entropy
    below = next(a for a in curve["reads"] if a["offset"] == -0.3)
    assert below == {"offset": -0.3, "entropy": 2.7, "reached": False, "side": "above"}
    text = "\n".join(judge_lines(results))
    assert "| 8 | x | 0.8 | 2.000 [2.000, 2.000] | 0.250 |" in text and "| 8 | x | above |" in text


def test_judge_runs_only_the_budgets_asked_for_and_without_mauve():
    results = sweep_results()
    out = judge_results(results, ["aaaa"], fake_nll, None, None, nfe=[16])
    assert out["runs"] == [] and out["features"] is None


def test_a_missing_judge_package_is_one_error_line(tmp_path, capsys):
    with pytest.raises(ArdmError, match=r"\.\[judge\]"):
        package_dir("no_such_judge_package")
    assert main(["judge", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.startswith("ardm: error: cannot read")


def test_self_bleu_is_added_to_an_older_result_and_its_frontier():
    pytest.importorskip("sacrebleu")
    results = sweep_results()  # samples 'aaaa' (low T) or 'abcd': each run's samples are all alike
    results["data"] = {}
    add_self_bleu(results, ["to be or not", "the cat sat down", "my lord, I come"])
    assert results["data"]["self_bleu"] < 20.0 and len(results["data"]["self_bleu_ci"]) == 2
    assert all(r["self_bleu"] == pytest.approx(100.0) for r in results["runs"])
    (curve,) = results["frontier"]["curves"]
    assert all(a["self_bleu"] == pytest.approx(100.0) for a in curve["reads"] if a["reached"])
