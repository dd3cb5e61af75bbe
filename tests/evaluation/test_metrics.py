"""Metrics of the evaluation protocol on hand-made inputs (SPEC §8.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ardm.core.tokenizer import CharTokenizer
from ardm.errors import ArdmError
from ardm.evaluation.metrics import (
    bootstrap_ci,
    distinct_n,
    focus_thirds,
    generative_nll,
    perplexity,
    ppl_ci,
    revision_stats,
    self_bleu,
    self_bleu_stats,
    unigram_entropy,
)
from ardm.evaluation.plots import pareto_front
from tests.toy_models import ToyModel


def test_unigram_entropy_of_known_distributions():
    assert unigram_entropy([3, 3, 3, 3]) == 0.0
    assert unigram_entropy([0, 1, 0, 1]) == pytest.approx(math.log(2))
    assert unigram_entropy([0, 1, 2, 3]) == pytest.approx(math.log(4))
    # counts (2, 1, 1): -(1/2 ln 1/2 + 2 * 1/4 ln 1/4) = 1.5 ln 2
    assert unigram_entropy([5, 5, 6, 7]) == pytest.approx(1.5 * math.log(2))
    assert unigram_entropy([]) == 0.0


def test_distinct_n_pools_ngrams_over_samples():
    assert distinct_n(["abab"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["abab"], 2) == pytest.approx(2 / 3)  # ab, ba, ab
    assert distinct_n(["ab", "ab"], 2) == pytest.approx(1 / 2)  # the same bigram twice
    assert distinct_n(["a"], 2) == 0.0
    with pytest.raises(ValueError):
        distinct_n(["ab"], 0)


def test_self_bleu_sees_samples_that_repeat_each_other():
    pytest.importorskip("sacrebleu")
    same = ["KING RICHARD III: what say you, my lord?"] * 4
    assert self_bleu(same) == pytest.approx([100.0] * 4)
    varied = ["the cat sat on the mat", "a dog ran in the park", "my lord, I come", "what news abroad?"]
    assert max(self_bleu(varied)) < 20.0
    assert self_bleu(["one text"]) is None and self_bleu_stats(["one text"]) == {}
    stats = self_bleu_stats(same[:2] + varied[:2])
    lo, hi = stats["self_bleu_ci"]
    assert lo <= stats["self_bleu"] <= hi and 0.0 <= lo and hi <= 100.0


def _causal(logit_fn, vocab=4, max_len=32):
    return ToyModel(lambda tokens, call: logit_fn(tokens), vocab=vocab, max_len=max_len, attention="causal")


def test_generative_nll_of_a_uniform_model_is_log_vocab():
    tok = CharTokenizer(["\n", "a", "b", "c"])
    model = _causal(lambda x: torch.zeros(*x.shape, 4))
    out = generative_nll(model, tok, ["abc", "a"], "\n")
    assert [n for _, n in out] == [3, 1]  # only the texts' tokens are scored, not the context
    assert out[0][0] == pytest.approx(3 * math.log(4))
    assert perplexity(out) == pytest.approx(4.0)


def test_generative_nll_scores_each_token_given_its_prefix():
    tok = CharTokenizer(["\n", "a", "b", "c"])

    def next_is_successor(x):  # predicts id + 1 with probability e^5 / (e^5 + 3)
        logits = torch.zeros(*x.shape, 4)
        logits.scatter_(-1, ((x + 1) % 4)[..., None], 5.0)
        return logits

    model = _causal(next_is_successor)
    p_hit = math.exp(5) / (math.exp(5) + 3)
    (nll, n), = generative_nll(model, tok, ["ab"], "\n")  # \n -> a -> b: both predicted
    assert n == 2 and nll == pytest.approx(-2 * math.log(p_hit), rel=1e-5)
    (nll, n), = generative_nll(model, tok, ["ba"], "\n")  # both missed
    assert nll == pytest.approx(-2 * math.log((1 - p_hit) / 3), rel=1e-5)


def test_generative_nll_refuses_bad_references_and_contexts():
    tok = CharTokenizer(["\n", "a"])
    bidirectional = ToyModel(lambda x, c: torch.zeros(*x.shape, 2), vocab=2)
    with pytest.raises(ArdmError, match="causal"):
        generative_nll(bidirectional, tok, ["a"], "\n")
    model = _causal(lambda x: torch.zeros(*x.shape, 2), vocab=2, max_len=4)
    with pytest.raises(ArdmError, match="non-empty context"):
        generative_nll(model, tok, ["a"], "")
    with pytest.raises(ArdmError, match="does not fit"):
        generative_nll(model, tok, ["aaaaaaaa"], "\n")


def test_bootstrap_ci_brackets_the_statistic():
    v = np.arange(100, dtype=float)
    lo, hi = bootstrap_ci(v, seed=1)
    assert lo < v.mean() < hi and hi - lo < 30
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    lo, hi = ppl_ci([(math.log(4) * 3, 3)] * 5)
    assert lo == pytest.approx(4.0) and hi == pytest.approx(4.0)


def _trace(records, length=7, prompt=1):
    return {"prompt_length": prompt, "length": length, "records": records}


def test_revision_stats_of_a_known_trace():
    # 2 rows, target n = 6 (prompt 1). Step 1: writes only. Step 2: row 0 overwrites positions 1, 2
    # (targets 0, 1), row 1 remasks position 6 (target 5). Step 3: row 0 overwrites position 1 again.
    none = [[], []]
    recs = [{"written": [[[1, 0]], [[1, 0]]], "overwritten": none, "remasked": none},
            {"written": none, "overwritten": [[[1, 0, 2], [2, 0, 2]], []], "remasked": [[], [[6, 3]]]},
            {"written": none, "overwritten": [[[1, 2, 3]], []], "remasked": none}]
    st = revision_stats(_trace(recs))
    assert st["overwrites_per_step"] == [0.0, 1.5, 0.5]
    assert st["total_overwrites"] == 2.0  # 4 revisions over 2 rows
    assert st["fraction_revised"] == pytest.approx(3 / 12)  # (row 0: targets 0, 1; row 1: target 5) / 12
    assert st["rate_by_position"] == [1.0, 0.5, 0.0, 0.0, 0.0, 0.5]
    assert st["focus_thirds"] == {"early": 0.75, "middle": 0.0, "late": 0.25}
    assert np.asarray(st["heatmap"]).shape == (3, 6)
    assert st["heatmap"][1] == [0.5, 0.5, 0.0, 0.0, 0.0, 0.5]


def test_focus_thirds_follow_relative_position():
    assert focus_thirds([1, 0, 0, 0, 0, 0, 0, 0, 1]) == {"early": 0.5, "middle": 0.0, "late": 0.5}
    assert focus_thirds([0, 0, 0]) == {"early": 0.0, "middle": 0.0, "late": 0.0}
    # n = 4: i/n = 0, .25 early; .5 middle; .75 late
    assert focus_thirds([1, 1, 1, 1]) == {"early": 0.5, "middle": 0.25, "late": 0.25}


def test_pareto_front_keeps_only_undominated_points():
    pts = [(8, 50.0), (16, 40.0), (16, 45.0), (32, 42.0), (64, 30.0)]
    assert pareto_front(pts) == [(8, 50.0), (16, 40.0), (64, 30.0)]
