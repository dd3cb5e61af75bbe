"""ardm.evaluation.seq2seq_metrics: sacrebleu BLEU / chrF with signatures, multi-reference, ROUGE-L."""

from __future__ import annotations

import pytest

from ardm.errors import ArdmError
from ardm.evaluation.seq2seq_metrics import corpus_scores

pytest.importorskip("sacrebleu")


def test_identical_hypotheses_score_100_and_carry_signatures():
    refs = [["ein hund rennt im park"], ["eine katze schlaeft auf dem sofa"]]
    s = corpus_scores([r[0] for r in refs], refs)
    assert s["bleu"] == pytest.approx(100.0) and s["chrf"] == pytest.approx(100.0)
    assert "nrefs:1" in s["bleu_signature"] and "tok:13a" in s["bleu_signature"]
    assert "nc:6" in s["chrf_signature"]


def test_a_second_reference_can_only_help_and_items_may_have_different_counts():
    hyps = ["a dog runs in the park", "a cat sleeps"]
    one = corpus_scores(hyps, [["the dog is running in a park"], ["the cat is asleep"]])
    two = corpus_scores(hyps, [["the dog is running in a park", "a dog runs in the park"],
                               ["the cat is asleep"]])
    assert two["bleu"] > one["bleu"] and "nrefs:var" in two["bleu_signature"]


def test_rouge_l_takes_the_best_reference():
    pytest.importorskip("rouge_score")
    s = corpus_scores(["a dog runs in the park"], [["completely different words", "a dog runs in the park"]],
                      rouge=True)
    assert s["rouge_l"] == pytest.approx(100.0)


def test_mismatched_counts_are_refused():
    with pytest.raises(ArdmError, match="2 hypotheses but 1 reference lists"):
        corpus_scores(["a", "b"], [["a"]])
    with pytest.raises(ArdmError, match="at least one reference"):
        corpus_scores(["a"], [[]])


def test_the_bleu_interval_is_zero_for_a_perfect_corpus_and_wider_for_fewer_items():
    refs = [["ein hund rennt im park"], ["eine katze schlaeft auf dem sofa"]] * 10
    assert corpus_scores([r[0] for r in refs], refs)["bleu_ci"] == pytest.approx(0.0)
    hyps = ["ein hund rennt", "eine katze auf dem sofa", "ein vogel singt laut", "der fisch"]
    refs = [["ein hund rennt im park"], ["eine katze schlaeft auf dem sofa"], ["ein vogel singt"],
            ["der rote fisch schwimmt"]]
    few, many = corpus_scores(hyps, refs), corpus_scores(hyps * 25, refs * 25)
    assert 0 < many["bleu_ci"] < few["bleu_ci"]


def test_concept_coverage_counts_inflected_concepts_and_only_them():
    pytest.importorskip("nltk")
    from ardm.evaluation.seq2seq_metrics import concept_coverage

    concepts = [["dog", "throw", "frisbee", "catch"], ["team", "field"]]
    hyps = ["The dogs catch a frisbee he throws.", "A man sits."]
    assert concept_coverage(hyps, concepts) == pytest.approx((100.0 + 0.0) / 2)
    assert concept_coverage(["teams on the fields"], [["team", "field", "drill"]]) == pytest.approx(200 / 3)
    s = corpus_scores(["a dog runs"], [["a dog runs", "dogs run"]], concepts=[["dog", "run"]])
    assert s["coverage"] == pytest.approx(100.0) and "rouge_l" not in s
