"""Concept sets drawn from sentences: CommonGen-style training pairs made from a corpus's own training
targets (SPEC §11.7).

CommonGen's splits share few concepts: in the early release (`../shared/data/commongen`) "dog",
"field" and "throw" never occur as a training concept, while 393, 142 and 190 test sets use them. A
model that has only ever seen such a word on the target side does not learn to copy it from the
source, so it writes fluent sentences that ignore the concepts. Drawing 3-5 content words of each
training sentence as a new source (CommonGen itself was built by extracting concepts from
captions) puts the training targets' whole vocabulary on the source side. Only training sentences
are read: no validation or test text.
"""

from __future__ import annotations

import random
import re

# English function words (and a few caption fillers) that CommonGen never uses as concepts.
STOPWORDS = frozenset("""
a an the and or but if then than so of in on at to from by with without for into onto over under
above below near about after before during while as is are was were be been being am do does did
has have had having it its it's this that these those there here their them they he she his her him
we our you your i my me who whom which what where when why how not no nor very too also just only
some any each every all both few more most other another such own same can will would should could
may might must shall up down out off again further once one two three four five six seven eight nine
ten while until because through between against among onto upon via per s t
""".split())

WORD = re.compile(r"[a-z]+")


def lemma(word: str, known: set[str]) -> str:
    """A base form by suffix rules, kept only when it is itself a word of `known` (the corpus's words):
    dogs -> dog, throwing -> throw, running -> run, riding -> ride, tried -> try, fired -> fire; else
    the word."""
    candidates = []
    if word.endswith("ies") and len(word) > 4:
        candidates.append(word[:-3] + "y")
    if word.endswith("ied") and len(word) > 4:
        candidates.append(word[:-3] + "y")
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)]
            if len(stem) > 2 and stem[-1] == stem[-2]:
                candidates.append(stem[:-1])  # running -> run
            candidates += [stem + "e", stem]  # fired -> fire before fir
    if word.endswith("es") and len(word) > 3:
        candidates.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        candidates.append(word[:-1])
    return next((c for c in candidates if c in known), word)


def corpus_words(sentences: list[str]) -> set[str]:
    return {w for s in sentences for w in WORD.findall(s.lower())}


def concept_set(sentence: str, size: int, known: set[str], rng: random.Random) -> list[str] | None:
    """`size` distinct content-word lemmas of the sentence in random order (None if it has fewer
    than 3)."""
    words = [w for w in WORD.findall(sentence.lower()) if w not in STOPWORDS and len(w) > 2]
    lemmas = list(dict.fromkeys(lemma(w, known) for w in words))
    if len(lemmas) < 3:
        return None
    return rng.sample(lemmas, min(size, len(lemmas)))


def concept_pairs(targets: list[str], known: set[str], seed: int = 0,
                  sizes: tuple[int, ...] = (3, 4, 5)) -> list[tuple[str, str]]:
    """(concepts, sentence) for every distinct target with >= 3 content words; set sizes drawn
    uniformly from `sizes` (CommonGen's test sets have 4 or 5 concepts, its training sets mostly 3)."""
    rng = random.Random(seed)
    pairs = []
    for sentence in dict.fromkeys(targets):
        concepts = concept_set(sentence, rng.choice(sizes), known, rng)
        if concepts is not None:
            pairs.append((" ".join(concepts), sentence))
    return pairs
