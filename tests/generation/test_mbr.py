"""MBR selection (SPEC §6.9) on hand-made candidates."""

from __future__ import annotations

import math

import pytest

from ardm.generation.mbr import mbr_select, sentence_bleu


def test_bleu_of_identical_and_disjoint_sentences():
    s = "the cat sat on the mat".split()
    assert sentence_bleu(s, s) == pytest.approx(1.0)
    assert sentence_bleu("a b c d".split(), "w x y z".split()) == 0.0
    assert sentence_bleu([], s) == 0.0


def test_bleu_brevity_penalty_and_smoothing():
    ref = "a b c d e f".split()
    hyp = "a b c".split()  # all n-grams match, but 3 of 6 words
    # precisions: 3/3, (2+1)/(2+1), (1+1)/(1+1), (0+1)/(0+1) -> 1; brevity exp(1 - 6/3)
    assert sentence_bleu(hyp, ref) == pytest.approx(math.exp(1 - 2))


def test_mbr_picks_the_consensus_candidate():
    cands = ["to be or not to be", "to be or not to be that", "xyz qqq", "to be or not"]
    assert mbr_select(cands) in (0, 1)
    assert mbr_select(["only one"]) == 0
    assert mbr_select(["a b", "a b"]) == 0  # ties go to the first
