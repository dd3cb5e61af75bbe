"""ardm.data.concepts: suffix-rule lemmas kept only when they are corpus words; concept sets of
content words; one drawn pair per distinct sentence, repeatable by seed."""

from __future__ import annotations

import random

from ardm.data.concepts import concept_pairs, concept_set, corpus_words, lemma

KNOWN = {"dog", "throw", "run", "ride", "try", "fire", "fir", "walk", "frisbee", "park", "field"}


def test_lemma_strips_suffixes_only_into_known_words():
    cases = {"dogs": "dog", "throwing": "throw", "running": "run", "riding": "ride", "tried": "try",
             "fired": "fire", "walked": "walk", "dog": "dog", "glass": "glass", "thing": "thing",
             "swimming": "swimming"}  # "swim" is not a corpus word here: the word stays as it is
    assert {w: lemma(w, KNOWN) for w in cases} == cases


def test_concept_set_takes_distinct_content_lemmas():
    s = "The dogs are throwing a frisbee in the park while the dog runs."
    known = KNOWN | corpus_words([s])
    got = concept_set(s, 5, known, random.Random(0))
    assert got is not None and sorted(got) == ["dog", "frisbee", "park", "run", "throw"]
    assert concept_set("a dog in the park", 3, known, random.Random(0)) is None  # two content words


def test_concept_pairs_one_per_distinct_sentence_and_repeatable():
    sents = ["a dog runs across the field with a frisbee", "a dog runs across the field with a frisbee",
             "people in a park", "the man is riding a horse on the beach"]
    known = corpus_words(sents) | KNOWN
    a = concept_pairs(sents, known, seed=3)
    assert a == concept_pairs(sents, known, seed=3)
    assert [t for _, t in a] == [sents[0], sents[3]]  # distinct targets with >= 3 content words
    for src, _ in a:
        assert 3 <= len(src.split()) <= 5
