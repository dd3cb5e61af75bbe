"""Seq2seq metrics with the field's libraries (SPEC §11.7): `sacrebleu` corpus BLEU and chrF (with
their signatures) against all references, and `rouge-score` ROUGE-L (F1, best over the references,
averaged over items) for CommonGen. Never a hand-written BLEU for reporting (the sentence BLEU of
ardm.generation.mbr is MBR's utility only).

CommonGen's concept coverage is approximated with Porter stems (`concept_coverage`).
`sacrebleu` is in the `test` extra; `rouge-score` in the optional `seq2seq` extra
(`pip install -e '.[seq2seq]'`).
"""

from __future__ import annotations

import re

from ardm.errors import ArdmError


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError:
        raise ArdmError("seq2seq metrics need 'sacrebleu' (pip install -e '.[seq2seq]')") from None
    return sacrebleu


def _streams(references: list[list[str]]) -> list[list[str | None]]:
    """Per-item reference lists -> sacrebleu's reference streams (None where an item has fewer)."""
    most = max(len(r) for r in references)
    return [[r[j] if j < len(r) else None for r in references] for j in range(most)]


BOOTSTRAP = 1000  # resamples of sacrebleu's bootstrap interval for BLEU (its fixed seed: repeatable)


def corpus_scores(hypotheses: list[str], references: list[list[str]], rouge: bool = False,
                  concepts: list[list[str]] | None = None) -> dict:
    """{"bleu", "bleu_ci", "chrf", "bleu_signature", "chrf_signature"[, "rouge_l"][, "coverage"]} of
    hypotheses [N] against references [N][>= 1] (several references per item where the set has
    them); `concepts` [N][words] adds concept coverage. bleu_ci: the half-width of sacrebleu's 95%
    bootstrap interval over items (BOOTSTRAP resamples)."""
    if len(hypotheses) != len(references):
        raise ArdmError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    if not hypotheses or any(not r for r in references):
        raise ArdmError("every item needs at least one reference")
    sb = _sacrebleu()
    streams = _streams(references)
    bleu, chrf = sb.metrics.BLEU(), sb.metrics.CHRF()
    b = bleu.corpus_score(hypotheses, streams)
    c = chrf.corpus_score(hypotheses, streams)
    ci = sb.metrics.BLEU().corpus_score(hypotheses, streams, n_bootstrap=BOOTSTRAP)._ci
    out = {"bleu": round(b.score, 2), "bleu_ci": round(float(ci), 2), "chrf": round(c.score, 2),
           "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}
    if rouge:
        out["rouge_l"] = round(rouge_l(hypotheses, references), 2)
    if concepts is not None:
        out["coverage"] = round(concept_coverage(hypotheses, concepts), 2)
    return out


def concept_coverage(hypotheses: list[str], concepts: list[list[str]]) -> float:
    """CommonGen's coverage: the share of each item's concepts that its output uses, averaged over
    items, x 100. CommonGen lemmatises; here a concept counts as used when its Porter stem (nltk,
    which rouge-score installs) equals a stemmed output word, so irregular forms (run / ran) count
    as missing: a slight undercount, the same for every decoder."""
    try:
        from nltk.stem.porter import PorterStemmer
    except ImportError:
        raise ArdmError("concept coverage needs 'nltk' (pip install -e '.[seq2seq]')") from None
    stem = PorterStemmer().stem
    total = 0.0
    for hyp, words in zip(hypotheses, concepts):
        used = {stem(w) for w in re.findall(r"[a-z]+", hyp.lower())}
        wanted = [stem(w.lower()) for w in words]
        total += sum(w in used for w in wanted) / max(len(wanted), 1)
    return 100.0 * total / len(hypotheses)


def rouge_l(hypotheses: list[str], references: list[list[str]]) -> float:
    """Mean over items of the best ROUGE-L F1 against the item's references (rouge-score), x 100."""
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise ArdmError("ROUGE-L needs the 'rouge-score' package (pip install -e '.[seq2seq]')") from None
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    total = sum(scorer.score_multi(refs, hyp)["rougeL"].fmeasure for hyp, refs in zip(hypotheses, references))
    return 100.0 * total / len(hypotheses)
